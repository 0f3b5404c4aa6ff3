// SPDX-License-Identifier: Apache-2.0
// A program outside weft's tree, built against an installed weft.  It exits 0 only if the
// library works, and is the version its headers say.
#include <cstdio>

#include <weft/weft.hpp>

int main() {
  weft::options o = weft::options::from_env();
  o.validate();
  std::printf("consumer: stack_min default %zu\n", weft::default_stack_min());
  const weft::version_info v = weft::version();
  std::printf("consumer: weft library %d.%d.%d, headers %d.%d.%d\n", v.major, v.minor, v.patch, WEFT_VERSION_MAJOR,
              WEFT_VERSION_MINOR, WEFT_VERSION_PATCH);
  if (v != weft::version_info{WEFT_VERSION_MAJOR, WEFT_VERSION_MINOR, WEFT_VERSION_PATCH}) return 1;
  return weft::default_stack_min() > 0 ? 0 : 1;
}
