// Loading a plan for an engine: checks that it targets this device and machine, decodes its
// sections, copies the small weights (norms, biases, head) and hands the large ones (embedding
// tables, packed linear weights) to the device as views of the mapping.
#pragma once

#include <memory>
#include <string>

#include "backend/device.h"
#include "kiln/tokenizer.h"
#include "model/config.h"
#include "model/weights.h"
#include "plan/plan_file.h"
#include "plan/sections.h"

namespace kiln::plan {

/// A decoded plan.
struct LoadedPlan {
  std::shared_ptr<const PlanFile> file;
  model::ModelConfig config;
  ModelRecord model;
  std::unique_ptr<Tokenizer> tokenizer;  ///< null when the plan has none
  QuantRecord quant;
  SparsityRecord sparsity;
  /// What the device compiles besides `prebuilt`: norms, biases and the head always; linear
  /// weights only when the plan stores them row-major.
  model::EncoderWeights weights;
  std::shared_ptr<const backend::PrebuiltWeights> prebuilt;
  std::string device_record;  ///< the "device" section, empty when absent
};

/// FailedPrecondition naming what differs when the plan was built for another backend,
/// features this machine lacks, or another packing library.
Status check_target(const Header& header, const backend::Device& device);

/// Opens `path`, verifies it, checks it against `device` and decodes it.
Result<LoadedPlan> load_plan(const std::string& path, const backend::Device& device);

/// Decodes a validated plan (no target check): used by load_plan, `kiln inspect` and the
/// fuzzer.
Result<LoadedPlan> decode_plan(std::shared_ptr<const PlanFile> file);

}  // namespace kiln::plan
