// libFuzzer target: arbitrary bytes as a safetensors file. Parsing must fail cleanly or yield
// tensors whose views lie inside the buffer (ASan checks every read of their data).
#include <cstddef>
#include <cstdint>

#include "model/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto st = kiln::model::SafeTensors::parse(data, size);
  if (!st.ok()) return 0;
  for (const auto& t : st->tensors()) {
    (void)st->find(t.name);
    auto values = kiln::model::to_float32(t);  // touches every byte of float tensors
    (void)values;
  }
  return 0;
}
