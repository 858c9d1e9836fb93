#include "tokenizer/normalizer.h"

#include <utility>

namespace kiln::tokenizer {
namespace {

using unicode::properties;

class BertNormalizer final : public Normalizer {
 public:
  explicit BertNormalizer(const BertNormalizerOptions& options) : options_(options) {}

  void normalize(const NormalizedText& in, NormalizedText* out) const override {
    out->text.clear();
    out->align.clear();
    out->text.reserve(in.text.size() + in.text.size() / 8);
    out->align.reserve(in.text.size() + in.text.size() / 8);
    const std::string_view s = in.text;
    size_t i = 0;
    while (i < s.size()) {
      const auto byte = static_cast<uint8_t>(s[i]);
      if (byte < 0x80) {
        // ASCII fast path: no decomposition, no CJK, one-byte lowercase.
        const Alignment a = in.align[i];
        ++i;
        char c = static_cast<char>(byte);
        if (options_.clean_text) {
          if (c == '\t' || c == '\n' || c == '\r') {
            c = ' ';
          } else if (byte < 0x20 || byte == 0x7F) {
            continue;
          }
        }
        if (options_.lowercase && c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
        out->text.push_back(c);
        out->align.push_back(a);
        continue;
      }
      size_t len;
      char32_t cp = unicode::decode_utf8(s, i, &len);
      const Alignment a = in.align[i];
      i += len;
      const uint8_t props = properties(cp);
      if (options_.clean_text) {
        if (cp == 0xFFFD || (props & unicode::kRemoved)) continue;
        if (props & unicode::kWhitespace) cp = ' ';
      }
      if (options_.handle_chinese_chars && (props & unicode::kCjk)) {
        // tokenizers emits ' ', c, ' ' all aligned to c; the spaces vanish at pre-tokenization.
        out->append(' ', a);
        emit(cp, a, out);
        out->append(' ', a);
        continue;
      }
      emit(cp, a, out);
    }
  }

 private:
  // Applies strip_accents then lowercase to one character. Done per character, this equals the
  // reference's whole-string passes: both are character maps, and canonical reordering only
  // moves the non-spacing marks that stripping removes.
  void emit(char32_t cp, Alignment a, NormalizedText* out) const {
    char32_t decomposed[32];
    size_t n = 1;
    decomposed[0] = cp;
    if (options_.strip_accents) n = unicode::decompose(cp, decomposed, 32);
    for (size_t k = 0; k < n; ++k) {
      const char32_t c = decomposed[k];
      if (options_.strip_accents && (properties(c) & unicode::kNonspacingMark)) continue;
      if (options_.lowercase) {
        char32_t lower[3];
        const size_t m = unicode::to_lower(c, lower);
        for (size_t j = 0; j < m; ++j) out->append(lower[j], a);
      } else {
        out->append(c, a);
      }
    }
  }

  BertNormalizerOptions options_;
};

class LowercaseNormalizer final : public Normalizer {
 public:
  void normalize(const NormalizedText& in, NormalizedText* out) const override {
    out->text.clear();
    out->align.clear();
    size_t i = 0;
    while (i < in.text.size()) {
      size_t len;
      const char32_t cp = unicode::decode_utf8(in.text, i, &len);
      const Alignment a = in.align[i];
      i += len;
      char32_t lower[3];
      const size_t m = unicode::to_lower(cp, lower);
      for (size_t j = 0; j < m; ++j) out->append(lower[j], a);
    }
  }
};

class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> parts)
      : parts_(std::move(parts)) {}

  void normalize(const NormalizedText& in, NormalizedText* out) const override {
    if (parts_.empty()) {
      *out = in;
      return;
    }
    NormalizedText tmp = in;
    for (const auto& part : parts_) {
      part->normalize(tmp, out);
      std::swap(tmp, *out);
    }
    std::swap(tmp, *out);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> parts_;
};

}  // namespace

std::unique_ptr<Normalizer> make_bert_normalizer(const BertNormalizerOptions& options) {
  return std::make_unique<BertNormalizer>(options);
}

std::unique_ptr<Normalizer> make_lowercase_normalizer() {
  return std::make_unique<LowercaseNormalizer>();
}

std::unique_ptr<Normalizer> make_sequence_normalizer(
    std::vector<std::unique_ptr<Normalizer>> parts) {
  return std::make_unique<SequenceNormalizer>(std::move(parts));
}

}  // namespace kiln::tokenizer
