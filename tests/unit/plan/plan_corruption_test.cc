// Corrupt, truncated, tampered and foreign plans: each is refused with the right code and a
// message naming the problem, never a crash.
#include "backend/device.h"
#include "plan/plan_file.h"
#include "plan/plan_loader.h"
#include "plan_test_util.h"

namespace kiln::plan::testing {
namespace {

class PlanCorruption : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(write_plan(micro_source(), {}, tmp_.file("good.plan")).ok());
    good_ = read_bytes(tmp_.file("good.plan"));
    ASSERT_GT(good_.size(), kHeaderSize);
  }

  // Writes `bytes` and loads them as an engine; returns the error.
  Status load_error(const std::vector<uint8_t>& bytes) {
    const std::string path = tmp_.file("bad.plan");
    write_bytes(path, bytes);
    auto engine = Engine::load(path, {});
    return engine.ok() ? ok_status() : engine.status();
  }

  const Section& section(const std::string& name) {
    parsed_ = std::make_unique<PlanFile>(
        std::move(PlanFile::parse(good_.data(), good_.size(), {}).value()));
    const Section* s = parsed_->find_section(name);
    EXPECT_NE(s, nullptr);
    return *s;
  }

  // Offset of section `name`'s entry in the section table.
  size_t entry_of(const std::string& name) {
    section(name);
    for (size_t i = 0; i < parsed_->sections().size(); ++i) {
      if (parsed_->sections()[i].name == name) return kHeaderSize + i * kSectionEntrySize;
    }
    return 0;
  }

  template <typename T>
  static void put(std::vector<uint8_t>* bytes, size_t at, T v) {
    std::memcpy(bytes->data() + at, &v, sizeof(T));
  }

  static void put_string(std::vector<uint8_t>* bytes, size_t at, size_t n, const std::string& s) {
    std::memset(bytes->data() + at, 0, n);
    std::memcpy(bytes->data() + at, s.data(), s.size());
  }

  TempDir tmp_;
  std::vector<uint8_t> good_;
  std::unique_ptr<PlanFile> parsed_;
};

void expect_error(const Status& s, StatusCode code, const std::string& words) {
  EXPECT_EQ(s.code(), code) << s.to_string();
  EXPECT_NE(s.message().find(words), std::string::npos) << s.to_string();
}

TEST_F(PlanCorruption, TheGoodPlanLoads) { EXPECT_TRUE(load_error(good_).ok()); }

TEST_F(PlanCorruption, FlippedWeightByteFailsTheChecksum) {
  auto bad = good_;
  bad[section("weights").offset + 100] ^= 0x01;
  expect_error(load_error(bad), StatusCode::kDataLoss, "plan checksum mismatch");
  auto file = PlanFile::parse(bad.data(), bad.size(), {});
  expect_error(file.status(), StatusCode::kDataLoss, "plan checksum mismatch");
}

TEST_F(PlanCorruption, FlippedHeaderByteFailsTheHeaderChecksum) {
  auto bad = good_;
  bad[header_offset::kPrecision] ^= 0x20;
  expect_error(load_error(bad), StatusCode::kDataLoss, "header checksum mismatch");
}

TEST_F(PlanCorruption, Truncated) {
  for (size_t n : {size_t{0}, size_t{7}, size_t{10}, size_t{100}, size_t{255}, size_t{256},
                   good_.size() / 2, good_.size() - 1}) {
    SCOPED_TRACE(n);
    std::vector<uint8_t> bad(good_.begin(), good_.begin() + static_cast<ptrdiff_t>(n));
    auto file = PlanFile::parse(bad.data(), bad.size(), {});
    expect_error(file.status(), StatusCode::kDataLoss, n < 8 ? "bad magic" : "truncated");
    if (n >= 8) expect_error(load_error(bad), StatusCode::kDataLoss, "truncated");
  }
  auto longer = good_;
  longer.push_back(0);
  expect_error(load_error(longer), StatusCode::kDataLoss, "extended");
}

TEST_F(PlanCorruption, BadMagic) {
  auto bad = good_;
  bad[3] = 'X';
  auto file = PlanFile::parse(bad.data(), bad.size(), {});
  expect_error(file.status(), StatusCode::kDataLoss, "bad magic");
  // Without the magic the file is not taken for a plan at all.
  expect_error(load_error(bad), StatusCode::kInvalidArgument, "neither");
}

TEST_F(PlanCorruption, NewerFormatVersion) {
  auto bad = good_;
  put<uint32_t>(&bad, header_offset::kVersion, kFormatVersion + 1);
  const std::string words = "plan format version " + std::to_string(kFormatVersion + 1) +
                            " is newer than this kiln (" + std::to_string(kFormatVersion) + ")";
  expect_error(load_error(bad), StatusCode::kFailedPrecondition, words);
  reseal(bad.data(), bad.size());
  expect_error(load_error(bad), StatusCode::kFailedPrecondition, words);
}

TEST_F(PlanCorruption, FeaturesThisMachineLacks) {
  auto bad = good_;
  put_string(&bad, header_offset::kFeatures, 64, "avx512_bf16,amx_fp16");
  reseal(bad.data(), bad.size());
  expect_error(load_error(bad), StatusCode::kFailedPrecondition,
               "plan built for cpu avx512_bf16,amx_fp16; this machine lacks amx_fp16");
}

TEST_F(PlanCorruption, OtherBackend) {
  auto bad = good_;
  put_string(&bad, header_offset::kBackend, 16, "cuda");
  reseal(bad.data(), bad.size());
  expect_error(load_error(bad), StatusCode::kFailedPrecondition, "plan built for cuda");
}

TEST_F(PlanCorruption, OtherPackingLibrary) {
  auto bad = good_;
  put_string(&bad, header_offset::kPackingLibrary, 32, "onednn 9.9.9");
  reseal(bad.data(), bad.size());
  expect_error(load_error(bad), StatusCode::kFailedPrecondition,
               "plan weights are packed for onednn 9.9.9");
}

TEST_F(PlanCorruption, PackedLayoutThisMachineWouldNotChoose) {
  const Section& t = section("tensors");
  const std::string table(reinterpret_cast<const char*>(good_.data() + t.offset), t.size);
  const size_t at = table.find("onednn ");  // the first packed tensor's layout fingerprint
  ASSERT_NE(at, std::string::npos);
  uint32_t len = 0;  // its u32 length prefix
  std::memcpy(&len, table.data() + at - 4, 4);
  auto bad = good_;
  char& digit = reinterpret_cast<char&>(bad[t.offset + at + len - 1]);  // last hex digit
  digit = digit == '0' ? '1' : '0';
  reseal(bad.data(), bad.size());
  expect_error(load_error(bad), StatusCode::kFailedPrecondition, "packed weights are in layout");
}

TEST_F(PlanCorruption, SectionOffsetsOutOfBounds) {
  const size_t e = entry_of("weights") + kSectionNameSize;
  const uint64_t size = good_.size();
  const uint64_t offset = section("weights").offset;
  for (auto [off, len] : {std::pair<uint64_t, uint64_t>{size + 64, 8},
                          {offset + 1, 8},
                          {offset, size},
                          {offset, UINT64_MAX},
                          {UINT64_MAX - 63, 64},
                          {kHeaderSize, 8}}) {
    SCOPED_TRACE(std::to_string(off) + " +" + std::to_string(len));
    auto bad = good_;
    put<uint64_t>(&bad, e, off);
    put<uint64_t>(&bad, e + 8, len);
    reseal(bad.data(), bad.size());
    expect_error(load_error(bad), StatusCode::kDataLoss, "plan section 'weights'");
  }
}

TEST_F(PlanCorruption, OverlappingSections) {
  auto bad = good_;
  put<uint64_t>(&bad, entry_of("tokenizer") + kSectionNameSize, section("model").offset);
  reseal(bad.data(), bad.size());
  expect_error(load_error(bad), StatusCode::kDataLoss, "overlap");
}

TEST_F(PlanCorruption, TooManySections) {
  auto bad = good_;
  put<uint32_t>(&bad, header_offset::kNumSections, 100000);
  reseal(bad.data(), bad.size());
  expect_error(load_error(bad), StatusCode::kDataLoss, "sections");
}

TEST_F(PlanCorruption, MissingSection) {
  auto bad = good_;
  bad[entry_of("quant") + 3] = 'x';  // renamed "quanx"
  reseal(bad.data(), bad.size());
  expect_error(load_error(bad), StatusCode::kDataLoss, "plan section 'quant'");
}

TEST_F(PlanCorruption, TensorOutsideTheWeightsSection) {
  const Section& t = section("tensors");
  const std::string table(reinterpret_cast<const char*>(good_.data() + t.offset), t.size);
  // The first tensor: u32 count, u32 name length, name, 4 bytes, rank dims, u32 packing length
  // (0 for row-major), then its offset.
  uint32_t name_len = 0;
  std::memcpy(&name_len, table.data() + 4, 4);
  const size_t offset_at = t.offset + 8 + name_len + 4 + 2 * 8 + 4;
  auto bad = good_;
  put<uint64_t>(&bad, offset_at, section("weights").size + 64);
  reseal(bad.data(), bad.size());
  expect_error(load_error(bad), StatusCode::kDataLoss, "outside the weights section");
}

// Every byte of the header, tables and small sections flipped (and resealed, so the parsers
// see it): loading answers ok or an error, and never crashes.
TEST_F(PlanCorruption, EveryMetadataByteFlipped) {
  auto device = backend::find_device("cpu");
  ASSERT_TRUE(device.ok());
  const uint64_t end = section("weights").offset;
  int errors = 0;
  for (uint64_t i = 0; i < end; ++i) {
    auto bad = good_;
    bad[i] ^= 0x5a;
    reseal(bad.data(), bad.size());
    auto file = PlanFile::parse(bad.data(), bad.size(), {});
    if (!file.ok()) {
      ++errors;
      EXPECT_FALSE(file.status().message().empty());
      continue;
    }
    auto shared = std::make_shared<const PlanFile>(std::move(file).value());
    Status s = check_target(shared->header(), **device);
    auto plan = decode_plan(shared);
    if (!s.ok() || !plan.ok()) ++errors;
  }
  EXPECT_GT(errors, static_cast<int>(end / 4));
}

}  // namespace
}  // namespace kiln::plan::testing
