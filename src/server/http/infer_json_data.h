// Conversion of the JSON "data" of an infer request input into tensor bytes. Internal to the
// infer codec (infer_codec.cc).
#pragma once

#include <rapidjson/document.h>

#include <cstdint>
#include <string>
#include <vector>

#include "kiln/server.h"
#include "kiln/status.h"

namespace kiln::server::http {

/// What a JSON value is, for error messages: its number, or its kind ("a string", "null").
std::string describe_json(const rapidjson::Value& value);

/// Converts `data` (a flat or nested array, KServe allows both) of input `input` into the
/// row-major bytes of `type` with `shape`: numbers range-checked for the type, BOOL from
/// true/false, BYTES from strings as 4-byte little-endian length + bytes. FP16/BF16 are refused
/// (binary only, as in Triton). Errors are kInvalidArgument naming the input, element and problem.
Status json_data_to_bytes(const rapidjson::Value& data, DataType type,
                          const std::vector<int64_t>& shape, const std::string& input,
                          std::vector<uint8_t>* out);

}  // namespace kiln::server::http
