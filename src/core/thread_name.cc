#include "core/thread_name.h"

#include <pthread.h>

namespace kiln::core {

void set_thread_name(const std::string& name) {
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
}

}  // namespace kiln::core
