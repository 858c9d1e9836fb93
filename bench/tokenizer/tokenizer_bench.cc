// Single-threaded tokenizer throughput: encodes every line of a corpus file (a batch of
// sentences, one encode() each) repeatedly and prints MB/s of input text.
//   tokenizer_bench MODEL_DIR_OR_TOKENIZER_JSON CORPUS.txt [SECONDS]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "kiln/tokenizer.h"

namespace {

kiln::Result<std::unique_ptr<kiln::Tokenizer>> load(const std::string& path) {
  const std::string suffix = ".json";
  if (path.size() > suffix.size() &&
      path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0) {
    std::ifstream in(path, std::ios::binary);
    const std::string json((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return kiln::Tokenizer::from_json(json);
  }
  return kiln::Tokenizer::from_model_dir(path);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s MODEL_DIR|tokenizer.json CORPUS.txt [SECONDS]\n", argv[0]);
    return 2;
  }
  auto tok = load(argv[1]);
  if (!tok.ok()) {
    std::fprintf(stderr, "%s\n", tok.status().to_string().c_str());
    return 1;
  }
  const double seconds = argc > 3 ? std::atof(argv[3]) : 3.0;
  std::ifstream in(argv[2]);
  std::vector<std::string> lines;
  size_t bytes = 0;
  for (std::string line; std::getline(in, line);) {
    bytes += line.size();
    lines.push_back(std::move(line));
  }
  const kiln::EncodeOptions options;
  size_t tokens = 0;
  for (const auto& l : lines) tokens += (*tok)->encode(l, options)->ids.size();  // warm-up

  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  size_t passes = 0;
  double elapsed = 0;
  do {
    for (const auto& l : lines) {
      auto e = (*tok)->encode(l, options);
      if (!e.ok()) {
        std::fprintf(stderr, "%s\n", e.status().to_string().c_str());
        return 1;
      }
    }
    ++passes;
    elapsed = std::chrono::duration<double>(clock::now() - start).count();
  } while (elapsed < seconds);
  const double mb = static_cast<double>(bytes * passes) / 1e6;
  std::printf(
      "{\"mb_per_s\": %.2f, \"sentences\": %zu, \"bytes\": %zu, \"tokens\": %zu, "
      "\"passes\": %zu}\n",
      mb / elapsed, lines.size(), bytes, tokens, passes);
  return 0;
}
