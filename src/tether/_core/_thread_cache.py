"""The process-wide cache of worker threads behind `start_thread_soon`.

Starting an OS thread costs far more than handing a job to one that already
exists, so a worker that finished its job stays around, idle, for up to
`IDLE_TIMEOUT` seconds in case another job comes. There is one cache per
process, shared by every run (and usable with no run at all); how many
threads may work at once is decided above it (`to_thread.run_sync`'s
limiter), not here: the cache starts a new thread whenever none is idle.

Jobs wait in one queue (`ThreadCache._pending`), and a worker that has
just delivered a result looks there before it goes to sleep: with many
short jobs in flight, a few threads run them one after another without
being put to sleep and woken (and without fighting over the GIL) once per
job. A job must still never wait for another job to finish (a job may
block until another one runs), which the scouts guarantee.

Invariants (all under ``_lock``):

* A *scout* is a worker that will look at the queue before it runs
  anything that may block: one just woken to look (or just started), or
  one that finished its job and is delivering the result (``deliver`` must
  not block). ``_scouts`` counts them.
* Whenever the queue is not empty, ``_scouts >= 1``. `start_thread_soon`
  adds a scout (wakes an idle worker, or starts a thread) if there is
  none; a scout that takes a job and leaves others queued adds one before
  it runs its job if it was the last. So every queued job is taken by a
  thread that is not busy with another job.
* A worker is in the idle set exactly while it sleeps with no job and is
  no scout. Whoever removes it from the set (a submitter adding a scout,
  or the worker itself when its idle wait times out) owns it: the
  submitter wakes it as a scout, the worker exits. So no scout is ever an
  exiting worker.
* Idle workers are woken most-recently-idle first. Work concentrates on
  few threads, the others stay idle long enough to time out and exit.
* A worker becomes a scout *before* calling ``deliver``, so a job started
  from inside ``deliver`` (or by whoever ``deliver`` wakes) is queued for
  it (or another scout) rather than waking a sleeping thread.
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
from collections import deque
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

    __slots__ = ("_cache", "_default_name", "_thread", "_wake")

    #: The cache it takes jobs from.
    _cache: ThreadCache
    #: Held while the worker sleeps in the idle set; released to wake it as
    #: a scout. A Lock rather than an Event because acquiring it also
    #: re-arms it. Starts released: a new worker is a scout.
    _wake: threading.Lock
    #: The thread's name between jobs ("Tether thread N").
    _default_name: str
    #: The OS thread.
    _thread: threading.Thread

    def __init__(self, cache: ThreadCache) -> None:
        self._cache = cache
        self._wake = threading.Lock()
        self._default_name = f"Tether thread {next(_worker_numbers)}"
        self._thread = threading.Thread(target=self._work, name=self._default_name, daemon=True)
        self._thread.start()

    def _work(self) -> None:
        if set_os_thread_name is not None:
            set_os_thread_name(self._default_name)
        cache = self._cache
        while True:
            if self._wake.acquire(timeout=IDLE_TIMEOUT):
                # Woken as a scout: run queued jobs until the queue is empty
                # (then this worker is idle again).
                while self._run_next_job(cache):
                    pass
            elif cache._retire(self):
                return
            # Otherwise a submitter took this worker from the idle set just
            # as the wait timed out: its wake-up is on the way.

    def _run_next_job(self, cache: ThreadCache) -> bool:
        """Take the next queued job and run it; False if there was none.
        (The job is taken here, not by the loop in `_work`, so that no frame
        but this one holds it: `fn`, and the context and arguments it holds,
        are released before the result is delivered, so the waiting task
        never finds them still alive.)"""
        job = cache._next_job(self)
        if job is None:
            return False
        fn, deliver, name = job
        del job
        if name is not None:
            self._set_name(name)
        result = outcome.capture(fn)
        if name is not None:
            self._set_name(self._default_name)
        del fn
        cache._returning()
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
        return True

    def _set_name(self, name: str) -> None:
        self._thread.name = name
        if set_os_thread_name is not None:
            set_os_thread_name(name)


def check_thread_name(name: object, what: str, advice: str = "") -> None:
    """Raise `TypeError` unless `name` is a `str` or None (`what` names
    the argument in the message; `advice` follows it)."""
    if name is not None and not isinstance(name, str):
        raise TypeError(
            f"{what} must be a str or None, got {name!r} (a {type(name).__name__}){advice}"
        )


class ThreadCache:
    """A queue of jobs and the worker threads that run them; see the module
    docstring for how a job is guaranteed a thread that is not busy."""

    __slots__ = ("_idle_workers", "_lock", "_pending", "_scouts")

    #: Jobs handed over and not taken by a worker yet, oldest first.
    _pending: deque[_Job]
    #: Workers that will look at `_pending` before running anything that
    #: may block (see the module docstring).
    _scouts: int
    #: The sleeping workers, in the order they became idle (a dict for its
    #: order: ``popitem()`` takes the most recently idle one).
    _idle_workers: dict[_Worker, None]
    #: Guards all of the above (callers and workers are different threads).
    _lock: threading.Lock

    def __init__(self) -> None:
        self._pending = deque()
        self._scouts = 0
        self._idle_workers = {}
        self._lock = threading.Lock()

    def _take_scout(self) -> _Worker | None:
        """Under `_lock`: count one more scout and take an idle worker to
        wake as that scout; None means: start a new thread (outside the
        lock, since starting one waits for it)."""
        self._scouts += 1
        return self._idle_workers.popitem()[0] if self._idle_workers else None

    def _next_job(self, worker: _Worker) -> _Job | None:
        """For a scout: the next job to run, or None (the worker is idle
        from now on and must sleep)."""
        new_scout: _Worker | None
        with self._lock:
            self._scouts -= 1
            pending = self._pending
            if not pending:
                self._idle_workers[worker] = None
                return None
            job = pending.popleft()
            if not pending or self._scouts:
                return job
            # The others must not wait for this job to finish.
            new_scout = self._take_scout()
        try:
            _wake(self, new_scout)
        except Exception as exc:
            # No thread for the jobs still queued: they fail rather than
            # wait for this one. (This job runs: it has its thread.)
            self._scout_failed(exc)
        return job

    def _scout_failed(self, exc: BaseException, own: _Job | None = None) -> bool:
        """A new worker counted as a scout could not be started. Undo the
        count; if no scout is left, fail the queued jobs (hand `exc` to
        their ``deliver``) so that none waits for ever, except `own` (the
        caller's job). True if `own` was among them: the caller raises."""
        with self._lock:
            self._scouts -= 1
            if self._scouts:
                return False
            orphans = list(self._pending)
            self._pending.clear()
        own_orphaned = False
        for job in orphans:
            if job is own:
                own_orphaned = True
                continue
            try:
                job[1](outcome.Error(exc))
            except BaseException as deliver_exc:
                traceback.print_exception(deliver_exc)
        return own_orphaned

    def _returning(self) -> None:
        """A worker finished its job and will look at the queue next."""
        with self._lock:
            self._scouts += 1

    def _retire(self, worker: _Worker) -> bool:
        """For a worker whose idle wait timed out: True if it may exit (it
        was still idle, and now nobody can wake it)."""
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
        check_thread_name(name, "a worker thread's name")
        job: _Job = (fn, deliver, name)
        with self._lock:
            self._pending.append(job)
            if self._scouts:
                # A worker will look at the queue before anything else.
                return
            worker = self._take_scout()
        try:
            _wake(self, worker)
        except BaseException as exc:
            # (Only starting a thread can fail.) If this job is still
            # queued with nobody to take it, it never runs: the caller gets
            # the error. Jobs queued behind it get it through their
            # deliver; if a scout is left, it takes them all instead.
            if self._scout_failed(exc, job):
                raise

    def _forget_workers_after_fork(self) -> None:
        # In a forked child only the forking thread exists: the workers in
        # the idle set and the scouts are gone, the queued jobs with them
        # (their submitters are in the parent), and the lock may have been
        # held by one of them at the moment of the fork.
        self._pending = deque()
        self._scouts = 0
        self._idle_workers = {}
        self._lock = threading.Lock()


def _wake(cache: ThreadCache, worker: _Worker | None) -> None:
    """Wake `worker`, taken from the idle set as a scout, or start a new
    worker (a scout from birth) if None."""
    if worker is None:
        _Worker(cache)
    else:
        worker._wake.release()


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

    Worker threads are reused: one that finished a job runs a job that is
    already waiting, else waits up to `IDLE_TIMEOUT` seconds for another;
    an idle thread is used before a new one is started, the most recently
    idle first. A job never waits for another job to finish: if every
    thread is busy, a new one starts. The worker looks for its next job
    once `deliver` returns, so a job started from `deliver` runs in that
    same thread then (unless another worker looking for work takes it
    first). Consequently `fn` and `deliver` must leave thread-level state
    (`threading.local` values) as they found it.

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
