#include "tokenizer/wordpiece.h"

#include <utility>

#include "tokenizer/byte_trie.h"

namespace kiln::tokenizer {
namespace {

class WordPiece final : public Model {
 public:
  WordPiece(Vocab vocab, WordPieceOptions options, int32_t unk_id)
      : vocab_(std::move(vocab)), options_(std::move(options)), unk_id_(unk_id) {
    // Two tries replace tokenizers' "try every shorter substring in a hash map" loop: one walk
    // per piece finds the longest vocabulary match. `continuing_` holds prefixed tokens with
    // the prefix cut off, so the walk never builds "##" + substring strings.
    const std::string& prefix = options_.continuing_subword_prefix;
    for (size_t id = 0; id < vocab_.size(); ++id) {
      const std::string& tok = vocab_.token(static_cast<int32_t>(id));
      if (tok.empty()) continue;
      initial_.insert(tok, static_cast<int32_t>(id));
      if (tok.size() > prefix.size() && tok.compare(0, prefix.size(), prefix) == 0) {
        continuing_.insert(std::string_view(tok).substr(prefix.size()), static_cast<int32_t>(id));
      }
    }
    initial_.build();
    continuing_.build();
  }

  Status tokenize(std::string_view word, std::vector<ModelToken>* out) const override {
    const auto word_len = static_cast<uint32_t>(word.size());
    size_t chars = 0;
    for (const char c : word) chars += (static_cast<uint8_t>(c) & 0xC0) != 0x80;
    if (chars > options_.max_input_chars_per_word) {
      out->push_back(ModelToken{unk_id_, 0, word_len});
      return Status();
    }
    const size_t first = out->size();
    size_t start = 0;
    while (start < word.size()) {
      int32_t id = -1;
      const ByteTrie& trie = start == 0 ? initial_ : continuing_;
      const size_t len = trie.longest_prefix(word.substr(start), &id);
      if (len == 0) {
        out->resize(first);
        out->push_back(ModelToken{unk_id_, 0, word_len});
        return Status();
      }
      out->push_back(
          ModelToken{id, static_cast<uint32_t>(start), static_cast<uint32_t>(start + len)});
      start += len;
    }
    return Status();
  }

  const Vocab& vocab() const override { return vocab_; }

 private:
  Vocab vocab_;
  WordPieceOptions options_;
  int32_t unk_id_;
  ByteTrie initial_;
  ByteTrie continuing_;
};

}  // namespace

Result<std::unique_ptr<Model>> make_wordpiece(Vocab vocab, const WordPieceOptions& options) {
  const int32_t unk_id = vocab.find(options.unk_token);
  if (unk_id < 0) {
    return invalid_argument("WordPiece: unk_token '" + options.unk_token +
                            "' is not in the vocabulary");
  }
  return std::unique_ptr<Model>(std::make_unique<WordPiece>(std::move(vocab), options, unk_id));
}

}  // namespace kiln::tokenizer
