// Encoding of infer responses (see infer_codec.h).
#include <cstring>
#include <type_traits>

#include "core/half.h"
#include "server/http/infer_codec.h"
#include "server/http/json_writer.h"

namespace kiln::server::http {
namespace {

Status size_mismatch(const Tensor& t, size_t expected) {
  return internal_error("output '" + t.name + "' holds " + std::to_string(t.byte_size) +
                        " bytes but " + std::string(datatype_name(t.datatype)) + " shape " +
                        shape_string(t.shape) + " needs " + std::to_string(expected));
}

template <typename T>
void write_numbers(JsonWriter& w, const uint8_t* data, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    T x;
    std::memcpy(&x, data + i * sizeof(T), sizeof(T));  // outputs need not be aligned
    if constexpr (std::is_floating_point_v<T>) {
      w.Double(static_cast<double>(x));
    } else if constexpr (std::is_signed_v<T>) {
      w.Int64(static_cast<int64_t>(x));
    } else {
      w.Uint64(static_cast<uint64_t>(x));
    }
  }
}

template <float (*kToFloat)(uint16_t)>
void write_halves(JsonWriter& w, const uint8_t* data, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    uint16_t h;
    std::memcpy(&h, data + i * sizeof(h), sizeof(h));
    w.Double(static_cast<double>(kToFloat(h)));
  }
}

// Writes the elements of `t` as a flat JSON array (Triton's layout for "data").
Status write_data(JsonWriter& w, const Tensor& t) {
  const int64_t count = t.element_count();
  if (count < 0) return internal_error("output '" + t.name + "' has an invalid shape");
  const auto n = static_cast<size_t>(count);
  w.StartArray();
  if (t.datatype == DataType::kBytes) {
    size_t pos = 0;
    for (size_t i = 0; i < n; ++i) {
      uint32_t len = 0;
      if (t.byte_size - pos < sizeof(len)) return size_mismatch(t, pos + sizeof(len));
      std::memcpy(&len, t.data + pos, sizeof(len));
      pos += sizeof(len);
      if (len > t.byte_size - pos) return size_mismatch(t, pos + len);
      write_string(w, std::string_view(reinterpret_cast<const char*>(t.data) + pos, len));
      pos += len;
    }
    if (pos != t.byte_size) return size_mismatch(t, pos);
    w.EndArray();
    return ok_status();
  }
  const size_t expected = n * datatype_size(t.datatype);
  if (t.byte_size != expected || (expected > 0 && t.data == nullptr)) {
    return size_mismatch(t, expected);
  }
  switch (t.datatype) {
    case DataType::kBool:
      for (size_t i = 0; i < n; ++i) w.Bool(t.data[i] != 0);
      break;
    case DataType::kUint8:
      write_numbers<uint8_t>(w, t.data, n);
      break;
    case DataType::kUint16:
      write_numbers<uint16_t>(w, t.data, n);
      break;
    case DataType::kUint32:
      write_numbers<uint32_t>(w, t.data, n);
      break;
    case DataType::kUint64:
      write_numbers<uint64_t>(w, t.data, n);
      break;
    case DataType::kInt8:
      write_numbers<int8_t>(w, t.data, n);
      break;
    case DataType::kInt16:
      write_numbers<int16_t>(w, t.data, n);
      break;
    case DataType::kInt32:
      write_numbers<int32_t>(w, t.data, n);
      break;
    case DataType::kInt64:
      write_numbers<int64_t>(w, t.data, n);
      break;
    case DataType::kFp16:
      write_halves<core::fp16_to_float>(w, t.data, n);
      break;
    case DataType::kBf16:
      write_halves<core::bf16_to_float>(w, t.data, n);
      break;
    case DataType::kFp32:
      write_numbers<float>(w, t.data, n);
      break;
    case DataType::kFp64:
      write_numbers<double>(w, t.data, n);
      break;
    default:
      return internal_error("output '" + t.name + "' has an invalid datatype");
  }
  w.EndArray();
  return ok_status();
}

}  // namespace

Result<EncodedInfer> encode_infer_response(const InferResponse& response,
                                           const OutputFormat& format) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  std::vector<const Tensor*> blobs;
  size_t blob_bytes = 0;
  w.StartObject();
  w.Key("model_name");
  write_string(w, response.model_name);
  w.Key("model_version");
  write_string(w, response.model_version);
  if (!response.id.empty()) {  // Triton omits an empty id
    w.Key("id");
    write_string(w, response.id);
  }
  if (!response.parameters.empty()) {
    w.Key("parameters");
    write_parameters(w, response.parameters);
  }
  w.Key("outputs");
  w.StartArray();
  for (const Tensor& t : response.outputs) {
    w.StartObject();
    w.Key("name");
    write_string(w, t.name);
    w.Key("datatype");
    write_string(w, datatype_name(t.datatype));
    w.Key("shape");
    w.StartArray();
    for (int64_t d : t.shape) w.Int64(d);
    w.EndArray();
    if (format.is_binary(t.name)) {
      if (t.byte_size > 0 && t.data == nullptr) return size_mismatch(t, t.byte_size);
      w.Key("parameters");
      w.StartObject();
      w.Key("binary_data_size");
      w.Uint64(t.byte_size);
      w.EndObject();
      blobs.push_back(&t);
      blob_bytes += t.byte_size;
    } else {
      w.Key("data");
      KILN_RETURN_IF_ERROR(write_data(w, t));
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();

  EncodedInfer out;
  out.body.reserve(buffer.GetSize() + blob_bytes);
  out.body.assign(buffer.GetString(), buffer.GetSize());
  if (!blobs.empty()) {
    out.json_size = buffer.GetSize();
    for (const Tensor* t : blobs) {
      if (t->byte_size > 0) out.body.append(reinterpret_cast<const char*>(t->data), t->byte_size);
    }
  }
  return out;
}

}  // namespace kiln::server::http
