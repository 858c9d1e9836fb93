// `kiln inspect PLAN`: the plan-file half of `kiln inspect` (cmd_inspect.cc dispatches).
#pragma once

#include <string>

#include "options.h"

namespace kiln::cli {

/// Prints the header, sections, model, tokenizer, per-layer precision and sparsity of a plan,
/// with `tensors` every stored tensor, then compiles it and lists each layer's kernel and
/// size. Returns the exit code.
int inspect_plan(const std::string& path, bool tensors, const EngineFlags& engine);

}  // namespace kiln::cli
