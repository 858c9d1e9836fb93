// Plans built from the tiny checkpoints load into engines whose outputs equal the Hugging Face
// directory's: bit for bit in FP32, pre-packed or portable, and within BF16 tolerance in BF16.
#include "backend/device.h"
#include "plan/plan_file.h"
#include "plan_test_util.h"

namespace kiln::plan::testing {
namespace {

bool bf16_supported() {
  auto device = backend::find_device("cpu");
  return device.ok() && (*device)->supports(backend::Op::kLinear, Precision::kBF16);
}

std::string build(const TempDir& tmp, const std::string& dir, Precision precision, bool prepack) {
  auto source = read_model_dir(dir);
  EXPECT_TRUE(source.ok()) << source.status().to_string();
  if (!source.ok()) return "";
  BuildOptions options;
  options.precision = precision;
  options.prepack = prepack;
  options.num_threads = 1;
  const std::string path = tmp.file(fs::path(dir).filename().string() + ".plan");
  Status s = write_plan(*source, options, path);
  EXPECT_TRUE(s.ok()) << s.to_string();
  return path;
}

void expect_same_info(const ModelInfo& a, const ModelInfo& b) {
  EXPECT_EQ(a.architecture, b.architecture);
  EXPECT_EQ(a.task, b.task);
  EXPECT_EQ(a.hf_class, b.hf_class);
  EXPECT_EQ(a.labels, b.labels);
  EXPECT_EQ(a.num_layers, b.num_layers);
  EXPECT_EQ(a.max_sequence_length, b.max_sequence_length);
  EXPECT_EQ(a.num_parameters, b.num_parameters);
  EXPECT_EQ(a.pooling.mode, b.pooling.mode);
  EXPECT_EQ(a.pooling.normalize, b.pooling.normalize);
  EXPECT_EQ(a.pooling.max_seq_length, b.pooling.max_seq_length);
}

class PlanRoundTrip : public ::testing::TestWithParam<std::string> {};

TEST_P(PlanRoundTrip, Fp32IsBitExact) {
  TempDir tmp;
  const std::string dir = tiny_model(GetParam());
  auto reference = load(dir);
  ASSERT_NE(reference, nullptr);
  const TokenBatch batch = test_batch(*reference);
  const RunOutputs want = run_all(*reference, batch);
  for (bool prepack : {true, false}) {
    SCOPED_TRACE(prepack ? "pre-packed" : "portable");
    const std::string path = build(tmp, dir, Precision::kF32, prepack);
    auto file = PlanFile::open(path, {});
    ASSERT_TRUE(file.ok()) << file.status().to_string();
    EXPECT_EQ(((*file)->header().flags & kFlagPackedWeights) != 0, prepack);
    auto engine = load(path);
    ASSERT_NE(engine, nullptr);
    expect_same_info(reference->info(), engine->info());
    const RunOutputs got = run_all(*engine, batch);
    EXPECT_EQ(got.hidden_states, want.hidden_states);
    EXPECT_EQ(got.embeddings, want.embeddings);
    EXPECT_EQ(got.logits, want.logits);
    EXPECT_EQ(got.logits_cols, want.logits_cols);
    EXPECT_EQ(engine->describe_layers(), reference->describe_layers());
  }
}

TEST_P(PlanRoundTrip, Bf16MatchesBf16EngineAndIsCloseToFp32) {
  if (!bf16_supported()) GTEST_SKIP() << "this CPU has no AVX512_BF16";
  TempDir tmp;
  const std::string dir = tiny_model(GetParam());
  auto fp32 = load(dir);
  auto bf16 = load(dir, Precision::kBF16);
  ASSERT_NE(fp32, nullptr);
  ASSERT_NE(bf16, nullptr);
  const TokenBatch batch = test_batch(*fp32);
  const RunOutputs exact = run_all(*fp32, batch);
  const RunOutputs want = run_all(*bf16, batch);
  for (bool prepack : {true, false}) {
    SCOPED_TRACE(prepack ? "pre-packed" : "portable");
    const std::string path = build(tmp, dir, Precision::kBF16, prepack);
    // The plan's precision wins over the options' (fp32 here).
    auto engine = load(path, Precision::kF32);
    ASSERT_NE(engine, nullptr);
    EXPECT_EQ(engine->options().precision, Precision::kBF16);
    const RunOutputs got = run_all(*engine, batch);
    // The same bfloat16 weights and kernels as the directory loaded in BF16...
    EXPECT_EQ(got.hidden_states, want.hidden_states);
    EXPECT_EQ(got.logits, want.logits);
    // ... and so within BF16 tolerance of FP32.
    EXPECT_LT(relative_error(exact.hidden_states, got.hidden_states), 0.05);
    EXPECT_GT(relative_error(exact.hidden_states, got.hidden_states), 0.0);
  }
}

TEST_P(PlanRoundTrip, Int8MatchesInt8Engine) {
  auto device = backend::find_device("cpu");
  if (!device.ok() || !(*device)->supports(backend::Op::kLinear, Precision::kInt8)) {
    GTEST_SKIP() << "no INT8 kernels on this CPU";
  }
  TempDir tmp;
  const std::string dir = tiny_model(GetParam());
  auto int8 = load(dir, Precision::kInt8);
  ASSERT_NE(int8, nullptr);
  const TokenBatch batch = test_batch(*int8);
  const RunOutputs want = run_all(*int8, batch);
  for (bool prepack : {true, false}) {
    SCOPED_TRACE(prepack ? "pre-packed" : "portable");
    auto engine = load(build(tmp, dir, Precision::kInt8, prepack));
    ASSERT_NE(engine, nullptr);
    EXPECT_EQ(engine->options().precision, Precision::kInt8);
    const RunOutputs got = run_all(*engine, batch);
    EXPECT_EQ(got.hidden_states, want.hidden_states);
    EXPECT_EQ(got.logits, want.logits);
  }
}

INSTANTIATE_TEST_SUITE_P(Tiny, PlanRoundTrip,
                         ::testing::Values("bert", "bert_deep_st", "bert_seq_cls", "bert_qa",
                                           "distilbert_token_cls", "roberta_seq_cls",
                                           "xlm_roberta_seq_cls"));

TEST(PlanTokenizer, VocabTxtWithCaseSurvives) {
  TempDir tmp;
  const fs::path dir = tmp.path() / "model";
  fs::create_directories(dir);
  for (const char* f : {"config.json", "model.safetensors"}) {
    fs::copy_file(fs::path(tiny_model("bert")) / f, dir / f);
  }
  write_text(dir / "vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\nHello\nhello\nworld\n");
  write_text(dir / "tokenizer_config.json", R"({"do_lower_case": false})");
  auto source = read_model_dir(dir.string());
  ASSERT_TRUE(source.ok()) << source.status().to_string();
  const std::string path = tmp.file("model.plan");
  ASSERT_TRUE(write_plan(*source, {}, path).ok());
  auto from_dir = load(dir.string());
  auto from_plan = load(path);
  ASSERT_NE(from_plan, nullptr);
  ASSERT_NE(from_plan->tokenizer(), nullptr);
  auto a = from_dir->tokenize({"Hello world", "hello World"});
  auto b = from_plan->tokenize({"Hello world", "hello World"});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->ids, b->ids);
  // Case is kept: "Hello" and "hello" are different ids.
  EXPECT_NE(b->ids[1], b->ids[b->cu_seqlens[1] + 1]);
}

TEST(PlanTokenizer, TokenizerJsonSurvives) {
  TempDir tmp;
  const fs::path dir = tmp.path() / "model";
  fs::create_directories(dir);
  for (const char* f : {"config.json", "model.safetensors"}) {
    fs::copy_file(fs::path(tiny_model("roberta")) / f, dir / f);
  }
  fs::copy_file(std::string(KILN_SOURCE_DIR) + "/tests/golden/tokenizer/roberta_bpe/tokenizer.json",
                dir / "tokenizer.json");
  auto source = read_model_dir(dir.string());
  ASSERT_TRUE(source.ok()) << source.status().to_string();
  const std::string path = tmp.file("model.plan");
  ASSERT_TRUE(write_plan(*source, {}, path).ok());
  auto expected = Tokenizer::from_model_dir(dir.string());
  ASSERT_TRUE(expected.ok());
  auto plan = load(path);
  ASSERT_NE(plan, nullptr);
  ASSERT_NE(plan->tokenizer(), nullptr);
  for (const char* text : {"Hello there, plan files!", "  spaces and ünïcode "}) {
    auto a = (*expected)->encode(text, {});
    auto b = plan->tokenizer()->encode(text, {});
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(a->ids, b->ids);
    EXPECT_EQ(a->offsets, b->offsets);
  }
  EXPECT_EQ(plan->tokenizer()->vocab_size(), (*expected)->vocab_size());
}

TEST(PlanTokenizer, NoneWhenTheDirectoryHasNone) {
  TempDir tmp;
  const std::string path = tmp.file("bert.plan");
  auto source = read_model_dir(tiny_model("bert"));
  ASSERT_TRUE(source.ok());
  ASSERT_TRUE(write_plan(*source, {}, path).ok());
  auto engine = load(path);
  ASSERT_NE(engine, nullptr);
  EXPECT_EQ(engine->tokenizer(), nullptr);
  EXPECT_FALSE(engine->tokenize({"text"}).ok());
}

TEST(PlanFormat, SectionsAndTensorsAreAligned) {
  TempDir tmp;
  const std::string path = tmp.file("micro.plan");
  ASSERT_TRUE(write_plan(micro_source(), {}, path).ok());
  auto file = PlanFile::open(path, {});
  ASSERT_TRUE(file.ok()) << file.status().to_string();
  const Header& h = (*file)->header();
  EXPECT_EQ(h.backend, "cpu");
  EXPECT_EQ(h.precision, "fp32");
  EXPECT_EQ(h.format_version, kFormatVersion);
  for (const char* name : {"model", "tokenizer", "quant", "sparsity", "tensors", "weights"}) {
    const Section* s = (*file)->find_section(name);
    ASSERT_NE(s, nullptr) << name;
    EXPECT_EQ(s->offset % kAlignment, 0u) << name;
  }
  // 5 embedding tensors, 4 x (weight, bias) + 2 x (gamma, beta) per layer.
  EXPECT_EQ((*file)->tensors().size(), 5u + 12u);
  for (const TensorInfo& t : (*file)->tensors()) {
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % kAlignment, 0u) << t.name;
  }
  const TensorInfo* qkv = (*file)->find_tensor("layers.0.qkv.weight");
  ASSERT_NE(qkv, nullptr);
  EXPECT_EQ(qkv->shape, (std::vector<int64_t>{48, 16}));
  EXPECT_EQ(qkv->layout, TensorLayout::kPacked);
}

TEST(PlanFormat, EngineRefusesAFileThatIsNoPlan) {
  TempDir tmp;
  write_text(tmp.path() / "x.bin", "not a plan at all");
  auto engine = Engine::load(tmp.file("x.bin"), {});
  ASSERT_FALSE(engine.ok());
  EXPECT_EQ(engine.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(engine.status().message().find("neither a model directory nor a kiln plan"),
            std::string::npos);
}

}  // namespace
}  // namespace kiln::plan::testing
