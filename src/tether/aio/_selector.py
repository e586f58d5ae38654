"""File-descriptor callbacks: the loop's `add_reader` / `add_writer`.

asyncio's selector loop keeps, per file descriptor, at most one reader and
one writer callback, and calls each whenever its fd is ready. Here the
registrations are kept by the loop (so they survive from one run of the loop
to the next), and while the loop runs each registration has a *watcher*: a
kernel task that waits with `lowlevel.wait_readable` / `wait_writable` and
runs the callback each time the fd is ready, in its own step (so it takes
its turn in the kernel's run queue when the I/O event arrives, as asyncio's
ready queue does).

Removing a registration cancels its watcher at once, which takes the fd out
of the kernel's poller before the caller can close it.

A file closed while registered behaves as under asyncio's epoll selector,
which drops a closed fd: its callback is never called again, the
registration stays until `remove_reader` / `remove_writer` (which find it by
the file object even once ``fileno()`` says -1), and its watcher ends
instead of reporting the fd as ready over and over. Registering an fd that
is already closed raises `OSError` (EBADF), as epoll does.
"""

from __future__ import annotations

import os
from asyncio import events
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import tether

from .. import lowlevel
from .._core import ClosedResourceError, fd_of

if TYPE_CHECKING:
    from ._loop import TetherEventLoop

_READ = 0
_WRITE = 1


def fileobj_to_fd(fileobj: Any) -> int:
    """The fd of `fileobj` (an int or an object with ``fileno()``); `ValueError`
    for a negative or invalid one, as asyncio's selectors raise."""
    try:
        return fd_of(fileobj)
    except TypeError:
        raise ValueError(f"Invalid file object: {fileobj!r}") from None


class Selector:
    """The fd registrations of one loop, and their watcher tasks."""

    def __init__(self, loop: TetherEventLoop) -> None:
        self._loop = loop
        #: (fd, _READ/_WRITE) -> the Handle to run when ready.
        self._handles: dict[tuple[int, int], Any] = {}
        #: (fd, direction) -> the cancel scope of its watcher (while running).
        self._watchers: dict[tuple[int, int], tether.CancelScope] = {}
        #: (fd, direction) -> the file object registered, when it was not an
        #: int: a closed socket's ``fileno()`` is -1, and removing its
        #: registration must still find it.
        self._fileobjs: dict[tuple[int, int], Any] = {}
        self._nursery: tether.Nursery | None = None

    # -- the loop's run --------------------------------------------------------

    def start(self, nursery: tether.Nursery) -> None:
        """A segment starts: watch every registration."""
        self._nursery = nursery
        for key in list(self._handles):
            self._start_watcher(key)

    def stop(self) -> None:
        """The segment ended (its nursery cancelled every watcher)."""
        self._nursery = None
        self._watchers.clear()

    def close(self) -> None:
        for handle in self._handles.values():
            handle.cancel()
        self._handles.clear()
        self._fileobjs.clear()

    # -- registrations ---------------------------------------------------------

    def add(self, fileobj: Any, direction: int, callback: Callable[..., object], args: Any) -> Any:
        """Register ``callback(*args)`` for `fileobj` (an fd or an object
        with ``fileno()``) in `direction`; returns its Handle. `ValueError`
        for an invalid file object, `OSError` for a closed fd."""
        fd = fileobj_to_fd(fileobj)
        # Raises EBADF for a closed fd now, as epoll's registration does,
        # rather than in the watcher later.
        os.fstat(fd)
        handle: Any = events.Handle(callback, args, self._loop, None)
        key = (fd, direction)
        old = self._handles.get(key)
        self._handles[key] = handle
        if fileobj is fd:
            self._fileobjs.pop(key, None)
        else:
            self._fileobjs[key] = fileobj
        if old is not None:
            old.cancel()
        # A fresh watcher even if one exists: the fd number may belong to a
        # new file by now (the old one closed without remove_reader).
        self._stop_watcher(key)
        if self._nursery is not None:
            self._start_watcher(key)
        return handle

    def remove(self, fileobj: Any, direction: int) -> bool:
        """Drop the registration of `fileobj` in `direction`; returns whether
        there was one."""
        key = self._find(fileobj, direction)
        handle = self._handles.pop(key, None) if key is not None else None
        if handle is None:
            return False
        assert key is not None
        self._fileobjs.pop(key, None)
        handle.cancel()
        self._stop_watcher(key)
        return True

    def has(self, fileobj: Any, direction: int) -> bool:
        return self._find(fileobj, direction) in self._handles

    def _find(self, fileobj: Any, direction: int) -> tuple[int, int] | None:
        try:
            return (fileobj_to_fd(fileobj), direction)
        except ValueError:
            # A closed file object: look for it among the registrations.
            for key, registered in self._fileobjs.items():
                if registered is fileobj and key[1] == direction:
                    return key
            raise

    def _start_watcher(self, key: tuple[int, int]) -> None:
        assert self._nursery is not None
        scope = tether.CancelScope()
        self._watchers[key] = scope
        self._nursery.start_soon(self._watch, key, scope, name=f"tether.aio fd {key[0]}")

    def _stop_watcher(self, key: tuple[int, int]) -> None:
        scope = self._watchers.pop(key, None)
        if scope is not None:
            scope.cancel()

    async def _watch(self, key: tuple[int, int], scope: tether.CancelScope) -> None:
        fd, direction = key
        wait = lowlevel.wait_readable if direction == _READ else lowlevel.wait_writable
        loop = self._loop
        with scope:
            while True:
                try:
                    await wait(fd)
                except (ClosedResourceError, OSError, ValueError):
                    # The fd was closed (EBADF from the poller, another
                    # task's notify_closing, or, for a registration kept
                    # from an earlier run, its number now belongs to the
                    # run's own wakeup socket). asyncio's epoll selector
                    # drops a closed fd: the callback is not called again,
                    # and the registration stays until it is removed.
                    if self._watchers.get(key) is scope:
                        del self._watchers[key]
                    return
                handle = self._handles.get(key)
                if handle is None or loop._frozen:
                    return
                loop._run_handles([handle])
