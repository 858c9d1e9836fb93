#include "tokenizer/decoder.h"

#include <array>
#include <string_view>

#include "tokenizer/bpe.h"
#include "tokenizer/unicode.h"

namespace kiln::tokenizer {

namespace json = core::json;

namespace {

void replace_all(std::string* s, std::string_view from, std::string_view to) {
  for (size_t at = s->find(from); at != std::string::npos; at = s->find(from, at + to.size())) {
    s->replace(at, from.size(), to);
  }
}

// tokenizers' decoders::wordpiece::cleanup (the tokenization-space clean-up of BERT).
void cleanup(std::string* s) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 11> kRules = {{
      {" .", "."},
      {" ?", "?"},
      {" !", "!"},
      {" ,", ","},
      {" ' ", "'"},
      {" n't", "n't"},
      {" 'm", "'m"},
      {" do not", " don't"},
      {" 's", "'s"},
      {" 've", "'ve"},
      {" 're", "'re"},
  }};
  for (const auto& [from, to] : kRules) replace_all(s, from, to);
}

std::string byte_level(const std::vector<std::string>& tokens) {
  std::string joined;
  for (const auto& t : tokens) joined += t;
  // Each code point of the GPT-2 alphabet stands for one byte; others pass through as UTF-8.
  std::array<int, 0x180> byte_of{};
  byte_of.fill(-1);
  for (int b = 0; b < 256; ++b) byte_of[byte_to_unicode(static_cast<uint8_t>(b))] = b;
  std::string out;
  size_t i = 0;
  while (i < joined.size()) {
    size_t n = 1;
    const char32_t cp = unicode::decode_utf8(joined, i, &n);
    if (cp < byte_of.size() && byte_of[cp] >= 0) {
      out.push_back(static_cast<char>(byte_of[cp]));
    } else {
      out.append(joined, i, n);
    }
    i += n;
  }
  return out;
}

}  // namespace

std::string Decoder::decode(const std::vector<std::string>& tokens) const {
  if (kind == Kind::kByteLevel) return byte_level(tokens);
  std::string out;
  for (size_t i = 0; i < tokens.size(); ++i) {
    std::string t;
    if (kind == Kind::kMetaspace) {
      t = tokens[i];
      replace_all(&t, replacement, " ");
      if (i == 0 && strip_first_space && t.starts_with(' ')) t.erase(0, 1);
    } else if (kind == Kind::kWordPiece && i != 0 && tokens[i].starts_with(prefix)) {
      t.assign(tokens[i], prefix.size());
    } else {
      if (i != 0) t.push_back(' ');
      t += tokens[i];
    }
    if (kind == Kind::kWordPiece && cleanup) tokenizer::cleanup(&t);
    out += t;
  }
  return out;
}

Result<Decoder> parse_decoder(const json::Value* d) {
  Decoder out;
  if (d == nullptr || d->IsNull()) return out;
  KILN_ASSIGN_OR_RETURN(auto type, json::get_string_or(*d, "type", ""));
  if (type == "WordPiece") {
    out.kind = Decoder::Kind::kWordPiece;
    KILN_ASSIGN_OR_RETURN(out.prefix, json::get_string_or(*d, "prefix", "##"));
    KILN_ASSIGN_OR_RETURN(out.cleanup, json::get_bool_or(*d, "cleanup", true));
  } else if (type == "ByteLevel") {
    out.kind = Decoder::Kind::kByteLevel;
  } else if (type == "Metaspace") {
    out.kind = Decoder::Kind::kMetaspace;
    KILN_ASSIGN_OR_RETURN(out.replacement, json::get_string_or(*d, "replacement", "\u2581"));
    KILN_ASSIGN_OR_RETURN(auto scheme, json::get_string_or(*d, "prepend_scheme", "always"));
    KILN_ASSIGN_OR_RETURN(bool add_prefix, json::get_bool_or(*d, "add_prefix_space", true));
    out.strip_first_space = scheme != "never" && add_prefix;
  }
  // Other decoders (Sequence, Replace, ByteFallback, ...): tokens joined with spaces. Only the
  // entity words of token classification use decoding; ids and offsets never do.
  return out;
}

}  // namespace kiln::tokenizer
