// SPDX-License-Identifier: Apache-2.0
// child.cpp — a workload child's outcome, read from what it said (the running is
// runtime/kmodel/child.hpp's run_program), and the child's half of the protocol.
#include "bench/compare/child.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include <sys/wait.h>

#include "runtime/kmodel/child.hpp"

extern char** environ;

namespace weft_compare {

namespace {

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  std::size_t i = 0;
  while (i < s.size() && s[i] == ' ') ++i;
  return s.substr(i);
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    std::string line = trim(text.substr(start, nl - start));
    if (!line.empty()) out.push_back(line);
    start = nl + 1;
  }
  return out;
}

// The line of a failed child's stderr that says why: a weft fatal error or an uncaught
// exception if there is one, else the last thing it said.
std::string reason_from_stderr(const std::string& err) {
  std::vector<std::string> lines = lines_of(err);
  for (const std::string& l : lines)
    if (l.find("fatal error") != std::string::npos || l.find("terminate called") != std::string::npos ||
        l.find("what():") != std::string::npos)
      return l;
  return lines.empty() ? std::string() : lines.back();
}

void parse_stdout(const std::string& out, child_outcome& r) {
  for (const std::string& line : lines_of(out)) {
    std::size_t sp = line.find(' ');
    if (sp == std::string::npos) continue;
    std::string key = line.substr(0, sp), rest = trim(line.substr(sp + 1));
    if (key == "note") {
      r.notes.push_back(rest);
    } else if (key == "stop") {
      r.stop = rest;
    } else if (key == "text") {
      std::size_t sp2 = rest.find(' ');
      if (sp2 != std::string::npos) r.texts[rest.substr(0, sp2)] = trim(rest.substr(sp2 + 1));
    } else {
      char* end = nullptr;
      errno = 0;
      double v = std::strtod(rest.c_str(), &end);
      if (errno == 0 && end != rest.c_str()) r.values[key] = v;
      else r.notes.push_back("unparsed result line: " + line);
    }
  }
}

}  // namespace

child_outcome run_child(const std::vector<std::string>& argv, std::chrono::seconds deadline,
                        const std::vector<std::string>& extra_env) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) env.emplace_back(*e);
  env.insert(env.end(), extra_env.begin(), extra_env.end());
  const std::string name = argv.empty() ? std::string() : std::filesystem::path(argv[0]).filename().string();
  const weft::kmodel::detail::child_result c = weft::kmodel::detail::run_program(name.c_str(), argv, env, deadline);
  child_outcome r;
  r.seconds = std::chrono::duration<double>(c.took).count();
  parse_stdout(c.out, r);
  std::string why = reason_from_stderr(c.err);
  if (c.killed) {
    r.failure = "timed out after " + std::to_string(deadline.count()) + " s";
  } else if (WIFSIGNALED(c.status)) {
    int sig = WTERMSIG(c.status);
    r.failure = std::string("killed by SIG") + (sigabbrev_np(sig) ? sigabbrev_np(sig) : std::to_string(sig).c_str());
    if (sig == SIGKILL) r.failure += " (out of memory?)";
    if (!why.empty()) r.failure += ": " + why;
  } else if (WIFEXITED(c.status) && WEXITSTATUS(c.status) != 0) {
    r.exit_status = WEXITSTATUS(c.status);
    r.failure = why.empty() ? "exited with status " + std::to_string(WEXITSTATUS(c.status)) : why;
  } else {
    r.exit_status = 0;
    r.ok = true;
  }
  if (r.failure.size() > 400) r.failure = r.failure.substr(0, 397) + "...";
  return r;
}

params parse_params(const std::vector<std::string>& args) {
  params p;
  for (const std::string& a : args) {
    std::size_t eq = a.find('=');
    if (eq == std::string::npos || eq == 0) throw std::invalid_argument("expected key=value, got '" + a + "'");
    p[a.substr(0, eq)] = a.substr(eq + 1);
  }
  return p;
}

std::uint64_t param_u64(const params& p, const std::string& key, std::uint64_t def) {
  auto it = p.find(key);
  if (it == p.end()) return def;
  const std::string& v = it->second;
  char* end = nullptr;
  errno = 0;
  unsigned long long n = std::strtoull(v.c_str(), &end, 10);
  if (v.empty() || v[0] == '-' || errno != 0 || *end != '\0')
    throw std::invalid_argument("bad " + key + "=" + v + ": expected a non-negative integer");
  return n;
}

void emit(const char* metric, double value) {
  std::printf("%s %.9g\n", metric, value);
  std::fflush(stdout);
}

void emit_note(const std::string& text) {
  std::printf("note %s\n", text.c_str());
  std::fflush(stdout);
}

void emit_text(const std::string& key, const std::string& text) {
  std::printf("text %s %s\n", key.c_str(), text.c_str());
  std::fflush(stdout);
}

void emit_stop(const std::string& text) {
  std::printf("stop %s\n", text.c_str());
  std::fflush(stdout);
}

}  // namespace weft_compare
