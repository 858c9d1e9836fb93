#include "server/repository.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <map>

#include "core/mapped_file.h"
#include "server/model_config.h"

namespace kiln::server {
namespace {

namespace fs = std::filesystem;

bool parse_version(const std::string& s, int64_t* v) {
  if (s.empty() || s.size() > 18 || s[0] == '0') return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);
  return ec == std::errc() && p == s.data() + s.size();
}

std::string mtime_of(const fs::path& p) {
  std::error_code ec;
  auto t = fs::last_write_time(p, ec);
  if (ec) return "-";
  return std::to_string(t.time_since_epoch().count());
}

// Fingerprint of a folder: names and mtimes of its entries, recursively (model folders are
// small: config.json, weights, tokenizer files).
void fingerprint_tree(const fs::path& dir, std::string* out) {
  std::error_code ec;
  std::vector<fs::path> entries;
  for (const auto& e : fs::directory_iterator(dir, ec)) entries.push_back(e.path());
  std::sort(entries.begin(), entries.end());
  for (const auto& p : entries) {
    *out += p.filename().string() + "@" + mtime_of(p) + ";";
    if (fs::is_directory(p, ec)) fingerprint_tree(p, out);
  }
}

}  // namespace

Result<std::vector<ModelDirectory>> scan_repositories(const std::vector<std::string>& roots,
                                                      std::vector<std::string>* conflicts) {
  std::map<std::string, ModelDirectory> found;
  std::vector<std::string> dup;
  for (const std::string& root : roots) {
    std::error_code ec;
    if (!fs::is_directory(root, ec)) {
      return not_found("model repository '" + root + "' is not a directory");
    }
    for (const auto& entry : fs::directory_iterator(root, ec)) {
      if (!entry.is_directory()) continue;
      const std::string name = entry.path().filename().string();
      if (name.empty() || name[0] == '.') continue;
      ModelDirectory dir;
      dir.name = name;
      dir.path = entry.path().string();
      for (const auto& sub : fs::directory_iterator(entry.path(), ec)) {
        int64_t v = 0;
        if (sub.is_directory() && parse_version(sub.path().filename().string(), &v)) {
          dir.versions.push_back(v);
        }
      }
      std::sort(dir.versions.begin(), dir.versions.end());
      fingerprint_tree(entry.path(), &dir.fingerprint);
      if (found.count(name)) {
        dup.push_back(name);
        continue;
      }
      found.emplace(name, std::move(dir));
    }
  }
  std::vector<ModelDirectory> out;
  for (auto& [name, dir] : found) {
    if (std::find(dup.begin(), dup.end(), name) != dup.end()) continue;
    out.push_back(std::move(dir));
  }
  if (conflicts != nullptr) *conflicts = std::move(dup);
  return out;
}

std::vector<int64_t> select_versions(const inference::ModelVersionPolicy& policy,
                                     const std::vector<int64_t>& available) {
  std::vector<int64_t> out;
  if (policy.has_all()) return available;
  if (policy.has_specific()) {
    for (int64_t v : policy.specific().versions()) {
      if (std::find(available.begin(), available.end(), v) != available.end()) out.push_back(v);
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  const size_t n = policy.has_latest() ? policy.latest().num_versions() : 1;
  for (size_t i = 0; i < n && i < available.size(); ++i) {
    out.insert(out.begin(), available[available.size() - 1 - i]);
  }
  return out;
}

Result<inference::ModelConfig> read_model_config(const ModelDirectory& dir) {
  const std::string path = dir.path + "/config.pbtxt";
  if (!core::file_exists(path)) return inference::ModelConfig();
  KILN_ASSIGN_OR_RETURN(std::string text, core::read_file(path));
  auto config = parse_model_config(text);
  if (!config.ok()) return config.status().with_context(dir.name);
  return config;
}

}  // namespace kiln::server
