#include "plan/checksum.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <algorithm>
#include <vector>

#include "plan/plan_format.h"

namespace kiln::plan {

uint64_t hash64(const void* data, size_t size) { return XXH3_64bits(data, size); }

uint64_t body_checksum(const uint8_t* data, size_t size) {
  const int64_t chunks = static_cast<int64_t>((size + kChecksumChunk - 1) / kChecksumChunk);
  std::vector<uint64_t> digests(static_cast<size_t>(chunks));
  // Reading the mapping is what costs (page faults, memory bandwidth): one chunk per thread.
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t c = 0; c < chunks; ++c) {
    const uint64_t begin = static_cast<uint64_t>(c) * kChecksumChunk;
    const uint64_t n = std::min<uint64_t>(kChecksumChunk, size - begin);
    digests[static_cast<size_t>(c)] = XXH3_64bits(data + begin, n);
  }
  return XXH3_64bits(digests.data(), digests.size() * sizeof(uint64_t));
}

struct BodyHasher::State {
  XXH3_state_t chunk;
  uint64_t in_chunk = 0;
  std::vector<uint64_t> digests;
};

BodyHasher::BodyHasher() : state_(std::make_unique<State>()) { XXH3_64bits_reset(&state_->chunk); }
BodyHasher::~BodyHasher() = default;

void BodyHasher::update(const void* data, size_t size) {
  const auto* p = static_cast<const uint8_t*>(data);
  State& s = *state_;
  while (size > 0) {
    const uint64_t n = std::min<uint64_t>(size, kChecksumChunk - s.in_chunk);
    XXH3_64bits_update(&s.chunk, p, n);
    s.in_chunk += n;
    p += n;
    size -= n;
    if (s.in_chunk == kChecksumChunk) {
      s.digests.push_back(XXH3_64bits_digest(&s.chunk));
      XXH3_64bits_reset(&s.chunk);
      s.in_chunk = 0;
    }
  }
}

uint64_t BodyHasher::finish() {
  State& s = *state_;
  if (s.in_chunk > 0) {
    s.digests.push_back(XXH3_64bits_digest(&s.chunk));
    XXH3_64bits_reset(&s.chunk);
    s.in_chunk = 0;
  }
  return XXH3_64bits(s.digests.data(), s.digests.size() * sizeof(uint64_t));
}

}  // namespace kiln::plan
