// Triton's config.pbtxt: parsing (protobuf text format against proto/model_config.proto),
// rejection of the fields kiln does not support, and JSON conversion in Triton's style.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "kiln/status.h"
#include "model_config.pb.h"

namespace kiln::server {

/// Parses config.pbtxt text. Unknown fields and syntax errors are InvalidArgument errors that
/// name the line and the field.
Result<inference::ModelConfig> parse_model_config(std::string_view text);

/// Parses a configuration given as JSON (the repository load API's "config" parameter).
Result<inference::ModelConfig> parse_model_config_json(std::string_view json);

/// Fails with Unimplemented naming the first field that is set but that kiln does not support
/// (e.g. "sequence_batching"), instead of silently ignoring it.
Status check_supported_fields(const inference::ModelConfig& config);

/// Checks values: names, dims, batch sizes, queue policies, instance groups.
Status validate_model_config(const inference::ModelConfig& config);

/// JSON as Triton's HTTP API returns it: proto field names, every field printed, enums by
/// name, 64-bit integers as numbers (protobuf's own printer makes them strings).
std::string model_config_to_json(const google::protobuf::Message& config);

/// A string-valued entry of `parameters`, or `fallback` when absent.
std::string config_parameter(const inference::ModelConfig& config, std::string_view key,
                             std::string_view fallback);

/// An integer entry of `parameters` in [lo, hi], or `fallback` when absent; anything else is
/// InvalidArgument naming the parameter and its value.
Result<int64_t> int_parameter(const inference::ModelConfig& config, std::string_view key,
                              int64_t fallback, int64_t lo,
                              int64_t hi = std::numeric_limits<int64_t>::max());

}  // namespace kiln::server
