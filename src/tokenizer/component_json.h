// Parsers for the pipeline components of tokenizer.json (normalizer, pre_tokenizer,
// post_processor). Internal: RapidJSON types stay out of include/kiln.
#pragma once

#include <memory>
#include <string_view>

#include "core/json.h"
#include "tokenizer/tokenizer_impl.h"

namespace kiln::tokenizer {

/// A token id (integer in [0, kMaxTokenId)); `what` names the field in errors.
Result<int32_t> id_value(const core::json::Value& v, std::string_view what);
/// The "normalizer" object.
Result<std::unique_ptr<Normalizer>> parse_normalizer(const core::json::Value& v);
/// The "pre_tokenizer" object.
Result<std::unique_ptr<PreTokenizer>> parse_pre_tokenizer(const core::json::Value& v);
/// The "post_processor" object; `parts` supplies the vocabulary for ByteLevel trimming.
Result<std::unique_ptr<PostProcessor>> parse_post_processor(const core::json::Value& v,
                                                            const TokenizerParts& parts);

}  // namespace kiln::tokenizer
