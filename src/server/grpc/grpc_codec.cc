#include "server/grpc/grpc_codec.h"

#include <array>
#include <bit>
#include <cstring>
#include <limits>
#include <set>
#include <string>
#include <type_traits>
#include <utility>

namespace kiln::server {
namespace {

// Raw tensor bytes and the BYTES length prefixes are little-endian on the wire; they are used
// in place, so the host must be little-endian too.
static_assert(std::endian::native == std::endian::little,
              "kiln's wire codecs assume little-endian");

using inference::InferTensorContents;
using inference::ModelInferRequest;
using InputTensor = ModelInferRequest::InferInputTensor;
using ParameterMap = google::protobuf::Map<std::string, inference::InferParameter>;

std::string input_error_prefix(const std::string& name) { return "input '" + name + "': "; }

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

// Rejects negative dimensions and element counts whose byte size could overflow.
Result<int64_t> checked_element_count(const std::string& name, const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) {
      return invalid_argument(input_error_prefix(name) + "negative dimension in shape " +
                              shape_string(shape));
    }
    if (__builtin_mul_overflow(n, d, &n) || n > std::numeric_limits<int64_t>::max() / 16) {
      return invalid_argument(input_error_prefix(name) + "shape " + shape_string(shape) +
                              " has too many elements");
    }
  }
  return n;
}

// The shared-memory extension is not implemented; say so instead of silently ignoring the
// region and reading no data.
Status reject_shared_memory(const ParameterMap& params, const std::string& what) {
  if (params.contains("shared_memory_region")) {
    return unimplemented(what +
                         ": shared memory is not supported by kiln; send the data in the "
                         "request");
  }
  return ok_status();
}

// Walks Triton's BYTES layout (4-byte little-endian length + bytes, per element) and checks it
// holds exactly `elements` elements.
Status validate_bytes_layout(const std::string& name, const uint8_t* data, size_t size,
                             int64_t elements) {
  size_t offset = 0;
  int64_t count = 0;
  while (offset < size) {
    if (size - offset < 4) {
      return invalid_argument(input_error_prefix(name) + "BYTES element " + std::to_string(count) +
                              " has a truncated 4-byte length prefix");
    }
    uint32_t length = 0;
    std::memcpy(&length, data + offset, 4);
    offset += 4;
    if (length > size - offset) {
      return invalid_argument(input_error_prefix(name) + "BYTES element " + std::to_string(count) +
                              " declares " + std::to_string(length) + " bytes but only " +
                              std::to_string(size - offset) + " remain");
    }
    offset += length;
    ++count;
  }
  if (count != elements) {
    return invalid_argument(input_error_prefix(name) + "raw BYTES data holds " +
                            std::to_string(count) + " elements but the shape needs " +
                            std::to_string(elements));
  }
  return ok_status();
}

Result<Tensor> decode_raw(const InputTensor& in, Tensor tensor, int64_t elements,
                          const std::string& raw, std::shared_ptr<const void> owner) {
  const auto* data = reinterpret_cast<const uint8_t*>(raw.data());
  if (tensor.datatype == DataType::kBytes) {
    KILN_RETURN_IF_ERROR(validate_bytes_layout(in.name(), data, raw.size(), elements));
  } else {
    const uint64_t expected = static_cast<uint64_t>(elements) * datatype_size(tensor.datatype);
    if (raw.size() != expected) {
      return invalid_argument(
          input_error_prefix(in.name()) + "raw_input_contents has " + std::to_string(raw.size()) +
          " bytes but shape " + shape_string(tensor.shape) + " of " +
          std::string(datatype_name(tensor.datatype)) + " needs " + std::to_string(expected));
    }
  }
  tensor.data = data;
  tensor.byte_size = raw.size();
  tensor.owner = std::move(owner);
  return tensor;
}

// The InferTensorContents field that carries each datatype, and how many values it holds.
struct TypedField {
  std::string_view name;
  int size;
};

std::array<TypedField, 8> typed_fields(const InferTensorContents& c) {
  return {TypedField{"bool_contents", c.bool_contents_size()},
          TypedField{"int_contents", c.int_contents_size()},
          TypedField{"int64_contents", c.int64_contents_size()},
          TypedField{"uint_contents", c.uint_contents_size()},
          TypedField{"uint64_contents", c.uint64_contents_size()},
          TypedField{"fp32_contents", c.fp32_contents_size()},
          TypedField{"fp64_contents", c.fp64_contents_size()},
          TypedField{"bytes_contents", c.bytes_contents_size()}};
}

std::string_view typed_field_for(DataType type) {
  switch (type) {
    case DataType::kBool:
      return "bool_contents";
    case DataType::kInt8:
    case DataType::kInt16:
    case DataType::kInt32:
      return "int_contents";
    case DataType::kInt64:
      return "int64_contents";
    case DataType::kUint8:
    case DataType::kUint16:
    case DataType::kUint32:
      return "uint_contents";
    case DataType::kUint64:
      return "uint64_contents";
    case DataType::kFp32:
      return "fp32_contents";
    case DataType::kFp64:
      return "fp64_contents";
    case DataType::kBytes:
      return "bytes_contents";
    default:
      return "";  // FP16, BF16: no typed field
  }
}

// Narrows each protocol value to the tensor's element type, rejecting values that do not fit
// (an INT8 input sent as int_contents 300 is a client bug, not something to wrap silently).
template <typename Out, typename Values>
Status append_values(const Values& values, const std::string& name, DataType type,
                     std::vector<uint8_t>* bytes) {
  bytes->resize(static_cast<size_t>(values.size()) * sizeof(Out));
  uint8_t* dst = bytes->data();
  for (const auto& v : values) {
    using In = std::decay_t<decltype(v)>;
    if constexpr (std::is_integral_v<Out> && !std::is_same_v<Out, bool> &&
                  !std::is_same_v<In, bool>) {
      if (!std::in_range<Out>(v)) {
        return invalid_argument(input_error_prefix(name) + "value " + std::to_string(v) +
                                " is out of range for " + std::string(datatype_name(type)));
      }
    }
    const Out out = static_cast<Out>(v);
    std::memcpy(dst, &out, sizeof(Out));
    dst += sizeof(Out);
  }
  return ok_status();
}

Status typed_bytes(const InputTensor& in, DataType type, std::vector<uint8_t>* bytes) {
  const InferTensorContents& c = in.contents();
  const std::string& n = in.name();
  switch (type) {
    case DataType::kBool:
      return append_values<uint8_t>(c.bool_contents(), n, type, bytes);
    case DataType::kInt8:
      return append_values<int8_t>(c.int_contents(), n, type, bytes);
    case DataType::kInt16:
      return append_values<int16_t>(c.int_contents(), n, type, bytes);
    case DataType::kInt32:
      return append_values<int32_t>(c.int_contents(), n, type, bytes);
    case DataType::kInt64:
      return append_values<int64_t>(c.int64_contents(), n, type, bytes);
    case DataType::kUint8:
      return append_values<uint8_t>(c.uint_contents(), n, type, bytes);
    case DataType::kUint16:
      return append_values<uint16_t>(c.uint_contents(), n, type, bytes);
    case DataType::kUint32:
      return append_values<uint32_t>(c.uint_contents(), n, type, bytes);
    case DataType::kUint64:
      return append_values<uint64_t>(c.uint64_contents(), n, type, bytes);
    case DataType::kFp32:
      return append_values<float>(c.fp32_contents(), n, type, bytes);
    case DataType::kFp64:
      return append_values<double>(c.fp64_contents(), n, type, bytes);
    case DataType::kBytes:
      for (const std::string& s : c.bytes_contents()) {
        if (s.size() > std::numeric_limits<uint32_t>::max()) {
          return invalid_argument(input_error_prefix(n) + "BYTES element exceeds 4 GiB");
        }
        const auto length = static_cast<uint32_t>(s.size());
        const size_t at = bytes->size();
        bytes->resize(at + 4 + s.size());
        std::memcpy(bytes->data() + at, &length, 4);
        std::memcpy(bytes->data() + at + 4, s.data(), s.size());
      }
      return ok_status();
    default:
      return internal_error("typed_bytes: unexpected datatype");
  }
}

Result<Tensor> decode_typed(const InputTensor& in, Tensor tensor, int64_t elements) {
  const std::string_view expected = typed_field_for(tensor.datatype);
  if (expected.empty()) {
    return invalid_argument(input_error_prefix(in.name()) +
                            std::string(datatype_name(tensor.datatype)) +
                            " data must be sent in raw_input_contents (InferTensorContents has no "
                            "field for it)");
  }
  int count = 0;
  for (const TypedField& f : typed_fields(in.contents())) {
    if (f.name == expected) {
      count = f.size;
    } else if (f.size > 0) {
      return invalid_argument(input_error_prefix(in.name()) + "datatype " +
                              std::string(datatype_name(tensor.datatype)) + " expects data in " +
                              std::string(expected) + ", got " + std::string(f.name));
    }
  }
  if (count != elements) {
    return invalid_argument(input_error_prefix(in.name()) + "shape " + shape_string(tensor.shape) +
                            " needs " + std::to_string(elements) + " elements but " +
                            std::string(expected) + " has " + std::to_string(count));
  }
  std::vector<uint8_t> bytes;
  KILN_RETURN_IF_ERROR(typed_bytes(in, tensor.datatype, &bytes));
  return Tensor::owned(std::move(tensor.name), tensor.datatype, std::move(tensor.shape),
                       std::move(bytes));
}

Status decode_request_parameters(const ParameterMap& params, InferRequest* request) {
  for (const auto& [key, param] : params) {
    if (key == "priority" || key == "timeout") {
      // Both are unsigned; clients send priority as uint64 and timeout as int64.
      uint64_t value = 0;
      if (param.has_uint64_param()) {
        value = param.uint64_param();
      } else if (param.has_int64_param() && param.int64_param() >= 0) {
        value = static_cast<uint64_t>(param.int64_param());
      } else {
        return invalid_argument("parameter '" + key + "' must be a non-negative integer");
      }
      if (key == "timeout") {
        request->timeout_us = value;
      } else if (value > std::numeric_limits<uint32_t>::max()) {
        return invalid_argument("parameter 'priority' " + std::to_string(value) +
                                " is out of range");
      } else {
        request->priority = static_cast<uint32_t>(value);
      }
      continue;
    }
    if (key == kEnableEmptyFinalResponse) continue;
    KILN_ASSIGN_OR_RETURN(Parameter value, decode_parameter(key, param));
    request->parameters.emplace(key, std::move(value));
  }
  return ok_status();
}

Result<Tensor> decode_input(const ModelInferRequest& message, int index,
                            const std::shared_ptr<const void>& owner) {
  const InputTensor& in = message.inputs(index);
  KILN_RETURN_IF_ERROR(reject_shared_memory(in.parameters(), "input '" + in.name() + "'"));
  Tensor tensor;
  tensor.name = in.name();
  tensor.datatype = datatype_from_name(in.datatype());
  if (tensor.datatype == DataType::kInvalid) {
    return invalid_argument(input_error_prefix(in.name()) + "unknown datatype '" + in.datatype() +
                            "'");
  }
  tensor.shape.assign(in.shape().begin(), in.shape().end());
  KILN_ASSIGN_OR_RETURN(int64_t elements, checked_element_count(in.name(), tensor.shape));
  if (message.raw_input_contents_size() > 0) {
    if (in.has_contents()) {
      return invalid_argument(input_error_prefix(in.name()) +
                              "contents must not be set when the request uses "
                              "raw_input_contents");
    }
    return decode_raw(in, std::move(tensor), elements, message.raw_input_contents(index), owner);
  }
  return decode_typed(in, std::move(tensor), elements);
}

}  // namespace

Result<Parameter> decode_parameter(std::string_view key, const inference::InferParameter& param) {
  switch (param.parameter_choice_case()) {
    case inference::InferParameter::kBoolParam:
      return Parameter(param.bool_param());
    case inference::InferParameter::kInt64Param:
      return Parameter(param.int64_param());
    case inference::InferParameter::kDoubleParam:
      return Parameter(param.double_param());
    case inference::InferParameter::kStringParam:
      return Parameter(param.string_param());
    case inference::InferParameter::kUint64Param:
      if (param.uint64_param() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return invalid_argument("parameter '" + std::string(key) + "' value " +
                                std::to_string(param.uint64_param()) + " is out of range");
      }
      return Parameter(static_cast<int64_t>(param.uint64_param()));
    default:
      return invalid_argument("parameter '" + std::string(key) + "' has no value");
  }
}

void encode_parameter(const Parameter& value, inference::InferParameter* param) {
  std::visit(
      [param](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, bool>) {
          param->set_bool_param(v);
        } else if constexpr (std::is_same_v<T, int64_t>) {
          param->set_int64_param(v);
        } else if constexpr (std::is_same_v<T, double>) {
          param->set_double_param(v);
        } else {
          param->set_string_param(v);
        }
      },
      value);
}

Result<InferRequest> decode_infer_request(const inference::ModelInferRequest& message,
                                          const std::shared_ptr<const void>& owner) {
  InferRequest request;
  request.model_name = message.model_name();
  request.model_version = message.model_version();
  request.id = message.id();
  KILN_RETURN_IF_ERROR(decode_request_parameters(message.parameters(), &request));

  if (message.raw_input_contents_size() > 0 &&
      message.raw_input_contents_size() != message.inputs_size()) {
    return invalid_argument(
        "raw_input_contents has " + std::to_string(message.raw_input_contents_size()) +
        " entries but the request has " + std::to_string(message.inputs_size()) + " inputs");
  }
  std::set<std::string_view> names;
  request.inputs.reserve(static_cast<size_t>(message.inputs_size()));
  for (int i = 0; i < message.inputs_size(); ++i) {
    if (!names.insert(message.inputs(i).name()).second) {
      return invalid_argument(input_error_prefix(message.inputs(i).name()) + "given twice");
    }
    KILN_ASSIGN_OR_RETURN(Tensor tensor, decode_input(message, i, owner));
    request.inputs.push_back(std::move(tensor));
  }

  for (const auto& out : message.outputs()) {
    KILN_RETURN_IF_ERROR(reject_shared_memory(out.parameters(), "output '" + out.name() + "'"));
    if (out.parameters().contains("classification")) {
      return unimplemented("output '" + out.name() +
                           "': classification outputs are not supported by kiln");
    }
    request.outputs.push_back(out.name());
  }
  return request;
}

void encode_infer_response(const InferResponse& response, inference::ModelInferResponse* message) {
  message->set_model_name(response.model_name);
  message->set_model_version(response.model_version);
  message->set_id(response.id);
  for (const auto& [key, value] : response.parameters) {
    encode_parameter(value, &(*message->mutable_parameters())[key]);
  }
  for (const Tensor& tensor : response.outputs) {
    auto* out = message->add_outputs();
    out->set_name(tensor.name);
    out->set_datatype(std::string(datatype_name(tensor.datatype)));
    for (int64_t d : tensor.shape) out->add_shape(d);
    // The one copy of an output: protobuf strings must own their bytes.
    message->add_raw_output_contents()->assign(reinterpret_cast<const char*>(tensor.data),
                                               tensor.byte_size);
  }
}

}  // namespace kiln::server
