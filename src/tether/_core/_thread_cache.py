"""The process-wide cache of worker threads behind `start_thread_soon`.

Starting an OS thread costs far more than handing a job to one that already
exists, so a worker that finished its job stays around, idle, for up to
`IDLE_TIMEOUT` seconds in case another job comes. There is one cache per
process, shared by every run (and usable with no run at all); how many
threads may work at once is decided above it (`to_thread.run_sync`'s
limiter), not here: the cache starts a new thread whenever none is idle.

Invariants:

* A worker is in the idle set exactly while it has no job. Whoever removes
  it from the set (a caller of `start_thread_soon`, or the worker itself
  when its idle wait times out) owns it: a caller hands it exactly one job,
  the worker exits. So a job is never handed to a worker that is exiting.
* Idle workers are reused most-recently-idle first. Work concentrates on few
  threads, the others stay idle long enough to time out and exit.
* A worker marks itself idle *before* calling ``deliver``, so a job started
  from inside ``deliver`` (or by whoever ``deliver`` wakes) reuses it rather
  than starting a second thread.
* After `os.fork` the child process has none of the parent's threads; the
  cache forgets them there (`_forget_workers_after_fork`).

Worker threads carry their job's name while it runs, both as
`threading.Thread.name` and, where the platform has ``pthread_setname_np``,
as the OS-level thread name that tools such as ``ps -T``, ``top -H`` and
debuggers show (truncated to the OS limit, non-ASCII characters replaced by
``?``).
"""

from __future__ import annotations

import ctypes
import itertools
import os
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

import outcome

T = TypeVar("T")

#: Seconds an idle worker thread waits for a new job before it exits.
IDLE_TIMEOUT = 10.0

#: Longest OS thread name, in bytes without the terminating NUL, per platform
#: (Linux: TASK_COMM_LEN - 1; macOS: MAXTHREADNAMESIZE - 1).
OS_THREAD_NAME_LIMITS = {"linux": 15, "darwin": 63}


# ---------------------------------------------------------------------------
# OS-level thread names


def _os_thread_namer() -> Callable[[str], None] | None:
    """A function that gives the *calling* thread an OS-level name, or None
    where this platform (or this libc) offers no way to do it."""
    platform = "linux" if sys.platform.startswith("linux") else sys.platform
    limit = OS_THREAD_NAME_LIMITS.get(platform)
    if limit is None:
        return None
    try:
        # The C library is already loaded into the process: look the symbols
        # up there rather than searching the file system for libpthread.
        # Through PyDLL, which keeps the GIL during the call: naming a thread
        # is a quick system call that never blocks, and a worker names
        # itself twice per job; giving the GIL up around it would let every
        # other thread that wants the GIL (the run loop, other workers) take
        # it away in the middle of the job, several thread switches per job.
        libc = ctypes.PyDLL(None)
        setname = libc.pthread_setname_np
        pthread_self = libc.pthread_self
    except (OSError, AttributeError, TypeError):
        return None
    setname.restype = ctypes.c_int
    pthread_self.restype = ctypes.c_void_p
    pthread_self.argtypes = []

    def encode(name: str) -> bytes:
        return name.encode("ascii", errors="replace")[:limit]

    if platform == "darwin":
        # macOS only lets a thread name itself, and takes just the name.
        setname.argtypes = [ctypes.c_char_p]

        def set_own_name(name: str) -> None:
            setname(encode(name))

    else:
        setname.argtypes = [ctypes.c_void_p, ctypes.c_char_p]

        def set_own_name(name: str) -> None:
            setname(pthread_self(), encode(name))

    return set_own_name


#: Names the calling thread at the OS level; None where that is unavailable.
set_os_thread_name = _os_thread_namer()


# ---------------------------------------------------------------------------
# Workers and the cache

_worker_numbers = itertools.count()

# fn, deliver, and the name to use while fn runs (None: keep the default).
_Job = tuple[Callable[[], Any], Callable[[outcome.Outcome[Any]], object], "str | None"]


class _Worker:
    """One worker thread of the cache."""

    __slots__ = ("_cache", "_default_name", "_job", "_thread", "_wake")

    #: The cache it returns to when idle.
    _cache: ThreadCache
    #: The job handed to it and not started yet; None otherwise. Written by
    #: whoever took the worker from the idle set, before releasing `_wake`.
    _job: _Job | None
    #: Held while the worker has no job; released to hand it one. A Lock
    #: rather than an Event because acquiring it also re-arms it.
    _wake: threading.Lock
    #: The thread's name between jobs ("Tether thread N").
    _default_name: str
    #: The OS thread.
    _thread: threading.Thread

    def __init__(self, cache: ThreadCache) -> None:
        self._cache = cache
        self._job = None
        self._wake = threading.Lock()
        self._wake.acquire()
        self._default_name = f"Tether thread {next(_worker_numbers)}"
        self._thread = threading.Thread(target=self._work, name=self._default_name, daemon=True)
        self._thread.start()

    def _work(self) -> None:
        if set_os_thread_name is not None:
            set_os_thread_name(self._default_name)
        while True:
            if self._wake.acquire(timeout=IDLE_TIMEOUT):
                self._run_job()
            elif self._cache._retire(self):
                return
            # Otherwise a caller took this worker from the idle set just as
            # the wait timed out: its job is on the way, wait for it.

    def _run_job(self) -> None:
        # In a method of its own so that the job's objects (fn, its result,
        # the context it holds) are released when it returns, not kept alive
        # by this frame until the next job arrives.
        job = self._job
        assert job is not None
        self._job = None
        fn, deliver, name = job
        del job
        if name is not None:
            self._set_name(name)
        result = outcome.capture(fn)
        if name is not None:
            self._set_name(self._default_name)
        del fn
        self._cache._idle(self)
        try:
            deliver(result)
        except BaseException as exc:
            # Nobody to hand the error to; don't lose it.
            print(
                f"tether: exception while delivering result of a job in thread "
                f"{self._thread.name!r} (deliver functions must not raise)",
                file=sys.stderr,
            )
            traceback.print_exception(exc)

    def _set_name(self, name: str) -> None:
        self._thread.name = name
        if set_os_thread_name is not None:
            set_os_thread_name(name)


class ThreadCache:
    """A set of idle worker threads; `start_thread_soon` hands each job to
    the most recently idle one, or to a new thread if none is idle."""

    __slots__ = ("_idle_workers", "_lock")

    #: The workers without a job, in the order they became idle (a dict
    #: for its order: ``popitem()`` takes the most recently idle one).
    #: Invariant: see the module docstring (in it exactly while idle).
    _idle_workers: dict[_Worker, None]
    #: Guards `_idle_workers` (callers and workers are different threads).
    _lock: threading.Lock

    def __init__(self) -> None:
        self._idle_workers = {}
        self._lock = threading.Lock()

    def _idle(self, worker: _Worker) -> None:
        with self._lock:
            self._idle_workers[worker] = None

    def _retire(self, worker: _Worker) -> bool:
        """For a worker whose idle wait timed out: True if it may exit (it
        was still idle, and now nobody can hand it a job)."""
        with self._lock:
            if worker in self._idle_workers:
                del self._idle_workers[worker]
                return True
            return False

    def start_thread_soon(
        self,
        fn: Callable[[], T],
        deliver: Callable[[outcome.Outcome[T]], object],
        name: str | None = None,
    ) -> None:
        # Checked here, in the caller's thread: a bad name found by the
        # worker would kill it before `deliver` runs, and the caller would
        # wait for a result that never comes.
        if name is not None and not isinstance(name, str):
            raise TypeError(
                f"a worker thread's name must be a str or None, got {name!r} "
                f"(a {type(name).__name__})"
            )
        with self._lock:
            worker = self._idle_workers.popitem()[0] if self._idle_workers else None
        if worker is None:
            worker = _Worker(self)
        worker._job = (fn, deliver, name)
        worker._wake.release()

    def _forget_workers_after_fork(self) -> None:
        # In a forked child only the forking thread exists: the workers in
        # the idle set are gone, and the lock may have been held by one of
        # them at the moment of the fork.
        self._idle_workers = {}
        self._lock = threading.Lock()


_THREAD_CACHE = ThreadCache()

if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_THREAD_CACHE._forget_workers_after_fork)


def start_thread_soon(
    fn: Callable[[], T],
    deliver: Callable[[outcome.Outcome[T]], object],
    name: str | None = None,
) -> None:
    """Call ``deliver(outcome.capture(fn))`` in a worker thread, soon.

    A low-level building block (`tether.to_thread.run_sync` is built on it)
    that needs no tether run: it may be called from any thread, several at
    once. It returns at once; `fn` typically blocks, and `deliver` hands its
    `outcome.Outcome` to whoever waits for it.

    Worker threads are reused: one that finished a job waits up to
    `IDLE_TIMEOUT` seconds for another, and an idle thread is used before a
    new one is started, the most recently idle first. The worker counts as
    idle while `deliver` runs, so a job started from `deliver` runs in the
    same thread once `deliver` returns. Consequently `fn` and `deliver` must
    leave thread-level state (`threading.local` values) as they found it.

    Worker threads are daemon threads: they do not keep the process alive.
    If `fn` must finish, keep the main thread alive until `deliver` is
    called.

    Args:
      fn: a synchronous callable taking no arguments; may block.
      deliver: a synchronous callable taking the outcome of `fn`. It runs in
        the worker thread and must not block. If it raises, the error is
        printed to stderr with its traceback (there is nobody else to give
        it to) and the worker carries on.
      name: the thread's name while `fn` runs, as `threading.Thread.name`
        and, where supported, as the OS-level thread name; default: the
        worker's own name, ``"Tether thread N"``.

    Cancellation: not applicable; this is synchronous and never blocks. A
    job cannot be cancelled once submitted.
    """
    _THREAD_CACHE.start_thread_soon(fn, deliver, name)
