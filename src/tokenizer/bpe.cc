#include "tokenizer/bpe.h"

#include <queue>
#include <unordered_map>

#include "tokenizer/unicode.h"

namespace kiln::tokenizer {

char32_t byte_to_unicode(uint8_t b) {
  // Printable Latin-1 bytes stand for themselves; the rest are shifted to 256 + n in order.
  if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE)) return b;
  uint32_t n = 0;
  for (uint32_t c = 0; c < b; ++c) {
    if (!((c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE))) ++n;
  }
  return 256 + n;
}

namespace {

struct MergeTarget {
  uint32_t rank;
  int32_t new_id;
};

inline uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

struct Symbol {
  int32_t id;
  int32_t prev;
  int32_t next;
  uint32_t begin;
  uint32_t len;  // 0 once merged into its left neighbour
};

struct Candidate {
  uint32_t rank;
  uint32_t pos;
  int32_t new_id;
  // std::priority_queue pops the largest: invert so the lowest rank, then leftmost, wins.
  bool operator<(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
};

class Bpe final : public Model {
 public:
  Bpe(Vocab vocab, std::unordered_map<uint64_t, MergeTarget> merges, BpeOptions options)
      : vocab_(std::move(vocab)), merges_(std::move(merges)), options_(std::move(options)) {
    unk_id_ = options_.unk_token ? vocab_.find(*options_.unk_token) : -1;
    if (options_.byte_level) {
      for (int b = 0; b < 256; ++b) {
        std::string s;
        unicode::append_utf8(byte_to_unicode(static_cast<uint8_t>(b)), &s);
        byte_ids_[b] = vocab_.find(s);
      }
    }
  }

  Status tokenize(std::string_view word, std::vector<ModelToken>* out) const override {
    if (word.empty()) return Status();
    if (options_.ignore_merges) {
      const int32_t id = whole_word_id(word);
      if (id >= 0) {
        out->push_back(ModelToken{id, 0, static_cast<uint32_t>(word.size())});
        return Status();
      }
    }
    thread_local std::vector<Symbol> symbols;
    symbols.clear();
    init_symbols(word, &symbols);
    merge(&symbols);
    for (const Symbol& s : symbols) {
      if (s.len == 0) continue;
      out->push_back(ModelToken{s.id, s.begin, s.begin + s.len});
    }
    return Status();
  }

  const Vocab& vocab() const override { return vocab_; }

 private:
  int32_t whole_word_id(std::string_view word) const {
    if (!options_.byte_level) return vocab_.find(word);
    std::string mapped;
    for (const char c : word)
      unicode::append_utf8(byte_to_unicode(static_cast<uint8_t>(c)), &mapped);
    return vocab_.find(mapped);
  }

  // Offsets are the running sum of the kept symbols' lengths, as tokenizers' Word computes
  // them, so a dropped unknown symbol shifts later offsets exactly as it does there.
  void push_symbol(int32_t id, uint32_t len, std::vector<Symbol>* symbols) const {
    const uint32_t begin = symbols->empty() ? 0 : symbols->back().begin + symbols->back().len;
    if (id < 0) {
      if (unk_id_ < 0) return;  // tokenizers drops unknown symbols when there is no unk token
      if (options_.fuse_unk && !symbols->empty() && symbols->back().id == unk_id_) {
        symbols->back().len += len;
        return;
      }
      id = unk_id_;
    }
    const auto index = static_cast<int32_t>(symbols->size());
    symbols->push_back(Symbol{id, index - 1, index + 1, begin, len});
  }

  void init_symbols(std::string_view word, std::vector<Symbol>* symbols) const {
    if (options_.byte_level) {
      for (size_t i = 0; i < word.size(); ++i) {
        push_symbol(byte_ids_[static_cast<uint8_t>(word[i])], 1, symbols);
      }
    } else {
      size_t i = 0;
      while (i < word.size()) {
        const size_t len = unicode::utf8_length(static_cast<uint8_t>(word[i]));
        push_symbol(vocab_.find(word.substr(i, len)), static_cast<uint32_t>(len), symbols);
        i += len;
      }
    }
    if (!symbols->empty()) symbols->back().next = -1;
  }

  const MergeTarget* find_merge(int32_t a, int32_t b) const {
    const auto it = merges_.find(pair_key(a, b));
    return it == merges_.end() ? nullptr : &it->second;
  }

  // tokenizers' Word::merge_all: a min-heap of candidate merges, stale entries skipped.
  void merge(std::vector<Symbol>* symbols_ptr) const {
    std::vector<Symbol>& sym = *symbols_ptr;
    if (sym.size() < 2) return;
    thread_local std::vector<Candidate> storage;
    storage.clear();
    std::priority_queue<Candidate, std::vector<Candidate>> queue(std::less<Candidate>(),
                                                                 std::move(storage));
    for (size_t i = 0; i + 1 < sym.size(); ++i) {
      if (const MergeTarget* m = find_merge(sym[i].id, sym[i + 1].id)) {
        queue.push(Candidate{m->rank, static_cast<uint32_t>(i), m->new_id});
      }
    }
    while (!queue.empty()) {
      const Candidate top = queue.top();
      queue.pop();
      Symbol& cur = sym[top.pos];
      if (cur.len == 0 || cur.next < 0) continue;
      const auto next_pos = static_cast<size_t>(cur.next);
      const Symbol right = sym[next_pos];
      const MergeTarget* m = find_merge(cur.id, right.id);
      if (m == nullptr || m->new_id != top.new_id) continue;
      cur.id = top.new_id;
      cur.len += right.len;
      cur.next = right.next;
      sym[next_pos].len = 0;
      if (right.next >= 0 && static_cast<size_t>(right.next) < sym.size()) {
        sym[static_cast<size_t>(right.next)].prev = static_cast<int32_t>(top.pos);
      }
      if (cur.prev >= 0) {
        const Symbol& prev = sym[static_cast<size_t>(cur.prev)];
        if (const MergeTarget* pm = find_merge(prev.id, cur.id)) {
          queue.push(Candidate{pm->rank, static_cast<uint32_t>(cur.prev), pm->new_id});
        }
      }
      if (cur.next >= 0) {
        const Symbol& next = sym[static_cast<size_t>(cur.next)];
        if (const MergeTarget* nm = find_merge(cur.id, next.id)) {
          queue.push(Candidate{nm->rank, top.pos, nm->new_id});
        }
      }
    }
  }

  Vocab vocab_;
  std::unordered_map<uint64_t, MergeTarget> merges_;
  BpeOptions options_;
  int32_t unk_id_ = -1;
  int32_t byte_ids_[256] = {};
};

}  // namespace

Result<std::unique_ptr<Model>> make_bpe(
    Vocab vocab, const std::vector<std::pair<std::string, std::string>>& merges,
    const BpeOptions& options) {
  std::unordered_map<uint64_t, MergeTarget> table;
  table.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [left, right] = merges[rank];
    const int32_t a = vocab.find(left);
    const int32_t b = vocab.find(right);
    const int32_t merged = vocab.find(left + right);
    if (a < 0 || b < 0 || merged < 0) {
      return invalid_argument("BPE: merge '" + left + " " + right +
                              "' uses a token that is not in the vocabulary");
    }
    // A repeated pair keeps its last rank: tokenizers collects the merges into a HashMap.
    table.insert_or_assign(pair_key(a, b), MergeTarget{static_cast<uint32_t>(rank), merged});
  }
  if (options.unk_token && vocab.find(*options.unk_token) < 0) {
    return invalid_argument("BPE: unk_token '" + *options.unk_token + "' is not in the vocabulary");
  }
  return std::unique_ptr<Model>(std::make_unique<Bpe>(std::move(vocab), std::move(table), options));
}

}  // namespace kiln::tokenizer
