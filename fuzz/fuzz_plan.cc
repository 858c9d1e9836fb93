// libFuzzer target for the plan reader: header, section table, tensor directory and every
// section decoder (model JSON, tokenizer, quantization, sparsity, weights). Each input is parsed
// twice: with checksum verification, as loading does, and without, so that mutations reach the
// parsers instead of all stopping at the checksum.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "backend/device.h"
#include "plan/plan_file.h"
#include "plan/plan_loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A mapping is page-aligned: give the parser an aligned copy, as loading does.
  const size_t capacity = (size + 63) / 64 * 64 + 64;
  std::unique_ptr<uint8_t, decltype(&std::free)> buf(
      static_cast<uint8_t*>(std::aligned_alloc(64, capacity)), &std::free);
  if (size > 0) std::memcpy(buf.get(), data, size);
  static const kiln::backend::Device* device = kiln::backend::find_device("cpu").value();
  for (bool verify : {true, false}) {
    auto file = kiln::plan::PlanFile::parse(buf.get(), size, {.verify_checksums = verify});
    if (!file.ok()) continue;
    auto shared = std::make_shared<const kiln::plan::PlanFile>(std::move(file).value());
    (void)kiln::plan::check_target(shared->header(), *device);
    auto plan = kiln::plan::decode_plan(shared);
    (void)plan;
  }
  return 0;
}
