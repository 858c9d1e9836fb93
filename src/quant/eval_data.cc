#include "quant/eval_data.h"

#include <charconv>
#include <fstream>
#include <string_view>

namespace kiln::quant {

namespace {

constexpr const char* kHint = " (run scripts/prepare_eval_data.sh)";

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> out;
  size_t begin = 0;
  for (size_t tab; (tab = line.find('\t', begin)) != std::string::npos; begin = tab + 1) {
    out.push_back(line.substr(begin, tab - begin));
  }
  out.push_back(line.substr(begin));
  return out;
}

// Calls `row(fields, line_number)` for each non-empty line; stops at `limit` accepted rows.
template <typename F>
Status for_each_row(const std::string& path, int64_t limit, F&& row) {
  std::ifstream in(path);
  if (!in) return not_found("cannot open " + path + kHint);
  std::string line;
  int64_t rows = 0, number = 0;
  while ((limit <= 0 || rows < limit) && std::getline(in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    Status s = row(split_tabs(line));
    if (!s.ok()) return s.with_context(path + ":" + std::to_string(number));
    ++rows;
  }
  if (rows == 0) return invalid_argument(path + " has no rows" + kHint);
  return ok_status();
}

}  // namespace

Result<std::vector<LabelledText>> read_labelled_tsv(const std::string& path, int64_t limit) {
  std::vector<LabelledText> out;
  KILN_RETURN_IF_ERROR(for_each_row(path, limit, [&](const std::vector<std::string>& f) {
    if (f.size() != 2 || (f[0] != "0" && f[0] != "1")) {
      return invalid_argument("expected label (0/1) <TAB> text");
    }
    out.push_back({f[1], f[0] == "1" ? 1 : 0});
    return ok_status();
  }));
  return out;
}

Result<std::vector<QaExample>> read_squad_tsv(const std::string& path, int64_t limit) {
  std::vector<QaExample> out;
  KILN_RETURN_IF_ERROR(for_each_row(path, limit, [&](const std::vector<std::string>& f) {
    if (f.size() < 4) return invalid_argument("expected id, question, context, answers...");
    out.push_back({f[0], f[1], f[2], std::vector<std::string>(f.begin() + 3, f.end())});
    return ok_status();
  }));
  return out;
}

Result<RetrievalSet> read_retrieval_set(const std::string& dir, int64_t paragraphs) {
  RetrievalSet set;
  auto read = [&](const std::string& name, std::vector<std::string>* texts, bool queries) {
    return for_each_row(dir + "/" + name, paragraphs, [&](const std::vector<std::string>& f) {
      if (f.size() != 2) return invalid_argument("expected paragraph <TAB> text");
      int64_t p = -1;
      std::from_chars(f[0].data(), f[0].data() + f[0].size(), p);
      if (p != static_cast<int64_t>(texts->size())) {
        return invalid_argument("paragraph numbers must count up from 0");
      }
      texts->push_back(f[1]);
      if (queries) set.gold.push_back(static_cast<int32_t>(p));
      return ok_status();
    });
  };
  KILN_RETURN_IF_ERROR(read("squad_dev_corpus.tsv", &set.corpus, false));
  KILN_RETURN_IF_ERROR(read("squad_dev_queries.tsv", &set.queries, true));
  if (set.queries.size() != set.corpus.size()) {
    return invalid_argument(dir + ": squad_dev_queries.tsv and squad_dev_corpus.tsv differ");
  }
  return set;
}

Result<std::vector<std::string>> read_lines(const std::string& path, int64_t limit) {
  std::vector<std::string> out;
  std::ifstream in(path);
  if (!in) return not_found("cannot open " + path);
  for (std::string line;
       (limit <= 0 || static_cast<int64_t>(out.size()) < limit) && std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) out.push_back(std::move(line));
  }
  return out;
}

}  // namespace kiln::quant
