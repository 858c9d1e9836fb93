#include "tokenizer/truncation.h"

#include <algorithm>
#include <string>
#include <utility>

namespace kiln::tokenizer {

Status truncate_encodings(RawEncoding* first, RawEncoding* second, size_t max_length,
                          TruncationStrategy strategy, size_t stride) {
  if (max_length == 0) {
    KILN_RETURN_IF_ERROR(first->truncate(0, stride));
    if (second != nullptr) KILN_RETURN_IF_ERROR(second->truncate(0, stride));
    return Status();
  }
  const size_t total = first->size() + (second != nullptr ? second->size() : 0);
  if (total <= max_length) return Status();
  const size_t to_remove = total - max_length;

  if (strategy == TruncationStrategy::kLongestFirst) {
    if (second == nullptr) return first->truncate(total - to_remove, stride);
    // With n1 <= n2: keep the shorter whole if the longer can take the rest, else split the
    // budget evenly (the odd token going to the longer one).
    size_t n1 = first->size();
    size_t n2 = second->size();
    const bool swap = n1 > n2;
    if (swap) std::swap(n1, n2);
    if (n1 > max_length) {
      n2 = n1;
    } else {
      n2 = std::max(n1, max_length - n1);
    }
    if (n1 + n2 > max_length) {
      n1 = max_length / 2;
      n2 = n1 + max_length % 2;
    }
    if (swap) std::swap(n1, n2);
    KILN_RETURN_IF_ERROR(first->truncate(n1, stride));
    return second->truncate(n2, stride);
  }

  RawEncoding* target = first;
  if (strategy == TruncationStrategy::kOnlySecond) {
    if (second == nullptr) {
      return invalid_argument("truncation: only_second needs a second sequence");
    }
    target = second;
  }
  const size_t target_len = target->size();
  if (target_len <= to_remove) {
    return invalid_argument("truncation: the sequence to truncate has " +
                            std::to_string(target_len) + " tokens but " +
                            std::to_string(to_remove) + " must be removed");
  }
  return target->truncate(target_len - to_remove, stride);
}

}  // namespace kiln::tokenizer
