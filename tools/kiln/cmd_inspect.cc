// `kiln inspect DIR`: architecture, shapes, tensor dtypes, tokenizer and pooling of a model
// directory; --layers also compiles it and lists each layer's kernel and size. A plan file is
// described by inspect_plan.cc.
#include <cstdio>
#include <map>
#include <string>

#include "commands.h"
#include "core/mapped_file.h"
#include "inspect_plan.h"
#include "model/config.h"
#include "model/safetensors.h"
#include "options.h"
#include "plan/plan_file.h"

namespace kiln::cli {

namespace {

struct InspectFlags {
  std::string dir;
  bool tensors = false;
  bool layers = false;
  EngineFlags engine;
};

int run(const InspectFlags& f) {
  if (plan::is_plan_file(f.dir)) return inspect_plan(f.dir, f.tensors, f.engine);
  auto text = core::read_file(f.dir + "/config.json");
  if (!text.ok()) return fail(text.status());
  auto config = model::parse_config(*text);
  if (!config.ok()) return fail(config.status());
  const auto& c = *config;
  std::printf("model          %s\n", f.dir.c_str());
  std::printf("architecture   %s (%s), head: %s\n",
              std::string(architecture_name(c.architecture)).c_str(), c.hf_class.c_str(),
              std::string(task_name(c.task)).c_str());
  std::printf("encoder        %lld layers, hidden %lld, %lld heads x %lld, ffn %lld, %s\n",
              static_cast<long long>(c.num_layers), static_cast<long long>(c.hidden_size),
              static_cast<long long>(c.num_heads), static_cast<long long>(c.head_dim()),
              static_cast<long long>(c.intermediate_size),
              std::string(activation_name(c.activation)).c_str());
  std::printf("embeddings     vocab %lld, positions %lld (offset %lld), token types %lld\n",
              static_cast<long long>(c.vocab_size),
              static_cast<long long>(c.max_position_embeddings),
              static_cast<long long>(c.position_offset), static_cast<long long>(c.type_vocab_size));
  if (!c.labels.empty()) {
    std::printf("labels        ");
    for (const auto& l : c.labels) std::printf(" %s", l.c_str());
    std::printf("\n");
  }
  auto pooling = model::load_pooling_config(f.dir);
  if (!pooling.ok()) return fail(pooling.status());
  if (pooling->from_sentence_transformers) {
    std::printf("pooling        %s%s, max_seq_length %lld\n",
                std::string(pooling_mode_name(pooling->mode)).c_str(),
                pooling->normalize ? " + L2 normalize" : "",
                static_cast<long long>(pooling->max_seq_length));
  }
  auto st = model::SafeTensors::open(f.dir + "/model.safetensors");
  if (!st.ok()) return fail(st.status());
  std::map<std::string, std::pair<int, size_t>> by_dtype;
  for (const auto& t : st->tensors()) {
    auto& e = by_dtype[std::string(dtype_name(t.dtype))];
    ++e.first;
    e.second += t.nbytes;
  }
  for (const auto& [dt, e] : by_dtype) {
    std::printf("weights        %d tensors %s, %.1f MB\n", e.first, dt.c_str(), e.second / 1e6);
  }
  if (f.tensors) {
    for (const auto& t : st->tensors())
      std::printf("  %-60s %s\n", t.name.c_str(), t.describe().c_str());
  }
  auto tok = Tokenizer::from_model_dir(f.dir);
  if (!tok.ok()) {
    std::printf("tokenizer      none (%s)\n", tok.status().message().c_str());
  } else {
    std::printf("tokenizer      %zu ids, pad id %d, %zu special tokens per text, %zu per pair\n",
                (*tok)->vocab_size(), (*tok)->pad_id(), (*tok)->num_special_tokens(false),
                (*tok)->num_special_tokens(true));
  }
  if (f.layers) {
    EngineOptions options;
    if (!f.engine.to_options(&options)) return 1;
    auto engine = Engine::load(f.dir, options);
    if (!engine.ok()) return fail(engine.status());
    std::printf("compiled for %s, %s:\n", options.device.c_str(),
                std::string(precision_name(options.precision)).c_str());
    for (const auto& line : (*engine)->describe_layers()) std::printf("  %s\n", line.c_str());
  }
  return 0;
}

}  // namespace

void register_inspect(CLI::App& app, Runner* runner) {
  auto flags = std::make_shared<InspectFlags>();
  CLI::App* cmd = app.add_subcommand("inspect", "Describe a model directory or plan file");
  cmd->add_option("path", flags->dir, "Hugging Face model directory or kiln plan")->required();
  cmd->add_flag("--tensors", flags->tensors, "List every tensor with shape and dtype");
  cmd->add_flag("--layers", flags->layers, "Compile and list layers with kernels and sizes");
  flags->engine.add_to(cmd);
  cmd->callback([flags, runner] { *runner = [flags] { return run(*flags); }; });
}

}  // namespace kiln::cli
