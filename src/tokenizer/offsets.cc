// Byte -> character offsets, exactly as tokenizers' BytesToCharOffsetConverter.
#include <cstdint>
#include <vector>

#include "kiln/tokenizer.h"

namespace kiln {
namespace {

// char_of[b] = index of the character containing byte b.
std::vector<uint32_t> char_index(std::string_view text) {
  std::vector<uint32_t> char_of(text.size());
  uint32_t chars = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (i > 0 && (static_cast<uint8_t>(text[i]) & 0xC0) != 0x80) ++chars;
    char_of[i] = chars;
  }
  return char_of;
}

std::pair<size_t, size_t> convert(const std::vector<uint32_t>& char_of,
                                  std::pair<size_t, size_t> o) {
  const size_t n = char_of.size();
  if (o.first == n && n > 0) {
    // Only ByteLevel trimming yields an offset at the very end (tokenizers trims after
    // converting, so it reports the character count there).
    const size_t chars = char_of[n - 1] + 1;
    return {chars, o.second == n ? chars : o.second};
  }
  if (o.first >= n) return o;  // not in the map: left as is
  if (o.second < n) return {char_of[o.first], char_of[o.second]};
  // The end of the text is not in the map; the byte before it is.
  const size_t last =
      (o.second >= 1 && o.second - 1 < n) ? char_of[o.second - 1] : char_of[o.first] + 1;
  return {char_of[o.first], last + 1};
}

void convert_encoding(Encoding* e, const std::vector<uint32_t>& first,
                      const std::vector<uint32_t>& second) {
  for (size_t i = 0; i < e->offsets.size(); ++i) {
    const bool is_second = i < e->offset_text.size() && e->offset_text[i] == 1;
    e->offsets[i] = convert(is_second ? second : first, e->offsets[i]);
  }
  for (Encoding& o : e->overflowing) convert_encoding(&o, first, second);
}

}  // namespace

std::vector<std::pair<size_t, size_t>> byte_to_char_offsets(
    std::string_view text, const std::vector<std::pair<size_t, size_t>>& byte_offsets) {
  const std::vector<uint32_t> char_of = char_index(text);
  std::vector<std::pair<size_t, size_t>> out;
  out.reserve(byte_offsets.size());
  for (const auto& o : byte_offsets) out.push_back(convert(char_of, o));
  return out;
}

void convert_to_char_offsets(Encoding* encoding, std::string_view first, std::string_view second) {
  convert_encoding(encoding, char_index(first), char_index(second));
}

}  // namespace kiln
