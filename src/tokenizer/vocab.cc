#include <utility>

#include "tokenizer/model.h"

namespace kiln::tokenizer {

Result<Vocab> Vocab::build(std::vector<std::pair<std::string, int32_t>> entries) {
  Vocab vocab;
  int32_t max_id = -1;
  for (const auto& [token, id] : entries) {
    if (id < 0) return invalid_argument("vocabulary id " + std::to_string(id) + " is negative");
    if (id > max_id) max_id = id;
  }
  if (max_id >= kMaxTokenId) return invalid_argument("vocabulary id too large");
  vocab.tokens_.resize(static_cast<size_t>(max_id + 1));
  std::vector<bool> seen(vocab.tokens_.size(), false);
  for (auto& [token, id] : entries) {
    if (seen[static_cast<size_t>(id)]) {
      return invalid_argument("vocabulary id " + std::to_string(id) + " is used twice");
    }
    seen[static_cast<size_t>(id)] = true;
    vocab.tokens_[static_cast<size_t>(id)] = std::move(token);
  }
  vocab.ids_.reserve(entries.size());
  for (size_t id = 0; id < vocab.tokens_.size(); ++id) {
    if (!seen[id]) continue;
    if (!vocab.ids_.emplace(vocab.tokens_[id], static_cast<int32_t>(id)).second) {
      return invalid_argument("vocabulary token '" + vocab.tokens_[id] + "' appears twice");
    }
  }
  return vocab;
}

Vocab& Vocab::operator=(Vocab&& other) noexcept {
  tokens_ = std::move(other.tokens_);
  reindex();
  other.ids_.clear();
  return *this;
}

// Short strings live inside std::string (SSO), so moving tokens_ invalidates the keys.
void Vocab::reindex() {
  ids_.clear();
  ids_.reserve(tokens_.size());
  for (size_t id = 0; id < tokens_.size(); ++id) {
    if (!tokens_[id].empty()) ids_.emplace(tokens_[id], static_cast<int32_t>(id));
  }
}

const std::string& Vocab::token(int32_t id) const {
  static const std::string kEmpty;
  if (id < 0 || static_cast<size_t>(id) >= tokens_.size()) return kEmpty;
  return tokens_[static_cast<size_t>(id)];
}

}  // namespace kiln::tokenizer
