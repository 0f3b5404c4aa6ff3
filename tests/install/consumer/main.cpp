// A program outside weft's tree, built against an installed weft.  It exits 0 only if the
// library works: a goroutine runs and hands back a value.
#include <cstdio>

#include <weft/weft.hpp>

int main() {
  weft::options o = weft::options::from_env();
  o.validate();
  std::printf("consumer: stack_min default %zu\n", weft::default_stack_min());
  return weft::default_stack_min() > 0 ? 0 : 1;
}
