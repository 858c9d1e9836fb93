#include "server/model_manager.h"

#include <algorithm>
#include <charconv>

#include "core/log.h"
#include "server/model_config.h"

namespace kiln::server {

ModelManager::ModelManager(const ServerOptions& options) : options_(options) {
  reaper_ = std::thread([this] { reap_loop(); });
}

ModelManager::~ModelManager() { shutdown(std::chrono::milliseconds(0)); }

Result<ModelDirectory> ModelManager::find_dir(std::string_view name) const {
  std::vector<std::string> conflicts;
  KILN_ASSIGN_OR_RETURN(auto dirs, scan_repositories(options_.model_repositories, &conflicts));
  if (std::find(conflicts.begin(), conflicts.end(), name) != conflicts.end()) {
    return invalid_argument("model '" + std::string(name) +
                            "' appears in more than one model repository");
  }
  for (auto& d : dirs) {
    if (d.name == name) return std::move(d);
  }
  return not_found("model '" + std::string(name) + "' is not in the model repository");
}

Status ModelManager::start() {
  std::vector<std::string> conflicts;
  KILN_ASSIGN_OR_RETURN(auto dirs, scan_repositories(options_.model_repositories, &conflicts));
  Status first;
  for (const auto& c : conflicts) {
    std::lock_guard lock(mu_);
    models_[c].reason = "model appears in more than one model repository";
    if (first.ok()) first = invalid_argument("model '" + c + "' is in more than one repository");
  }
  bool all = options_.model_control_mode != ModelControlMode::kExplicit;
  for (const auto& m : options_.startup_models) all = all || m == "*";
  std::lock_guard control(control_mu_);
  for (const auto& dir : dirs) {
    const bool wanted =
        all || std::find(options_.startup_models.begin(), options_.startup_models.end(),
                         dir.name) != options_.startup_models.end();
    if (!wanted) continue;
    Status s = load_locked(dir, LoadOptions{});
    if (!s.ok() && first.ok()) first = s;
  }
  for (const auto& m : options_.startup_models) {
    if (m == "*") continue;
    if (std::none_of(dirs.begin(), dirs.end(), [&](const auto& d) { return d.name == m; }) &&
        first.ok()) {
      first = not_found("--load-model '" + m + "' is not in the model repository");
    }
  }
  if (options_.model_control_mode == ModelControlMode::kPoll) {
    poller_ = std::thread([this] {
      std::unique_lock lock(reap_mu_);
      while (!stopping_) {
        reap_cv_.wait_for(lock, std::chrono::seconds(options_.repository_poll_secs));
        if (stopping_) break;
        lock.unlock();
        poll_once();
        lock.lock();
      }
    });
  }
  return first;
}

Status ModelManager::load_locked(const ModelDirectory& dir, const LoadOptions& options) {
  {
    std::lock_guard lock(mu_);
    models_[dir.name].state = models_[dir.name].versions.empty() ? "LOADING" : "READY";
  }
  auto fail = [&](const Status& s) {
    core::log(core::LogLevel::kError, "model failed to load",
              {{"model", dir.name}, {"error", s.to_string()}});
    std::lock_guard lock(mu_);
    Entry& e = models_[dir.name];
    e.reason = s.message();
    e.fingerprint = dir.fingerprint;
    e.state = e.versions.empty() ? "UNAVAILABLE" : "READY";
    return s;
  };
  auto config = options.config_json.empty() ? read_model_config(dir)
                                            : parse_model_config_json(options.config_json);
  if (!config.ok()) return fail(config.status().with_context("model '" + dir.name + "'"));
  const auto versions = select_versions(config->version_policy(), dir.versions);
  if (versions.empty()) {
    return fail(not_found("model '" + dir.name +
                          "' has no version folder its version policy "
                          "selects"));
  }
  std::map<int64_t, std::shared_ptr<ModelVersion>> loaded;
  for (int64_t v : versions) {
    auto mv = ModelVersion::load(dir.name, v, dir.path + "/" + std::to_string(v), *config,
                                 options_.threads_per_instance);
    if (!mv.ok()) return fail(mv.status().with_context("version " + std::to_string(v)));
    loaded.emplace(v, std::move(mv).value());
  }
  std::vector<std::shared_ptr<ModelVersion>> old;
  {
    std::lock_guard lock(mu_);
    Entry& e = models_[dir.name];
    for (auto& [v, mv] : e.versions) old.push_back(std::move(mv));
    e.versions = std::move(loaded);
    e.state = "READY";
    e.reason.clear();
    e.fingerprint = dir.fingerprint;
  }
  core::log(core::LogLevel::kInfo, "model loaded", {{"model", dir.name}});
  retire(std::move(old));
  return ok_status();
}

Status ModelManager::load(std::string_view name, const LoadOptions& options) {
  std::lock_guard control(control_mu_);
  auto dir = find_dir(name);
  if (!dir.ok()) return dir.status();
  return load_locked(*dir, options);
}

Status ModelManager::unload(std::string_view name) {
  std::lock_guard control(control_mu_);
  std::vector<std::shared_ptr<ModelVersion>> old;
  {
    std::lock_guard lock(mu_);
    auto it = models_.find(name);
    if (it == models_.end() || it->second.versions.empty()) {
      if (it != models_.end()) return ok_status();  // already unloaded
      return not_found("model '" + std::string(name) + "' is not loaded");
    }
    for (auto& [v, mv] : it->second.versions) old.push_back(std::move(mv));
    it->second.versions.clear();
    it->second.state = "UNAVAILABLE";
    it->second.reason = "unloaded";
  }
  core::log(core::LogLevel::kInfo, "model unloading", {{"model", std::string(name)}});
  retire(std::move(old));
  return ok_status();
}

void ModelManager::poll_once() {
  std::lock_guard control(control_mu_);
  std::vector<std::string> conflicts;
  auto dirs = scan_repositories(options_.model_repositories, &conflicts);
  if (!dirs.ok()) return;
  std::vector<std::string> present;
  for (const auto& dir : *dirs) {
    present.push_back(dir.name);
    std::string fingerprint;
    bool has;
    {
      std::lock_guard lock(mu_);
      auto it = models_.find(dir.name);
      has = it != models_.end();
      if (has) fingerprint = it->second.fingerprint;
    }
    if (!has || fingerprint != dir.fingerprint) (void)load_locked(dir, LoadOptions{});
  }
  std::vector<std::shared_ptr<ModelVersion>> old;
  {
    std::lock_guard lock(mu_);
    for (auto it = models_.begin(); it != models_.end();) {
      if (std::find(present.begin(), present.end(), it->first) == present.end()) {
        for (auto& [v, mv] : it->second.versions) old.push_back(std::move(mv));
        it = models_.erase(it);
      } else {
        ++it;
      }
    }
  }
  retire(std::move(old));
}

void ModelManager::retire(std::vector<std::shared_ptr<ModelVersion>> old) {
  if (old.empty()) return;
  std::lock_guard lock(reap_mu_);
  for (auto& mv : old) retiring_.push_back(std::move(mv));
  reap_cv_.notify_all();
}

// Unloads retired versions once nobody can reach them (only the reaper holds a reference, so no
// infer() call is between lookup and enqueue) and their queues are empty. A version is taken out
// of `retiring_` before the lock is dropped to stop it, and the scan starts over afterwards:
// retire() may append meanwhile, which can reallocate the vector (holding an iterator across the
// unlock was the crash seen once after an explicit reload).
void ModelManager::reap_loop() {
  std::unique_lock lock(reap_mu_);
  for (;;) {
    auto idle = std::find_if(retiring_.begin(), retiring_.end(), [](const auto& mv) {
      return mv.use_count() == 1 && mv->in_flight() == 0;
    });
    if (idle != retiring_.end()) {
      std::shared_ptr<ModelVersion> mv = std::move(*idle);
      retiring_.erase(idle);
      lock.unlock();
      mv->stop();
      mv.reset();
      lock.lock();
      continue;
    }
    if (stopping_ && retiring_.empty()) return;
    reap_cv_.wait_for(lock, std::chrono::milliseconds(retiring_.empty() ? 1000 : 2));
  }
}

Result<std::shared_ptr<ModelVersion>> ModelManager::find(std::string_view name,
                                                         std::string_view version) const {
  std::lock_guard lock(mu_);
  auto it = models_.find(name);
  if (it == models_.end()) {
    return not_found("unknown model '" + std::string(name) + "'");
  }
  const auto& versions = it->second.versions;
  if (versions.empty()) {
    return unavailable("model '" + std::string(name) + "' is not ready" +
                       (it->second.reason.empty() ? "" : ": " + it->second.reason));
  }
  if (version.empty()) return versions.rbegin()->second;
  int64_t v = 0;
  auto [p, ec] = std::from_chars(version.data(), version.data() + version.size(), v);
  if (ec != std::errc() || p != version.data() + version.size()) {
    return invalid_argument("model version '" + std::string(version) + "' is not a number");
  }
  auto vit = versions.find(v);
  if (vit == versions.end()) {
    return not_found("model '" + std::string(name) + "' has no ready version " +
                     std::string(version));
  }
  return vit->second;
}

std::vector<std::shared_ptr<ModelVersion>> ModelManager::loaded(std::string_view name) const {
  std::lock_guard lock(mu_);
  std::vector<std::shared_ptr<ModelVersion>> out;
  for (const auto& [n, e] : models_) {
    if (!name.empty() && n != name) continue;
    for (const auto& [v, mv] : e.versions) out.push_back(mv);
  }
  return out;
}

bool ModelManager::known(std::string_view name) const {
  {
    std::lock_guard lock(mu_);
    if (models_.count(name)) return true;
  }
  return find_dir(name).ok();
}

std::vector<RepositoryEntry> ModelManager::index(bool ready_only) const {
  std::vector<RepositoryEntry> out;
  std::vector<std::string> conflicts;
  auto dirs = scan_repositories(options_.model_repositories, &conflicts);
  std::lock_guard lock(mu_);
  std::map<std::string, bool> names;
  if (dirs.ok()) {
    for (const auto& d : *dirs) names[d.name] = true;
  }
  for (const auto& [n, e] : models_) names[n] = true;
  for (const auto& [n, unused] : names) {
    auto it = models_.find(n);
    if (it == models_.end()) {
      if (!ready_only) out.push_back({n, "", "", ""});
      continue;
    }
    const Entry& e = it->second;
    if (e.versions.empty()) {
      if (!ready_only) out.push_back({n, "", e.state, e.reason});
      continue;
    }
    for (const auto& [v, mv] : e.versions) out.push_back({n, std::to_string(v), "READY", ""});
  }
  return out;
}

bool ModelManager::all_ready() const {
  std::lock_guard lock(mu_);
  for (const auto& [n, e] : models_) {
    if (e.state == "LOADING") return false;
    if (e.versions.empty() && e.reason != "unloaded") return false;  // failed to load
  }
  return true;
}

bool ModelManager::shutdown(std::chrono::milliseconds timeout) {
  {
    std::lock_guard lock(reap_mu_);
    if (stopping_) return true;
    stopping_ = true;
  }
  reap_cv_.notify_all();
  if (poller_.joinable()) poller_.join();
  const auto deadline = Clock::now() + timeout;
  bool drained = false;
  for (;;) {
    int64_t busy = 0;
    for (const auto& mv : loaded("")) busy += mv->in_flight();
    if (busy == 0) {
      drained = true;
      break;
    }
    if (Clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  std::vector<std::shared_ptr<ModelVersion>> all;
  {
    std::lock_guard lock(mu_);
    for (auto& [n, e] : models_) {
      for (auto& [v, mv] : e.versions) all.push_back(std::move(mv));
      e.versions.clear();
      e.state = "UNAVAILABLE";
      e.reason = "unloaded";
    }
  }
  {
    std::lock_guard lock(reap_mu_);
    for (auto& mv : retiring_) all.push_back(std::move(mv));
    retiring_.clear();
  }
  if (reaper_.joinable()) reaper_.join();
  // Stopping a scheduler executes whatever is still queued, so no request goes unanswered.
  for (auto& mv : all) mv->stop();
  return drained;
}

}  // namespace kiln::server
