// The two inference RPCs of the gRPC frontend: unary ModelInfer and bidirectional
// ModelStreamInfer, as callback-API reactors over Server::infer.
#pragma once

#include <grpcpp/grpcpp.h>

#include "grpc_service.grpc.pb.h"
#include "kiln/server.h"

namespace kiln::server {

/// The gRPC status answering a kiln error: the code through protocol_codes' one table.
grpc::Status to_grpc_status(const Status& status);

/// Serves one ModelInfer. Raw inputs are passed to the core without a copy, so the RPC finishes
/// (and gRPC frees `request`) only once the core has answered and released every input tensor.
grpc::ServerUnaryReactor* start_model_infer(Server& server, grpc::CallbackServerContext* context,
                                            const inference::ModelInferRequest* request,
                                            inference::ModelInferResponse* response);

/// Serves one ModelStreamInfer stream: each request is queued on the core as soon as it is read
/// and answered in order of completion; a failed request answers with error_message and the
/// stream goes on. The stream finishes with OK once the client has closed its side and every
/// request has been answered.
grpc::ServerBidiReactor<inference::ModelInferRequest, inference::ModelStreamInferResponse>*
start_model_stream_infer(Server& server);

}  // namespace kiln::server
