// SPDX-License-Identifier: Apache-2.0
// symbolize.cpp — see symbolize.hpp.  Reads ELF64 (x86_64, aarch64 Linux) as <elf.h> lays it
// out: the section headers name the symbol table and its string table; a function symbol
// covers [st_value, st_value + st_size) in the module's own addresses.
#include "runtime/diag/symbolize.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

#include <cxxabi.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace weft::detail {
namespace {

struct module_hit {
  std::uintptr_t pc;
  std::uintptr_t base = 0;
  const char* path = nullptr;
  bool found = false;
};

int find_module(dl_phdr_info* info, std::size_t, void* arg) noexcept {
  auto* hit = static_cast<module_hit*>(arg);
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD) continue;
    const std::uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
    if (hit->pc >= lo && hit->pc < lo + ph.p_memsz) {
      hit->base = info->dlpi_addr;
      hit->path = info->dlpi_name;
      hit->found = true;
      return 1;
    }
  }
  return 0;
}

// Looks `addr` (a module-relative address) up in the file's symbol table.
void lookup(const char* path, std::uintptr_t addr, symbol* out) noexcept {
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  struct stat st;
  if (::fstat(fd, &st) != 0 || st.st_size < static_cast<off_t>(sizeof(ElfW(Ehdr)))) {
    ::close(fd);
    return;
  }
  const std::size_t size = static_cast<std::size_t>(st.st_size);
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) return;
  const auto* base = static_cast<const unsigned char*>(map);
  const auto* eh = reinterpret_cast<const ElfW(Ehdr)*>(base);
  const bool elf = std::memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0 && eh->e_shoff != 0 &&
                   eh->e_shentsize == sizeof(ElfW(Shdr)) && eh->e_shoff + eh->e_shnum * sizeof(ElfW(Shdr)) <= size;
  if (elf) {
    const auto* sh = reinterpret_cast<const ElfW(Shdr)*>(base + eh->e_shoff);
    for (unsigned want : {SHT_SYMTAB, SHT_DYNSYM}) {
      const ElfW(Shdr)* tab = nullptr;
      for (unsigned i = 0; i < eh->e_shnum; ++i)
        if (sh[i].sh_type == want) tab = &sh[i];
      if (!tab || tab->sh_link >= eh->e_shnum || tab->sh_entsize != sizeof(ElfW(Sym))) continue;
      const ElfW(Shdr)& strs = sh[tab->sh_link];
      if (tab->sh_offset + tab->sh_size > size || strs.sh_offset + strs.sh_size > size) continue;
      const auto* syms = reinterpret_cast<const ElfW(Sym)*>(base + tab->sh_offset);
      const std::size_t count = tab->sh_size / sizeof(ElfW(Sym));
      const ElfW(Sym)* best = nullptr;
      for (std::size_t i = 0; i < count; ++i) {
        const ElfW(Sym)& sy = syms[i];
        if (ELF64_ST_TYPE(sy.st_info) != STT_FUNC || sy.st_value == 0 || sy.st_name >= strs.sh_size) continue;
        if (addr >= sy.st_value && addr < sy.st_value + (sy.st_size ? sy.st_size : 1)) {
          best = &sy;
          break;
        }
      }
      if (best) {
        const char* name = reinterpret_cast<const char*>(base + strs.sh_offset + best->st_name);
        const std::size_t room = strs.sh_size - best->st_name;
        std::size_t len = ::strnlen(name, room < sizeof out->name ? room : sizeof out->name - 1);
        std::memcpy(out->name, name, len);
        out->name[len] = '\0';
        out->function_offset = addr - best->st_value;
        break;
      }
    }
  }
  if (::munmap(map, size) != 0) {
    // A mapping of our own that will not go: nothing to report it to from here.
  }
}

}  // namespace

bool symbolize(std::uintptr_t pc, symbol* out) noexcept {
  module_hit hit{pc};
  ::dl_iterate_phdr(find_module, &hit);
  if (!hit.found) return false;
  const char* path = hit.path && hit.path[0] ? hit.path : "/proc/self/exe";
  if (hit.path && hit.path[0]) std::snprintf(out->module, sizeof out->module, "%s", hit.path);
  else {
    ssize_t n = ::readlink("/proc/self/exe", out->module, sizeof out->module - 1);
    out->module[n > 0 ? n : 0] = '\0';
  }
  out->module_offset = pc - hit.base;
  lookup(path, pc - hit.base, out);
  return true;
}

std::size_t format_symbol(std::uintptr_t pc, bool demangle, char* buf, std::size_t n) noexcept {
  symbol sy;
  int len;
  if (!symbolize(pc, &sy)) {
    len = std::snprintf(buf, n, "%#lx", static_cast<unsigned long>(pc));
  } else {
    const char* name = sy.name[0] ? sy.name : "?";
    char* pretty = nullptr;
    if (demangle && sy.name[0]) {
      int status = 0;
      pretty = abi::__cxa_demangle(sy.name, nullptr, nullptr, &status);
      if (status != 0) pretty = nullptr;
    }
    len = std::snprintf(buf, n, "%s+%#lx (%s+%#lx)", pretty ? pretty : name,
                        static_cast<unsigned long>(sy.function_offset), sy.module,
                        static_cast<unsigned long>(sy.module_offset));
    std::free(pretty);
  }
  if (len < 0) return 0;
  return static_cast<std::size_t>(len) < n ? static_cast<std::size_t>(len) : n - 1;
}

}  // namespace weft::detail
