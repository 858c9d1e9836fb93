// vocab.txt -> a BERT tokenizer, as `tokenizers`' BertWordPieceTokenizer builds it.
#include <string>
#include <unordered_map>
#include <utility>

#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/wordpiece.h"

namespace kiln::tokenizer {
namespace {

// Rust's str::trim_end: strips trailing Unicode whitespace.
std::string_view trim_end(std::string_view s) {
  size_t end = s.size();
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && (static_cast<uint8_t>(s[start]) & 0xC0) == 0x80) --start;
    size_t len;
    if (!(unicode::properties(unicode::decode_utf8(s, start, &len)) & unicode::kWhitespace)) break;
    end = start;
  }
  return s.substr(0, end);
}

}  // namespace

Result<TokenizerParts> bert_parts_from_vocab(std::string_view vocab_txt, bool lowercase) {
  if (unicode::find_invalid_utf8(vocab_txt) != std::string_view::npos) {
    return invalid_argument("vocab.txt is not valid UTF-8");
  }
  // One token per line, id = line number; a repeated token keeps its last line (tokenizers
  // fills a HashMap), leaving a gap at the earlier id.
  std::unordered_map<std::string, int32_t> last_id;
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos < vocab_txt.size()) {
    size_t nl = vocab_txt.find('\n', pos);
    if (nl == std::string_view::npos) nl = vocab_txt.size();
    lines.emplace_back(trim_end(vocab_txt.substr(pos, nl - pos)));
    pos = nl + 1;
  }
  if (lines.size() >= static_cast<size_t>(kMaxTokenId))
    return invalid_argument("vocab.txt too large");
  for (size_t i = 0; i < lines.size(); ++i) last_id[lines[i]] = static_cast<int32_t>(i);
  std::vector<std::pair<std::string, int32_t>> entries;
  entries.reserve(last_id.size());
  for (auto& [token, id] : last_id) entries.emplace_back(token, id);
  KILN_ASSIGN_OR_RETURN(Vocab vocab, Vocab::build(std::move(entries)));

  TokenizerParts parts;
  BertNormalizerOptions norm;
  norm.lowercase = lowercase;
  norm.strip_accents = lowercase;
  parts.normalizer = make_bert_normalizer(norm);
  parts.pre_tokenizer = make_bert_pre_tokenizer();
  const int32_t cls = vocab.find("[CLS]");
  const int32_t sep = vocab.find("[SEP]");
  if (cls < 0 || sep < 0) return invalid_argument("vocab.txt has no [CLS] or no [SEP] token");
  for (const char* special : {"[UNK]", "[SEP]", "[CLS]", "[PAD]", "[MASK]"}) {
    const int32_t id = vocab.find(special);
    if (id < 0) continue;
    AddedToken tok;
    tok.content = special;
    tok.id = id;
    tok.special = true;
    tok.normalized = false;
    parts.added.add(std::move(tok));
  }
  const int32_t pad = vocab.find("[PAD]");
  parts.pad_id = pad;
  KILN_ASSIGN_OR_RETURN(parts.model, make_wordpiece(std::move(vocab), WordPieceOptions{}));
  parts.post_processor = make_bert_processing(cls, sep);
  parts.decoder.kind = Decoder::Kind::kWordPiece;  // BertWordPieceTokenizer's "##", cleanup
  return parts;
}

}  // namespace kiln::tokenizer
