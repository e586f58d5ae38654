"""File-descriptor callbacks: the loop's `add_reader` / `add_writer`.

asyncio's selector loop keeps, per file descriptor, at most one reader and
one writer callback in a `selectors` selector (epoll on Linux, kqueue on the
BSDs and macOS), and each iteration calls the callbacks of the fds that are
ready. tether.aio keeps the registrations in a table of its own (they live
at loop level, from one run of the loop to the next) and, while the loop
runs a segment, has the run's own poller watch them through a
`lowlevel.FdWatchSet`: level-triggered, as a selector's are. One kernel
task, the *watcher*, waits on the set and runs the callbacks of the fds
that are ready, in its own kernel step: all the I/O callbacks that became
ready together run together, as in asyncio's iteration, and they cost the
kernel one wakeup rather than one per fd, with no poller of the loop's own
to ask. When nothing else is runnable (a loop that waits for I/O, the
common case), the set's ``on_ready`` hook runs them instead, straight from
the run loop, and the watcher is not woken at all: the same callbacks in
the same place in the order, without the task switch.

The edge cases are asyncio's epoll selector's: a file closed while
registered stops being reported (the poller drops it; its callback is never
called again; the registration stays until `remove_reader` /
`remove_writer`, which find it by the file object even once ``fileno()``
says -1); registering a closed fd raises `OSError` (EBADF); removing a
registration takes the fd out of the poller at once, so the caller can
close it. Between segments a registration is remembered with the identity
of its file (device and inode); the next segment watches it again only if
the fd still names that file, so that a closed fd whose number was reused
does not call the old callback for a new file.

Invariants: ``_registrations`` maps each registered fd to its
`_Registration`, whose ``reader`` and ``writer`` are Handles or None, not
both None. While a segment runs, ``_watch_set`` is its `FdWatchSet` and
watches every registration that is not ``dropped``, for the directions that
have a handle.
"""

from __future__ import annotations

import os
import selectors
from asyncio import events
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import tether

from .. import lowlevel
from ._callbacks import run_callbacks

if TYPE_CHECKING:
    from ._loop import TetherEventLoop

#: Directions: a registration's ``reader`` or ``writer``.
READER = 0
WRITER = 1
_EVENT_READ = selectors.EVENT_READ
_EVENT_WRITE = selectors.EVENT_WRITE


class _Registration:
    """One fd's callbacks."""

    __slots__ = ("dropped", "fd", "fileobj", "identity", "reader", "writer")

    def __init__(self, fileobj: Any, fd: int) -> None:
        self.fileobj = fileobj
        self.fd = fd
        self.reader: Any = None
        self.writer: Any = None
        #: The poller no longer reports the fd (it was found closed): it is
        #: not watched again until a callback is registered anew.
        self.dropped = False
        #: ``(st_dev, st_ino)`` of the file, taken when the loop is not
        #: running (see the module docstring); None when unknown.
        self.identity: tuple[int, int] | None = None

    @property
    def events(self) -> int:
        return (_EVENT_READ if self.reader is not None else 0) | (
            _EVENT_WRITE if self.writer is not None else 0
        )


def _identity(fd: int) -> tuple[int, int] | None:
    try:
        status = os.fstat(fd)
    except OSError:
        return None
    return (status.st_dev, status.st_ino)


def _fd_of(fileobj: Any) -> int:
    """The fd `fileobj` names (as `selectors` finds it); `ValueError` if it
    names none."""
    if isinstance(fileobj, int):
        fd = fileobj
    else:
        try:
            fd = int(fileobj.fileno())
        except (AttributeError, TypeError, ValueError):
            raise ValueError(f"Invalid file object: {fileobj!r}") from None
    if fd < 0:
        raise ValueError(f"Invalid file descriptor: {fd}")
    return fd


class Selector:
    """The fd registrations of one loop, and the task that watches them."""

    def __init__(self, loop: TetherEventLoop) -> None:
        self._loop = loop
        self._registrations: dict[int, _Registration] = {}
        self._watch_set: lowlevel.FdWatchSet | None = None
        self._scope: tether.CancelScope | None = None

    # -- the loop's run --------------------------------------------------------

    def start(self, nursery: tether.Nursery) -> None:
        """A segment starts (in its run): watch the registrations."""
        watch_set = self._watch_set = lowlevel.FdWatchSet(on_ready=self._run_ready)
        for registration in list(self._registrations.values()):
            if registration.dropped:
                continue
            if registration.identity != _identity(registration.fd):
                # Closed since the last segment (or its number now names
                # another file): as epoll would have, forget it.
                registration.dropped = True
                continue
            try:
                watch_set.watch(registration.fd, registration.events)
            except (OSError, ValueError):
                registration.dropped = True
        self._scope = tether.CancelScope()
        nursery.start_soon(
            self._watch_ready, self._scope, watch_set, name="tether.aio fd callbacks"
        )

    def stop(self) -> None:
        """The segment ended (its nursery cancelled the watcher): stop
        watching, and remember which file each fd names."""
        self._scope = None
        watch_set = self._watch_set
        if watch_set is None:
            return
        self._watch_set = None
        for registration in self._registrations.values():
            registration.identity = _identity(registration.fd)
        watch_set.close()

    def close(self) -> None:
        for registration in self._registrations.values():
            for handle in (registration.reader, registration.writer):
                if handle is not None:
                    handle.cancel()
        self._registrations.clear()
        if self._watch_set is not None:
            self._watch_set.close()
            self._watch_set = None

    # -- registrations ---------------------------------------------------------

    def _lookup(self, fileobj: Any) -> int:
        """The fd of `fileobj`, or of the registration made with that very
        object once it names no fd (a closed socket); `ValueError` if
        neither."""
        try:
            return _fd_of(fileobj)
        except ValueError:
            for registration in self._registrations.values():
                if registration.fileobj is fileobj:
                    return registration.fd
            raise

    def _watch(self, registration: _Registration) -> None:
        """Tell the running segment's poller what `registration` wants now
        (raises its OSError if it refuses the fd)."""
        watch_set = self._watch_set
        if watch_set is not None:
            watch_set.watch(registration.fd, registration.events)

    def add(self, fileobj: Any, direction: int, callback: Callable[..., object], args: Any) -> Any:
        """Register ``callback(*args)`` for `fileobj` (an fd or an object
        with ``fileno()``) in `direction`, replacing the callback there;
        returns its Handle. `ValueError` for an invalid file object,
        `OSError` for a closed fd."""
        handle: Any = events.Handle(callback, args, self._loop, None)
        fd = self._lookup(fileobj)
        registration = self._registrations.get(fd)
        if registration is None or registration.dropped:
            new = _Registration(fileobj, fd)
            if direction == READER:
                new.reader = handle
            else:
                new.writer = handle
            if self._watch_set is not None:
                self._watch_set.watch(fd, new.events)
            else:
                new.identity = _identity(fd)
                if new.identity is None:
                    # (Raises the OS's EBADF, as registering it would.)
                    os.fstat(fd)
            if registration is not None:
                # What was left of a closed file's registration goes.
                for old in (registration.reader, registration.writer):
                    if old is not None:
                        old.cancel()
            self._registrations[fd] = new
            return handle
        if direction == READER:
            old, registration.reader = registration.reader, handle
        else:
            old, registration.writer = registration.writer, handle
        if old is None:
            try:
                self._watch(registration)
            except (OSError, ValueError):
                self._drop(registration)
                raise
        else:
            old.cancel()
        return handle

    def remove(self, fileobj: Any, direction: int) -> bool:
        """Drop the callback of `fileobj` in `direction`; returns whether
        there was one."""
        registration = self._registrations.get(self._lookup(fileobj))
        if registration is None:
            return False
        return self._remove(registration, direction)

    def _remove(self, registration: _Registration, direction: int) -> bool:
        if direction == READER:
            handle, registration.reader = registration.reader, None
        else:
            handle, registration.writer = registration.writer, None
        if handle is None:
            return False
        handle.cancel()
        if registration.reader is None and registration.writer is None:
            del self._registrations[registration.fd]
            if not registration.dropped:
                self._unwatch(registration.fd)
        elif not registration.dropped:
            try:
                self._watch(registration)
            except (OSError, ValueError):
                # Closed behind our back (asyncio raises here): the poller
                # has dropped the whole registration, and the other
                # direction's callback can never be called either.
                self._drop(registration)
        return True

    def _unwatch(self, fd: int) -> None:
        watch_set = self._watch_set
        if watch_set is not None:
            try:
                watch_set.watch(fd, 0)
            except (OSError, ValueError):
                pass

    def _drop(self, registration: _Registration) -> None:
        """Forget `registration` altogether (its fd was found closed)."""
        if self._registrations.get(registration.fd) is registration:
            del self._registrations[registration.fd]
        for handle in (registration.reader, registration.writer):
            if handle is not None:
                handle.cancel()
        self._unwatch(registration.fd)

    # -- the watcher -----------------------------------------------------------

    @lowlevel.enable_ki_protection
    async def _watch_ready(self, scope: tether.CancelScope, watch_set: Any) -> None:
        # (Protected: a Ctrl-C in the watcher's own lines goes to the
        # segment's main task, which stops the loop; `_run_ready` is not.)
        loop = self._loop
        wait = watch_set.wait
        with scope:
            while True:
                reported = await wait()
                if loop._frozen:
                    return
                self._run_ready(reported)

    @lowlevel.disable_ki_protection
    def _run_ready(self, reported: dict[int, int]) -> None:
        # The callbacks of the fds in a report: run by the watcher, or by the
        # watch set's hook straight from the run loop when the run was
        # otherwise idle (see `FdWatchSet`). Not protected from Ctrl-C (the
        # hook runs inside the kernel's protected run loop): a
        # KeyboardInterrupt reaches a callback that runs too long, and stops
        # the loop (`run_callbacks`), even when it lands between two
        # callbacks.
        loop = self._loop
        if loop._frozen:
            return
        try:
            # The callbacks of the reported fds, all found before any runs (as
            # asyncio's iteration does), dropping the registrations whose
            # handle was cancelled.
            ready = []
            registrations = self._registrations
            for fd, mask in reported.items():
                registration = registrations.get(fd)
                if registration is None:
                    continue
                if mask & _EVENT_READ:
                    reader = registration.reader
                    if reader is not None:
                        if reader._cancelled:
                            self._remove(registration, READER)
                        else:
                            ready.append(reader)
                if mask & _EVENT_WRITE:
                    writer = registration.writer
                    if writer is not None:
                        if writer._cancelled:
                            self._remove(registration, WRITER)
                        else:
                            ready.append(writer)
            if ready:
                run_callbacks(loop, ready)
        except (KeyboardInterrupt, SystemExit) as exc:
            loop._segment_failed(exc)
