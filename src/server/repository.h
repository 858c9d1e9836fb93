// The model repository on disk, in Triton's layout:
//   <repository>/<model>/config.pbtxt
//   <repository>/<model>/<version>/...   (numbered folders holding the model files)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kiln/status.h"
#include "model_config.pb.h"

namespace kiln::server {

/// One model folder found in a repository.
struct ModelDirectory {
  std::string name;
  std::string path;
  std::vector<int64_t> versions;  ///< numbered sub-folders, ascending
  /// Changes when config.pbtxt or the set of version folders (or their contents' mtimes)
  /// changes; poll mode reloads a model whose fingerprint moved.
  std::string fingerprint;
};

/// Lists the model folders of every repository. A model name found in two repositories is an
/// error for that name (reported in `conflicts`), as in Triton.
Result<std::vector<ModelDirectory>> scan_repositories(const std::vector<std::string>& roots,
                                                      std::vector<std::string>* conflicts);

/// The versions a version policy selects from those available (default: the latest one).
std::vector<int64_t> select_versions(const inference::ModelVersionPolicy& policy,
                                     const std::vector<int64_t>& available);

/// Reads <model>/config.pbtxt; an absent file yields an empty config (auto-completed later).
Result<inference::ModelConfig> read_model_config(const ModelDirectory& dir);

}  // namespace kiln::server
