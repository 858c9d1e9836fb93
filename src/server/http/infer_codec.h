// KServe v2 infer requests and responses over HTTP, with Triton's binary tensor data extension:
// pure functions from bytes to kiln::server types and back, so they can be tested and fuzzed
// without a socket.
//
// Binary extension: when the Inference-Header-Content-Length header says N, the first N bytes of
// the body are the JSON request and the rest holds, in input order, the raw bytes of each input
// whose "parameters" carry "binary_data_size". Responses mirror it for outputs asked in binary.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "kiln/server.h"
#include "kiln/status.h"
#include "server/tensor_checks.h"

namespace kiln::server::http {

/// How each output of one request is returned: in the JSON "data" array or as a binary blob.
struct OutputFormat {
  bool binary_default = false;                      ///< request parameter "binary_data_output"
  std::map<std::string, bool, std::less<>> binary;  ///< per-output "binary_data", when given
  /// Whether output `name` goes out as binary data.
  bool is_binary(std::string_view name) const;
};

/// A parsed infer request plus how its response must be encoded.
struct ParsedInfer {
  InferRequest request;
  OutputFormat format;
};

/// Parses an Inference-Header-Content-Length value: a decimal byte count no larger than the
/// (decompressed) body. Errors are kInvalidArgument naming the header and the value.
Result<size_t> parse_header_length(std::string_view value, size_t body_size);

/// Parses one infer request body for `model_name` / `model_version` (from the URL).
/// `json_size` is the Inference-Header-Content-Length (nullopt: the whole body is JSON).
/// Binary inputs are views into `*body` and keep it alive through Tensor::owner (no copy); JSON
/// "data" (flat or nested arrays) is converted into owned row-major bytes, BYTES elements as a
/// 4-byte little-endian length + bytes. Errors are kInvalidArgument (kUnimplemented for protocol
/// extensions kiln does not support) with a message naming the input or field and the problem.
Result<ParsedInfer> parse_infer_request(std::shared_ptr<const std::string> body,
                                        std::optional<size_t> json_size,
                                        std::string_view model_name,
                                        std::string_view model_version);

/// An encoded infer response; `json_size` is set when binary blobs follow the JSON (it is then
/// the value of the Inference-Header-Content-Length response header).
struct EncodedInfer {
  std::string body;
  std::optional<size_t> json_size;
};

/// Encodes `response` as KServe v2 JSON, appending the outputs that `format` asks in binary in
/// output order. FP16/BF16 outputs asked as JSON are written as numbers (Triton refuses them).
/// kInternal when an output's bytes do not match its datatype and shape (a core bug).
Result<EncodedInfer> encode_infer_response(const InferResponse& response,
                                           const OutputFormat& format);

}  // namespace kiln::server::http
