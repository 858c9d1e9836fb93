// libFuzzer target: arbitrary bytes as config.json. Must fail with a Status or produce a config
// whose sizes passed validation.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "model/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto c = kiln::model::parse_config(std::string_view(reinterpret_cast<const char*>(data), size));
  if (c.ok() && (c->hidden_size <= 0 || c->num_heads <= 0 || c->hidden_size % c->num_heads != 0)) {
    __builtin_trap();  // validation let an inconsistent config through
  }
  return 0;
}
