#include "quant/calibration_set.h"

#include <algorithm>
#include <fstream>

namespace kiln::quant {

Result<std::vector<std::string>> read_calibration_lines(const std::string& path, int64_t max_lines,
                                                        int64_t min_lines,
                                                        std::vector<int64_t>* line_numbers) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found("text file " + path + " cannot be opened");
  std::vector<std::string> lines;
  std::string line;
  int64_t number = 0;
  if (line_numbers != nullptr) line_numbers->clear();
  while (std::getline(in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    lines.push_back(std::move(line));
    if (line_numbers != nullptr) line_numbers->push_back(number);
    if (max_lines > 0 && static_cast<int64_t>(lines.size()) >= max_lines) break;
  }
  if (in.bad()) return data_loss("text file " + path + ": read error");
  if (static_cast<int64_t>(lines.size()) < min_lines) {
    return invalid_argument("text file " + path + " has " + std::to_string(lines.size()) +
                            " non-blank lines; at least " + std::to_string(min_lines) +
                            " are needed (one sample per line)");
  }
  return lines;
}

Result<CalibrationSet> tokenize_lines(const Tokenizer& tokenizer,
                                      const std::vector<std::string>& lines,
                                      const TokenLimits& limits, int64_t batch_tokens,
                                      const std::string& what,
                                      const std::vector<int64_t>* line_numbers) {
  const int64_t max_length = limits.max_length;
  const bool use_type_ids = limits.type_vocab_size > 0;
  CalibrationSet set;
  EncodeOptions full;  // untruncated, to count what truncation cuts
  EncodeOptions cut;
  cut.max_length = static_cast<size_t>(max_length);
  TokenBatch batch;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    const size_t tab = line.find('\t');
    auto encode = [&](const EncodeOptions& o) {
      return tab == std::string::npos
                 ? tokenizer.encode(line, o)
                 : tokenizer.encode_pair(std::string_view(line).substr(0, tab),
                                         std::string_view(line).substr(tab + 1), o);
    };
    const int64_t number = line_numbers != nullptr && i < line_numbers->size()
                               ? (*line_numbers)[i]
                               : static_cast<int64_t>(i) + 1;
    const std::string where = what + " line " + std::to_string(number);
    auto enc = encode(cut);
    if (!enc.ok()) return enc.status().with_context(where);
    if (enc->ids.empty()) return invalid_argument(where + " encodes to no tokens");
    for (int32_t id : enc->ids) {
      if (id < 0 || id >= limits.vocab_size) {
        return invalid_argument(where + ": token id " + std::to_string(id) +
                                " is outside the model's vocabulary of " +
                                std::to_string(limits.vocab_size));
      }
    }
    for (int32_t t : use_type_ids ? enc->type_ids : std::vector<int32_t>()) {
      if (t < 0 || t >= limits.type_vocab_size) {
        return invalid_argument(where + ": token type id " + std::to_string(t) +
                                " is outside the model's " +
                                std::to_string(limits.type_vocab_size));
      }
    }
    if (static_cast<int64_t>(enc->ids.size()) == max_length) {
      auto whole = encode(full);
      if (whole.ok() && static_cast<int64_t>(whole->ids.size()) > max_length) ++set.truncated;
    }
    const int64_t len = static_cast<int64_t>(enc->ids.size());
    if (batch.num_tokens() > 0 && batch.num_tokens() + len > batch_tokens) {
      set.batches.push_back(std::move(batch));
      batch = TokenBatch();
    }
    batch.add(enc->ids, use_type_ids ? enc->type_ids : std::vector<int32_t>());
    set.tokens += len;
    ++set.texts;
  }
  if (batch.num_sequences() > 0) set.batches.push_back(std::move(batch));
  return set;
}

}  // namespace kiln::quant
