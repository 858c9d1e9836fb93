// The public entry points of include/kiln/tokenizer.h.
#include "kiln/tokenizer.h"

#include <utility>

#include "core/json.h"
#include "core/mapped_file.h"
#include "tokenizer/tokenizer_impl.h"

namespace kiln {
namespace {

// RapidJSON parses recursively; refuse absurd nesting before it can exhaust the stack.
Status check_nesting(std::string_view json, size_t max_depth) {
  size_t depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > max_depth) {
        return invalid_argument("tokenizer.json: nesting deeper than " + std::to_string(max_depth) +
                                " levels");
      }
    } else if ((c == '}' || c == ']') && depth > 0) {
      --depth;
    }
  }
  return Status();
}

}  // namespace

Result<std::unique_ptr<Tokenizer>> Tokenizer::from_json(std::string_view json) {
  KILN_RETURN_IF_ERROR(check_nesting(json, 64));
  KILN_ASSIGN_OR_RETURN(tokenizer::TokenizerParts parts, tokenizer::parse_tokenizer_json(json));
  return tokenizer::make_tokenizer(std::move(parts));
}

Result<std::unique_ptr<Tokenizer>> Tokenizer::from_vocab_file(const std::string& path,
                                                              bool lowercase) {
  KILN_ASSIGN_OR_RETURN(std::string text, core::read_file(path));
  auto parts = tokenizer::bert_parts_from_vocab(text, lowercase);
  if (!parts.ok()) return parts.status().with_context(path);
  return tokenizer::make_tokenizer(std::move(parts).value());
}

Result<std::unique_ptr<Tokenizer>> Tokenizer::from_model_dir(const std::string& dir) {
  const std::string json_path = dir + "/tokenizer.json";
  if (core::file_exists(json_path)) {
    KILN_ASSIGN_OR_RETURN(std::string text, core::read_file(json_path));
    auto tok = from_json(text);
    if (!tok.ok()) return tok.status().with_context(json_path);
    return tok;
  }
  const std::string vocab_path = dir + "/vocab.txt";
  if (!core::file_exists(vocab_path)) {
    return not_found(dir + ": neither tokenizer.json nor vocab.txt");
  }
  bool lowercase = true;
  const std::string config_path = dir + "/tokenizer_config.json";
  if (core::file_exists(config_path)) {
    KILN_ASSIGN_OR_RETURN(std::string text, core::read_file(config_path));
    core::json::Document doc;
    KILN_RETURN_IF_ERROR(core::json::parse(text, config_path, &doc));
    KILN_ASSIGN_OR_RETURN(lowercase, core::json::get_bool_or(doc, "do_lower_case", true));
  }
  return from_vocab_file(vocab_path, lowercase);
}

}  // namespace kiln
