// Names the calling thread (as `top -H`, gdb and perf show it), e.g. "kiln-grpc-0".
#pragma once

#include <string>

namespace kiln::core {

/// Sets the calling thread's name; Linux keeps the first 15 bytes. Best effort: a failure is
/// ignored (a name is a debugging aid).
void set_thread_name(const std::string& name);

}  // namespace kiln::core
