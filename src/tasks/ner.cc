#include "tasks/ner.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cmath>

namespace kiln::tasks {

namespace {

struct TokenEntity {
  std::string label;
  float score;
  std::string word;
  int64_t start;
  int64_t end;
};

// get_tag: "B-x" -> (B, x), "I-x" -> (I, x), anything else -> (I, itself).
std::pair<char, std::string_view> tag_of(std::string_view label) {
  if (label.starts_with("B-")) return {'B', label.substr(2)};
  if (label.starts_with("I-")) return {'I', label.substr(2)};
  return {'I', label};
}

NerEntity group(const Tokenizer& tokenizer, const std::vector<TokenEntity>& tokens) {
  NerEntity e;
  const std::string& first = tokens.front().label;
  const size_t dash = first.find('-');
  e.entity_group = dash == std::string::npos ? first : first.substr(dash + 1);
  float sum = 0;  // numpy's float32 mean
  std::vector<std::string> words;
  for (const auto& t : tokens) {
    sum += t.score;
    words.push_back(t.word);
  }
  e.score = sum / static_cast<float>(tokens.size());
  e.word = tokenizer.decode_tokens(words);
  e.start = tokens.front().start;
  e.end = tokens.back().end;
  return e;
}

}  // namespace

std::vector<NerEntity> group_entities(const Tokenizer& tokenizer, std::string_view text,
                                      const Encoding& enc, const float* logits,
                                      const std::vector<std::string>& labels) {
  const size_t n = enc.ids.size(), k = labels.size();
  int32_t unk = tokenizer.token_to_id("[UNK]");
  if (unk < 0) unk = tokenizer.token_to_id("<unk>");
  const auto chars = byte_to_char_offsets(text, enc.offsets);
  std::vector<TokenEntity> tokens;
  for (size_t t = 0; t < n; ++t) {
    if (enc.special_tokens_mask[t]) continue;
    const float* z = logits + t * k;
    const float zmax = *std::max_element(z, z + k);
    float sum = 0;
    for (size_t c = 0; c < k; ++c) sum += std::exp(z[c] - zmax);
    const size_t best = static_cast<size_t>(std::max_element(z, z + k) - z);
    const auto [b, e] = enc.offsets[t];
    TokenEntity te{
        labels[best], std::exp(z[best] - zmax) / sum,
        enc.ids[t] == unk ? std::string(text.substr(b, e - b)) : tokenizer.id_to_token(enc.ids[t]),
        static_cast<int64_t>(chars[t].first), static_cast<int64_t>(chars[t].second)};
    tokens.push_back(std::move(te));
  }
  std::vector<NerEntity> out;
  std::vector<TokenEntity> run;
  auto flush = [&] {
    if (run.empty()) return;
    NerEntity e = group(tokenizer, run);
    if (e.entity_group != "O") out.push_back(std::move(e));
    run.clear();
  };
  for (auto& t : tokens) {
    if (!run.empty()) {
      const auto [bi, tag] = tag_of(t.label);
      const auto [last_bi, last_tag] = tag_of(run.back().label);
      if (!(tag == last_tag && bi != 'B')) flush();
    }
    run.push_back(std::move(t));
  }
  flush();
  return out;
}

std::string entities_json(const std::vector<NerEntity>& entities) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartArray();
  for (const auto& e : entities) {
    w.StartObject();
    w.Key("entity_group");
    w.String(e.entity_group.c_str(), static_cast<rapidjson::SizeType>(e.entity_group.size()));
    w.Key("score");
    w.Double(e.score);
    w.Key("word");
    w.String(e.word.c_str(), static_cast<rapidjson::SizeType>(e.word.size()));
    w.Key("start");
    w.Int64(e.start);
    w.Key("end");
    w.Int64(e.end);
    w.EndObject();
  }
  w.EndArray();
  return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace kiln::tasks
