// Small helpers over RapidJSON for the model files kiln reads (config.json, tokenizer.json,
// safetensors headers). Internal: RapidJSON types never appear in include/kiln.
#pragma once

#include <rapidjson/document.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "kiln/status.h"

namespace kiln::core::json {

using Value = rapidjson::Value;
using Document = rapidjson::Document;

/// Parses `text`; the error names `what` and the byte offset of the syntax error.
Status parse(std::string_view text, std::string_view what, Document* doc);

/// Member `key` of object `obj`, or nullptr when absent or `obj` is not an object.
const Value* find(const Value& obj, std::string_view key);

/// Typed optional members: nullopt when absent or JSON null; an error when of another type.
Result<std::optional<int64_t>> get_int(const Value& obj, std::string_view key);
Result<std::optional<double>> get_double(const Value& obj, std::string_view key);
Result<std::optional<bool>> get_bool(const Value& obj, std::string_view key);
Result<std::optional<std::string>> get_string(const Value& obj, std::string_view key);

/// The same with a default for an absent member.
Result<int64_t> get_int_or(const Value& obj, std::string_view key, int64_t fallback);
Result<double> get_double_or(const Value& obj, std::string_view key, double fallback);
Result<bool> get_bool_or(const Value& obj, std::string_view key, bool fallback);
Result<std::string> get_string_or(const Value& obj, std::string_view key, std::string fallback);

}  // namespace kiln::core::json
