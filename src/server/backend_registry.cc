// The single table of model backends.
#include <array>

#include "core/mapped_file.h"
#include "plan/plan_file.h"
#include "server/backend_factories.h"

namespace kiln::server {
namespace {

using Factory = Result<std::unique_ptr<ModelBackend>> (*)(const BackendContext&,
                                                          inference::ModelConfig*);
struct BackendRow {
  std::string_view name;
  Factory factory;
};

constexpr std::array kBackends = {
    BackendRow{"kiln", &create_encoder_backend},
    BackendRow{"identity", &create_identity_backend},
    BackendRow{"kiln_search", &create_search_backend},
};

}  // namespace

Result<std::unique_ptr<ModelBackend>> create_backend(const BackendContext& context,
                                                     inference::ModelConfig* config) {
  std::string name = config->backend();
  if (name.empty() && !config->platform().empty()) name = config->platform();
  if (name.empty()) {
    // Auto-complete as Triton does from the model files: a Hugging Face directory, a LoRA
    // adapter or a plan written by `kiln build` is ours.
    const std::string& v = context.version_path;
    const std::string& file = config->default_model_filename();
    if (core::file_exists(v + "/config.json") || core::file_exists(v + "/adapter_config.json") ||
        core::file_exists(v + "/" + plan::kDefaultFileName) ||
        (!file.empty() && (plan::is_plan_file(v + "/" + file) ||
                           core::file_exists(v + "/" + file + "/config.json")))) {
      name = "kiln";
    }
  }
  if (name.empty()) {
    return invalid_argument("model '" + context.model_name +
                            "': config.pbtxt names no backend and version folder '" +
                            context.version_path + "' holds no config.json or model.plan");
  }
  for (const BackendRow& row : kBackends) {
    if (row.name == name) {
      config->set_backend(std::string(row.name));
      return row.factory(context, config);
    }
  }
  return unimplemented("model '" + context.model_name + "': backend '" + name +
                       "' is not available in kiln (available: kiln, identity, kiln_search)");
}

}  // namespace kiln::server
