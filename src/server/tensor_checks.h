// Checks of request tensors against a model configuration, shared by every backend.
#pragma once

#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/server.h"
#include "model_config.pb.h"

namespace kiln::server {

/// Config enum <-> protocol datatype (TYPE_STRING is BYTES).
DataType from_config_type(inference::DataType type);
inference::DataType to_config_type(DataType type);

/// Validates the inputs: each named in the configuration once, every non-optional input
/// present, datatypes equal, shapes matching dims (plus the batch dimension when
/// max_batch_size > 0, at most max_batch_size), byte sizes consistent with the shape. Also
/// checks that requested outputs exist. Returns the batch size (1 without batching).
Result<int64_t> validate_request(const inference::ModelConfig& config, const InferRequest& request);

/// "[2,3]": a shape for error messages.
std::string shape_string(const std::vector<int64_t>& shape);

/// Splits a BYTES tensor into its elements (views into the tensor's bytes).
Result<std::vector<std::string_view>> split_bytes(const Tensor& tensor);

/// Encodes strings in the BYTES layout (4-byte little-endian length + bytes each).
std::vector<uint8_t> join_bytes(const std::vector<std::string>& elements);

/// The bytes of a vector of numbers, for Tensor::owned.
template <typename T>
std::vector<uint8_t> vector_bytes(const std::vector<T>& v) {
  std::vector<uint8_t> out(v.size() * sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), v.data(), out.size());
  return out;
}

/// The request's input named `name`, or null.
const Tensor* find_input(const InferRequest& request, std::string_view name);

/// True when `name` should be produced: listed in request.outputs, or the list is empty.
bool output_requested(const InferRequest& request, std::string_view name);

}  // namespace kiln::server
