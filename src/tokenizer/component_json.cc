#include "tokenizer/component_json.h"

#include <string>
#include <utility>
#include <vector>

namespace kiln::tokenizer {
namespace {

namespace json = core::json;
using json::Value;

Result<std::string> type_of(const Value& v, std::string_view what) {
  if (!v.IsObject()) return invalid_argument(std::string(what) + " must be an object");
  KILN_ASSIGN_OR_RETURN(auto type, json::get_string(v, "type"));
  if (!type) return invalid_argument(std::string(what) + " has no \"type\"");
  return *type;
}

Result<int32_t> type_id_value(const Value& obj) {
  KILN_ASSIGN_OR_RETURN(int64_t t, json::get_int_or(obj, "type_id", 0));
  if (t < 0 || t > 0xFFFF) return invalid_argument("template type_id out of range");
  return static_cast<int32_t>(t);
}

Result<std::vector<TemplatePiece>> parse_template(const Value& obj, const char* key) {
  const Value* list = json::find(obj, key);
  if (list == nullptr || !list->IsArray()) {
    return invalid_argument(std::string("TemplateProcessing.") + key + " must be an array");
  }
  std::vector<TemplatePiece> pieces;
  for (const Value& p : list->GetArray()) {
    TemplatePiece piece;
    if (const Value* seq = json::find(p, "Sequence"); seq != nullptr) {
      const Value* id = json::find(*seq, "id");
      const std::string_view name = id != nullptr && id->IsString()
                                        ? std::string_view(id->GetString(), id->GetStringLength())
                                        : std::string_view();
      if (name != "A" && name != "B") {
        return invalid_argument("TemplateProcessing: Sequence id must be \"A\" or \"B\"");
      }
      piece.is_sequence = true;
      piece.sequence = name == "A" ? 0 : 1;
      KILN_ASSIGN_OR_RETURN(piece.type_id, type_id_value(*seq));
    } else if (const Value* sp = json::find(p, "SpecialToken"); sp != nullptr) {
      KILN_ASSIGN_OR_RETURN(auto id, json::get_string(*sp, "id"));
      if (!id) return invalid_argument("TemplateProcessing: SpecialToken without id");
      piece.special = *id;
      KILN_ASSIGN_OR_RETURN(piece.type_id, type_id_value(*sp));
    } else {
      return invalid_argument("TemplateProcessing: unknown template piece");
    }
    pieces.push_back(std::move(piece));
  }
  return pieces;
}

Result<std::unique_ptr<PostProcessor>> parse_template_processing(const Value& v) {
  KILN_ASSIGN_OR_RETURN(auto single, parse_template(v, "single"));
  KILN_ASSIGN_OR_RETURN(auto pair, parse_template(v, "pair"));
  std::vector<std::pair<std::string, TemplateSpecialToken>> specials;
  if (const Value* map = json::find(v, "special_tokens"); map != nullptr && map->IsObject()) {
    for (auto it = map->MemberBegin(); it != map->MemberEnd(); ++it) {
      TemplateSpecialToken tok;
      const Value* ids = json::find(it->value, "ids");
      if (ids == nullptr || !ids->IsArray()) {
        return invalid_argument("TemplateProcessing: special token without ids");
      }
      for (const Value& id : ids->GetArray()) {
        KILN_ASSIGN_OR_RETURN(int32_t i, id_value(id, "TemplateProcessing special token id"));
        tok.ids.push_back(i);
      }
      specials.emplace_back(std::string(it->name.GetString(), it->name.GetStringLength()),
                            std::move(tok));
    }
  }
  for (const auto* tmpl : {&single, &pair}) {
    for (const TemplatePiece& p : *tmpl) {
      if (p.is_sequence) continue;
      bool found = false;
      for (const auto& [name, tok] : specials) found = found || name == p.special;
      if (!found) {
        return invalid_argument("TemplateProcessing: missing special token '" + p.special + "'");
      }
    }
  }
  return make_template_processing(std::move(single), std::move(pair), std::move(specials));
}

// "sep": ["</s>", 2]
Result<int32_t> token_pair_id(const Value& v, const char* key) {
  const Value* p = json::find(v, key);
  if (p == nullptr || !p->IsArray() || p->Size() != 2 || !(*p)[0].IsString()) {
    return invalid_argument(std::string("post_processor.") + key + " must be [token, id]");
  }
  return id_value((*p)[1], key);
}

std::shared_ptr<const SpaceCounts> space_counts(const TokenizerParts& parts) {
  const Vocab& vocab = parts.model->vocab();
  size_t n = vocab.size();
  for (const AddedToken& t : parts.added.tokens()) n = std::max(n, static_cast<size_t>(t.id) + 1);
  std::vector<std::string> tokens(n);
  for (size_t id = 0; id < vocab.size(); ++id) tokens[id] = vocab.token(static_cast<int32_t>(id));
  for (const AddedToken& t : parts.added.tokens()) tokens[static_cast<size_t>(t.id)] = t.content;
  return compute_space_counts(tokens);
}

}  // namespace

Result<int32_t> id_value(const Value& v, std::string_view what) {
  if (!v.IsInt64() || v.GetInt64() < 0 || v.GetInt64() >= kMaxTokenId) {
    return invalid_argument(std::string(what) + ": token id must be an integer in [0, " +
                            std::to_string(kMaxTokenId) + ")");
  }
  return static_cast<int32_t>(v.GetInt64());
}

Result<std::unique_ptr<Normalizer>> parse_normalizer(const Value& v) {
  KILN_ASSIGN_OR_RETURN(std::string type, type_of(v, "normalizer"));
  if (type == "BertNormalizer") {
    BertNormalizerOptions o;
    KILN_ASSIGN_OR_RETURN(o.clean_text, json::get_bool_or(v, "clean_text", true));
    KILN_ASSIGN_OR_RETURN(o.handle_chinese_chars,
                          json::get_bool_or(v, "handle_chinese_chars", true));
    KILN_ASSIGN_OR_RETURN(o.lowercase, json::get_bool_or(v, "lowercase", true));
    // strip_accents: null means "do what lowercase does" (BERT uncased strips, cased keeps).
    KILN_ASSIGN_OR_RETURN(auto strip, json::get_bool(v, "strip_accents"));
    o.strip_accents = strip.value_or(o.lowercase);
    return make_bert_normalizer(o);
  }
  if (type == "Lowercase") return make_lowercase_normalizer();
  if (type == "Sequence") {
    const Value* list = json::find(v, "normalizers");
    if (list == nullptr || !list->IsArray()) {
      return invalid_argument("normalizer Sequence needs a \"normalizers\" array");
    }
    std::vector<std::unique_ptr<Normalizer>> parts;
    for (const Value& n : list->GetArray()) {
      KILN_ASSIGN_OR_RETURN(auto part, parse_normalizer(n));
      parts.push_back(std::move(part));
    }
    return make_sequence_normalizer(std::move(parts));
  }
  return invalid_argument("tokenizer.json: unsupported normalizer type '" + type + "'");
}

Result<std::unique_ptr<PreTokenizer>> parse_pre_tokenizer(const Value& v) {
  KILN_ASSIGN_OR_RETURN(std::string type, type_of(v, "pre_tokenizer"));
  if (type == "BertPreTokenizer") return make_bert_pre_tokenizer();
  if (type == "WhitespaceSplit") return make_whitespace_split_pre_tokenizer();
  if (type == "ByteLevel") {
    KILN_ASSIGN_OR_RETURN(bool prefix, json::get_bool_or(v, "add_prefix_space", true));
    KILN_ASSIGN_OR_RETURN(bool use_regex, json::get_bool_or(v, "use_regex", true));
    return make_byte_level_pre_tokenizer(prefix, use_regex);
  }
  return invalid_argument("tokenizer.json: unsupported pre_tokenizer type '" + type + "'");
}

Result<std::unique_ptr<PostProcessor>> parse_post_processor(const Value& v,
                                                            const TokenizerParts& parts) {
  KILN_ASSIGN_OR_RETURN(std::string type, type_of(v, "post_processor"));
  if (type == "TemplateProcessing") return parse_template_processing(v);
  if (type == "BertProcessing") {
    KILN_ASSIGN_OR_RETURN(int32_t sep, token_pair_id(v, "sep"));
    KILN_ASSIGN_OR_RETURN(int32_t cls, token_pair_id(v, "cls"));
    return make_bert_processing(cls, sep);
  }
  if (type == "RobertaProcessing" || type == "ByteLevel") {
    KILN_ASSIGN_OR_RETURN(bool trim, json::get_bool_or(v, "trim_offsets", true));
    KILN_ASSIGN_OR_RETURN(bool prefix, json::get_bool_or(v, "add_prefix_space", true));
    auto spaces = space_counts(parts);
    if (type == "ByteLevel") return make_byte_level_processing(trim, prefix, std::move(spaces));
    KILN_ASSIGN_OR_RETURN(int32_t sep, token_pair_id(v, "sep"));
    KILN_ASSIGN_OR_RETURN(int32_t cls, token_pair_id(v, "cls"));
    return make_roberta_processing(cls, sep, trim, prefix, std::move(spaces));
  }
  return invalid_argument("tokenizer.json: unsupported post_processor type '" + type + "'");
}

}  // namespace kiln::tokenizer
