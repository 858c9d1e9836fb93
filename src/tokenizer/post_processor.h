// Post-processors: special tokens and segment ids around one or two encoded texts.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/raw_encoding.h"

namespace kiln::tokenizer {

/// Leading/trailing space-like characters ('Ġ' or whitespace) of every token, by id; what
/// ByteLevel offset trimming needs to know about token strings.
using SpaceCounts = std::vector<std::pair<uint16_t, uint16_t>>;

/// Computes SpaceCounts for `tokens` (token string by id).
std::shared_ptr<const SpaceCounts> compute_space_counts(const std::vector<std::string>& tokens);

/// Adds special tokens and type ids (tokenizers' PostProcessor); immutable and thread-safe.
class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  /// Special tokens added to a single text or a pair.
  virtual size_t added_tokens(bool pair) const = 0;
  /// Combines the encoded text(s) into one encoding (PostProcessor::process).
  virtual RawEncoding process(RawEncoding first, std::optional<RawEncoding> second,
                              bool add_special_tokens) const;

 protected:
  /// The per-sequence step (PostProcessor::process_encodings); sequence ids already set.
  virtual std::vector<RawEncoding> process_encodings(std::vector<RawEncoding> encodings,
                                                     bool add_special_tokens) const = 0;
};

/// Combines encodings when there is no post-processor (tokenizers' default_process).
RawEncoding default_process(RawEncoding first, std::optional<RawEncoding> second);

/// One piece of a TemplateProcessing template.
struct TemplatePiece {
  bool is_sequence = false;  ///< true: $A/$B; false: a special token
  int sequence = 0;          ///< 0 for A, 1 for B (is_sequence)
  std::string special;       ///< special token name (!is_sequence)
  int32_t type_id = 0;       ///< type id of the piece's tokens
};

/// A named special token of a template, possibly several ids.
struct TemplateSpecialToken {
  std::vector<int32_t> ids;  ///< ids emitted for it
};

/// TemplateProcessing; `specials` maps names used in the templates to their ids.
std::unique_ptr<PostProcessor> make_template_processing(
    std::vector<TemplatePiece> single, std::vector<TemplatePiece> pair,
    std::vector<std::pair<std::string, TemplateSpecialToken>> specials);
/// BertProcessing: [CLS] A [SEP] (B [SEP]).
std::unique_ptr<PostProcessor> make_bert_processing(int32_t cls_id, int32_t sep_id);
/// RobertaProcessing: <s> A </s> (</s> B </s>), with optional ByteLevel offset trimming.
std::unique_ptr<PostProcessor> make_roberta_processing(int32_t cls_id, int32_t sep_id,
                                                       bool trim_offsets, bool add_prefix_space,
                                                       std::shared_ptr<const SpaceCounts> spaces);
/// The ByteLevel post-processor: offset trimming only.
std::unique_ptr<PostProcessor> make_byte_level_processing(
    bool trim_offsets, bool add_prefix_space, std::shared_ptr<const SpaceCounts> spaces);

}  // namespace kiln::tokenizer
