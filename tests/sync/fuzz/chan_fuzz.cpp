// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: sequences of channel operations checked against a sequential model.
//
// The input's first byte picks four channel capacities (0–3); every following byte pair is one
// operation on one channel: try_send, try_recv, send/recv where they cannot block, close,
// size/closed, select over a subset of the channels (send and receive cases, with default or
// a timeout), and rendezvous with a goroutine (one side blocks until the other arrives).  The
// model — a deque and a closed flag per channel — says what each must do; any difference
// traps.  Values are move-only heap objects, so AddressSanitizer (the CI build) also sees a
// value lost, doubled or destroyed twice inside the runtime.
//
// Run: build-fuzz/tests/sync/fuzz/weft_fuzz_chan -max_total_time=60 (see .ci/run).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <memory>
#include <optional>
#include <vector>

#include "weft/weft.hpp"

namespace {

using value = std::unique_ptr<std::uint32_t>;
constexpr int kChans = 4;

[[noreturn]] void mismatch(const char* what, int op) {
  std::fprintf(stderr, "chan_fuzz: model mismatch at op %d: %s\n", op, what);
  std::abort();
}
#define CHECK(cond)                       \
  do {                                    \
    if (!(cond)) mismatch(#cond, opno);   \
  } while (0)

struct model {
  std::deque<std::uint32_t> q;
  std::size_t cap = 0;
  bool closed = false;
  bool can_send() const { return q.size() < cap; }      // no receiver is ever waiting here
  bool can_recv() const { return !q.empty() || closed; }
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  weft::options o;
  o.procs = 2;
  static weft::runtime* rt = new weft::runtime(o);  // lives for the process
  (void)rt;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  std::vector<weft::chan<value>> ch;
  model m[kChans];
  for (int k = 0; k < kChans; ++k) {
    m[k].cap = (data[0] >> (2 * k)) & 3;
    ch.emplace_back(m[k].cap);
  }
  std::uint32_t next = 1;
  int opno = 0;
  // A receive (try_recv, recv, a select's receive case) got v from the channel that mdl models:
  // it must be the model's oldest value, or nothing if the model has none (closed, or empty).
  auto received = [&opno](const std::optional<value>& v, model& mdl) {
    if (mdl.q.empty()) {
      CHECK(!v);
    } else {
      CHECK(v && *v && **v == mdl.q.front());
      mdl.q.pop_front();
    }
  };
  for (std::size_t i = 1; i + 1 < size; i += 2, ++opno) {
    std::uint8_t op = data[i], arg = data[i + 1];
    int k = arg % kChans;
    auto& c = ch[k];
    auto& mk = m[k];
    switch (op % 10) {
      case 0: {  // try_send
        std::uint32_t v = next++;
        try {
          bool ok = c.try_send(std::make_unique<std::uint32_t>(v));
          CHECK(!mk.closed);
          CHECK(ok == mk.can_send());
          if (ok) mk.q.push_back(v);
        } catch (const weft::closed_channel&) {
          CHECK(mk.closed);
        }
        break;
      }
      case 1: {  // try_recv
        received(c.try_recv(), mk);
        break;
      }
      case 2: {  // close
        try {
          c.close();
          CHECK(!mk.closed);
          mk.closed = true;
        } catch (const weft::closed_channel&) {
          CHECK(mk.closed);
        }
        break;
      }
      case 3: {  // recv, only where it cannot block
        if (!mk.can_recv()) break;
        received(c.recv(), mk);
        break;
      }
      case 4: {  // send, only where it cannot block
        if (!mk.closed && !mk.can_send()) break;
        std::uint32_t v = next++;
        try {
          c.send(std::make_unique<std::uint32_t>(v));
          CHECK(!mk.closed);
          mk.q.push_back(v);
        } catch (const weft::closed_channel&) {
          CHECK(mk.closed);
        }
        break;
      }
      case 5: {  // queries
        CHECK(c.size() == mk.q.size());
        CHECK(c.closed() == mk.closed);
        CHECK(c.capacity() == mk.cap);
        break;
      }
      case 6:
      case 7: {  // select: bit j of arg's high nibble: a case on channel j; op's bit 4: its direction
        std::uint32_t v = next++;
        bool with_timeout = op % 10 == 7;
        bool send_case[kChans];
        weft::chan<value> cs[kChans] = {nullptr, nullptr, nullptr, nullptr};
        for (int j = 0; j < kChans; ++j) {
          send_case[j] = (op >> (4 + j % 4)) & 1;
          if ((arg >> (4 + j)) & 1) cs[j] = ch[j];
        }
        std::optional<std::optional<value>> got;  // outer: the receive case ran
        auto r = [&](std::optional<value> x) { got.emplace(std::move(x)); };
        // Which cases could run, per the model.
        bool any_ready = false, closed_send = false;
        for (int j = 0; j < kChans; ++j) {
          if (!cs[j]) continue;
          if (send_case[j]) {
            closed_send |= m[j].closed;
            any_ready |= m[j].closed || m[j].can_send();
          } else {
            any_ready |= m[j].can_recv();
          }
        }
        std::size_t idx;
        try {
          // Case types are fixed at compile time, so channel j has two positions: a send (2j)
          // and a receive (2j+1), the unused one on a nil channel, which is never ready.
          weft::chan<value> nil = nullptr;
          auto on = [&](int j, bool send) -> const weft::chan<value>& { return send_case[j] == send ? cs[j] : nil; };
          auto run = [&](auto&& last) {
            return weft::select(weft::on_send(on(0, true), std::make_unique<std::uint32_t>(v)), weft::on_recv(on(0, false), r),
                                weft::on_send(on(1, true), std::make_unique<std::uint32_t>(v)), weft::on_recv(on(1, false), r),
                                weft::on_send(on(2, true), std::make_unique<std::uint32_t>(v)), weft::on_recv(on(2, false), r),
                                weft::on_send(on(3, true), std::make_unique<std::uint32_t>(v)), weft::on_recv(on(3, false), r),
                                std::forward<decltype(last)>(last));
          };
          if (with_timeout) idx = run(weft::on_timeout(std::chrono::microseconds(arg & 15), [] {}));
          else idx = run(weft::on_default([] {}));
        } catch (const weft::closed_channel&) {
          CHECK(closed_send);
          break;
        }
        if (idx == 8) {  // default / timeout
          CHECK(!any_ready);
          break;
        }
        int j = static_cast<int>(idx / 2);
        bool was_send = idx % 2 == 0;
        CHECK(cs[j]);
        CHECK(was_send == send_case[j]);
        if (was_send) {
          CHECK(!m[j].closed && m[j].can_send());
          m[j].q.push_back(v);
        } else {
          CHECK(m[j].can_recv());
          CHECK(got.has_value());
          received(*got, m[j]);
        }
        break;
      }
      case 8: {  // a goroutine sends; this thread receives (blocking on both sides if need be)
        if (mk.closed) break;
        std::uint32_t v = next++;
        auto t = weft::spawn([c, v]() mutable { c.send(std::make_unique<std::uint32_t>(v)); });
        mk.q.push_back(v);
        auto got = c.recv();
        CHECK(got && *got && **got == mk.q.front());
        mk.q.pop_front();
        t.join();
        break;
      }
      case 9: {  // a goroutine receives; this thread sends into an empty channel
        if (mk.closed || !mk.q.empty()) break;
        std::uint32_t v = next++;
        auto t = weft::spawn([c]() mutable { return c.recv(); });
        c.send(std::make_unique<std::uint32_t>(v));
        auto got = t.join();
        CHECK(got && *got && **got == v);
        break;
      }
    }
  }
  // Whatever is still buffered is destroyed with the last handle (leak-checked under ASan).
  for (int k = 0; k < kChans; ++k) CHECK(ch[k].size() == m[k].q.size());
  return 0;
}
