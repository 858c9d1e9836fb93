// libFuzzer target: arbitrary bytes as a GPU plan's "device" section (the CUDA backend's JSON
// of tuned GEMM algorithms). Must fail with a Status or decode into a record that encodes and
// decodes back to itself (no shape of zero or negative size gets through).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "backend/cuda/device_record.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kiln::backend::cuda;
  auto r = decode_device_record(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!r.ok()) return 0;
  if (r->gemms != nullptr) {
    for (const TunedGemm& t : r->gemms->entries()) {
      if (t.shape.rows <= 0 || t.shape.out <= 0 || t.shape.in <= 0) __builtin_trap();
    }
  }
  const std::string again = encode_device_record(*r);
  auto back = decode_device_record(again);
  if (!back.ok() || encode_device_record(*back) != again) __builtin_trap();
  return 0;
}
