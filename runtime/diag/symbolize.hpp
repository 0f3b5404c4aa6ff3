// SPDX-License-Identifier: Apache-2.0
// symbolize.hpp — naming a code address without allocating, for goroutine dumps.
//
// The module (executable or shared library) that holds the address comes from the dynamic
// loader's list (dl_iterate_phdr); the function, from that file's ELF symbol table (.symtab,
// else .dynsym), mapped read-only for the lookup and unmapped after.  So functions a program
// does not export are named too (dladdr sees only exported ones).  No file and line: the
// module and offset printed beside the name are what `addr2line -f -C -e MODULE OFFSET` takes.
// Not strictly async-signal-safe (dl_iterate_phdr takes the loader's lock), which a dying
// process accepts; it never calls malloc.
#pragma once

#include <cstddef>
#include <cstdint>

namespace weft::detail {

struct symbol {
  char module[256] = "";   // the file's path ("" if unknown)
  char name[512] = "";     // the function's (mangled) name, "" if not found
  std::uintptr_t module_offset = 0;    // pc relative to where the module is loaded
  std::uintptr_t function_offset = 0;  // pc relative to the function's start
};

// Fills `out` for `pc`; false if no loaded module holds it.
bool symbolize(std::uintptr_t pc, symbol* out) noexcept;

// Writes "name+0xoff (module+0xoff)" into buf (demangled if `demangle`, which allocates: not
// from a signal handler).  Returns the length.
std::size_t format_symbol(std::uintptr_t pc, bool demangle, char* buf, std::size_t n) noexcept;

}  // namespace weft::detail
