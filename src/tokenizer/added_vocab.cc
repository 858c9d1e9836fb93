#include "tokenizer/added_vocab.h"

#include <algorithm>

#include "tokenizer/unicode.h"

namespace kiln::tokenizer {
namespace {

bool is_space(std::string_view s, size_t i, size_t* len) {
  return unicode::properties(unicode::decode_utf8(s, i, len)) & unicode::kWhitespace;
}

// regex `\w`: letters, marks, numbers and the underscore.
bool is_word_char(char32_t c) {
  return c == '_' || (unicode::properties(c) &
                      (unicode::kLetter | unicode::kNumber | unicode::kNonspacingMark));
}

size_t prev_char_start(std::string_view s, size_t end) {
  size_t i = end - 1;
  while (i > 0 && (static_cast<uint8_t>(s[i]) & 0xC0) == 0x80) --i;
  return i;
}

// Start of the run of whitespace that ends `s` (regex `\s*$`).
size_t trailing_space_start(std::string_view s) {
  size_t end = s.size();
  while (end > 0) {
    const size_t start = prev_char_start(s, end);
    size_t len;
    if (!is_space(s, start, &len)) break;
    end = start;
  }
  return end;
}

// Length of the run of whitespace that starts `s` (regex `^\s*`).
size_t leading_space_length(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    size_t len;
    if (!is_space(s, i, &len)) break;
    i += len;
  }
  return i;
}

}  // namespace

void AddedVocab::build(const Normalizer* normalizer) {
  raw_ = Matcher();
  normalized_ = Matcher();
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const AddedToken& t = tokens_[i];
    if (t.content.empty()) continue;
    if (!t.normalized) {
      raw_.patterns.push_back(Pattern{t.content, i});
      continue;
    }
    std::string text = t.content;
    if (normalizer != nullptr) {
      NormalizedText in;
      NormalizedText out;
      in.assign_original(t.content, 0);
      normalizer->normalize(in, &out);
      text = out.text;
    }
    if (!text.empty()) normalized_.patterns.push_back(Pattern{std::move(text), i});
  }
  for (Matcher* m : {&raw_, &normalized_}) {
    std::stable_sort(
        m->patterns.begin(), m->patterns.end(),
        [](const Pattern& a, const Pattern& b) { return a.text.size() > b.text.size(); });
    for (const Pattern& p : m->patterns) m->first_byte[static_cast<uint8_t>(p.text[0])] = true;
  }
}

int32_t AddedVocab::find(std::string_view content) const {
  for (const AddedToken& t : tokens_) {
    if (t.content == content) return t.id;
  }
  return -1;
}

void AddedVocab::split(std::string_view text, bool normalized, std::vector<AddedSplit>* out) const {
  const Matcher& m = normalized ? normalized_ : raw_;
  if (text.empty()) {
    out->push_back(AddedSplit{0, 0, -1});
    return;
  }
  if (m.patterns.empty()) {
    out->push_back(AddedSplit{0, static_cast<uint32_t>(text.size()), -1});
    return;
  }
  split_with(m, text, out);
}

// tokenizers' AddedVocabulary::find_matches: leftmost-longest, non-overlapping matches; a
// single_word match inside a word is dropped (and not rescanned); lstrip/rstrip widen a match
// over neighbouring whitespace.
void AddedVocab::split_with(const Matcher& m, std::string_view text,
                            std::vector<AddedSplit>* out) const {
  size_t start_offset = 0;
  size_t i = 0;
  while (i < text.size()) {
    if (!m.first_byte[static_cast<uint8_t>(text[i])]) {
      ++i;
      continue;
    }
    const Pattern* hit = nullptr;
    for (const Pattern& p : m.patterns) {
      if (text.compare(i, p.text.size(), p.text) == 0) {
        hit = &p;
        break;
      }
    }
    if (hit == nullptr) {
      ++i;
      continue;
    }
    size_t start = i;
    size_t stop = i + hit->text.size();
    i = stop;
    const AddedToken& tok = tokens_[hit->token];
    if (tok.single_word) {
      size_t len;
      const bool start_space = start == 0 || !is_word_char(unicode::decode_utf8(
                                                 text, prev_char_start(text, start), &len));
      const bool stop_space =
          stop == text.size() || !is_word_char(unicode::decode_utf8(text, stop, &len));
      if (!start_space || !stop_space) continue;
    }
    if (tok.lstrip) start = std::max(trailing_space_start(text.substr(0, start)), start_offset);
    if (tok.rstrip) stop += leading_space_length(text.substr(stop));
    if (start_offset < start) {
      out->push_back(
          AddedSplit{static_cast<uint32_t>(start_offset), static_cast<uint32_t>(start), -1});
    }
    out->push_back(AddedSplit{static_cast<uint32_t>(start), static_cast<uint32_t>(stop), tok.id});
    start_offset = stop;
    i = std::max(i, stop);
  }
  if (start_offset != text.size()) {
    out->push_back(
        AddedSplit{static_cast<uint32_t>(start_offset), static_cast<uint32_t>(text.size()), -1});
  }
}

}  // namespace kiln::tokenizer
