// Writing a plan file (format in plan_format.h) as a stream: sections and tensors are laid out,
// written once and checksummed on the way, then the header is filled in. The file appears
// under its name only when complete (written to NAME.tmp, then renamed): a server mapping the
// previous plan of that name keeps reading the old, intact file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kiln/status.h"
#include "plan/plan_format.h"
#include "plan/tensor_table.h"

namespace kiln::plan {

class PlanWriter {
 public:
  /// `header` gives flags, backend, features, packing library, precision and producer; sizes
  /// and checksums are computed.
  explicit PlanWriter(Header header) : header_(std::move(header)) {}

  /// Adds a section (names other than "tensors" and "weights", which the writer makes).
  void add_section(std::string name, std::string bytes);
  /// Adds a tensor; `entry.nbytes` (and `num_scales`) say how much to copy from `data` (and
  /// `scales`), which must stay alive until write(). Offsets are assigned by the writer.
  void add_tensor(TensorEntry entry, const void* data, const float* scales = nullptr);
  /// Adds a tensor whose bytes the writer keeps (converted copies).
  void add_tensor(TensorEntry entry, std::vector<uint8_t> bytes);

  /// Writes the plan to `path`.
  Status write(const std::string& path) const;

 private:
  struct PendingTensor {
    TensorEntry entry;
    const void* data = nullptr;
    const float* scales = nullptr;
    std::vector<uint8_t> owned;
  };
  Header header_;
  std::vector<std::pair<std::string, std::string>> sections_;
  std::vector<PendingTensor> tensors_;
};

}  // namespace kiln::plan
