#include "tokenizer/tokenizer_impl.h"

#include <limits>
#include <optional>
#include <string>
#include <utility>

#include "tokenizer/truncation.h"

namespace kiln::tokenizer {
namespace {

// Leading/trailing whitespace characters of an added token's matched text, packed for
// RawEncoding::spaces (its string is the matched text, swallowed whitespace included).
uint32_t space_counts(std::string_view s) {
  uint32_t lead = 0;
  size_t i = 0;
  while (i < s.size()) {
    size_t len;
    const char32_t c = unicode::decode_utf8(s, i, &len);
    if (c != 0x120 && !(unicode::properties(c) & unicode::kWhitespace)) break;
    ++lead;
    i += len;
  }
  uint32_t trail = 0;
  size_t end = s.size();
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && (static_cast<uint8_t>(s[start]) & 0xC0) == 0x80) --start;
    size_t len;
    const char32_t c = unicode::decode_utf8(s, start, &len);
    if (c != 0x120 && !(unicode::properties(c) & unicode::kWhitespace)) break;
    ++trail;
    end = start;
  }
  return (std::min<uint32_t>(lead, 0xFFFF) << 16) | std::min<uint32_t>(trail, 0xFFFF);
}

class TokenizerImpl final : public Tokenizer {
 public:
  explicit TokenizerImpl(TokenizerParts parts) : p_(std::move(parts)) {
    p_.added.build(p_.normalizer.get());
    size_ = p_.model->vocab().size();
    for (const AddedToken& t : p_.added.tokens()) {
      size_ = std::max(size_, static_cast<size_t>(t.id) + 1);
    }
    pad_id_ = p_.pad_id;
    if (pad_id_ < 0) pad_id_ = token_to_id("[PAD]");
    if (pad_id_ < 0) pad_id_ = token_to_id("<pad>");
    if (pad_id_ < 0) pad_id_ = 0;
  }

  Result<Encoding> encode(std::string_view text, const EncodeOptions& options) const override {
    KILN_ASSIGN_OR_RETURN(RawEncoding first, encode_sequence(text, 0));
    return post_process(std::move(first), std::nullopt, options);
  }

  Result<Encoding> encode_pair(std::string_view first, std::string_view second,
                               const EncodeOptions& options) const override {
    KILN_ASSIGN_OR_RETURN(RawEncoding a, encode_sequence(first, 0));
    KILN_ASSIGN_OR_RETURN(RawEncoding b, encode_sequence(second, 1));
    return post_process(std::move(a), std::move(b), options);
  }

  int32_t token_to_id(std::string_view token) const override {
    const int32_t added = p_.added.find(token);
    return added >= 0 ? added : p_.model->vocab().find(token);
  }

  std::string id_to_token(int32_t id) const override {
    for (const AddedToken& t : p_.added.tokens()) {
      if (t.id == id) return t.content;
    }
    return p_.model->vocab().token(id);
  }

  std::string decode_tokens(const std::vector<std::string>& tokens) const override {
    return p_.decoder.decode(tokens);
  }

  size_t vocab_size() const override { return size_; }
  int32_t pad_id() const override { return pad_id_; }
  size_t num_special_tokens(bool pair) const override {
    return p_.post_processor ? p_.post_processor->added_tokens(pair) : 0;
  }

 private:
  // Scratch buffers reused across calls on one thread, so steady-state encoding does not
  // allocate per word.
  struct Scratch {
    std::vector<AddedSplit> splits;
    std::vector<AddedSplit> sub_splits;
    NormalizedText original;
    NormalizedText normalized;
    NormalizedText piece;
    std::vector<Span> words;
    std::vector<ModelToken> tokens;
  };

  // tokenizers' encode_single_sequence: added tokens, normalizer, pre-tokenizer, model.
  Result<RawEncoding> encode_sequence(std::string_view text, uint8_t index) const {
    if (text.size() >= std::numeric_limits<uint32_t>::max()) {
      return invalid_argument("tokenizer: input of " + std::to_string(text.size()) +
                              " bytes is too large");
    }
    const size_t bad = unicode::find_invalid_utf8(text);
    if (bad != std::string_view::npos) {
      return invalid_argument("tokenizer: input is not valid UTF-8 (byte " + std::to_string(bad) +
                              ")");
    }
    const auto type_id = static_cast<int32_t>(index);
    thread_local Scratch s;
    RawEncoding enc;
    enc.ids.reserve(text.size() / 4 + 4);
    int32_t word = 0;  // tokenizers' word index: one per non-empty split, added tokens included
    s.splits.clear();
    p_.added.split(text, false, &s.splits);
    for (const AddedSplit& split : s.splits) {
      if (split.id >= 0) {
        enc.push(split.id, type_id, 0, {split.begin, split.end}, index,
                 space_counts(text.substr(split.begin, split.end - split.begin)), word++);
        continue;
      }
      if (split.end == split.begin) continue;
      s.original.assign_original(text.substr(split.begin, split.end - split.begin), split.begin);
      NormalizedText* norm = &s.original;
      if (p_.normalizer) {
        p_.normalizer->normalize(s.original, &s.normalized);
        norm = &s.normalized;
      }
      if (norm->text.empty()) continue;
      if (!p_.added.has_normalized()) {
        KILN_RETURN_IF_ERROR(tokenize_piece(norm, type_id, index, &s, &enc, &word));
        continue;
      }
      s.sub_splits.clear();
      p_.added.split(norm->text, true, &s.sub_splits);
      for (const AddedSplit& sub : s.sub_splits) {
        if (sub.end == sub.begin) continue;
        const Alignment a = norm->original_range(sub.begin, sub.end);
        if (sub.id >= 0) {
          enc.push(
              sub.id, type_id, 0, {a.start, a.end}, index,
              space_counts(std::string_view(norm->text).substr(sub.begin, sub.end - sub.begin)),
              word++);
          continue;
        }
        s.piece.text.assign(norm->text, sub.begin, sub.end - sub.begin);
        s.piece.align.assign(norm->align.begin() + sub.begin, norm->align.begin() + sub.end);
        KILN_RETURN_IF_ERROR(tokenize_piece(&s.piece, type_id, index, &s, &enc, &word));
      }
    }
    return enc;
  }

  Status tokenize_piece(NormalizedText* piece, int32_t type_id, uint8_t index, Scratch* s,
                        RawEncoding* enc, int32_t* word) const {
    s->words.clear();
    if (p_.pre_tokenizer) {
      p_.pre_tokenizer->pre_tokenize(piece, &s->words);
    } else {
      s->words.push_back(Span{0, static_cast<uint32_t>(piece->text.size())});
    }
    const std::string_view text = piece->text;
    for (const Span& w : s->words) {
      s->tokens.clear();
      KILN_RETURN_IF_ERROR(p_.model->tokenize(text.substr(w.begin, w.end - w.begin), &s->tokens));
      for (const ModelToken& t : s->tokens) {
        const Alignment a = piece->original_range(w.begin + t.begin, w.begin + t.end);
        enc->push(t.id, type_id, 0, {a.start, a.end}, index, RawEncoding::kNoSpaces, *word);
      }
      ++*word;
    }
    return Status();
  }

  // tokenizers' Tokenizer::post_process: truncate, then add special tokens.
  Result<Encoding> post_process(RawEncoding first, std::optional<RawEncoding> second,
                                const EncodeOptions& options) const {
    const bool pair = second.has_value();
    if (options.max_length > 0) {
      const size_t single_added = num_special_tokens(false);
      // tokenizers refuses these parameters when truncation is enabled.
      const size_t effective =
          options.max_length > single_added ? options.max_length - single_added : 0;
      if (effective < options.stride) {
        return invalid_argument("truncation: stride " + std::to_string(options.stride) +
                                " does not fit max_length " + std::to_string(options.max_length) +
                                " minus " + std::to_string(single_added) + " special tokens");
      }
      const size_t added = options.add_special_tokens ? num_special_tokens(pair) : 0;
      // tokenizers computes max_length - added with wrapping arithmetic: a max_length below the
      // special tokens becomes a huge budget, i.e. no truncation at all (observed in 0.23.3).
      if (options.max_length >= added) {
        KILN_RETURN_IF_ERROR(truncate_encodings(&first, pair ? &*second : nullptr,
                                                options.max_length - added, options.strategy,
                                                options.stride));
      }
    }
    RawEncoding out = p_.post_processor
                          ? p_.post_processor->process(std::move(first), std::move(second),
                                                       options.add_special_tokens)
                          : default_process(std::move(first), std::move(second));
    Encoding result = out.to_public();
    if (!options.return_overflowing) result.overflowing.clear();
    return result;
  }

  TokenizerParts p_;
  size_t size_ = 0;
  int32_t pad_id_ = 0;
};

}  // namespace

Result<std::unique_ptr<Tokenizer>> make_tokenizer(TokenizerParts parts) {
  if (!parts.model) return invalid_argument("tokenizer: no model");
  return std::unique_ptr<Tokenizer>(std::make_unique<TokenizerImpl>(std::move(parts)));
}

}  // namespace kiln::tokenizer
