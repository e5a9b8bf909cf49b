// The calls between a runtime's loops: what is not inline.
#include "corio/exec/cross_loop.hpp"

#include <stdexcept>
#include <string>

namespace corio::detail {

runtime_state& runtime_for(std::size_t target, const char* what) {
  runtime_state* rt = t_runtime;
  if (rt == nullptr) {
    throw std::logic_error(std::string("corio::") + what + ": not on a loop of a corio::runtime");
  }
  if (target >= rt->size()) {
    throw std::out_of_range(std::string("corio::") + what + ": no loop " + std::to_string(target) +
                            " (the runtime has " + std::to_string(rt->size()) + ")");
  }
  return *rt;
}

}  // namespace corio::detail
