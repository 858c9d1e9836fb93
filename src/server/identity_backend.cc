// The built-in "identity" backend (as Triton's): OUTPUTn is a copy of INPUTn. It measures the
// server's own overhead, with no model compute in the way.
#include <cstring>

#include "server/backend_factories.h"
#include "server/tensor_checks.h"

namespace kiln::server {
namespace {

struct IdentityInputs {
  std::vector<std::pair<size_t, std::string>> routes;  // input index -> output name
};

class IdentityInstance final : public BackendInstance {
 public:
  void execute(std::span<PendingRequest* const> batch, ExecutionTimes* times) override {
    const auto start = Clock::now();
    for (PendingRequest* r : batch) {
      const auto& routes = std::any_cast<const IdentityInputs&>(r->prepared).routes;
      InferResponse response;
      response.model_name = r->request.model_name;
      response.id = r->request.id;
      for (const auto& [index, name] : routes) {
        const Tensor& in = r->request.inputs[index];
        // A real copy, as a model's output buffer would be.
        std::vector<uint8_t> bytes(in.data, in.data + in.byte_size);
        response.outputs.push_back(Tensor::owned(name, in.datatype, in.shape, std::move(bytes)));
      }
      r->response = std::move(response);
    }
    times->infer_ns = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count());
  }
  bool runs_inline() const override { return true; }
};

class IdentityBackend final : public ModelBackend {
 public:
  explicit IdentityBackend(const inference::ModelConfig& config) : config_(config) {}

  Status prepare(PendingRequest* r) const override {
    KILN_ASSIGN_OR_RETURN(r->rows, validate_request(config_, r->request));
    IdentityInputs inputs;
    for (size_t i = 0; i < r->request.inputs.size(); ++i) {
      const std::string& name = r->request.inputs[i].name;
      std::string out = name.starts_with("INPUT") ? "OUTPUT" + name.substr(5) : name + "_OUT";
      if (output_requested(r->request, out)) inputs.routes.emplace_back(i, std::move(out));
    }
    r->prepared = std::move(inputs);
    return ok_status();
  }

  Result<std::unique_ptr<BackendInstance>> create_instance(int) override {
    return std::unique_ptr<BackendInstance>(new IdentityInstance());
  }

 private:
  const inference::ModelConfig config_;
};

}  // namespace

Result<std::unique_ptr<ModelBackend>> create_identity_backend(const BackendContext& context,
                                                              inference::ModelConfig* config) {
  if (config->input().empty()) {
    return invalid_argument("identity model '" + context.model_name +
                            "' must declare its inputs in config.pbtxt");
  }
  for (const auto& in : config->input()) {
    const std::string out =
        in.name().starts_with("INPUT") ? "OUTPUT" + in.name().substr(5) : in.name() + "_OUT";
    bool declared = false;
    for (const auto& o : config->output()) {
      if (o.name() != out) continue;
      declared = true;
      if (o.data_type() != in.data_type()) {
        return invalid_argument("identity output '" + out + "' must have the datatype of '" +
                                in.name() + "'");
      }
    }
    if (!declared) {
      auto* o = config->add_output();
      o->set_name(out);
      o->set_data_type(in.data_type());
      *o->mutable_dims() = in.dims();
    }
  }
  return std::unique_ptr<ModelBackend>(new IdentityBackend(*config));
}

}  // namespace kiln::server
