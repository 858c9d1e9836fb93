// Parsing of infer request bodies (see infer_codec.h). Encoding lives in infer_response.cc.
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <cstring>
#include <limits>
#include <set>

#include "server/http/infer_codec.h"
#include "server/http/infer_json_data.h"

namespace kiln::server::http {
namespace {

using rapidjson::Value;

const Value* member(const Value& obj, std::string_view key) {
  auto it = obj.FindMember(Value(rapidjson::StringRef(key.data(), key.size())));
  return it == obj.MemberEnd() ? nullptr : &it->value;
}

std::string_view view(const Value& s) { return {s.GetString(), s.GetStringLength()}; }

// The part of the body after the JSON header, consumed input by input.
struct BinaryCursor {
  size_t pos = 0;
  size_t end = 0;
  bool present = false;  // an Inference-Header-Content-Length header was given
};

// ---- request parameters ----------------------------------------------------------------------

Result<Parameter> to_parameter(const Value& v, std::string_view key) {
  if (v.IsBool()) return Parameter(v.GetBool());
  if (v.IsInt64()) return Parameter(v.GetInt64());
  if (v.IsUint64()) {
    return invalid_argument("parameter '" + std::string(key) + "' is out of the int64 range");
  }
  if (v.IsNumber()) return Parameter(v.GetDouble());
  if (v.IsString()) return Parameter(std::string(view(v)));
  return invalid_argument("parameter '" + std::string(key) +
                          "' must be a boolean, number or string, got " + describe_json(v));
}

Status parse_parameters(const Value& params, ParsedInfer* out) {
  if (!params.IsObject()) return invalid_argument("request 'parameters' must be a JSON object");
  for (const auto& m : params.GetObject()) {
    const std::string_view key = view(m.name);
    const Value& v = m.value;
    auto uint_error = [&](std::string_view range) {
      return invalid_argument("parameter '" + std::string(key) + "' must be an unsigned integer" +
                              std::string(range) + ", got " + describe_json(v));
    };
    if (key == "priority") {
      if (!v.IsUint64() || v.GetUint64() > std::numeric_limits<uint32_t>::max()) {
        return uint_error(" below 2^32");
      }
      out->request.priority = static_cast<uint32_t>(v.GetUint64());
    } else if (key == "timeout") {
      if (!v.IsUint64()) return uint_error(" (microseconds)");
      out->request.timeout_us = v.GetUint64();
    } else if (key == "binary_data_output") {
      if (!v.IsBool()) return invalid_argument("parameter 'binary_data_output' must be a boolean");
      out->format.binary_default = v.GetBool();
    } else if (key == "sequence_id") {
      if (!v.IsString() && !(v.IsUint64() && v.IsInt64())) {
        return invalid_argument("parameter 'sequence_id' must be an unsigned integer or a string");
      }
      out->request.parameters.emplace(
          key, v.IsString() ? Parameter(std::string(view(v))) : Parameter(v.GetInt64()));
    } else if (key == "sequence_start" || key == "sequence_end") {
      if (!v.IsBool()) {
        return invalid_argument("parameter '" + std::string(key) + "' must be a boolean");
      }
      out->request.parameters.emplace(key, v.GetBool());
    } else if (key.starts_with("triton_")) {
      return invalid_argument("parameter '" + std::string(key) +
                              "': names starting with 'triton_' are reserved");
    } else {
      KILN_ASSIGN_OR_RETURN(Parameter p, to_parameter(v, key));
      out->request.parameters.emplace(key, std::move(p));
    }
  }
  return ok_status();
}
// ---- one input -------------------------------------------------------------------------------

// Checks that `size` bytes hold exactly `count` BYTES elements (length + bytes each).
Status check_bytes_layout(const uint8_t* data, size_t size, int64_t count,
                          const std::string& input) {
  size_t pos = 0;
  int64_t n = 0;
  while (pos < size) {
    uint32_t len = 0;
    if (size - pos < sizeof(len)) {
      return invalid_argument("input '" + input + "': BYTES element " + std::to_string(n) +
                              " has a truncated 4-byte length");
    }
    std::memcpy(&len, data + pos, sizeof(len));
    pos += sizeof(len);
    if (len > size - pos) {
      return invalid_argument("input '" + input + "': BYTES element " + std::to_string(n) + " of " +
                              std::to_string(len) + " bytes overruns the binary data");
    }
    pos += len;
    ++n;
  }
  if (n != count) {
    return invalid_argument("input '" + input + "': binary data holds " + std::to_string(n) +
                            " BYTES elements but the shape needs " + std::to_string(count));
  }
  return ok_status();
}

Result<std::vector<int64_t>> parse_shape(const Value& in, const std::string& input) {
  const Value* shape = member(in, "shape");
  if (shape == nullptr || !shape->IsArray()) {
    return invalid_argument("input '" + input + "': 'shape' must be an array of dimensions");
  }
  std::vector<int64_t> dims;
  for (const Value& d : shape->GetArray()) {
    if (!d.IsUint64() || !d.IsInt64()) {
      return invalid_argument("input '" + input + "': shape dimension " + describe_json(d) +
                              " is not a non-negative integer");
    }
    dims.push_back(d.GetInt64());
  }
  return dims;
}

Result<Tensor> parse_input(const Value& in, size_t index,
                           const std::shared_ptr<const std::string>& body, BinaryCursor* cursor) {
  std::string input = "inputs[" + std::to_string(index) + "]";
  if (!in.IsObject()) return invalid_argument(input + " must be a JSON object");
  const Value* name = member(in, "name");
  if (name == nullptr || !name->IsString() || name->GetStringLength() == 0) {
    return invalid_argument(input + ": 'name' must be a non-empty string");
  }
  input = view(*name);
  Tensor t;
  t.name = input;
  const Value* datatype = member(in, "datatype");
  if (datatype == nullptr || !datatype->IsString()) {
    return invalid_argument("input '" + input + "': 'datatype' must be a string such as \"FP32\"");
  }
  t.datatype = datatype_from_name(view(*datatype));
  if (t.datatype == DataType::kInvalid) {
    return invalid_argument("input '" + input + "': unknown datatype '" +
                            std::string(view(*datatype)) + "'");
  }
  KILN_ASSIGN_OR_RETURN(t.shape, parse_shape(in, input));
  const int64_t count = t.element_count();
  if (count < 0) {
    return invalid_argument("input '" + input + "': shape " + shape_string(t.shape) +
                            " has too many elements");
  }

  const Value* params = member(in, "parameters");
  if (params != nullptr && !params->IsObject()) {
    return invalid_argument("input '" + input + "': 'parameters' must be a JSON object");
  }
  const Value* binary_size = params ? member(*params, "binary_data_size") : nullptr;
  const Value* shm = params ? member(*params, "shared_memory_region") : nullptr;
  const Value* data = member(in, "data");
  if ((data != nullptr) + (binary_size != nullptr) + (shm != nullptr) != 1) {
    return invalid_argument("input '" + input +
                            "' must set exactly one of 'data', 'binary_data_size' in "
                            "'parameters' or 'shared_memory_region' in 'parameters'");
  }
  if (shm != nullptr) {
    return unimplemented("input '" + input + "': shared memory inputs are not supported");
  }

  const size_t elem = datatype_size(t.datatype);
  size_t expected = 0;
  const bool fixed = t.datatype != DataType::kBytes;
  if (fixed && __builtin_mul_overflow(static_cast<size_t>(count), elem, &expected)) {
    return invalid_argument("input '" + input + "': shape " + shape_string(t.shape) +
                            " is too large");
  }

  if (binary_size != nullptr) {
    if (!cursor->present) {
      return invalid_argument("input '" + input +
                              "' has 'binary_data_size' but the request has no "
                              "Inference-Header-Content-Length header");
    }
    if (!binary_size->IsUint64()) {
      return invalid_argument("input '" + input +
                              "': 'binary_data_size' must be an unsigned integer, got " +
                              describe_json(*binary_size));
    }
    const uint64_t size = binary_size->GetUint64();
    if (fixed && size != expected) {
      return invalid_argument("input '" + input + "': binary_data_size " + std::to_string(size) +
                              " does not match the " + std::to_string(expected) + " bytes of " +
                              std::string(datatype_name(t.datatype)) + " shape " +
                              shape_string(t.shape));
    }
    const size_t remaining = cursor->end - cursor->pos;
    if (size > remaining) {
      return invalid_argument("input '" + input + "': binary_data_size " + std::to_string(size) +
                              " overruns the request body (" + std::to_string(remaining) +
                              " bytes of binary data left)");
    }
    t.data = reinterpret_cast<const uint8_t*>(body->data()) + cursor->pos;
    t.byte_size = size;
    t.owner = body;  // zero-copy: the tensor views the request body
    cursor->pos += size;
    if (!fixed) KILN_RETURN_IF_ERROR(check_bytes_layout(t.data, t.byte_size, count, input));
    return t;
  }

  // JSON data.
  std::vector<uint8_t> bytes;
  KILN_RETURN_IF_ERROR(json_data_to_bytes(*data, t.datatype, t.shape, input, &bytes));
  return Tensor::owned(std::move(t.name), t.datatype, std::move(t.shape), std::move(bytes));
}

// ---- requested outputs -----------------------------------------------------------------------

Status parse_outputs(const Value& outputs, ParsedInfer* out) {
  if (!outputs.IsArray()) return invalid_argument("request 'outputs' must be an array");
  std::set<std::string, std::less<>> seen;
  size_t index = 0;
  for (const Value& o : outputs.GetArray()) {
    const std::string where = "outputs[" + std::to_string(index++) + "]";
    if (!o.IsObject()) return invalid_argument(where + " must be a JSON object");
    const Value* name = member(o, "name");
    if (name == nullptr || !name->IsString() || name->GetStringLength() == 0) {
      return invalid_argument(where + ": 'name' must be a non-empty string");
    }
    const std::string output(view(*name));
    if (!seen.insert(output).second) {
      return invalid_argument("output '" + output + "' is requested twice");
    }
    if (const Value* params = member(o, "parameters")) {
      if (!params->IsObject()) {
        return invalid_argument("output '" + output + "': 'parameters' must be a JSON object");
      }
      if (member(*params, "shared_memory_region") != nullptr) {
        return unimplemented("output '" + output + "': shared memory outputs are not supported");
      }
      if (const Value* cls = member(*params, "classification")) {
        if (!cls->IsUint64()) {
          return invalid_argument("output '" + output +
                                  "': 'classification' must be an unsigned integer");
        }
        if (cls->GetUint64() > 0) {
          return unimplemented("output '" + output +
                               "': the classification extension is not supported");
        }
      }
      if (const Value* binary = member(*params, "binary_data")) {
        if (!binary->IsBool()) {
          return invalid_argument("output '" + output + "': 'binary_data' must be a boolean");
        }
        out->format.binary.emplace(output, binary->GetBool());
      }
    }
    out->request.outputs.push_back(output);
  }
  return ok_status();
}

}  // namespace

Result<size_t> parse_header_length(std::string_view value, size_t body_size) {
  auto bad = [&] {
    return invalid_argument("invalid Inference-Header-Content-Length '" + std::string(value) +
                            "': expected a byte count from 0 to the body size " +
                            std::to_string(body_size));
  };
  if (value.empty() || value.size() > 19) return bad();
  size_t n = 0;
  for (char c : value) {
    if (c < '0' || c > '9') return bad();
    n = n * 10 + static_cast<size_t>(c - '0');
  }
  if (n > body_size) return bad();
  return n;
}

Result<ParsedInfer> parse_infer_request(std::shared_ptr<const std::string> body,
                                        std::optional<size_t> json_size,
                                        std::string_view model_name,
                                        std::string_view model_version) {
  if (body == nullptr) return internal_error("infer request without a body buffer");
  BinaryCursor cursor;
  size_t header = body->size();
  if (json_size.has_value()) {
    if (*json_size > body->size()) {
      return invalid_argument("Inference-Header-Content-Length " + std::to_string(*json_size) +
                              " exceeds the body size " + std::to_string(body->size()));
    }
    if (*json_size == 0) {
      return unimplemented(
          "Inference-Header-Content-Length 0 (a raw binary request body) is not supported");
    }
    header = *json_size;
    cursor = BinaryCursor{header, body->size(), true};
  }
  if (header == 0) return invalid_argument("empty request body: expected a JSON infer request");

  rapidjson::Document doc;
  // Iterative parsing: a deeply nested body must not exhaust the stack.
  doc.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseNanAndInfFlag>(body->data(), header);
  if (doc.HasParseError()) {
    return invalid_argument("invalid JSON in infer request at byte " +
                            std::to_string(doc.GetErrorOffset()) + ": " +
                            rapidjson::GetParseError_En(doc.GetParseError()));
  }
  if (!doc.IsObject()) return invalid_argument("infer request must be a JSON object");

  ParsedInfer out;
  out.request.model_name = model_name;
  out.request.model_version = model_version;
  // Unknown top-level members are ignored, as Triton does.
  if (const Value* id = member(doc, "id")) {
    if (!id->IsString()) return invalid_argument("request 'id' must be a string");
    out.request.id = view(*id);
  }
  if (const Value* params = member(doc, "parameters")) {
    KILN_RETURN_IF_ERROR(parse_parameters(*params, &out));
  }
  const Value* inputs = member(doc, "inputs");
  if (inputs == nullptr || !inputs->IsArray()) {
    return invalid_argument("request 'inputs' must be an array of input tensors");
  }
  std::set<std::string, std::less<>> seen;
  for (rapidjson::SizeType i = 0; i < inputs->Size(); ++i) {
    KILN_ASSIGN_OR_RETURN(Tensor t, parse_input((*inputs)[i], i, body, &cursor));
    if (!seen.insert(t.name).second) {
      return invalid_argument("input '" + t.name + "' appears twice");
    }
    out.request.inputs.push_back(std::move(t));
  }
  if (cursor.pos != cursor.end) {
    return invalid_argument("request body has " + std::to_string(cursor.end - cursor.pos) +
                            " bytes of binary data after the last binary input");
  }
  if (const Value* outputs = member(doc, "outputs")) {
    KILN_RETURN_IF_ERROR(parse_outputs(*outputs, &out));
  }
  return out;
}

bool OutputFormat::is_binary(std::string_view name) const {
  auto it = binary.find(name);
  return it != binary.end() ? it->second : binary_default;
}

}  // namespace kiln::server::http
