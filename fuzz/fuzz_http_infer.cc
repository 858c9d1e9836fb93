// libFuzzer target: arbitrary bytes as an HTTP infer request. The first line is the value of the
// Inference-Header-Content-Length header (an empty line: no header), the rest is the body. A
// request must fail with a Status or parse into tensors whose sizes match their datatype and
// shape, that point into the body or own their bytes, and that encode back into a response.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "server/http/infer_codec.h"

using kiln::server::DataType;
using kiln::server::InferResponse;
using kiln::server::Tensor;
namespace http = kiln::server::http;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const size_t newline = in.find('\n');
  const std::string_view header = newline == std::string_view::npos ? "" : in.substr(0, newline);
  const std::string_view payload = newline == std::string_view::npos ? in : in.substr(newline + 1);
  auto body = std::make_shared<const std::string>(payload);

  std::optional<size_t> json_size;
  if (!header.empty()) {
    auto n = http::parse_header_length(header, body->size());
    if (!n.ok()) return 0;
    json_size = n.value();
  }
  auto parsed = http::parse_infer_request(body, json_size, "m", "1");
  if (!parsed.ok()) return 0;

  const auto* begin = reinterpret_cast<const uint8_t*>(body->data());
  for (const Tensor& t : parsed->request.inputs) {
    const int64_t count = t.element_count();
    if (count < 0 || t.owner == nullptr) __builtin_trap();
    if (t.datatype != DataType::kBytes &&
        t.byte_size != static_cast<size_t>(count) * kiln::server::datatype_size(t.datatype)) {
      __builtin_trap();  // a size that does not match datatype x shape got through
    }
    const bool in_body = t.data >= begin && t.data <= begin + body->size();
    if (in_body && t.data + t.byte_size > begin + body->size()) __builtin_trap();  // overrun
  }

  InferResponse response;
  response.model_name = "m";
  response.outputs = parsed->request.inputs;
  if (!http::encode_infer_response(response, http::OutputFormat{}).ok()) __builtin_trap();
  http::OutputFormat binary;
  binary.binary_default = true;
  auto encoded = http::encode_infer_response(response, binary);
  if (!encoded.ok()) __builtin_trap();
  if (!response.outputs.empty() && !encoded->json_size.has_value()) __builtin_trap();
  return 0;
}
