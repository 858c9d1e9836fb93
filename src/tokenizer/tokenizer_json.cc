// tokenizer.json -> TokenizerParts. Every unsupported component is an InvalidArgument that
// names it; nothing in the file can make the loader crash.
#include <string>
#include <utility>

#include "core/json.h"
#include "tokenizer/bpe.h"
#include "tokenizer/component_json.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/wordpiece.h"

namespace kiln::tokenizer {
namespace {

namespace json = core::json;
using json::Value;

Result<Vocab> parse_vocab_map(const Value& model) {
  const Value* vocab = json::find(model, "vocab");
  if (vocab == nullptr || !vocab->IsObject()) {
    return invalid_argument("model.vocab must be an object of token -> id");
  }
  std::vector<std::pair<std::string, int32_t>> entries;
  entries.reserve(vocab->MemberCount());
  for (auto it = vocab->MemberBegin(); it != vocab->MemberEnd(); ++it) {
    KILN_ASSIGN_OR_RETURN(int32_t id, id_value(it->value, "model.vocab"));
    entries.emplace_back(std::string(it->name.GetString(), it->name.GetStringLength()), id);
  }
  return Vocab::build(std::move(entries));
}

Result<std::vector<std::pair<std::string, std::string>>> parse_merges(const Value& model) {
  std::vector<std::pair<std::string, std::string>> merges;
  const Value* list = json::find(model, "merges");
  if (list == nullptr || list->IsNull()) return merges;
  if (!list->IsArray()) return invalid_argument("model.merges must be an array");
  merges.reserve(list->Size());
  for (const Value& m : list->GetArray()) {
    if (m.IsString()) {
      // Legacy form "left right": split at the first space, as tokenizers does.
      const std::string s(m.GetString(), m.GetStringLength());
      const size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
        return invalid_argument("model.merges: '" + s + "' is not two tokens separated by a space");
      }
      merges.emplace_back(s.substr(0, space), s.substr(space + 1));
    } else if (m.IsArray() && m.Size() == 2 && m[0].IsString() && m[1].IsString()) {
      merges.emplace_back(std::string(m[0].GetString(), m[0].GetStringLength()),
                          std::string(m[1].GetString(), m[1].GetStringLength()));
    } else {
      return invalid_argument("model.merges entries must be \"a b\" or [\"a\", \"b\"]");
    }
  }
  return merges;
}

Result<std::unique_ptr<Model>> parse_model(const Value& model, bool byte_level) {
  if (!model.IsObject()) return invalid_argument("tokenizer.json: \"model\" must be an object");
  KILN_ASSIGN_OR_RETURN(auto type, json::get_string(model, "type"));
  if (!type) {
    // Files from old `tokenizers` versions omit the tag; infer it as serde's untagged form did.
    if (json::find(model, "merges") != nullptr) {
      type = "BPE";
    } else if (json::find(model, "max_input_chars_per_word") != nullptr) {
      type = "WordPiece";
    } else {
      return invalid_argument("tokenizer.json: model has no \"type\"");
    }
  }
  if (*type == "WordPiece") {
    WordPieceOptions options;
    KILN_ASSIGN_OR_RETURN(options.unk_token, json::get_string_or(model, "unk_token", "[UNK]"));
    KILN_ASSIGN_OR_RETURN(options.continuing_subword_prefix,
                          json::get_string_or(model, "continuing_subword_prefix", "##"));
    KILN_ASSIGN_OR_RETURN(int64_t max_chars,
                          json::get_int_or(model, "max_input_chars_per_word", 100));
    if (max_chars < 0) return invalid_argument("model.max_input_chars_per_word must be >= 0");
    options.max_input_chars_per_word = static_cast<size_t>(max_chars);
    KILN_ASSIGN_OR_RETURN(Vocab vocab, parse_vocab_map(model));
    return make_wordpiece(std::move(vocab), options);
  }
  if (*type == "BPE") {
    BpeOptions options;
    options.byte_level = byte_level;
    KILN_ASSIGN_OR_RETURN(options.unk_token, json::get_string(model, "unk_token"));
    KILN_ASSIGN_OR_RETURN(options.fuse_unk, json::get_bool_or(model, "fuse_unk", false));
    KILN_ASSIGN_OR_RETURN(options.ignore_merges, json::get_bool_or(model, "ignore_merges", false));
    KILN_ASSIGN_OR_RETURN(auto dropout, json::get_double(model, "dropout"));
    if (dropout && *dropout != 0.0) {
      return invalid_argument("BPE dropout is not supported (encoding would be random)");
    }
    KILN_ASSIGN_OR_RETURN(bool byte_fallback, json::get_bool_or(model, "byte_fallback", false));
    if (byte_fallback) return invalid_argument("BPE byte_fallback is not supported");
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
      KILN_ASSIGN_OR_RETURN(auto affix, json::get_string(model, key));
      if (affix && !affix->empty()) {
        return invalid_argument(std::string("BPE ") + key + " is not supported");
      }
    }
    KILN_ASSIGN_OR_RETURN(Vocab vocab, parse_vocab_map(model));
    KILN_ASSIGN_OR_RETURN(auto merges, parse_merges(model));
    return make_bpe(std::move(vocab), merges, options);
  }
  return invalid_argument("tokenizer.json: unsupported model type '" + *type + "'");
}

Status parse_added_tokens(const Value& root, AddedVocab* added) {
  const Value* list = json::find(root, "added_tokens");
  if (list == nullptr || list->IsNull()) return Status();
  if (!list->IsArray()) return invalid_argument("tokenizer.json: added_tokens must be an array");
  for (const Value& t : list->GetArray()) {
    if (!t.IsObject()) return invalid_argument("added_tokens entries must be objects");
    AddedToken tok;
    KILN_ASSIGN_OR_RETURN(auto content, json::get_string(t, "content"));
    if (!content) return invalid_argument("added_tokens entry without content");
    tok.content = *content;
    const Value* id = json::find(t, "id");
    if (id == nullptr) return invalid_argument("added token '" + tok.content + "' has no id");
    KILN_ASSIGN_OR_RETURN(tok.id, id_value(*id, "added_tokens.id"));
    KILN_ASSIGN_OR_RETURN(tok.special, json::get_bool_or(t, "special", false));
    KILN_ASSIGN_OR_RETURN(tok.single_word, json::get_bool_or(t, "single_word", false));
    KILN_ASSIGN_OR_RETURN(tok.lstrip, json::get_bool_or(t, "lstrip", false));
    KILN_ASSIGN_OR_RETURN(tok.rstrip, json::get_bool_or(t, "rstrip", false));
    KILN_ASSIGN_OR_RETURN(tok.normalized, json::get_bool_or(t, "normalized", !tok.special));
    added->add(std::move(tok));
  }
  return Status();
}

}  // namespace

Result<TokenizerParts> parse_tokenizer_json(std::string_view text) {
  json::Document doc;
  KILN_RETURN_IF_ERROR(json::parse(text, "tokenizer.json", &doc));
  if (!doc.IsObject()) return invalid_argument("tokenizer.json: top level must be an object");
  TokenizerParts parts;
  KILN_RETURN_IF_ERROR(parse_added_tokens(doc, &parts.added));

  if (const Value* n = json::find(doc, "normalizer"); n != nullptr && !n->IsNull()) {
    KILN_ASSIGN_OR_RETURN(parts.normalizer, parse_normalizer(*n));
  }
  if (const Value* pt = json::find(doc, "pre_tokenizer"); pt != nullptr && !pt->IsNull()) {
    KILN_ASSIGN_OR_RETURN(parts.pre_tokenizer, parse_pre_tokenizer(*pt));
  }
  const Value* model = json::find(doc, "model");
  if (model == nullptr) return invalid_argument("tokenizer.json: no \"model\"");
  const bool byte_level = parts.pre_tokenizer && parts.pre_tokenizer->byte_level();
  KILN_ASSIGN_OR_RETURN(parts.model, parse_model(*model, byte_level));

  if (const Value* pp = json::find(doc, "post_processor"); pp != nullptr && !pp->IsNull()) {
    KILN_ASSIGN_OR_RETURN(parts.post_processor, parse_post_processor(*pp, parts));
  }
  KILN_ASSIGN_OR_RETURN(parts.decoder, parse_decoder(json::find(doc, "decoder")));
  if (const Value* padding = json::find(doc, "padding");
      padding != nullptr && padding->IsObject()) {
    if (const Value* pad = json::find(*padding, "pad_id"); pad != nullptr) {
      KILN_ASSIGN_OR_RETURN(parts.pad_id, id_value(*pad, "padding.pad_id"));
    }
  }
  return parts;
}

}  // namespace kiln::tokenizer
