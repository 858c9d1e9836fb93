// The plan's checksums: XXH3-64 (Debian's libxxhash), over 8 MiB chunks of the body so that
// verification runs on every core (see plan_format.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace kiln::plan {

/// XXH3-64 of a byte range.
uint64_t hash64(const void* data, size_t size);

/// The body checksum of `size` bytes: XXH3-64 of the chunk hashes. Uses all OpenMP threads.
uint64_t body_checksum(const uint8_t* data, size_t size);

/// The same checksum computed incrementally, for writing a plan as a stream.
class BodyHasher {
 public:
  BodyHasher();
  ~BodyHasher();
  BodyHasher(const BodyHasher&) = delete;
  BodyHasher& operator=(const BodyHasher&) = delete;

  void update(const void* data, size_t size);
  /// The checksum of everything updated so far.
  uint64_t finish();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace kiln::plan
