// The one table that maps kiln's StatusCode onto HTTP statuses and gRPC codes. Every frontend
// answers errors through it, so a code means the same thing on every protocol.
#pragma once

#include "kiln/status.h"

namespace kiln::server {

/// The HTTP status that answers an error with `code` (200 for kOk).
int http_status(StatusCode code);

/// The gRPC status code number (grpc::StatusCode's value) for `code`; kept as an int so the
/// core does not depend on gRPC headers.
int grpc_code(StatusCode code);

}  // namespace kiln::server
