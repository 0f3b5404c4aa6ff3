// weft-hello: the smallest weft program — reads the configuration from WEFT_* variables the
// way every weft program does, and says what it got (or what was wrong with it).
#include <cstdio>

#include <weft/weft.hpp>

int main() {
  try {
    weft::options o = weft::options::from_env();
    std::printf("procs=%u stack_min=%zu stack_max=%zu stack_reserve=%zu\n", o.procs,
                o.stack_min ? o.stack_min : weft::default_stack_min(), o.stack_max,
                o.stack_reserve ? *o.stack_reserve : weft::default_stack_reserve());
  } catch (const weft::config_error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
}
