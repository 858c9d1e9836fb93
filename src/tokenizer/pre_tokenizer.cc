#include "tokenizer/pre_tokenizer.h"

#include <string_view>

namespace kiln::tokenizer {
namespace {

using unicode::properties;

// Class of one character for splitting; ASCII answered without a table lookup.
inline uint8_t char_props(std::string_view s, size_t i, size_t* len) {
  const auto b = static_cast<uint8_t>(s[i]);
  if (b < 0x80) {
    *len = 1;
    return properties(b);
  }
  return properties(unicode::decode_utf8(s, i, len));
}

// Splits on whitespace; with `isolate_punct`, every punctuation character is a word of its own
// (BertPreTokenizer), else punctuation stays inside words (WhitespaceSplit).
void split_words(std::string_view s, bool isolate_punct, std::vector<Span>* words) {
  const uint8_t breaks =
      isolate_punct ? (unicode::kWhitespace | unicode::kPunct) : unicode::kWhitespace;
  size_t word_start = 0;
  bool in_word = false;
  size_t i = 0;
  while (i < s.size()) {
    size_t len;
    const uint8_t props = char_props(s, i, &len);
    if (props & breaks) {
      if (in_word) words->push_back(Span{uint32_t(word_start), uint32_t(i)});
      in_word = false;
      if (props & breaks & unicode::kPunct) words->push_back(Span{uint32_t(i), uint32_t(i + len)});
    } else if (!in_word) {
      in_word = true;
      word_start = i;
    }
    i += len;
  }
  if (in_word) words->push_back(Span{uint32_t(word_start), uint32_t(s.size())});
}

class BertPreTokenizer final : public PreTokenizer {
 public:
  void pre_tokenize(NormalizedText* text, std::vector<Span>* words) const override {
    split_words(text->text, /*isolate_punct=*/true, words);
  }
};

class WhitespaceSplitPreTokenizer final : public PreTokenizer {
 public:
  void pre_tokenize(NormalizedText* text, std::vector<Span>* words) const override {
    split_words(text->text, /*isolate_punct=*/false, words);
  }
};

// GPT-2's pattern, hand-compiled:
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// Every position starts a match, so the pieces tile the text.
class ByteLevelPreTokenizer final : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex)
      : add_prefix_space_(add_prefix_space), use_regex_(use_regex) {}

  bool byte_level() const override { return true; }

  void pre_tokenize(NormalizedText* text, std::vector<Span>* words) const override {
    if (add_prefix_space_ && !text->text.empty() && text->text[0] != ' ') {
      // The added space is attributed to the first character, as NormalizedString::prepend.
      text->text.insert(text->text.begin(), ' ');
      text->align.insert(text->align.begin(), text->align[0]);
    }
    const std::string_view s = text->text;
    if (!use_regex_) {
      if (!s.empty()) words->push_back(Span{0, uint32_t(s.size())});
      return;
    }
    size_t i = 0;
    while (i < s.size()) {
      const size_t end = match_at(s, i);
      words->push_back(Span{uint32_t(i), uint32_t(end)});
      i = end;
    }
  }

 private:
  enum Class { kL, kN, kS, kOther };

  static Class classify(std::string_view s, size_t i, size_t* len) {
    const uint8_t p = char_props(s, i, len);
    if (p & unicode::kLetter) return kL;
    if (p & unicode::kNumber) return kN;
    if (p & unicode::kWhitespace) return kS;
    return kOther;
  }

  // End of the run of characters of class `c` starting at `i`.
  static size_t run_end(std::string_view s, size_t i, Class c) {
    while (i < s.size()) {
      size_t len;
      if (classify(s, i, &len) != c) break;
      i += len;
    }
    return i;
  }

  static size_t match_at(std::string_view s, size_t i) {
    if (s[i] == '\'' && i + 1 < s.size()) {
      const char c1 = s[i + 1];
      if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return i + 2;
      if (i + 2 < s.size()) {
        const char c2 = s[i + 2];
        if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) {
          return i + 3;
        }
      }
    }
    size_t len;
    Class c = classify(s, i, &len);
    size_t start = i;
    if (s[i] == ' ' && i + 1 < s.size()) {
      size_t len2;
      const Class next = classify(s, i + 1, &len2);
      if (next != kS) {
        // " ?X+" with the optional space taken.
        return run_end(s, i + 1, next);
      }
    }
    if (c != kS) return run_end(s, start, c);
    // \s+(?!\S) | \s+ : a whitespace run stops before the last space preceding a non-space.
    const size_t end = run_end(s, i, kS);
    if (end == s.size()) return end;
    size_t last = end - 1;
    while ((static_cast<uint8_t>(s[last]) & 0xC0) == 0x80) --last;
    return last > i ? last : end;
  }

  bool add_prefix_space_;
  bool use_regex_;
};

}  // namespace

std::unique_ptr<PreTokenizer> make_bert_pre_tokenizer() {
  return std::make_unique<BertPreTokenizer>();
}

std::unique_ptr<PreTokenizer> make_whitespace_split_pre_tokenizer() {
  return std::make_unique<WhitespaceSplitPreTokenizer>();
}

std::unique_ptr<PreTokenizer> make_byte_level_pre_tokenizer(bool add_prefix_space, bool use_regex) {
  return std::make_unique<ByteLevelPreTokenizer>(add_prefix_space, use_regex);
}

}  // namespace kiln::tokenizer
