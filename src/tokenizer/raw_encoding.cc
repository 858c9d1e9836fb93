#include "tokenizer/raw_encoding.h"

#include <algorithm>
#include <string>
#include <utility>

namespace kiln::tokenizer {
namespace {

void insert_range(std::vector<SequenceRange>* ranges, SequenceRange r) {
  for (auto& existing : *ranges) {
    if (existing.sequence == r.sequence) {
      existing = r;
      return;
    }
  }
  ranges->push_back(r);
}

RawEncoding slice(const RawEncoding& e, size_t start, size_t stop) {
  RawEncoding out;
  out.ids.assign(e.ids.begin() + start, e.ids.begin() + stop);
  out.type_ids.assign(e.type_ids.begin() + start, e.type_ids.begin() + stop);
  out.special.assign(e.special.begin() + start, e.special.begin() + stop);
  out.offsets.assign(e.offsets.begin() + start, e.offsets.begin() + stop);
  out.text_index.assign(e.text_index.begin() + start, e.text_index.begin() + stop);
  out.spaces.assign(e.spaces.begin() + start, e.spaces.begin() + stop);
  out.words.assign(e.words.begin() + start, e.words.begin() + stop);
  return out;
}

template <typename T>
void append(std::vector<T>* dst, const std::vector<T>& src) {
  dst->insert(dst->end(), src.begin(), src.end());
}

}  // namespace

void RawEncoding::set_sequence_id(uint32_t sequence) {
  insert_range(&ranges, SequenceRange{sequence, 0, static_cast<uint32_t>(size())});
  // tokenizers 0.23 marks the overflowing windows too (observed: their sequence ids are
  // exact, not the all-zero default of windows without ranges).
  for (RawEncoding& o : overflowing) o.set_sequence_id(sequence);
}

void RawEncoding::set_type_ids(int32_t type_id) {
  std::fill(type_ids.begin(), type_ids.end(), type_id);
}

Status RawEncoding::truncate(size_t max_len, size_t stride) {
  const size_t len = size();
  if (max_len >= len) return Status();
  if (max_len == 0) {
    RawEncoding old = std::move(*this);
    *this = RawEncoding();
    overflowing.push_back(std::move(old));
    return Status();
  }
  if (stride >= max_len) {
    // tokenizers panics here; a library must not.
    return invalid_argument("truncation: stride " + std::to_string(stride) +
                            " must be smaller than the " + std::to_string(max_len) +
                            " tokens left for this sequence");
  }
  const size_t step = max_len - stride;
  std::vector<std::pair<size_t, size_t>> parts;
  for (size_t start = 0; start < len; start += step) {
    const size_t stop = std::min(start + max_len, len);
    parts.emplace_back(start, stop);
    if (stop == len) break;
  }
  RawEncoding head = slice(*this, parts[0].first, parts[0].second);
  for (size_t i = 1; i < parts.size(); ++i) {
    head.overflowing.push_back(slice(*this, parts[i].first, parts[i].second));
  }
  *this = std::move(head);
  return Status();
}

void RawEncoding::merge_with(const RawEncoding& pair) {
  std::vector<RawEncoding> merged_overflow;
  for (const RawEncoding& self_o : overflowing) {
    RawEncoding n = self_o;
    n.merge_with(pair);
    merged_overflow.push_back(std::move(n));
    for (const RawEncoding& other_o : pair.overflowing) {
      RawEncoding m = self_o;
      m.merge_with(other_o);
      merged_overflow.push_back(std::move(m));
    }
  }
  for (const RawEncoding& other_o : pair.overflowing) {
    RawEncoding n = *this;
    n.merge_with(other_o);
    merged_overflow.push_back(std::move(n));
  }
  const auto shift = static_cast<uint32_t>(size());
  for (const SequenceRange& r : pair.ranges) {
    insert_range(&ranges, SequenceRange{r.sequence, r.begin + shift, r.end + shift});
  }
  append(&ids, pair.ids);
  append(&type_ids, pair.type_ids);
  append(&special, pair.special);
  append(&offsets, pair.offsets);
  append(&text_index, pair.text_index);
  append(&spaces, pair.spaces);
  append(&words, pair.words);
  overflowing = std::move(merged_overflow);
}

RawEncoding merge_all(std::vector<RawEncoding> encodings) {
  RawEncoding out;
  for (const RawEncoding& e : encodings) out.merge_with(e);
  return out;
}

Encoding RawEncoding::to_public() const {
  Encoding e;
  e.ids = ids;
  e.type_ids = type_ids;
  e.special_tokens_mask = special;
  e.offsets.reserve(offsets.size());
  for (const auto& [b, end] : offsets) e.offsets.emplace_back(b, end);
  e.offset_text = text_index;
  e.word_ids = words;
  // tokenizers' get_sequence_ids: with no ranges everything is sequence 0; otherwise ids
  // 0..n-1 are looked up, a missing one covering the whole encoding.
  e.sequence_ids.assign(size(), -1);
  const size_t n = ranges.empty() ? 1 : ranges.size();
  for (size_t seq = 0; seq < n; ++seq) {
    size_t begin = 0;
    size_t end = size();
    for (const SequenceRange& r : ranges) {
      if (r.sequence == seq) {
        begin = r.begin;
        end = r.end;
      }
    }
    for (size_t i = begin; i < end && i < size(); ++i)
      e.sequence_ids[i] = static_cast<int32_t>(seq);
  }
  e.overflowing.reserve(overflowing.size());
  for (const RawEncoding& o : overflowing) e.overflowing.push_back(o.to_public());
  return e;
}

}  // namespace kiln::tokenizer
