// Fuzzes the tokenizer.json loader and, when a file loads, the whole encode pipeline.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "kiln/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  auto tok = kiln::Tokenizer::from_json(json);
  if (!tok.ok()) return 0;
  const kiln::Tokenizer& t = **tok;
  kiln::EncodeOptions plain;
  kiln::EncodeOptions truncated;
  truncated.max_length = 8 + size % 24;
  truncated.stride = size % 5;
  truncated.strategy = static_cast<kiln::TruncationStrategy>(size % 3);
  truncated.return_overflowing = true;
  for (const char* text :
       {"Hello, world! [MASK] <mask> caf\xC3\xA9 \xE4\xBD\xA0\xE5\xA5\xBD", "  \t\n", ""}) {
    (void)t.encode(text, plain);
    (void)t.encode_pair(text, "second text \xF0\x9F\x98\x80", truncated);
  }
  // A string derived from the input itself (may be invalid UTF-8: must be an error, not a crash).
  const std::string_view derived = json.substr(size / 2, 256);
  auto e = t.encode(derived, truncated);
  if (e.ok()) kiln::convert_to_char_offsets(&e.value(), derived);
  (void)t.encode_pair(derived, json.substr(0, 64), truncated);
  (void)t.token_to_id(derived.substr(0, 8));
  (void)t.id_to_token(static_cast<int32_t>(size) - 3);
  return 0;
}
