// Named entities from a token classifier, grouped as Hugging Face's token-classification
// pipeline does with aggregation_strategy="simple": every token takes its most probable label,
// adjacent tokens of one entity type (I- continuing, B- starting) form one entity whose score is
// the mean of theirs, and entities labelled "O" are dropped.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/tokenizer.h"

namespace kiln::tasks {

/// One entity: type ("person" for B-/I-person), mean score, its tokens decoded, and its
/// [start, end) in characters (code points) of the text.
struct NerEntity {
  std::string entity_group;
  double score = 0;
  std::string word;
  int64_t start = 0;
  int64_t end = 0;
};

/// Groups the entities of `text`, encoded as `encoding` (byte offsets into `text`), from its
/// logits [tokens, labels.size()].
std::vector<NerEntity> group_entities(const Tokenizer& tokenizer, std::string_view text,
                                      const Encoding& encoding, const float* logits,
                                      const std::vector<std::string>& labels);

/// The entities as a JSON array (the pipeline's field names).
std::string entities_json(const std::vector<NerEntity>& entities);

}  // namespace kiln::tasks
