# SPDX-License-Identifier: Apache-2.0
# weft.py — gdb commands for weft programs (issue 15, part 2): `info goroutines` lists every
# live goroutine, `goroutine N bt` prints a goroutine's backtrace, `goroutine N CMD` runs any
# gdb command with the goroutine's innermost frame selected.  Loaded by hand (`source
# share/weft/gdb/weft.py`) or automatically from the program's .debug_gdb_scripts section
# (tools/gdb/embed.py puts this file there).  Works on a live process and on a core file.
#
# Design note.
#   What it reads: weft::detail::g_current (the running sched, in an anonymous namespace of sched.cpp, a std::atomic<sched*>), the
#   list sched::allg linked by g::all_link, and per g: id, status, wait_reason, ctx; sched::allm
#   and m::curg / m::thread to tell which thread runs a running goroutine.  It needs weft's
#   debug info (any -g build; RelWithDebInfo by default).  It takes no lock: it reads a
#   stopped process, so a record being linked or unlinked at that moment may be missed.
#   Optional fields (created_pc, wait_since_ns) are shown when the g in the program has them.
#   Layout it assumes: a std::atomic<T> holds its T at offset 0 (libstdc++), a
#   std::unique_ptr<m> is one pointer, and the saved context of a goroutine that is not
#   running is the x86_64 frame of arch/x86_64/switch_x86_64_sysv_elf_gas.S (Boost.Context
#   1.74's): ctx+0x08 r12, +0x10 r13, +0x18 r14, +0x20 r15, +0x28 rbx, +0x30 rbp, +0x38 the
#   return address, and the resumed caller's rsp is ctx+0x40.
#   How it shows a parked goroutine's frames: Go's src/runtime/runtime-gdb.py (golang/go)
#   writes $pc and $sp, runs the command and writes them back; gdb cannot write registers of a
#   core file, and writing them in a live process changes the process.  Here a frame unwinder
#   (gdb's Python unwinder API, "Unwinding Frames in Python" in gdb's manual) instead says
#   that the caller of the selected thread's innermost frame is the goroutine's saved context;
#   gdb's own CFI unwinding then walks the goroutine's stack from there.  So the goroutine's
#   frames are gdb's frames #1 and up while a command runs; `goroutine N bt` numbers them
#   from #0.  Nothing in the inferior is written.
#   What it cannot do: gdb before 12 (no PendingFrame.level()); other architectures (x86_64
#   only); a goroutine that has not run yet has no frames (its ctx is null); with
#   -fsplit-stack, frames on an older stack segment are reached only if the CFI of __morestack
#   leads there; a running goroutine is shown through the thread running it (gdb's thread
#   list), found by its pthread_t.  A core written by gcore lacks stacks guarded by
#   MADV_GUARD_INSTALL (tests/gdb/gdb_test.sh says why): take it with WEFT_GUARD=mprotect.
import gdb
import gdb.unwinder

_RUNTIME_PREFIXES = ("weft::", "boost::context::", "weft_switch", "jump_fcontext", "ontop_fcontext")


def _u64(value):
    return int(value.cast(gdb.lookup_type("unsigned long")))


def _has_field(value, name):
    return any(f.name == name for f in value.type.strip_typedefs().fields())


def _atomic_load(value, type_name):
    """The T inside a std::atomic<T> (at offset 0), without libstdc++'s internals."""
    return value.address.cast(gdb.lookup_type(type_name).pointer()).dereference()


_G_CURRENT_NAMES = ("weft::detail::(anonymous namespace)::g_current", "weft::detail::g_current")


def _current_sched():
    cur = None
    for name in _G_CURRENT_NAMES:  # in an anonymous namespace today: a static symbol
        sym = gdb.lookup_static_symbol(name) or gdb.lookup_global_symbol(name)
        if sym is not None:
            cur = sym.value()
            break
    if cur is None:
        raise gdb.GdbError("weft: no symbol weft::detail::g_current: not a weft program, or no debug info")
    s = cur.address.cast(gdb.lookup_type("weft::detail::sched").pointer().pointer()).dereference()
    if _u64(s) == 0:
        raise gdb.GdbError("weft: no runtime is running (weft::detail::g_current is null)")
    return s


def _goroutines(s):
    gp = s["allg"]
    seen = 0
    while _u64(gp) != 0 and seen < 10_000_000:
        yield gp
        gp = gp["all_link"]
        seen += 1


def _status_name(gp):
    st = _atomic_load(gp["status"], "weft::detail::gstatus")
    return str(st).split("::")[-1]


def _wait_reason(gp):
    try:
        r = gp["wait_reason"]
        return r.string() if _u64(r) else ""
    except gdb.error:
        return "?"


def _threads_by_pthread():
    out = {}
    for t in gdb.selected_inferior().threads():
        try:
            out[int.from_bytes(t.handle(), "little")] = t
        except (gdb.error, RuntimeError, TypeError):
            pass
    return out


def _running_threads(s):
    """{g address: gdb.InferiorThread or pthread_t} for each M running a goroutine."""
    ms = s["allm"]["_M_impl"]
    mptr = gdb.lookup_type("weft::detail::m").pointer()
    first = ms["_M_start"].cast(mptr.pointer())
    n = (_u64(ms["_M_finish"]) - _u64(ms["_M_start"])) // mptr.sizeof
    by_pthread = _threads_by_pthread()
    out = {}
    for i in range(min(n, 100_000)):
        mp = (first + i).dereference()
        if _u64(mp) == 0 or _u64(mp["curg"]) == 0:
            continue
        pthread = _u64(mp["thread"]["_M_id"]["_M_thread"])
        out[_u64(mp["curg"])] = by_pthread.get(pthread, pthread)
    return out


def _find(s, goid):
    for gp in _goroutines(s):
        if int(gp["id"]) == goid and _status_name(gp) != "dead":
            return gp
    raise gdb.GdbError("weft: no live goroutine %d" % goid)


class _FrameId:
    """A frame id as the unwinder API takes it (gdb.unwinder.FrameId is gdb 14's; 13 has none)."""

    def __init__(self, sp, pc):
        self.sp, self.pc = sp, pc


class _SavedContextUnwinder(gdb.unwinder.Unwinder):
    """While armed with a goroutine's ctx: the caller of the frame at `level` is that context."""

    def __init__(self):
        super().__init__("weft-goroutine")
        self.ctx = 0
        self.level = 0

    def __call__(self, pending_frame):
        if not self.ctx or pending_frame.level() != self.level:
            return None
        ctx = self.ctx
        word = gdb.lookup_type("unsigned long").pointer()
        regs = {name: gdb.Value(ctx + off).cast(word).dereference()
                for name, off in (("r12", 0x08), ("r13", 0x10), ("r14", 0x18), ("r15", 0x20),
                                  ("rbx", 0x28), ("rbp", 0x30), ("rip", 0x38))}
        # The frame id's stack address lies below the goroutine's frames, so gdb sees its
        # frames as outer (older) ones, as they would be on one stack.
        info = pending_frame.create_unwind_info(_FrameId(gdb.Value(ctx), pending_frame.read_register("rip")))
        for name, value in regs.items():
            info.add_saved_register(name, value)
        info.add_saved_register("rsp", gdb.Value(ctx + 0x40))
        return info


_unwinder = _SavedContextUnwinder()
gdb.unwinder.register_unwinder(None, _unwinder, replace=True)


class _goroutine_frames:
    """Context manager: gdb's frames above the selected thread's innermost real frame are the
    goroutine's (saved context `ctx`); yields the first of them."""

    def __init__(self, ctx):
        self.ctx = ctx

    def __enter__(self):
        self.saved = gdb.selected_frame()
        f, level = gdb.newest_frame(), 0
        while f.type() == gdb.INLINE_FRAME:  # the unwinder sees real frames only
            f, level = f.older(), level + 1
        _unwinder.ctx, _unwinder.level = self.ctx, level
        gdb.invalidate_cached_frames()
        f = gdb.newest_frame()
        for _ in range(level + 1):
            f = f.older()
        return f

    def __exit__(self, *exc):
        _unwinder.ctx = 0
        gdb.invalidate_cached_frames()
        try:
            self.saved.select()
        except (gdb.error, RuntimeError):
            pass
        return False


def _where(frame):
    name = frame.name() or "??"
    sal = frame.find_sal()
    if sal.symtab is not None:
        return "%s (%s:%d)" % (name, sal.symtab.filename.rsplit("/", 1)[-1], sal.line)
    return "%s (0x%x)" % (name, frame.pc())


def _first_user_frame(frame, limit=64):
    """The first frame outside weft's runtime, or the innermost if all are inside."""
    top = frame
    while frame is not None and limit > 0:
        if not (frame.name() or "").startswith(_RUNTIME_PREFIXES):
            return frame
        try:
            frame = frame.older()
        except gdb.error:
            break
        limit -= 1
    return top


def _thread_label(t):
    if isinstance(t, gdb.InferiorThread):
        return "thread %d (LWP %d)" % (t.num, t.ptid[1])
    return "pthread 0x%x" % t


class InfoGoroutines(gdb.Command):
    """List weft's live goroutines: id, state, what it waits for, and where it is.
"Where" is the innermost frame outside weft's runtime.  `*` marks a running goroutine, with
the thread running it."""

    def __init__(self):
        super().__init__("info goroutines", gdb.COMMAND_STACK, gdb.COMPLETE_NONE)

    def invoke(self, arg, from_tty):
        s = _current_sched()
        running = _running_threads(s)
        print("  %-6s %-9s %-14s %s" % ("Id", "State", "Wait reason", "Where"))
        for gp in _goroutines(s):
            state = _status_name(gp)
            if state == "dead":
                continue
            thread = running.get(_u64(gp))
            where = "(not started)"
            try:
                if thread is not None and isinstance(thread, gdb.InferiorThread):
                    where = _where_on_thread(thread)
                elif _u64(gp["ctx"]):
                    with _goroutine_frames(_u64(gp["ctx"])) as f:
                        where = _where(_first_user_frame(f))
            except gdb.error as e:
                where = "(%s)" % e
            extra = ""
            if thread is not None:
                extra += "  [on %s]" % _thread_label(thread)
            if _has_field(gp, "created_pc") and _u64(gp["created_pc"]):
                block = gdb.block_for_pc(_u64(gp["created_pc"]))
                fn = block.function if block is not None else None
                extra += "  created by %s" % (fn.print_name if fn is not None else hex(_u64(gp["created_pc"])))
            if _has_field(gp, "wait_since_ns") and state == "waiting" and _u64(gp["wait_since_ns"]):
                extra += "  waiting since %.3fs (monotonic)" % (_u64(gp["wait_since_ns"]) / 1e9)
            reason = _wait_reason(gp) if state == "waiting" else ""
            print("%s %-6d %-9s %-14s %s%s" % ("*" if thread is not None else " ", int(gp["id"]), state,
                                                reason or "-", where, extra))


def _where_on_thread(thread):
    saved_thread, saved_frame = gdb.selected_thread(), gdb.selected_frame()
    thread.switch()
    try:
        return _where(_first_user_frame(gdb.newest_frame()))
    finally:
        saved_thread.switch()
        saved_frame.select()


def _print_backtrace(frame, limit=200):
    n = 0
    while frame is not None and n < limit:
        pc = "" if frame.type() == gdb.INLINE_FRAME else "0x%016x in " % frame.pc()
        sal = frame.find_sal()
        at = " at %s:%d" % (sal.symtab.filename, sal.line) if sal.symtab is not None else ""
        print("#%-3d %s%s%s" % (n, pc, frame.name() or "??", at))
        try:
            frame = frame.older()
        except gdb.error as e:
            print("(%s)" % e)
            break
        n += 1


class Goroutine(gdb.Command):
    """Run a command in the context of goroutine N.
Usage: goroutine N bt        its backtrace, numbered from #0
       goroutine N CMD       CMD with its innermost frame selected (gdb numbers that frame #1)
A running goroutine's command runs on the thread running it."""

    def __init__(self):
        super().__init__("goroutine", gdb.COMMAND_STACK, gdb.COMPLETE_NONE)

    def invoke(self, arg, from_tty):
        parts = arg.split(None, 1)
        if len(parts) != 2 or not parts[0].isdigit():
            raise gdb.GdbError("usage: goroutine N bt | goroutine N CMD")
        goid, cmd = int(parts[0]), parts[1].strip()
        s = _current_sched()
        gp = _find(s, goid)
        thread = _running_threads(s).get(_u64(gp))
        if thread is not None:
            if not isinstance(thread, gdb.InferiorThread):
                raise gdb.GdbError("weft: goroutine %d runs on %s, which gdb does not list"
                                   % (goid, _thread_label(thread)))
            saved = gdb.selected_thread()
            print("goroutine %d is running on %s" % (goid, _thread_label(thread)))
            thread.switch()
            try:
                gdb.execute(cmd, from_tty)
            finally:
                saved.switch()
            return
        ctx = _u64(gp["ctx"])
        if not ctx:
            raise gdb.GdbError("weft: goroutine %d has not run yet: it has no frames" % goid)
        with _goroutine_frames(ctx) as f:
            if cmd in ("bt", "backtrace", "where"):
                _print_backtrace(f)
            else:
                f.select()
                gdb.execute(cmd, from_tty)


InfoGoroutines()
Goroutine()
