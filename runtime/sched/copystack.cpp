// SPDX-License-Identifier: Apache-2.0
// copystack.cpp — moving a goroutine's stack into a bigger (or, with pure copying, smaller)
// slot: Go's copystack (runtime/stack.go) without its pointer maps.
//
// The used part of the old stack, [sp, hi), is copied to the top of the new slot, and in the
// same pass every aligned word whose value lies in [sp, hi) is taken for a pointer into the
// stack and moved by the distance between the two tops (copy_adjust: scalar, AVX2 four words
// at a time, or under memcheck with the definedness bits carried across).  The goroutine's
// closure captures get the same treatment.  Then the old stack is freed — or kept
// inaccessible (quarantine.cpp), or under AddressSanitizer kept until the goroutine exits.
//
// Invariants: the goroutine is suspended (its saved context is sp) and nobody else touches its
// stack meanwhile (g0 of its own M does the copy); sp and hi are 16-byte aligned, so the used
// part is whole words; nothing below sp is live.
//
// The adjustment is conservative and so unsound for C++ (README, "Known limits"): plain data
// that happens to hold such a value is changed, and pointers held elsewhere (heap objects,
// other stacks, other threads) are not — which is why in_place is the default, pins forbid a
// copy, and quarantine makes a stale pointer fault instead of reading the next user's frames.
// Rejected: scanning the whole slot rather than [sp, hi) (move_stack says why).
#include <climits>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "runtime/diag/fatal.hpp"
#include "runtime/sched/grow.hpp"
#include "runtime/sched/pin.hpp"
#include "runtime/sched/quarantine.hpp"
#include "runtime/sched/sched.hpp"
#include "runtime/sched/switch.hpp"
#include "runtime/stack/valgrind.hpp"

namespace weft::detail {

namespace {

// Copies `words` words from src to dst, adding delta to every word that lies in
// [old_lo, old_lo + span): the copy and the pointer adjustment in one pass over the memory.
void copy_adjust_scalar(std::uintptr_t* __restrict dst, const std::uintptr_t* __restrict src, std::size_t words,
                        std::uintptr_t old_lo, std::uintptr_t span, std::uintptr_t delta) noexcept {
  for (std::size_t i = 0; i < words; ++i) {
    std::uintptr_t v = src[i];
    dst[i] = v + (v - old_lo < span ? delta : 0);
  }
}

#if defined(__x86_64__) && !defined(WEFT_SANITIZE_ADDRESS) && !defined(WEFT_SANITIZE_THREAD)
// Four words at a time.  AVX2 compares 64-bit lanes as signed, so both sides of the
// unsigned test (v - old_lo < span) are flipped by the sign bit first.
__attribute__((target("avx2"))) void copy_adjust_avx2(std::uintptr_t* __restrict dst,
                                                      const std::uintptr_t* __restrict src, std::size_t words,
                                                      std::uintptr_t old_lo, std::uintptr_t span,
                                                      std::uintptr_t delta) noexcept {
  const __m256i sign = _mm256_set1_epi64x(INT64_MIN);
  const __m256i lo = _mm256_set1_epi64x(static_cast<long long>(old_lo));
  const __m256i limit = _mm256_xor_si256(_mm256_set1_epi64x(static_cast<long long>(span)), sign);
  const __m256i add = _mm256_set1_epi64x(static_cast<long long>(delta));
  std::size_t i = 0;
  for (; i + 4 <= words; i += 4) {
    __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i));
    __m256i off = _mm256_xor_si256(_mm256_sub_epi64(v, lo), sign);
    __m256i in = _mm256_cmpgt_epi64(limit, off);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), _mm256_add_epi64(v, _mm256_and_si256(in, add)));
  }
  copy_adjust_scalar(dst + i, src + i, words - i, old_lo, span, delta);
}
#endif

void copy_adjust(std::uintptr_t* dst, const std::uintptr_t* src, std::size_t words, std::uintptr_t old_lo,
                 std::uintptr_t span, std::uintptr_t delta) noexcept {
#if defined(__x86_64__) && !defined(WEFT_SANITIZE_ADDRESS) && !defined(WEFT_SANITIZE_THREAD)
  static const bool avx2 = __builtin_cpu_supports("avx2");
  if (avx2) return copy_adjust_avx2(dst, src, words, old_lo, span, delta);
#endif
  copy_adjust_scalar(dst, src, words, old_lo, span, delta);
}

// copy_adjust under memcheck.  The used part of a stack holds bytes nobody wrote (padding,
// dead locals, the two spare bytes of the saved context's MXCSR word), and memcheck knows
// them for undefined.  Testing each word (v - old_lo < span) and adding to it would make it
// report the test, and make every word with an undefined byte wholly undefined in the copy —
// then report the context's restore (ldmxcsr in Boost's ontop_fcontext) and any branch on a
// copied local.  So each chunk's definedness is read first (VALGRIND_GET_VBITS), the chunk
// counts as defined while it is copied, and source and copy get the original bits back
// (VALGRIND_SET_VBITS): memcheck sees the moved frames as it saw them before.  The copy's
// range is first made addressable: its slot's previous user left it marked as popped frames.
__attribute__((noinline)) void copy_adjust_tracked(std::uintptr_t* dst, std::uintptr_t* src, std::size_t words,
                                                   std::uintptr_t old_lo, std::uintptr_t span,
                                                   std::uintptr_t delta) noexcept {
  vg::make_undefined(reinterpret_cast<std::uintptr_t>(dst), words * sizeof(std::uintptr_t));
  constexpr std::size_t kChunkWords = 128;  // 1 KiB of bits on the copying stack
  unsigned char vbits[kChunkWords * sizeof(std::uintptr_t)];
  for (std::size_t done = 0; done < words;) {
    const std::size_t n = std::min(words - done, kChunkWords), bytes = n * sizeof(std::uintptr_t);
    const bool tracked = vg::get_vbits(src + done, vbits, bytes);
    if (tracked) vg::make_defined(src + done, bytes);
    copy_adjust(dst + done, src + done, n, old_lo, span, delta);
    if (tracked) {
      vg::set_vbits(src + done, vbits, bytes);
      vg::set_vbits(dst + done, vbits, bytes);
    }
    done += n;
  }
}

}  // namespace

void move_stack(sched* s, m* mp, g* gp, const stack& fresh) noexcept {
  stack old = gp->stk;
  auto sp = reinterpret_cast<std::uintptr_t>(gp->ctx);
  std::size_t used = old.hi - sp;
  std::intptr_t delta = static_cast<std::intptr_t>(fresh.hi) - static_cast<std::intptr_t>(old.hi);
  std::uintptr_t new_sp = fresh.hi - used;
  // AddressSanitizer: the old frames' redzones are poisoned; a stack copy reads them all.
  // (The copy starts without poison: its frames lose their redzones until they return.)
  stack_reused(old.open_lo(), old.hi);
  stack_reused(fresh.lo, fresh.hi);
  // Only words that point into the used part, [sp, hi), are taken for pointers.  The
  // goroutine is suspended at sp (its saved context), so every object it can still reach on
  // this stack lies there — below lo too, if code without checks ran into the reserve, as sp
  // is then lower still — and nothing below sp is live (no red zone survives a call).  A
  // word whose value falls elsewhere in the slot can only be plain data, and such words are
  // common: libstdc++ leaves the unused bytes of a short std::string's buffer as they were,
  // often the top bytes of a dead pointer into this stack, so "21" (0x003132 in the low bytes)
  // reads as an address just past a 16 MiB boundary, which a slot straddling that boundary
  // holds.  Counting the whole slot, such a word was "adjusted" in about a third of the
  // processes running the -O0 split-stack grow test's pure-copy shrink case, and in 1-3% of
  // those running its copy cases ("469" and a 4 GiB boundary): "d21" became "d2\xb1" (issue
  // 22, item 8).  Within [sp, hi) the hazard remains (README, "Known limits"), but that is
  // the part in use, not the slot with its guard and free part.  sp and hi are 16-byte
  // aligned (the saved context; the slot's end), so `used` is whole words.
  if (__builtin_expect(vg::running(), 0))
    copy_adjust_tracked(reinterpret_cast<std::uintptr_t*>(new_sp), reinterpret_cast<std::uintptr_t*>(sp),
                        used / sizeof(std::uintptr_t), sp, used, static_cast<std::uintptr_t>(delta));
  else
    copy_adjust(reinterpret_cast<std::uintptr_t*>(new_sp), reinterpret_cast<const std::uintptr_t*>(sp),
                used / sizeof(std::uintptr_t), sp, used, static_cast<std::uintptr_t>(delta));
  // The goroutine's closure lives off the stack (in the G record, or on the heap), but its
  // captures are the goroutine's own: a mutable one may hold the address of a local.  Adjust
  // them as the stack's words are — writing only the words that change, so that a capture
  // another thread writes meanwhile (through a pointer it was given) is left alone.
  if (closure* c = gp->fn) {
    auto [data, len] = c->bytes();
    vg::make_defined(data, len);  // memcheck: the captures' padding is read on purpose, as in launch
    const auto first = (reinterpret_cast<std::uintptr_t>(data) + 7) & ~std::uintptr_t{7};
    const auto end = reinterpret_cast<std::uintptr_t>(data) + len;
    for (std::uintptr_t w = first; w + sizeof(std::uintptr_t) <= end; w += sizeof(std::uintptr_t)) {
      std::uintptr_t v;
      std::memcpy(&v, reinterpret_cast<const void*>(w), sizeof v);
      if (v - sp < used) {  // into the used part, as for the stack's words
        v += static_cast<std::uintptr_t>(delta);
        std::memcpy(reinterpret_cast<void*>(w), &v, sizeof v);
      }
    }
  }
  gp->ctx = reinterpret_cast<fcontext_t>(new_sp);
  gp->stk = fresh;
  s->st.stack_copies.fetch_add(1, std::memory_order_relaxed);
  s->st.stack_bytes_copied.fetch_add(used, std::memory_order_relaxed);
  if (*s->opts.quarantine && quarantine_moved(s, mp, gp, old, fresh)) return;
#if defined(WEFT_SANITIZE_ADDRESS)
  // AddressSanitizer: GCC keeps a frame's shadow address from its prologue to its epilogue,
  // so the frames that were live during the copy clear the *old* stack's shadow when they
  // return.  Were the old stack another goroutine's by then, that would wipe its frames'
  // redzones: keep it until this goroutine exits (a list threaded through the old stacks'
  // tops; release_kept_stacks frees them).  The same frames' use-after-scope marks land on
  // the copy and are never cleared: code whose stacks get copied is built with
  // -fno-sanitize-address-use-after-scope (tests/grow/CMakeLists.txt).
  stack* rec = record_at_top(old);
  std::memcpy(static_cast<void*>(&rec[1]), &gp->asan_moved_from, sizeof(stack*));
  gp->asan_moved_from = rec;
  return;
#endif
  s->stacks.free(old, cache_of(mp));
}

void copy_stack(sched* s, m* mp, g* gp, std::size_t new_size) noexcept {
  if (pinned(gp))
    fatal("goroutine %llu needs a %zu-byte stack but its %zu-byte slot is full and the stack is pinned "
          "(%u pins: a weft::stack_pin, a weft sync object on its stack, or a go([&]...) child still "
          "running), so it cannot be copied.  Raise WEFT_STACK_RESERVE (options::stack_reserve) to at "
          "least %zu so it grows in place, build the code with split-stack checks (WEFT_SPLIT_STACK / "
          "weft::split_stack: a pinned stack then grows by a new segment), or end the pin before "
          "recursing deeper",
          (unsigned long long)gp->id, new_size, s->stacks.capacity(gp->stk), pin_count(gp), new_size);
  stack fresh;
  try {
    fresh = s->stacks.alloc(new_size, cache_of(mp));
  } catch (const std::exception& e) {
    fatal("goroutine %llu cannot grow its stack to %zu bytes: %s", (unsigned long long)gp->id, new_size, e.what());
  }
  move_stack(s, mp, gp, fresh);
}

}  // namespace weft::detail
