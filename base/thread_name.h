// NameThisThread: names the calling thread as `top -H`, `ps -L`, perf and
// gdb show it, so an operator can tell a server's loop from its peer links
// and its log's flusher. Linux keeps 15 bytes of a name; a longer one is
// cut.
#ifndef STRATA_BASE_THREAD_NAME_H_
#define STRATA_BASE_THREAD_NAME_H_

#include <pthread.h>

#include <algorithm>
#include <string_view>

namespace strata {

inline void NameThisThread(std::string_view name) {
  char cut[16] = {};
  name.copy(cut, std::min<size_t>(name.size(), sizeof cut - 1));
  (void)pthread_setname_np(pthread_self(), cut);  // a name is only a help
}

}  // namespace strata

#endif  // STRATA_BASE_THREAD_NAME_H_
