// Conversion between the KServe v2 gRPC inference messages (inference.ModelInferRequest /
// ModelInferResponse) and the core's InferRequest / InferResponse. Pure functions: no I/O, no
// server state, so every validation rule is unit-tested without a network.
#pragma once

#include <memory>

#include "grpc_service.pb.h"
#include "kiln/server.h"

namespace kiln::server {

/// Request parameter that asks a stream to mark each response as final (Triton's decoupled
/// protocol); consumed by the frontend, not passed to the core.
inline constexpr std::string_view kEnableEmptyFinalResponse = "triton_enable_empty_final_response";
/// Response parameter set when kEnableEmptyFinalResponse was requested.
inline constexpr std::string_view kFinalResponse = "triton_final_response";

/// Converts and validates a ModelInferRequest. Inputs sent in raw_input_contents are not copied:
/// their tensors point into `message`, and `owner` (which must keep `message` alive and
/// unchanged) becomes each such tensor's owner. Typed contents (InferTensorContents) are copied
/// into owned little-endian buffers. Errors are InvalidArgument (malformed request) or
/// Unimplemented (shared memory, classification outputs), with a message naming the tensor.
Result<InferRequest> decode_infer_request(const inference::ModelInferRequest& message,
                                          const std::shared_ptr<const void>& owner);

/// Fills `message` from a core response: id, model name and version, parameters and every output
/// as name/datatype/shape plus its bytes in raw_output_contents (as Triton answers).
void encode_infer_response(const InferResponse& response, inference::ModelInferResponse* message);

/// Converts a protocol parameter into the core's Parameter (uint64 values above INT64_MAX and
/// unset values are InvalidArgument).
Result<Parameter> decode_parameter(std::string_view key, const inference::InferParameter& param);
/// Converts a core Parameter into its protocol form.
void encode_parameter(const Parameter& value, inference::InferParameter* param);

}  // namespace kiln::server
