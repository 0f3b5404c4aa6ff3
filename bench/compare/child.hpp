// SPDX-License-Identifier: Apache-2.0
// child.hpp — the harness runs every (system, workload) pair in a child process, and this is the
// protocol between them.
//
//   argv    <program> [<hidden flag> <system>] <workload> key=value ...
//   stdout  one line per result: "<metric> <number>", "note <text>", "stop <text>" or
//           "text <key> <words>" (a figure in words, e.g. the capacity estimate)
//   exit    0 when the workload finished; 3 when the system cannot run it here ("not
//           available"); anything else (or a signal) is a failure.  The child's stderr says why
//           (a weft fatal error, an exception, the kernel's OOM kill...)
//
// A child is exec'd, not just forked: it starts with a clean address space and a fresh
// runtime (one weft runtime per process), limits it runs into or crashes it meets stay its
// own, and its /proc figures are its own.  The Go column's program speaks the same protocol.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace weft_compare {

// ---- the harness's side ---------------------------------------------------------------------

struct child_outcome {
  std::map<std::string, double> values;  // metric -> number
  std::vector<std::string> notes;
  std::string stop;       // why a capacity probe stopped, as the child said it
  std::map<std::string, std::string> texts;
  bool ok = false;        // exited with status 0 within the deadline
  int exit_status = -1;   // its exit status; -1 if killed by a signal
  std::string failure;    // when !ok: the reason, in a few words
  double seconds = 0;     // wall time of the child
};

// Runs argv (argv[0] a path) with stdout and stderr captured, killing it (SIGKILL) at the
// deadline (weft_kmodel's runner, runtime/kmodel/child.hpp).  Never throws for the child's
// failures; throws std::system_error (weft::resource_error) if the harness itself cannot make
// pipes, fork, read or reap.
child_outcome run_child(const std::vector<std::string>& argv, std::chrono::seconds deadline,
                        const std::vector<std::string>& extra_env = {});

inline constexpr int exit_unavailable = 3;

// ---- the child's side -----------------------------------------------------------------------

using params = std::map<std::string, std::string>;

// key=value arguments.  Throws std::invalid_argument for anything else.
params parse_params(const std::vector<std::string>& args);
// A non-negative integer parameter, or def when absent.  Throws std::invalid_argument.
std::uint64_t param_u64(const params& p, const std::string& key, std::uint64_t def);

// Prints one result line and flushes it, so a child that dies later keeps what it measured.
void emit(const char* metric, double value);
void emit_note(const std::string& text);
void emit_stop(const std::string& text);
void emit_text(const std::string& key, const std::string& text);

}  // namespace weft_compare
