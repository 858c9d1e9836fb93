#include "server/tensor_checks.h"

#include <cstring>

namespace kiln::server {
namespace {

template <typename Dims>
std::string dims_string(const Dims& dims, bool batch) {
  std::string out = batch ? "[-1" : "[";
  bool first = !batch;
  for (int64_t d : dims) {
    if (!first) out += ',';
    out += std::to_string(d);
    first = false;
  }
  return out + "]";
}

}  // namespace

std::string shape_string(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(s[i]);
  }
  return out + "]";
}

DataType from_config_type(inference::DataType t) {
  switch (t) {
    case inference::TYPE_BOOL:
      return DataType::kBool;
    case inference::TYPE_UINT8:
      return DataType::kUint8;
    case inference::TYPE_UINT16:
      return DataType::kUint16;
    case inference::TYPE_UINT32:
      return DataType::kUint32;
    case inference::TYPE_UINT64:
      return DataType::kUint64;
    case inference::TYPE_INT8:
      return DataType::kInt8;
    case inference::TYPE_INT16:
      return DataType::kInt16;
    case inference::TYPE_INT32:
      return DataType::kInt32;
    case inference::TYPE_INT64:
      return DataType::kInt64;
    case inference::TYPE_FP16:
      return DataType::kFp16;
    case inference::TYPE_FP32:
      return DataType::kFp32;
    case inference::TYPE_FP64:
      return DataType::kFp64;
    case inference::TYPE_STRING:
      return DataType::kBytes;
    case inference::TYPE_BF16:
      return DataType::kBf16;
    default:
      return DataType::kInvalid;
  }
}

inference::DataType to_config_type(DataType t) {
  for (int i = inference::DataType_MIN; i <= inference::DataType_MAX; ++i) {
    if (inference::DataType_IsValid(i) && from_config_type(inference::DataType(i)) == t) {
      return inference::DataType(i);
    }
  }
  return inference::TYPE_INVALID;
}

Result<std::vector<std::string_view>> split_bytes(const Tensor& t) {
  std::vector<std::string_view> out;
  const int64_t count = t.element_count();
  size_t pos = 0;
  for (int64_t i = 0; i < count; ++i) {
    if (t.byte_size - pos < 4) {
      return invalid_argument("input '" + t.name + "': BYTES element " + std::to_string(i) +
                              " has no 4-byte length prefix (tensor holds " +
                              std::to_string(t.byte_size) + " bytes)");
    }
    uint32_t len = 0;
    std::memcpy(&len, t.data + pos, 4);  // little-endian on every platform kiln runs on
    pos += 4;
    if (len > t.byte_size - pos) {
      return invalid_argument("input '" + t.name + "': BYTES element " + std::to_string(i) +
                              " claims " + std::to_string(len) + " bytes but only " +
                              std::to_string(t.byte_size - pos) + " remain");
    }
    out.emplace_back(reinterpret_cast<const char*>(t.data + pos), len);
    pos += len;
  }
  if (pos != t.byte_size) {
    return invalid_argument("input '" + t.name + "': " + std::to_string(t.byte_size - pos) +
                            " bytes left over after " + std::to_string(count) + " BYTES elements");
  }
  return out;
}

std::vector<uint8_t> join_bytes(const std::vector<std::string>& elements) {
  size_t total = 0;
  for (const auto& e : elements) total += 4 + e.size();
  std::vector<uint8_t> out(total);
  size_t pos = 0;
  for (const auto& e : elements) {
    const uint32_t len = static_cast<uint32_t>(e.size());
    std::memcpy(out.data() + pos, &len, 4);
    std::memcpy(out.data() + pos + 4, e.data(), e.size());
    pos += 4 + e.size();
  }
  return out;
}

const Tensor* find_input(const InferRequest& request, std::string_view name) {
  for (const Tensor& t : request.inputs) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

bool output_requested(const InferRequest& request, std::string_view name) {
  if (request.outputs.empty()) return true;
  for (const auto& o : request.outputs) {
    if (o == name) return true;
  }
  return false;
}

Result<int64_t> validate_request(const inference::ModelConfig& config,
                                 const InferRequest& request) {
  const bool batching = config.max_batch_size() > 0;
  int64_t batch = batching ? -1 : 1;
  for (size_t i = 0; i < request.inputs.size(); ++i) {
    const Tensor& t = request.inputs[i];
    const inference::ModelInput* spec = nullptr;
    for (const auto& in : config.input()) {
      if (in.name() == t.name) spec = &in;
    }
    if (spec == nullptr) {
      return invalid_argument("unexpected input '" + t.name + "' for model '" + request.model_name +
                              "'");
    }
    for (size_t j = 0; j < i; ++j) {
      if (request.inputs[j].name == t.name) {
        return invalid_argument("input '" + t.name + "' is given twice");
      }
    }
    const DataType want = from_config_type(spec->data_type());
    if (t.datatype != want) {
      return invalid_argument("input '" + t.name + "' has datatype " +
                              std::string(datatype_name(t.datatype)) + ", model expects " +
                              std::string(datatype_name(want)));
    }
    const size_t rank = static_cast<size_t>(spec->dims_size()) + (batching ? 1 : 0);
    bool shape_ok = t.shape.size() == rank;
    for (size_t d = 0; shape_ok && d < t.shape.size(); ++d) {
      if (t.shape[d] < 0) shape_ok = false;
      if (batching && d == 0) continue;
      const int64_t want_d = spec->dims(static_cast<int>(d - (batching ? 1 : 0)));
      if (want_d != -1 && t.shape[d] != want_d) shape_ok = false;
    }
    if (!shape_ok) {
      return invalid_argument("input '" + t.name + "' has shape " + shape_string(t.shape) +
                              ", model expects " + dims_string(spec->dims(), batching));
    }
    if (batching) {
      if (batch >= 0 && t.shape[0] != batch) {
        return invalid_argument("input '" + t.name + "' has batch size " +
                                std::to_string(t.shape[0]) + " but other inputs have " +
                                std::to_string(batch));
      }
      batch = t.shape[0];
    }
    const int64_t count = t.element_count();
    const uint64_t elem = datatype_size(t.datatype);
    if (count < 0 ||
        (t.datatype == DataType::kBytes && static_cast<uint64_t>(count) > t.byte_size / 4)) {
      return invalid_argument("input '" + t.name + "' shape " + shape_string(t.shape) +
                              " has more elements than its " + std::to_string(t.byte_size) +
                              " bytes can hold");
    }
    if (t.datatype == DataType::kBytes) {
      KILN_RETURN_IF_ERROR(split_bytes(t).status());
    } else if (static_cast<uint64_t>(count) > t.byte_size / elem ||
               static_cast<uint64_t>(count) * elem != t.byte_size) {
      return invalid_argument("input '" + t.name + "' holds " + std::to_string(t.byte_size) +
                              " bytes but shape " + shape_string(t.shape) + " of " +
                              std::string(datatype_name(t.datatype)) + " needs " +
                              std::to_string(count) + " x " + std::to_string(elem));
    }
  }
  for (const auto& in : config.input()) {
    if (!in.optional() && find_input(request, in.name()) == nullptr) {
      return invalid_argument("missing required input '" + in.name() + "' for model '" +
                              request.model_name + "'");
    }
  }
  for (const auto& name : request.outputs) {
    bool known = false;
    for (const auto& out : config.output()) known = known || out.name() == name;
    if (!known) {
      return invalid_argument("unknown output '" + name + "' requested from model '" +
                              request.model_name + "'");
    }
  }
  if (batching) {
    if (batch < 0) batch = 1;  // no inputs at all (every input optional)
    if (batch == 0) return invalid_argument("batch size 0: inputs hold no rows");
    if (batch > config.max_batch_size()) {
      return invalid_argument("batch size " + std::to_string(batch) + " exceeds max_batch_size " +
                              std::to_string(config.max_batch_size()) + " of model '" +
                              request.model_name + "'");
    }
  }
  return batch;
}

}  // namespace kiln::server
