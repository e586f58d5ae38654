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
"""

from __future__ import annotations

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

    # -- registrations ---------------------------------------------------------

    def add(self, fd: int, direction: int, callback: Callable[..., object], args: Any) -> Any:
        handle: Any = events.Handle(callback, args, self._loop, None)
        key = (fd, direction)
        old = self._handles.get(key)
        self._handles[key] = handle
        if old is not None:
            old.cancel()
        # A fresh watcher even if one exists: the fd number may belong to a
        # new file by now (the old one closed without remove_reader).
        self._stop_watcher(key)
        if self._nursery is not None:
            self._start_watcher(key)
        return handle

    def remove(self, fd: int, direction: int) -> bool:
        key = (fd, direction)
        handle = self._handles.pop(key, None)
        if handle is None:
            return False
        handle.cancel()
        self._stop_watcher(key)
        return True

    def has(self, fd: int, direction: int) -> bool:
        return (fd, direction) in self._handles

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
                except ClosedResourceError:
                    # Closed under us; asyncio's selector would report the fd
                    # as ready, so the callback finds out from its own call.
                    pass
                except OSError:
                    # EBADF from the poller: same as above.
                    pass
                handle = self._handles.get(key)
                if handle is None or loop._frozen:
                    return
                loop._run_handles([handle])
