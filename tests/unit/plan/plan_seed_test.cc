// The fuzz seeds in fuzz/corpus/plan are micro plans of the current format: they verify and
// decode (when the format changes, regenerate them: KILN_WRITE_FUZZ_SEEDS=1 plan_test).
#include <cstdlib>

#include "backend/device.h"
#include "plan/plan_loader.h"
#include "plan_test_util.h"

namespace kiln::plan::testing {
namespace {

struct Seed {
  const char* name;
  Precision precision;
  bool prepack;
};
constexpr Seed kSeeds[] = {{"micro_fp32_packed.plan", Precision::kF32, true},
                           {"micro_bf16_portable.plan", Precision::kBF16, false}};

std::string seed_path(const char* name) {
  return std::string(KILN_SOURCE_DIR) + "/fuzz/corpus/plan/" + name;
}

TEST(PlanFuzzSeeds, AreCurrentPlans) {
  const bool write = std::getenv("KILN_WRITE_FUZZ_SEEDS") != nullptr;
  for (const Seed& seed : kSeeds) {
    SCOPED_TRACE(seed.name);
    if (write) {
      BuildOptions options;
      options.precision = seed.precision;
      options.prepack = seed.prepack;
      ASSERT_TRUE(write_plan(micro_source(), options, seed_path(seed.name)).ok());
    }
    auto file = PlanFile::open(seed_path(seed.name), {});
    ASSERT_TRUE(file.ok()) << file.status().to_string();
    EXPECT_LT((*file)->size(), 50u * 1024u);  // small enough for the fuzzer's max_len
    EXPECT_EQ((*file)->header().precision, precision_name(seed.precision));
    auto plan = decode_plan(*file);
    ASSERT_TRUE(plan.ok()) << plan.status().to_string();
    EXPECT_NE(plan->tokenizer, nullptr);
    EXPECT_EQ(plan->config.hidden_size, 16);
  }
}

}  // namespace
}  // namespace kiln::plan::testing
