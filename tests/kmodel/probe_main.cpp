// SPDX-License-Identifier: Apache-2.0
// weft_kmodel_probe: a tiny program the kmodel tests exec under a given RLIMIT_STACK, because
// glibc fixes the default thread stack size, and exec fixes the first [stack] VMA, at process
// start.  It reports what this fresh process sees and what glibc chose, as key=value lines.
// It links neither weft nor a sanitizer, and it stays small so it can start with a 16 KiB stack.
//
//   weft_kmodel_probe default-stack   rlimit, page, static TLS, pthread_getattr_default_np
//   weft_kmodel_probe initial-stack   [stack] bounds at main and the bytes of strings exec copied
//
// Built twice: weft_kmodel_probe_bigtls adds 64 KiB of thread_local data, so glibc's
// page + static TLS + MINIMAL_REST_STACK floor exceeds small limits.
#include <cstdint>
#include <cstdio>
#include <cstring>

#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/auxv.h>
#include <sys/resource.h>
#include <unistd.h>

#if defined(WEFT_PROBE_BIG_TLS)
thread_local volatile char big_tls[WEFT_PROBE_BIG_TLS];
#endif

extern char** environ;

namespace {

char g_maps[1 << 16];

void say(const char* key, unsigned long long v) {
  char line[96];
  int n = std::snprintf(line, sizeof line, "%s=%llu\n", key, v);
  if (n > 0) (void)!::write(1, line, static_cast<std::size_t>(n));
}

void say_text(const char* key, const char* v) {
  char line[160];
  int n = std::snprintf(line, sizeof line, "%s=%s\n", key, v);
  if (n > 0) (void)!::write(1, line, static_cast<std::size_t>(n));
}

int default_stack() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_STACK, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) say_text("rlimit_stack", "unlimited");
  else say("rlimit_stack", rl.rlim_cur);
  say("page_size", static_cast<unsigned long long>(::sysconf(_SC_PAGESIZE)));
  using tls_info_fn = void (*)(std::size_t*, std::size_t*);
  auto info = reinterpret_cast<tls_info_fn>(::dlsym(RTLD_DEFAULT, "_dl_get_tls_static_info"));
  if (!info) return 3;
  std::size_t size = 0, align = 0;
  info(&size, &align);
  say("static_tls_size", (size + align - 1) / align * align);
  pthread_attr_t attr;
  if (::pthread_getattr_default_np(&attr) != 0) return 4;
  std::size_t stack = 0, guard = 0;
  ::pthread_attr_getstacksize(&attr, &stack);
  ::pthread_attr_getguardsize(&attr, &guard);
  say("stack_size", stack);
  say("guard_size", guard);
  return 0;
}

int initial_stack(char** argv) {
  // Strings exec copied to the top of the stack: the end marker, the file name, envp, argv.
  std::size_t bytes = sizeof(void*);
  const char* execfn = reinterpret_cast<const char*>(::getauxval(AT_EXECFN));
  if (execfn) bytes += std::strlen(execfn) + 1;
  for (char** e = environ; *e; ++e) bytes += std::strlen(*e) + 1;
  for (char** a = argv; *a; ++a) bytes += std::strlen(*a) + 1;
  say("string_bytes", bytes);
  int fd = ::open("/proc/self/maps", O_RDONLY);
  if (fd < 0) return 5;
  std::size_t got = 0;
  for (;;) {
    ssize_t n = ::read(fd, g_maps + got, sizeof g_maps - 1 - got);
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  g_maps[got] = '\0';
  for (char* line = g_maps; line && *line;) {
    char* eol = std::strchr(line, '\n');
    if (eol) *eol = '\0';
    if (std::strstr(line, "[stack]")) {
      unsigned long long lo = 0, hi = 0;
      if (std::sscanf(line, "%llx-%llx", &lo, &hi) == 2) {
        say("stack_start", lo);
        say("stack_end", hi);
        return 0;
      }
    }
    line = eol ? eol + 1 : nullptr;
  }
  return 6;
}

}  // namespace

int main(int argc, char** argv) {
#if defined(WEFT_PROBE_BIG_TLS)
  big_tls[argc % WEFT_PROBE_BIG_TLS] = 1;
#endif
  if (argc == 2 && std::strcmp(argv[1], "default-stack") == 0) return default_stack();
  if (argc == 2 && std::strcmp(argv[1], "initial-stack") == 0) return initial_stack(argv);
  static const char usage[] = "usage: weft_kmodel_probe default-stack|initial-stack\n";
  (void)!::write(2, usage, sizeof usage - 1);
  return 2;
}
