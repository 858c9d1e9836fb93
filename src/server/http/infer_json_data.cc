// JSON "data" arrays of infer requests -> row-major tensor bytes (see infer_json_data.h).
#include "server/http/infer_json_data.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "server/http/infer_codec.h"

namespace kiln::server::http {
namespace {

using rapidjson::Value;

// Nested "data" arrays deeper than this are rejected (the walk is recursive).
constexpr int kMaxDataDepth = 32;

Status collect_leaves(const Value& v, int depth, const std::string& input,
                      std::vector<const Value*>* leaves) {
  if (!v.IsArray()) {
    leaves->push_back(&v);
    return ok_status();
  }
  if (depth >= kMaxDataDepth) {
    return invalid_argument("input '" + input + "': 'data' nests arrays deeper than " +
                            std::to_string(kMaxDataDepth) + " levels");
  }
  for (const Value& e : v.GetArray()) {
    KILN_RETURN_IF_ERROR(collect_leaves(e, depth + 1, input, leaves));
  }
  return ok_status();
}

Status element_error(const std::string& input, size_t i, const Value& v, DataType type,
                     std::string_view want) {
  return invalid_argument("input '" + input + "': data element " + std::to_string(i) + " must be " +
                          std::string(want) + " for " + std::string(datatype_name(type)) +
                          ", got " + describe_json(v));
}

// Converts number leaves into T, range-checked (a silent wrap would feed the model garbage).
template <typename T>
Status convert_numbers(const std::vector<const Value*>& leaves, const std::string& input,
                       DataType type, std::vector<uint8_t>* out) {
  out->resize(leaves.size() * sizeof(T));
  for (size_t i = 0; i < leaves.size(); ++i) {
    const Value& v = *leaves[i];
    T x{};
    if constexpr (std::is_floating_point_v<T>) {
      if (!v.IsNumber()) return element_error(input, i, v, type, "a number");
      const double d = v.GetDouble();
      if (std::isfinite(d) && std::fabs(d) > static_cast<double>(std::numeric_limits<T>::max())) {
        return element_error(input, i, v, type, "a number in range");
      }
      x = static_cast<T>(d);
    } else if constexpr (std::is_signed_v<T>) {
      if (!v.IsInt64() || v.GetInt64() < std::numeric_limits<T>::min() ||
          v.GetInt64() > std::numeric_limits<T>::max()) {
        return element_error(input, i, v, type, "an integer in range");
      }
      x = static_cast<T>(v.GetInt64());
    } else {
      if (!v.IsUint64() || v.GetUint64() > std::numeric_limits<T>::max()) {
        return element_error(input, i, v, type, "an unsigned integer in range");
      }
      x = static_cast<T>(v.GetUint64());
    }
    std::memcpy(out->data() + i * sizeof(T), &x, sizeof(T));
  }
  return ok_status();
}

Status convert_leaves(const std::vector<const Value*>& leaves, const std::string& input,
                      DataType type, std::vector<uint8_t>* out) {
  switch (type) {
    case DataType::kBool:
      out->resize(leaves.size());
      for (size_t i = 0; i < leaves.size(); ++i) {
        if (!leaves[i]->IsBool()) return element_error(input, i, *leaves[i], type, "true or false");
        (*out)[i] = leaves[i]->GetBool() ? 1 : 0;
      }
      return ok_status();
    case DataType::kUint8:
      return convert_numbers<uint8_t>(leaves, input, type, out);
    case DataType::kUint16:
      return convert_numbers<uint16_t>(leaves, input, type, out);
    case DataType::kUint32:
      return convert_numbers<uint32_t>(leaves, input, type, out);
    case DataType::kUint64:
      return convert_numbers<uint64_t>(leaves, input, type, out);
    case DataType::kInt8:
      return convert_numbers<int8_t>(leaves, input, type, out);
    case DataType::kInt16:
      return convert_numbers<int16_t>(leaves, input, type, out);
    case DataType::kInt32:
      return convert_numbers<int32_t>(leaves, input, type, out);
    case DataType::kInt64:
      return convert_numbers<int64_t>(leaves, input, type, out);
    case DataType::kFp32:
      return convert_numbers<float>(leaves, input, type, out);
    case DataType::kFp64:
      return convert_numbers<double>(leaves, input, type, out);
    case DataType::kBytes:
      for (size_t i = 0; i < leaves.size(); ++i) {
        if (!leaves[i]->IsString()) return element_error(input, i, *leaves[i], type, "a string");
        // 4-byte little-endian length (x86/ARM hosts are little-endian) + the bytes.
        const uint32_t len = leaves[i]->GetStringLength();
        const auto* len_bytes = reinterpret_cast<const uint8_t*>(&len);
        out->insert(out->end(), len_bytes, len_bytes + sizeof(len));
        out->insert(out->end(), leaves[i]->GetString(), leaves[i]->GetString() + len);
      }
      return ok_status();
    default:  // FP16/BF16 are refused before this point; kInvalid cannot reach here.
      return invalid_argument("input '" + input + "': " + std::string(datatype_name(type)) +
                              " data cannot be sent as JSON; use the binary data format");
  }
}

}  // namespace

std::string describe_json(const Value& v) {
  if (v.IsBool()) return v.GetBool() ? "true" : "false";
  if (v.IsInt64()) return std::to_string(v.GetInt64());
  if (v.IsUint64()) return std::to_string(v.GetUint64());
  if (v.IsNumber()) return std::to_string(v.GetDouble());
  if (v.IsString()) return "a string";
  if (v.IsArray()) return "an array";
  if (v.IsObject()) return "an object";
  return "null";
}

Status json_data_to_bytes(const Value& data, DataType type, const std::vector<int64_t>& shape,
                          const std::string& input, std::vector<uint8_t>* out) {
  if (type == DataType::kFp16 || type == DataType::kBf16) {  // as Triton: binary only
    return invalid_argument("input '" + input + "': " + std::string(datatype_name(type)) +
                            " data cannot be sent as JSON; use the binary data format");
  }
  if (!data.IsArray()) {
    return invalid_argument("input '" + input + "': 'data' must be an array, got " +
                            describe_json(data));
  }
  int64_t count = 1;
  for (int64_t d : shape) count *= d;  // the caller checked the shape for overflow
  std::vector<const Value*> leaves;
  KILN_RETURN_IF_ERROR(collect_leaves(data, 0, input, &leaves));
  if (static_cast<int64_t>(leaves.size()) != count) {
    return invalid_argument("input '" + input + "': 'data' has " + std::to_string(leaves.size()) +
                            " elements but shape " + shape_string(shape) + " needs " +
                            std::to_string(count));
  }
  return convert_leaves(leaves, input, type, out);
}

}  // namespace kiln::server::http
