// Subword models (tokenizers' `models` module) and the vocabulary they share.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "kiln/status.h"

namespace kiln::tokenizer {

/// Ids are bounded so that a hostile file cannot make tables sized by the largest id huge
/// (real vocabularies stay far below: 30k BERT, 250k multilingual).
inline constexpr int32_t kMaxTokenId = 1 << 22;

/// A token produced by a model, with [begin, end) byte offsets relative to its word.
struct ModelToken {
  int32_t id;      ///< vocabulary id
  uint32_t begin;  ///< first byte in the word
  uint32_t end;    ///< one past the last byte
};

/// Token strings by id (ids may have gaps) and the reverse map.
class Vocab {
 public:
  /// Builds from (token, id) pairs; duplicate tokens or negative ids are errors.
  static Result<Vocab> build(std::vector<std::pair<std::string, int32_t>> entries);

  Vocab() = default;
  Vocab(Vocab&& other) noexcept { *this = std::move(other); }
  Vocab& operator=(Vocab&& other) noexcept;
  Vocab(const Vocab&) = delete;
  Vocab& operator=(const Vocab&) = delete;

  /// Id of `token`, or -1.
  int32_t find(std::string_view token) const {
    const auto it = ids_.find(token);
    return it == ids_.end() ? -1 : it->second;
  }
  /// Token string of `id` ("" for a gap or out of range).
  const std::string& token(int32_t id) const;
  /// One past the largest id.
  size_t size() const { return tokens_.size(); }
  /// Number of (token, id) entries.
  size_t entries() const { return ids_.size(); }

 private:
  void reindex();
  std::vector<std::string> tokens_;
  // Keys view into tokens_, which is never resized after build().
  std::unordered_map<std::string_view, int32_t> ids_;
};

/// A subword model; immutable and thread-safe.
class Model {
 public:
  virtual ~Model() = default;
  /// Appends the tokens of one pre-tokenized word (normalized UTF-8, or raw bytes for
  /// byte-level models) to `out`.
  virtual Status tokenize(std::string_view word, std::vector<ModelToken>* out) const = 0;
  /// The model's vocabulary.
  virtual const Vocab& vocab() const = 0;
};

}  // namespace kiln::tokenizer
