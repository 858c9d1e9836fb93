// Reading a plan file (format in plan_format.h): the header, section table and tensor directory
// are validated before anything is used, so a corrupt, truncated or hostile file is an error
// that names the problem, never a crash.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/mapped_file.h"
#include "kiln/status.h"
#include "plan/plan_format.h"
#include "plan/tensor_table.h"

namespace kiln::plan {

/// A validated plan. Owns its mapping when opened from a path. Immutable: thread-safe.
class PlanFile {
 public:
  struct Options {
    /// Verify the header and body checksums. The fuzzer turns this off so that mutated
    /// inputs reach the section parsers instead of all failing the checksum.
    bool verify_checksums = true;
  };

  /// Maps and validates `path`.
  static Result<std::shared_ptr<const PlanFile>> open(const std::string& path,
                                                      const Options& options);
  /// Validates a buffer the caller keeps alive (tests and the fuzzer).
  static Result<PlanFile> parse(const uint8_t* data, size_t size, const Options& options);

  /// Verifies the header checksum (cheap).
  Status verify_header() const;
  /// Verifies the header and body checksums (what open() does unless told not to).
  Status verify_checksums() const;

  const Header& header() const { return header_; }
  const std::vector<Section>& sections() const { return sections_; }
  /// The section named `name`, or nullptr.
  const Section* find_section(std::string_view name) const;
  /// The bytes of section `name`; empty when absent.
  std::string_view section_bytes(std::string_view name) const;
  /// Every tensor, in directory order.
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  /// The tensor named `name`, or nullptr.
  const TensorInfo* find_tensor(std::string_view name) const;
  /// The whole file.
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  Status validate(const Options& options);
  Status read_sections();

  core::MappedFile file_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  Header header_;
  std::vector<Section> sections_;
  std::vector<TensorInfo> tensors_;
};

/// True when `path` is a regular file starting with the plan magic.
bool is_plan_file(const std::string& path);

/// Decodes the fixed header of `data` (at least kHeaderSize bytes); checks nothing but the
/// magic, version and header size.
Result<Header> decode_header(const uint8_t* data, size_t size);

/// Recomputes both checksums of a plan in place (tests and tools that edit plans on purpose).
void reseal(uint8_t* data, size_t size);

}  // namespace kiln::plan
