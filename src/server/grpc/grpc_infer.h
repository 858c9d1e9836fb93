// The two inference RPCs of the gRPC frontend on completion queues: unary ModelInfer and
// bidirectional ModelStreamInfer, over Server::infer.
#pragma once

#include "kiln/server.h"
#include "server/grpc/grpc_async.h"

namespace kiln::server {

/// The gRPC status answering a kiln error: the code through protocol_codes' one table.
grpc::Status to_grpc_status(const Status& status);

/// Serves one ModelInfer. Raw inputs are passed to the core without a copy, so the call finishes
/// (and with it frees its request) only once the core has answered and released every input
/// tensor.
void serve_model_infer(
    Server& server, UnaryCall<inference::ModelInferRequest, inference::ModelInferResponse>& call);

/// Puts a ModelStreamInfer call waiting on `site`'s queue. Each stream's requests are queued on
/// the core as soon as they are read and answered in order of completion; a failed request
/// answers with error_message and the stream goes on. The stream finishes with OK once the client
/// has closed its side and every request has been answered.
void await_model_stream_infer(Server& server, const CallSite& site);

}  // namespace kiln::server
