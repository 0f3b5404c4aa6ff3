// SPDX-License-Identifier: Apache-2.0
// sys.hpp — small system helpers shared by the kmodel files: checked file reads and the one way
// a failed call becomes a resource_error.  A child process with a deadline: child.hpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace weft::kmodel::detail {

// Throws weft::resource_error for errno value `err`: "weft: kmodel: <what>: <strerror>".
[[noreturn]] void throw_errno(int err, const std::string& what);

// The whole file, or nullopt (errno kept) if it cannot be opened or read.
std::optional<std::string> read_file(const char* path);
// The whole file; throws resource_error naming the file if it cannot be read.
std::string read_file_or_throw(const char* path);
// The first unsigned number in the file; throws resource_error if absent.
std::uint64_t read_u64_or_throw(const char* path);
// The value of "Key:" in a /proc status-style text (in units as printed; "kB" dropped).
std::optional<std::uint64_t> status_field(std::string_view text, std::string_view key);

// Writes all of text to fd, retrying short writes and EINTR (for children's reports).
bool write_all(int fd, std::string_view text) noexcept;

// Whether madvise(MADV_GUARD_INSTALL) works on this kernel (Linux 6.13+), tried on a scratch map.
bool guard_install_works(std::size_t page) noexcept;

std::size_t round_up(std::size_t v, std::size_t to) noexcept;
std::size_t round_down(std::size_t v, std::size_t to) noexcept;

}  // namespace weft::kmodel::detail
