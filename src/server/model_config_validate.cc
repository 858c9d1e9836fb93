// Value checks on a parsed model configuration.
#include <set>

#include "server/model_config.h"

namespace kiln::server {
namespace {

Status check_tensors(const char* what,
                     const google::protobuf::RepeatedPtrField<inference::ModelInput>& ins,
                     std::set<std::string>* names) {
  for (const auto& t : ins) {
    if (t.name().empty()) return invalid_argument(std::string(what) + " without a name");
    if (!names->insert(t.name()).second) {
      return invalid_argument(std::string(what) + " '" + t.name() + "' is declared twice");
    }
    if (t.data_type() == inference::TYPE_INVALID) {
      return invalid_argument(std::string(what) + " '" + t.name() + "' has no data_type");
    }
    for (int64_t d : t.dims()) {
      if (d < -1 || d == 0) {
        return invalid_argument(std::string(what) + " '" + t.name() + "' has dimension " +
                                std::to_string(d) + "; dims must be positive or -1");
      }
    }
  }
  return ok_status();
}

Status check_outputs(const google::protobuf::RepeatedPtrField<inference::ModelOutput>& outs) {
  std::set<std::string> names;
  for (const auto& t : outs) {
    if (t.name().empty()) return invalid_argument("output without a name");
    if (!names.insert(t.name()).second) {
      return invalid_argument("output '" + t.name() + "' is declared twice");
    }
    if (t.data_type() == inference::TYPE_INVALID) {
      return invalid_argument("output '" + t.name() + "' has no data_type");
    }
  }
  return ok_status();
}

}  // namespace

Status validate_model_config(const inference::ModelConfig& config) {
  if (config.max_batch_size() < 0) {
    return invalid_argument("max_batch_size must be >= 0, got " +
                            std::to_string(config.max_batch_size()));
  }
  std::set<std::string> names;
  KILN_RETURN_IF_ERROR(check_tensors("input", config.input(), &names));
  KILN_RETURN_IF_ERROR(check_outputs(config.output()));
  bool gpu = false, cpu = false;
  for (const auto& g : config.instance_group()) {
    if (g.count() < 0) return invalid_argument("instance_group count must be >= 0");
    (g.kind() == inference::ModelInstanceGroup::KIND_GPU ? gpu : cpu) = true;
    for (int32_t id : g.gpus()) {
      if (g.kind() != inference::ModelInstanceGroup::KIND_GPU) {
        return invalid_argument("instance_group gpus are only valid with kind KIND_GPU");
      }
      if (id != 0) {
        return unimplemented("instance_group gpus: kiln runs on GPU 0 only, got " +
                             std::to_string(id));
      }
    }
    if (g.kind() == inference::ModelInstanceGroup::KIND_MODEL) {
      return unimplemented("instance_group kind KIND_MODEL is not supported; use KIND_CPU");
    }
  }
  if (gpu && cpu) {
    return unimplemented(
        "instance_group mixes KIND_GPU with CPU kinds: one model runs on one device");
  }
  if (config.has_dynamic_batching()) {
    const auto& db = config.dynamic_batching();
    if (config.max_batch_size() == 0) {
      return invalid_argument("dynamic_batching needs max_batch_size > 0");
    }
    for (int64_t p : db.preferred_batch_size()) {
      if (p <= 0 || p > config.max_batch_size()) {
        return invalid_argument(
            "preferred_batch_size " + std::to_string(p) +
            " must be in [1, max_batch_size=" + std::to_string(config.max_batch_size()) + "]");
      }
    }
    if (db.priority_levels() > 0) {
      if (db.default_priority_level() < 1 || db.default_priority_level() > db.priority_levels()) {
        return invalid_argument("default_priority_level must be in [1, priority_levels=" +
                                std::to_string(db.priority_levels()) + "]");
      }
    } else if (db.default_priority_level() != 0 || !db.priority_queue_policy().empty()) {
      return invalid_argument(
          "default_priority_level and priority_queue_policy need priority_levels > 0");
    }
    for (const auto& [level, unused] : db.priority_queue_policy()) {
      if (level < 1 || level > db.priority_levels()) {
        return invalid_argument("priority_queue_policy level " + std::to_string(level) +
                                " is outside [1, priority_levels]");
      }
    }
  }
  if (config.version_policy().has_specific()) {
    if (config.version_policy().specific().versions().empty()) {
      return invalid_argument("version_policy specific lists no versions");
    }
    for (int64_t v : config.version_policy().specific().versions()) {
      if (v <= 0) return invalid_argument("version_policy lists version " + std::to_string(v));
    }
  }
  if (config.version_policy().has_latest() &&
      config.version_policy().latest().num_versions() == 0) {
    return invalid_argument("version_policy latest num_versions must be >= 1");
  }
  return ok_status();
}

}  // namespace kiln::server
