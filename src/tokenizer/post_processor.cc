#include "tokenizer/post_processor.h"

#include <algorithm>

#include "tokenizer/unicode.h"

namespace kiln::tokenizer {

std::shared_ptr<const SpaceCounts> compute_space_counts(const std::vector<std::string>& tokens) {
  auto counts = std::make_shared<SpaceCounts>(tokens.size());
  for (size_t id = 0; id < tokens.size(); ++id) {
    const std::string& t = tokens[id];
    std::vector<char32_t> cps;
    size_t i = 0;
    while (i < t.size()) {
      const size_t len = unicode::utf8_length(static_cast<uint8_t>(t[i]));
      if (i + len > t.size()) break;
      size_t decoded;
      cps.push_back(unicode::decode_utf8(t, i, &decoded));
      i += len;
    }
    auto spacey = [](char32_t c) {
      return c == 0x120 || (unicode::properties(c) & unicode::kWhitespace);
    };
    size_t lead = 0;
    while (lead < cps.size() && spacey(cps[lead])) ++lead;
    size_t trail = 0;
    while (trail < cps.size() && spacey(cps[cps.size() - 1 - trail])) ++trail;
    (*counts)[id] = {static_cast<uint16_t>(std::min<size_t>(lead, 0xFFFF)),
                     static_cast<uint16_t>(std::min<size_t>(trail, 0xFFFF))};
  }
  return counts;
}

namespace {

// tokenizers' processors::byte_level::process_offsets.
void trim_offsets(RawEncoding* e, bool add_prefix_space, const SpaceCounts& spaces) {
  for (size_t i = 0; i < e->size(); ++i) {
    const auto id = static_cast<size_t>(e->ids[i]);
    if (id >= spaces.size()) continue;
    size_t lead = spaces[id].first;
    size_t trail = spaces[id].second;
    if (e->spaces[i] != RawEncoding::kNoSpaces) {
      lead = e->spaces[i] >> 16;
      trail = e->spaces[i] & 0xFFFF;
    }
    auto& o = e->offsets[i];
    if (lead > 0) {
      const bool is_first = i == 0 || o.first == 0;
      if (is_first && add_prefix_space && lead == 1) lead = 0;  // the space we added
      o.first = static_cast<uint32_t>(std::min<size_t>(o.first + lead, o.second));
    }
    if (trail > 0 && o.second >= trail) {
      o.second = static_cast<uint32_t>(std::max<size_t>(o.second - trail, o.first));
    }
  }
}

void trim_all(std::vector<RawEncoding>* encodings, bool add_prefix_space,
              const SpaceCounts& spaces) {
  for (RawEncoding& e : *encodings) {
    trim_offsets(&e, add_prefix_space, spaces);
    for (RawEncoding& o : e.overflowing) trim_offsets(&o, add_prefix_space, spaces);
  }
}

// Wraps `e` as [before...] e [after] with the given type ids and one sequence range.
RawEncoding wrap(const RawEncoding& e, const std::vector<int32_t>& before, int32_t after,
                 int32_t before_type, const int32_t* content_type, int32_t after_type,
                 uint32_t sequence) {
  RawEncoding out;
  for (const int32_t id : before) out.push(id, before_type, 1, {0, 0}, 0);
  for (size_t i = 0; i < e.size(); ++i) {
    out.push(e.ids[i], content_type ? *content_type : e.type_ids[i], 0, e.offsets[i],
             e.text_index[i], e.spaces[i], e.words[i]);
  }
  out.push(after, after_type, 1, {0, 0}, 0);
  out.ranges.push_back(SequenceRange{sequence, static_cast<uint32_t>(before.size()),
                                     static_cast<uint32_t>(out.size() - 1)});
  return out;
}

class TemplateProcessing final : public PostProcessor {
 public:
  TemplateProcessing(std::vector<TemplatePiece> single, std::vector<TemplatePiece> pair,
                     std::vector<std::pair<std::string, TemplateSpecialToken>> specials)
      : single_(std::move(single)), pair_(std::move(pair)), specials_(std::move(specials)) {
    added_single_ = count_added(single_);
    added_pair_ = count_added(pair_);
  }

  size_t added_tokens(bool pair) const override { return pair ? added_pair_ : added_single_; }

 protected:
  std::vector<RawEncoding> process_encodings(std::vector<RawEncoding> encodings,
                                             bool add_special_tokens) const override {
    const auto& tmpl = encodings.size() == 2 ? pair_ : single_;
    std::vector<RawEncoding> out;
    for (const TemplatePiece& piece : tmpl) {
      if (piece.is_sequence) {
        const auto i = static_cast<size_t>(piece.sequence);
        if (i >= encodings.size()) continue;
        encodings[i].set_type_ids(piece.type_id);
        encodings[i].set_sequence_id(static_cast<uint32_t>(i));
        out.push_back(encodings[i]);
      } else if (add_special_tokens) {
        const TemplateSpecialToken* tok = find(piece.special);
        if (tok == nullptr) continue;  // the loader checked every name
        RawEncoding s;
        for (const int32_t id : tok->ids) s.push(id, piece.type_id, 1, {0, 0}, 0);
        out.push_back(std::move(s));
      }
    }
    return out;
  }

 private:
  const TemplateSpecialToken* find(const std::string& name) const {
    for (const auto& [n, tok] : specials_) {
      if (n == name) return &tok;
    }
    return nullptr;
  }

  size_t count_added(const std::vector<TemplatePiece>& tmpl) const {
    size_t n = 0;
    for (const TemplatePiece& piece : tmpl) {
      if (piece.is_sequence) continue;
      if (const TemplateSpecialToken* tok = find(piece.special)) n += tok->ids.size();
    }
    return n;
  }

  std::vector<TemplatePiece> single_;
  std::vector<TemplatePiece> pair_;
  std::vector<std::pair<std::string, TemplateSpecialToken>> specials_;
  size_t added_single_ = 0;
  size_t added_pair_ = 0;
};

class BertProcessing final : public PostProcessor {
 public:
  BertProcessing(int32_t cls, int32_t sep) : cls_(cls), sep_(sep) {}
  size_t added_tokens(bool pair) const override { return pair ? 3 : 2; }

 protected:
  std::vector<RawEncoding> process_encodings(std::vector<RawEncoding> encodings,
                                             bool add_special_tokens) const override {
    if (!add_special_tokens) return encodings;
    std::vector<RawEncoding> out;
    for (size_t i = 0; i < encodings.size(); ++i) {
      const RawEncoding& e = encodings[i];
      const auto seq = static_cast<uint32_t>(i);
      const std::vector<int32_t> before =
          i == 0 ? std::vector<int32_t>{cls_} : std::vector<int32_t>{};
      const int32_t after_type = i == 0 ? 0 : 1;
      RawEncoding w = wrap(e, before, sep_, 0, nullptr, after_type, seq);
      for (const RawEncoding& o : e.overflowing) {
        w.overflowing.push_back(wrap(o, before, sep_, 0, nullptr, after_type, seq));
      }
      out.push_back(std::move(w));
    }
    return out;
  }

 private:
  int32_t cls_;
  int32_t sep_;
};

class RobertaProcessing final : public PostProcessor {
 public:
  RobertaProcessing(int32_t cls, int32_t sep, bool trim, bool add_prefix_space,
                    std::shared_ptr<const SpaceCounts> spaces)
      : cls_(cls),
        sep_(sep),
        trim_(trim),
        add_prefix_space_(add_prefix_space),
        spaces_(std::move(spaces)) {}
  size_t added_tokens(bool pair) const override { return pair ? 4 : 2; }

 protected:
  std::vector<RawEncoding> process_encodings(std::vector<RawEncoding> encodings,
                                             bool add_special_tokens) const override {
    if (trim_) trim_all(&encodings, add_prefix_space_, *spaces_);
    if (!add_special_tokens) {
      // Observed in tokenizers 0.23.3: without special tokens the second text still gets
      // type 0, but only its main window (overflowing windows keep type 1).
      for (size_t i = 1; i < encodings.size(); ++i) encodings[i].set_type_ids(0);
      return encodings;
    }
    std::vector<RawEncoding> out;
    const int32_t zero = 0;
    for (size_t i = 0; i < encodings.size(); ++i) {
      const RawEncoding& e = encodings[i];
      const auto seq = static_cast<uint32_t>(i);
      const std::vector<int32_t> before{i == 0 ? cls_ : sep_};
      // The first text keeps its type ids; the second is all zeros (RoBERTa has one segment).
      const int32_t* content_type = i == 0 ? nullptr : &zero;
      RawEncoding w = wrap(e, before, sep_, 0, content_type, 0, seq);
      for (const RawEncoding& o : e.overflowing) {
        w.overflowing.push_back(wrap(o, before, sep_, 0, content_type, 0, seq));
      }
      out.push_back(std::move(w));
    }
    return out;
  }

 private:
  int32_t cls_;
  int32_t sep_;
  bool trim_;
  bool add_prefix_space_;
  std::shared_ptr<const SpaceCounts> spaces_;
};

class ByteLevelProcessing final : public PostProcessor {
 public:
  ByteLevelProcessing(bool trim, bool add_prefix_space, std::shared_ptr<const SpaceCounts> spaces)
      : trim_(trim), add_prefix_space_(add_prefix_space), spaces_(std::move(spaces)) {}
  size_t added_tokens(bool) const override { return 0; }

 protected:
  std::vector<RawEncoding> process_encodings(std::vector<RawEncoding> encodings,
                                             bool) const override {
    if (trim_) trim_all(&encodings, add_prefix_space_, *spaces_);
    return encodings;
  }

 private:
  bool trim_;
  bool add_prefix_space_;
  std::shared_ptr<const SpaceCounts> spaces_;
};

}  // namespace

RawEncoding PostProcessor::process(RawEncoding first, std::optional<RawEncoding> second,
                                   bool add_special_tokens) const {
  std::vector<RawEncoding> encodings;
  encodings.push_back(std::move(first));
  if (second) encodings.push_back(std::move(*second));
  for (size_t i = 0; i < encodings.size(); ++i) {
    encodings[i].set_sequence_id(static_cast<uint32_t>(i));
  }
  return merge_all(process_encodings(std::move(encodings), add_special_tokens));
}

RawEncoding default_process(RawEncoding first, std::optional<RawEncoding> second) {
  if (!second) return first;
  first.set_sequence_id(0);
  second->set_sequence_id(1);
  first.merge_with(*second);
  return first;
}

std::unique_ptr<PostProcessor> make_template_processing(
    std::vector<TemplatePiece> single, std::vector<TemplatePiece> pair,
    std::vector<std::pair<std::string, TemplateSpecialToken>> specials) {
  return std::make_unique<TemplateProcessing>(std::move(single), std::move(pair),
                                              std::move(specials));
}

std::unique_ptr<PostProcessor> make_bert_processing(int32_t cls_id, int32_t sep_id) {
  return std::make_unique<BertProcessing>(cls_id, sep_id);
}

std::unique_ptr<PostProcessor> make_roberta_processing(int32_t cls_id, int32_t sep_id,
                                                       bool trim_offsets, bool add_prefix_space,
                                                       std::shared_ptr<const SpaceCounts> spaces) {
  return std::make_unique<RobertaProcessing>(cls_id, sep_id, trim_offsets, add_prefix_space,
                                             std::move(spaces));
}

std::unique_ptr<PostProcessor> make_byte_level_processing(
    bool trim_offsets, bool add_prefix_space, std::shared_ptr<const SpaceCounts> spaces) {
  return std::make_unique<ByteLevelProcessing>(trim_offsets, add_prefix_space, std::move(spaces));
}

}  // namespace kiln::tokenizer
