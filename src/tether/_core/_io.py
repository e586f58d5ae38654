"""Waiting for file descriptors, and waking the run loop from other threads.

The run loop's one blocking call is `IOManager.get_events(timeout)`: it
returns when an fd a task waits on is ready, when the timeout (the nearest
deadline; ``inf`` for none) passes, or when another thread calls
`wakeup_threadsafe`. On Linux
this is `select.epoll` in one-shot mode; elsewhere a `selectors` fallback.

Each fd has at most one reading and one writing task. A second task waiting
the same way gets `BusyResourceError`, because two readers of one socket
would race for the same bytes.

An fd may also be in one `FdWatchSet` (``_fd_watch.py``): a standing,
level-triggered interest that a face's event loop uses for its fd callbacks
(`tether.aio`'s ``add_reader``). A task's wait is one-shot (it ends when the
fd is ready); a watch stays until it is withdrawn. An fd with a watch is
registered level-triggered, for the watch's events and the waiting tasks'
together; one without is registered one-shot.

The public functions at the end (`wait_readable`, `wait_writable`,
`notify_closing`) find the calling thread's run and use its `IOManager`.

Threads: `get_events` may run in another thread than the run's (a guest
run waits for I/O in a worker thread, see _guest.py), while code on the
run's thread can still cancel a wait. So `get_events` only asks the OS and
translates its answer: every change to the run's bookkeeping (the waiters,
what is registered, waking tasks) happens in `process_events` and the waits
themselves, in the run's thread.
"""

from __future__ import annotations

import math
import select
import selectors
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import outcome

from ._exceptions import BusyResourceError, ClosedResourceError
from ._run_context import GLOBAL_RUN_CONTEXT, current_runner, outside_task_error
from ._traps import Abort, WaitTaskRescheduled, wait_on

if TYPE_CHECKING:
    from ._fd_watch import FdWatchSet
    from ._task import Task


class _HasFileno(Protocol):
    def fileno(self) -> int: ...


FdLike = int | _HasFileno


def _fileno(obj: FdLike) -> int:
    """The number `obj` stands for (an int, or what its ``fileno()``
    returns), with a clear error for anything else. May be negative."""
    if isinstance(obj, int):
        return obj
    fileno = getattr(obj, "fileno", None)
    if fileno is None:
        raise TypeError(f"expected a file descriptor (int) or an object with fileno(), got {obj!r}")
    fd = fileno()
    if not isinstance(fd, int):
        raise ValueError(f"invalid file descriptor {fd!r} (from {obj!r})")
    return fd


def fd_of(obj: FdLike) -> int:
    """The file descriptor number of `obj` (an int or anything with
    ``fileno()``), with a clear error for anything else."""
    fd = _fileno(obj)
    if fd < 0:
        raise ValueError(f"invalid file descriptor {fd!r} (from {obj!r}): is it closed?")
    return fd


#: Bytes read from the wakeup socket per ``recv`` while draining it: each
#: wakeup writes one byte, so one read usually takes them all.
_WAKEUP_DRAIN_CHUNK = 4096

#: Most ready fds one epoll wait reports; more stay ready for the next wait
#: (which the loop makes at once, with a zero timeout, if tasks run).
_MAX_EVENTS_PER_POLL = 1024
_INF = math.inf

#: What `SelectorIOManager.get_events` returns when the OS refused the wait
#: because a registered fd was closed: an "event" on fd -1, which no file
#: has, telling `process_events` to find and evict the closed fds.
_CLOSED_FD_SOMEWHERE = (-1, 0)


class _Waiters:
    """The tasks waiting on one file descriptor. Kept from the fd's first
    wait until it is closed (`notify_closing`) or refused by the poller, with
    its two traps built once, so that a wait allocates nothing."""

    __slots__ = (
        "_manager",
        "fd",
        "level_mask",
        "read_task",
        "read_trap",
        "registered",
        "watch",
        "watch_mask",
        "write_task",
        "write_trap",
    )

    _manager: IOManager
    #: The fd these are the waiters of.
    fd: int

    #: The task in `wait_readable` / `wait_writable` on the fd; None for
    #: none. (At most one each: a second one gets `BusyResourceError`.)
    read_task: Task | None
    write_task: Task | None
    #: Whether the backend has been told about the fd since it last forgot
    #: it (`IOManager._register` must then modify rather than add).
    registered: bool
    #: What a wait to read / to write yields (see `wait_on`).
    read_trap: WaitTaskRescheduled
    write_trap: WaitTaskRescheduled
    #: The `FdWatchSet` that watches the fd, and for what (`_READ_BIT`,
    #: `_WRITE_BIT`); None and 0 for none.
    watch: FdWatchSet | None
    watch_mask: int
    #: The mask the fd is registered with level-triggered (what the poller
    #: reports while it holds); 0 while its registration is one-shot or
    #: gone. Invariant: nonzero only while ``watch_mask`` is, or until the
    #: next `IOManager._apply` after the watch was withdrawn.
    level_mask: int

    def __init__(self, manager: IOManager, fd: int) -> None:
        self._manager = manager
        self.fd = fd
        self.read_task = None
        self.write_task = None
        self.registered = False
        self.watch = None
        self.watch_mask = 0
        self.level_mask = 0
        self.read_trap = WaitTaskRescheduled(self._abort_read)
        self.write_trap = WaitTaskRescheduled(self._abort_write)

    def _abort_read(self, _: Callable[[], Any]) -> Abort:
        self.read_task = None
        self._manager._after_abort(self)
        return Abort.SUCCEEDED

    def _abort_write(self, _: Callable[[], Any]) -> Abort:
        self.write_task = None
        self._manager._after_abort(self)
        return Abort.SUCCEEDED


def _drop_traps(waiters: _Waiters | None) -> None:
    """`waiters` left `IOManager._all` (no wait takes its traps again): drop
    them, which refer back to it (a cycle the garbage collector would have
    to find)."""
    if waiters is not None:
        del waiters.read_trap, waiters.write_trap


#: Bits of the readiness masks that the backends hand to `process_events`
#: (``flags``) and take in `_register` (``mask``): what a waiting task
#: wants, or what an fd is ready for. (Not the OS's own bits: each backend
#: translates.)
_READ_BIT = 1
_WRITE_BIT = 2
# (An `FdWatchSet` takes and reports them as the `selectors` event bits.)
assert (_READ_BIT, _WRITE_BIT) == (selectors.EVENT_READ, selectors.EVENT_WRITE)


class IOManager:
    """Common logic; subclasses supply the OS poller."""

    #: The name `IOStatistics.backend` reports.
    backend = "abstract"
    #: Whether `_forget` leaves the fd registered with the poller (so that
    #: a kept `_Waiters` stays ``registered``).
    _keeps_registrations = False

    #: The waiters of every fd some task waits on. Invariant: an fd's entry
    #: has at least one waiter (`_update` deletes an empty one); the run
    #: loop tests this dict's truth to know whether to poll at all.
    _waiters: dict[int, _Waiters]
    #: Every fd's `_Waiters`, kept between waits (see `_Waiters`).
    _all: dict[int, _Waiters]
    #: The run's own fds (`_own_fds`), which no task may wait on; set by
    #: the backend once they exist.
    _own: frozenset[int]
    #: The two ends of the wakeup socket pair: writing a byte to
    #: `_wakeup_send` (`wakeup_threadsafe`, or the C-level signal handler
    #: through `signal.set_wakeup_fd`) makes the poller return;
    #: `_wakeup_fd` is the receiving end's number, always registered.
    _wakeup_recv: socket.socket
    _wakeup_send: socket.socket
    _wakeup_fd: int

    def __init__(self) -> None:
        self._waiters = {}
        self._all = {}
        self._own = frozenset()
        self._wakeup_recv, self._wakeup_send = socket.socketpair()
        self._wakeup_recv.setblocking(False)
        self._wakeup_send.setblocking(False)
        self._wakeup_fd = self._wakeup_recv.fileno()

    # -- to be provided by the backend ---------------------------------------

    def _register(self, fd: int, mask: int, already: bool, level: bool) -> None:
        """Register `fd` for `mask`: one-shot, or level-triggered if
        `level`; `already` says whether it is registered now."""
        raise NotImplementedError

    def _unregister(self, fd: int) -> None:
        raise NotImplementedError

    def get_events(self, timeout: float) -> list[tuple[int, int]]:
        """Wait up to `timeout` seconds (``inf``: until woken) for events;
        return them as ``(fd, flags)`` for `process_events`."""
        raise NotImplementedError

    def _forget(self, fd: int) -> None:
        """Nobody waits on `fd` any more."""
        self._unregister(fd)

    def _drop(self, fd: int) -> None:
        """`fd` is about to be closed and has no waiters."""

    # -- shared --------------------------------------------------------------

    def close(self) -> None:
        self._wakeup_recv.close()
        self._wakeup_send.close()
        for waiters in self._all.values():
            _drop_traps(waiters)
        self._all.clear()
        self._waiters.clear()

    def wakeup_send_fileno(self) -> int:
        return self._wakeup_send.fileno()

    @property
    def has_waiters(self) -> bool:
        return bool(self._waiters)

    def wakeup_threadsafe(self) -> None:
        try:
            self._wakeup_send.send(b"\x00")
        except BlockingIOError:
            # The buffer is full, so a wakeup is pending already.
            pass

    #: Called with the signal numbers read from the wakeup socket (see
    #: `set_signal_listener`), or None.
    signal_listener: Callable[[bytes], object] | None = None
    #: Whether the run made its socket the signal wakeup fd.
    owns_signal_wakeup = False

    def drain_wakeup(self) -> None:
        # A short read took every byte there was: stop there rather than
        # make a second system call (and raise BlockingIOError) to learn
        # that the socket is empty. A byte written after it wakes the next
        # wait, as it should.
        recv = self._wakeup_recv.recv
        listener = self.signal_listener
        try:
            while True:
                data = recv(_WAKEUP_DRAIN_CHUNK)
                if listener is not None:
                    # (Thread wakeups write zeros; no signal has number 0.)
                    signals = data.replace(b"\x00", b"")
                    if signals:
                        try:
                            listener(signals)
                        except BaseException as exc:
                            GLOBAL_RUN_CONTEXT.runner.crash(
                                exc, f"signal listener {listener!r} raised"
                            )
                if len(data) < _WAKEUP_DRAIN_CHUNK:
                    break
        except BlockingIOError:
            pass

    #: Translates the flags `get_events` returns into `_READ_BIT` and
    #: `_WRITE_BIT` (indexed by the flags' low five bits), for a backend that
    #: returns the OS's own flags; None when they are translated already.
    _to_bits: tuple[int, ...] | None = None

    def process_events(self, events: list[tuple[int, int]]) -> None:
        runner = GLOBAL_RUN_CONTEXT.runner
        to_bits = self._to_bits
        all_waiters = self._waiters
        # Whether a watch set's ``on_ready`` hook may stand in for its task:
        # only when nothing else is runnable, so that what the hook does
        # comes where the task's step would have, first in the next batch
        # (and never with a scheduler, which orders every step).
        hooks_allowed = not runner.runq and runner.scheduler is None
        for fd, flags in events:
            waiters = all_waiters.get(fd)
            if waiters is None:
                # (The wakeup socket is never among the waiters.)
                if fd == self._wakeup_fd:
                    self.drain_wakeup()
                continue
            if to_bits is not None:
                flags = to_bits[flags & 31]
            # Errors and hang-ups wake both directions: the task then sees the
            # error from its own read or write call. (The waiter is tested
            # first: a watched fd, tether.aio's every fd, usually has none.)
            woke = False
            if waiters.write_task is not None and flags & ~_READ_BIT:
                runner.reschedule(waiters.write_task)
                waiters.write_task = None
                woke = True
            if waiters.read_task is not None and flags & ~_WRITE_BIT:
                runner.reschedule(waiters.read_task)
                waiters.read_task = None
                woke = True
            watch = waiters.watch
            if watch is not None:
                # Level-triggered: the registration stands; it changes only
                # if a woken task's interest went with it.
                ready = flags & waiters.watch_mask
                if ready:
                    # (Into the `FdWatchSet` directly: once per ready fd,
                    # which is usually not reported yet.)
                    reported = watch._ready
                    if fd in reported:
                        reported[fd] |= ready
                    else:
                        reported[fd] = ready
                    task = watch._task
                    if task is not None:
                        if hooks_allowed and watch._on_ready is not None:
                            if not watch._hook_pending:
                                watch._hook_pending = True
                                runner.ready_watches.append(watch)
                        else:
                            runner.reschedule(task)
                            watch._task = None
                if woke:
                    self._update(fd, waiters)
            elif waiters.read_task is None and waiters.write_task is None:
                # The one-shot registration disarmed itself (the selectors
                # backend unregistered it): nothing to tell the poller.
                del all_waiters[fd]
            else:
                self._update(fd, waiters)

    def _update(self, fd: int, waiters: _Waiters, joined: bool = False) -> None:
        """Make the poller watch `fd` for what its waiters want now. Called
        when a wait starts (`joined`), and when one ends (woken or
        cancelled) while the other direction still waits (or a watch
        stands)."""
        try:
            self._apply(fd, waiters, joined)
        except OSError as exc:
            self._fail_waiters(fd, waiters, exc)

    def _apply(self, fd: int, waiters: _Waiters, joined: bool = False) -> None:
        """`_update`, raising the poller's `OSError` if it refuses `fd`.
        A level-triggered registration that already has the mask is left
        alone, unless a task has just `joined`: then the poller is told
        anyway, in case the fd was closed and its number reused (the poller
        forgot the old file, and would never report the new one)."""
        mask = (
            (_READ_BIT if waiters.read_task is not None else 0)
            | (_WRITE_BIT if waiters.write_task is not None else 0)
            | waiters.watch_mask
        )
        if not mask:
            if waiters.level_mask:
                # A level-triggered registration would go on reporting the
                # fd: take it out of the poller.
                waiters.level_mask = 0
                waiters.registered = False
                self._unregister(fd)
            elif waiters.registered:
                self._forget(fd)
                waiters.registered = self._keeps_registrations
            if self._waiters.get(fd) is waiters:
                del self._waiters[fd]
            return
        if waiters.watch_mask:
            if mask == waiters.level_mask and not joined:
                return
            self._register(fd, mask, waiters.registered, True)
            waiters.level_mask = mask
        else:
            self._register(fd, mask, waiters.registered, False)
            waiters.level_mask = 0
        waiters.registered = True

    def _fail_waiters(self, fd: int, waiters: _Waiters, error: OSError) -> None:
        """The poller refused `fd` (it was closed without `notify_closing`,
        or is a kind of file it cannot watch): nobody can wait on it. Each
        waiter gets the OS error: raised here if it is the task calling (a
        wait that is starting), delivered as the outcome of its wait
        otherwise. This can run where raising would crash the run (in an
        abort function, or while the loop processes events), so it raises
        only into a waiter."""
        if self._waiters.get(fd) is waiters:
            del self._waiters[fd]
        if self._all.get(fd) is waiters:
            _drop_traps(self._all.pop(fd))
        self._unregister(fd)
        waiters.registered = False
        waiters.level_mask = 0
        # A watch just stops (as a closed fd leaves an epoll set); its
        # owner learns of a refused fd when it adds it (`set_watch`).
        waiters.watch = None
        waiters.watch_mask = 0
        runner = GLOBAL_RUN_CONTEXT.runner
        calling = runner.current_task
        raise_here = False
        for task in (waiters.read_task, waiters.write_task):
            if task is None:
                continue
            if task is calling:
                raise_here = True
            else:
                # One error object per task (each gets its own traceback).
                runner.reschedule(task, outcome.Error(OSError(error.errno, error.strerror)))
        waiters.read_task = waiters.write_task = None
        if raise_here:
            raise error

    def _own_fds(self) -> tuple[int, ...]:
        return (self._wakeup_fd, self._wakeup_send.fileno())

    def _wait_fd(self, obj: FdLike) -> int:
        """`obj`'s fd, checked as `fd_of` checks it (with one type test for
        the common cases, an int or a socket), and not one of the run's."""
        if type(obj) is int:
            fd = obj
        else:
            fileno = getattr(obj, "fileno", None)
            number = fileno() if fileno is not None else None
            # (`fd_of` raises the precise error for anything odd.)
            fd = number if type(number) is int else fd_of(obj)
        if fd < 0:
            fd_of(obj)  # raises the precise error
        if fd in self._own:
            raise ValueError(
                f"file descriptor {fd} belongs to the tether run itself (its wakeup "
                "socket); was your file closed before the run started, so that its "
                "number was reused?"
            )
        return fd

    def start_read_wait(self, obj: FdLike) -> WaitTaskRescheduled:
        """Make the current task the one waiting to read `obj`, and return
        the trap it then yields (``await wait_on(trap)``). Raises
        `BusyResourceError` if another task waits to read it already."""
        fd = self._wait_fd(obj)
        runner = GLOBAL_RUN_CONTEXT.runner
        task = runner.current_task
        if task is None:
            raise outside_task_error(runner)
        waiters = self._all.get(fd)
        if waiters is None:
            waiters = self._all[fd] = _Waiters(self, fd)
        elif waiters.read_task is not None:
            raise BusyResourceError(
                f"another task is already waiting to read from file descriptor {fd}"
            )
        waiters.read_task = task
        self._waiters[fd] = waiters
        self._arm(fd, waiters)
        return waiters.read_trap

    def start_write_wait(self, obj: FdLike) -> WaitTaskRescheduled:
        """As `start_read_wait`, for writing."""
        fd = self._wait_fd(obj)
        runner = GLOBAL_RUN_CONTEXT.runner
        task = runner.current_task
        if task is None:
            raise outside_task_error(runner)
        waiters = self._all.get(fd)
        if waiters is None:
            waiters = self._all[fd] = _Waiters(self, fd)
        elif waiters.write_task is not None:
            raise BusyResourceError(
                f"another task is already waiting to write to file descriptor {fd}"
            )
        waiters.write_task = task
        self._waiters[fd] = waiters
        self._arm(fd, waiters)
        return waiters.write_trap

    def _arm(self, fd: int, waiters: _Waiters) -> None:
        """Tell the poller what `waiters` (which the current task has just
        joined) want now; undo the join if that fails."""
        try:
            self._update(fd, waiters, True)
        except BaseException:
            # (An OS error has already cleared every waiter; see
            # `_fail_waiters`.)
            task = GLOBAL_RUN_CONTEXT.runner.current_task
            if waiters.read_task is task:
                waiters.read_task = None
            if waiters.write_task is task:
                waiters.write_task = None
            if (
                waiters.read_task is None
                and waiters.write_task is None
                and self._waiters.get(fd) is waiters
            ):
                del self._waiters[fd]
            raise

    def _after_abort(self, waiters: _Waiters) -> None:
        # A wait on the fd was cancelled: the poller watches what is left.
        if self._waiters.get(waiters.fd) is waiters:
            self._update(waiters.fd, waiters)

    async def wait_readable(self, obj: FdLike) -> None:
        await wait_on(self.start_read_wait(obj))

    async def wait_writable(self, obj: FdLike) -> None:
        await wait_on(self.start_write_wait(obj))

    def notify_closing(self, obj: FdLike) -> None:
        fd = _fileno(obj)
        if fd < 0:
            # Already closed (a socket object's fileno() is -1 then), or never
            # a file: nothing can be waiting on it, nothing to unregister.
            return
        _drop_traps(self._all.pop(fd, None))
        waiters = self._waiters.pop(fd, None)
        if waiters is None:
            # Nobody waits, but a registration may be kept for the next wait:
            # drop it before the fd goes away.
            self._drop(fd)
            return
        runner = GLOBAL_RUN_CONTEXT.runner
        for task in (waiters.read_task, waiters.write_task):
            if task is not None:
                # One error per task: an outcome can be unwrapped only once,
                # and each task deserves its own traceback.
                error = ClosedResourceError(
                    f"file descriptor {fd} was closed while a task waited on it"
                )
                runner.reschedule(task, outcome.Error(error))
        # A watch of the fd just stops, as it would in an epoll set.
        waiters.watch = None
        waiters.watch_mask = waiters.level_mask = 0
        if waiters.registered:
            self._unregister(fd)

    def set_watch(self, watch: FdWatchSet, obj: FdLike, mask: int) -> int:
        """Make `watch` watch `obj` for `mask` (`_READ_BIT`, `_WRITE_BIT`;
        0 withdraws it) and return its fd. Raises the poller's `OSError` if
        it refuses the fd (closed, or a kind it cannot watch), and
        `BusyResourceError` if another watch set watches it."""
        fd = self._wait_fd(obj)
        waiters = self._all.get(fd)
        if waiters is None:
            if not mask:
                return fd
            waiters = self._all[fd] = _Waiters(self, fd)
        elif waiters.watch is not watch:
            if not mask:
                # Not ours (any more): the fd was closed and is watched anew.
                return fd
            if waiters.watch is not None:
                raise BusyResourceError(
                    f"file descriptor {fd} is already watched by another FdWatchSet"
                )
        waiters.watch = watch if mask else None
        waiters.watch_mask = mask
        if mask:
            self._waiters[fd] = waiters
        elif self._waiters.get(fd) is not waiters:
            return fd
        try:
            self._apply(fd, waiters)
        except OSError as exc:
            # (Clears the watch, and hands the error to any waiting task.)
            self._fail_waiters(fd, waiters, exc)
            raise
        return fd

    def waiting_counts(self) -> tuple[int, int]:
        """How many tasks wait to read, and to write (`IOStatistics`)."""
        waiters = self._waiters.values()
        return sum(w.read_task is not None for w in waiters), sum(
            w.write_task is not None for w in waiters
        )


#: The epoll flags for a mask of `_READ_BIT` and `_WRITE_BIT`: one-shot
#: (a task's wait), and level-triggered (a watch, see `FdWatchSet`).
_EPOLL_FLAGS = (
    {
        _READ_BIT: select.EPOLLONESHOT | select.EPOLLIN,
        _WRITE_BIT: select.EPOLLONESHOT | select.EPOLLOUT,
        _READ_BIT | _WRITE_BIT: select.EPOLLONESHOT | select.EPOLLIN | select.EPOLLOUT,
    }
    if hasattr(select, "epoll")
    else {}
)
_EPOLL_LEVEL_FLAGS = (
    {
        _READ_BIT: select.EPOLLIN,
        _WRITE_BIT: select.EPOLLOUT,
        _READ_BIT | _WRITE_BIT: select.EPOLLIN | select.EPOLLOUT,
    }
    if hasattr(select, "epoll")
    else {}
)


class EpollIOManager(IOManager):
    """Linux: `select.epoll`, every registration one-shot."""

    backend = "epoll"
    _keeps_registrations = True

    #: The epoll object; the wakeup socket is registered in it for good.
    _epoll: select.epoll
    #: fds that stay in the epoll set between waits. A one-shot
    #: registration disarms itself when it fires, so keeping it costs
    #: nothing, and the next wait on the fd (the next read of a stream)
    #: re-arms it with one `modify` instead of `register` + `unregister`.
    #: Invariant: every fd registered in `_epoll` but the wakeup socket.
    _kept: set[int]

    def __init__(self) -> None:
        super().__init__()
        self._epoll = select.epoll()
        self._epoll.register(self._wakeup_fd, select.EPOLLIN)
        self._kept = set()
        self._own = frozenset(self._own_fds())

    def close(self) -> None:
        self._epoll.close()
        super().close()

    def _own_fds(self) -> tuple[int, ...]:
        return (*super()._own_fds(), self._epoll.fileno())

    def _register(self, fd: int, mask: int, already: bool, level: bool) -> None:
        flags = _EPOLL_LEVEL_FLAGS[mask] if level else _EPOLL_FLAGS[mask]
        kept = self._kept
        try:
            if already or fd in kept:
                try:
                    self._epoll.modify(fd, flags)
                except FileNotFoundError:
                    # The fd was closed (epoll dropped it) and its number
                    # reused by a new file: register that one.
                    self._epoll.register(fd, flags)
            else:
                try:
                    self._epoll.register(fd, flags)
                except FileExistsError:
                    self._epoll.modify(fd, flags)
                kept.add(fd)
        except OSError:
            kept.discard(fd)
            raise

    def _drop(self, fd: int) -> None:
        if fd in self._kept:
            self._unregister(fd)

    def _forget(self, fd: int) -> None:
        # Keep the registration (see `_kept`). If it is still armed because a
        # wait was cancelled, it fires at most once more, finds no waiter and
        # is ignored.
        pass

    def _unregister(self, fd: int) -> None:
        self._kept.discard(fd)
        try:
            self._epoll.unregister(fd)
        except (OSError, ValueError):
            # Already closed by the user: the kernel dropped it for us.
            pass

    #: epoll's flags (their low five bits: IN, PRI, OUT, ERR, HUP) as
    #: `_READ_BIT` / `_WRITE_BIT`; an error or hang-up is both.
    _to_bits = (
        tuple(
            (_READ_BIT if flags & (select.EPOLLIN | select.EPOLLPRI) else 0)
            | (_WRITE_BIT if flags & select.EPOLLOUT else 0)
            | (_READ_BIT | _WRITE_BIT if flags & (select.EPOLLERR | select.EPOLLHUP) else 0)
            for flags in range(32)
        )
        if hasattr(select, "epoll")
        else None
    )

    def get_events(self, timeout: float) -> list[tuple[int, int]]:
        # epoll's own flags: `process_events` translates them (`_to_bits`)
        # for the fds it looks at, with no list built here. No limit is -1:
        # CPython then computes no deadline around the call (about 0.2 µs).
        return self._epoll.poll(-1 if timeout == _INF else timeout, _MAX_EVENTS_PER_POLL)


def make_io_manager() -> IOManager:
    if hasattr(select, "epoll"):
        return EpollIOManager()
    from ._io_selectors import SelectorIOManager

    return SelectorIOManager()


async def wait_readable(fd: object) -> None:
    """Block until `fd` (an int or an object with ``fileno()``) is readable.

    Cancellable. Raises `BusyResourceError` if another task already waits to
    read it, `ClosedResourceError` if `notify_closing` is called for it while
    waiting, and the OS's `OSError` (EBADF) if it is not open: closed before
    the wait, or closed without `notify_closing` while a task waited on it
    in the other direction. `ValueError` for a negative fd (a closed socket
    object's)."""
    await wait_on(current_runner().io_manager.start_read_wait(fd))  # type: ignore[arg-type]


async def wait_writable(fd: object) -> None:
    """Block until `fd` is writable; otherwise like `wait_readable`."""
    await wait_on(current_runner().io_manager.start_write_wait(fd))  # type: ignore[arg-type]


def notify_closing(fd: object) -> None:
    """Call before closing `fd`: every task waiting on it wakes with
    `ClosedResourceError`. Not a checkpoint. A negative fd (a socket object
    that is already closed) is ignored: nothing can be waiting on it."""
    current_runner().io_manager.notify_closing(fd)  # type: ignore[arg-type]
