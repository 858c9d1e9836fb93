// Loading a test checkpoint's config and weights straight from its directory, for the device
// tests that compile executors themselves.
#pragma once

#include <string>

#include "core/mapped_file.h"
#include "model/config.h"
#include "model/safetensors.h"
#include "model/weights.h"

namespace kiln::testing {

/// The tiny random checkpoints of the golden tests.
inline const std::string kTinyModels = std::string(KILN_SOURCE_DIR) + "/tests/golden/models/tiny/";

struct TestModel {
  model::ModelConfig config;
  model::EncoderWeights weights;
};

/// config.json and model.safetensors of `dir` (the test fails on a broken fixture).
inline TestModel load_test_model(const std::string& dir) {
  TestModel m;
  m.config = model::parse_config(core::read_file(dir + "/config.json").value()).value();
  auto file = model::SafeTensors::open(dir + "/model.safetensors").value();
  m.weights = model::load_weights(file, m.config).value();
  return m;
}

}  // namespace kiln::testing
