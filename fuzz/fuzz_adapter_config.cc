// libFuzzer target: arbitrary bytes as a PEFT adapter_config.json. Must fail with a Status or
// produce a config whose scale is usable (alpha in range, a known task).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "model/adapter.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto a = kiln::model::parse_adapter_config(
      std::string_view(reinterpret_cast<const char*>(data), size));
  if (a.ok() && !(a->lora_alpha > 0 && std::isfinite(a->lora_alpha))) {
    __builtin_trap();  // validation let an unusable alpha through
  }
  return 0;
}
