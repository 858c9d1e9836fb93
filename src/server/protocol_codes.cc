#include "server/protocol_codes.h"

#include <array>

namespace kiln::server {
namespace {

struct CodeRow {
  StatusCode code;
  int http;
  int grpc;  // grpc::StatusCode numbering (grpc/include/grpcpp/support/status_code_enum.h)
};

// Triton answers queue-full rejections with 503 / UNAVAILABLE and bad requests with 400 /
// INVALID_ARGUMENT; the rest follow google.rpc.Code's documented HTTP mapping.
constexpr std::array kTable = {
    CodeRow{StatusCode::kOk, 200, 0},
    CodeRow{StatusCode::kInvalidArgument, 400, 3},
    CodeRow{StatusCode::kNotFound, 404, 5},
    CodeRow{StatusCode::kAlreadyExists, 409, 6},
    CodeRow{StatusCode::kFailedPrecondition, 400, 9},
    CodeRow{StatusCode::kOutOfRange, 400, 11},
    CodeRow{StatusCode::kUnimplemented, 501, 12},
    CodeRow{StatusCode::kResourceExhausted, 429, 8},
    CodeRow{StatusCode::kUnavailable, 503, 14},
    CodeRow{StatusCode::kDataLoss, 500, 15},
    CodeRow{StatusCode::kInternal, 500, 13},
};

const CodeRow& row(StatusCode code) {
  for (const CodeRow& r : kTable) {
    if (r.code == code) return r;
  }
  return kTable.back();
}

}  // namespace

int http_status(StatusCode code) { return row(code).http; }
int grpc_code(StatusCode code) { return row(code).grpc; }

}  // namespace kiln::server
