#include "core/json.h"

#include <rapidjson/error/en.h>

#include <cmath>

namespace kiln::core::json {

Status parse(std::string_view text, std::string_view what, Document* doc) {
  doc->Parse<rapidjson::kParseStopWhenDoneFlag | rapidjson::kParseNanAndInfFlag>(text.data(),
                                                                                 text.size());
  if (doc->HasParseError()) {
    return invalid_argument(std::string(what) + ": invalid JSON at byte " +
                            std::to_string(doc->GetErrorOffset()) + ": " +
                            rapidjson::GetParseError_En(doc->GetParseError()));
  }
  return ok_status();
}

const Value* find(const Value& obj, std::string_view key) {
  if (!obj.IsObject()) return nullptr;
  auto it = obj.FindMember(Value(key.data(), static_cast<rapidjson::SizeType>(key.size())));
  return it == obj.MemberEnd() ? nullptr : &it->value;
}

namespace {
Status wrong_type(std::string_view key, std::string_view want) {
  return invalid_argument("field \"" + std::string(key) + "\" must be " + std::string(want));
}
}  // namespace

Result<std::optional<int64_t>> get_int(const Value& obj, std::string_view key) {
  const Value* v = find(obj, key);
  if (v == nullptr || v->IsNull()) return std::optional<int64_t>();
  if (v->IsInt64()) return std::optional<int64_t>(v->GetInt64());
  if (v->IsUint64()) return wrong_type(key, "an integer within int64");
  // Some exporters write integral values as 12.0.
  if (v->IsDouble() && std::isfinite(v->GetDouble()) &&
      v->GetDouble() == std::floor(v->GetDouble()) && std::fabs(v->GetDouble()) < 9.0e15) {
    return std::optional<int64_t>(static_cast<int64_t>(v->GetDouble()));
  }
  return wrong_type(key, "an integer");
}

Result<std::optional<double>> get_double(const Value& obj, std::string_view key) {
  const Value* v = find(obj, key);
  if (v == nullptr || v->IsNull()) return std::optional<double>();
  if (!v->IsNumber()) return wrong_type(key, "a number");
  return std::optional<double>(v->GetDouble());
}

Result<std::optional<bool>> get_bool(const Value& obj, std::string_view key) {
  const Value* v = find(obj, key);
  if (v == nullptr || v->IsNull()) return std::optional<bool>();
  if (!v->IsBool()) return wrong_type(key, "a boolean");
  return std::optional<bool>(v->GetBool());
}

Result<std::optional<std::string>> get_string(const Value& obj, std::string_view key) {
  const Value* v = find(obj, key);
  if (v == nullptr || v->IsNull()) return std::optional<std::string>();
  if (!v->IsString()) return wrong_type(key, "a string");
  return std::optional<std::string>(std::string(v->GetString(), v->GetStringLength()));
}

Result<int64_t> get_int_or(const Value& obj, std::string_view key, int64_t fallback) {
  KILN_ASSIGN_OR_RETURN(auto v, get_int(obj, key));
  return v.value_or(fallback);
}

Result<double> get_double_or(const Value& obj, std::string_view key, double fallback) {
  KILN_ASSIGN_OR_RETURN(auto v, get_double(obj, key));
  return v.value_or(fallback);
}

Result<bool> get_bool_or(const Value& obj, std::string_view key, bool fallback) {
  KILN_ASSIGN_OR_RETURN(auto v, get_bool(obj, key));
  return v.value_or(fallback);
}

Result<std::string> get_string_or(const Value& obj, std::string_view key, std::string fallback) {
  KILN_ASSIGN_OR_RETURN(auto v, get_string(obj, key));
  return v.value_or(std::move(fallback));
}

}  // namespace kiln::core::json
