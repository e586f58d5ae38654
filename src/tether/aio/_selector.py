"""File-descriptor callbacks: the loop's `add_reader` / `add_writer`.

asyncio's selector loop keeps, per file descriptor, at most one reader and
one writer callback in a `selectors` selector (epoll on Linux, kqueue on the
BSDs and macOS), and each iteration calls the callbacks of the fds that are
ready. tether.aio keeps the same thing: the registrations live in a
`selectors.DefaultSelector` of the loop's own, so they are level-triggered
and stay registered from one iteration (and one run of the loop) to the
next. While the loop runs, one kernel task, the *watcher*, waits with
`lowlevel.wait_readable` on that selector's own fd (an epoll or kqueue fd is
readable when one of its fds is ready), then asks the selector which fds
are ready and runs their callbacks, in its own kernel step: all the I/O
callbacks that became ready together run together, as in asyncio's
iteration, and they cost the kernel one wakeup rather than one per fd.

Because the selector is asyncio's own kind, the edge cases are asyncio's
too: a file closed while registered is dropped by epoll (its callback is
never called again; the registration stays until `remove_reader` /
`remove_writer`, which find it by the file object even once ``fileno()``
says -1); registering a closed fd raises `OSError` (EBADF); removing a
registration takes the fd out of the selector at once, so the caller can
close it.

Invariant: the selector's key data for an fd is ``(reader, writer)``, each
an `asyncio.Handle` or None, and the registered event mask has exactly the
bits of the handles that are not None.
"""

from __future__ import annotations

import selectors
from asyncio import events
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import tether

from .. import lowlevel
from ._callbacks import run_callbacks

if TYPE_CHECKING:
    from ._loop import TetherEventLoop

#: Directions, and where their callbacks are in an fd's ``(reader,
#: writer)`` registration data: the reader's place and the writer's.
READER = 0
WRITER = 1
#: The selector's event for each direction.
_EVENT = (selectors.EVENT_READ, selectors.EVENT_WRITE)


class Selector:
    """The fd registrations of one loop, and the task that watches them."""

    def __init__(self, loop: TetherEventLoop) -> None:
        self._loop = loop
        selector = selectors.DefaultSelector()
        if not hasattr(selector, "fileno"):  # pragma: no cover - no epoll/kqueue/devpoll
            selector.close()
            raise RuntimeError(
                "tether.aio's add_reader/add_writer and transports need a selector with a "
                "file descriptor of its own (epoll, kqueue or /dev/poll)"
            )
        self._selector = selector
        self._scope: tether.CancelScope | None = None

    # -- the loop's run --------------------------------------------------------

    def start(self, nursery: tether.Nursery) -> None:
        """A segment starts: watch the registrations."""
        self._scope = tether.CancelScope()
        nursery.start_soon(self._watch, self._scope, name="tether.aio fd callbacks")

    def stop(self) -> None:
        """The segment ended (its nursery cancelled the watcher)."""
        self._scope = None

    def close(self) -> None:
        for key in list(self._selector.get_map().values()):
            for handle in key.data:
                if handle is not None:
                    handle.cancel()
        self._selector.close()

    # -- registrations ---------------------------------------------------------

    def add(self, fileobj: Any, direction: int, callback: Callable[..., object], args: Any) -> Any:
        """Register ``callback(*args)`` for `fileobj` (an fd or an object
        with ``fileno()``) in `direction`, replacing the callback there;
        returns its Handle. `ValueError` for an invalid file object,
        `OSError` for a closed fd."""
        handle: Any = events.Handle(callback, args, self._loop, None)
        selector = self._selector
        try:
            key = selector.get_key(fileobj)
        except KeyError:
            data = (handle, None) if direction == READER else (None, handle)
            selector.register(fileobj, _EVENT[direction], data)
            return handle
        reader, writer = key.data
        if direction == READER:
            old, data = reader, (handle, writer)
        else:
            old, data = writer, (reader, handle)
        mask = key.events | _EVENT[direction]
        try:
            selector.modify(fileobj, mask, data)
        except FileNotFoundError:
            # The fd was closed (epoll dropped it) and its number now names
            # another file: register that one afresh.
            selector.unregister(fileobj)
            selector.register(fileobj, mask, data)
        if old is not None:
            old.cancel()
        return handle

    def remove(self, fileobj: Any, direction: int) -> bool:
        """Drop the callback of `fileobj` in `direction`; returns whether
        there was one."""
        selector = self._selector
        try:
            key = selector.get_key(fileobj)
        except KeyError:
            return False
        reader, writer = key.data
        if direction == READER:
            handle, data = reader, (None, writer)
        else:
            handle, data = writer, (reader, None)
        if handle is None:
            return False
        mask = key.events & ~_EVENT[direction]
        if mask:
            try:
                selector.modify(fileobj, mask, data)
            except OSError:
                # Closed behind our back (asyncio raises here): the selector
                # dropped the whole registration, and the other direction's
                # callback can never be called either.
                other = data[0] if direction == WRITER else data[1]
                if other is not None:
                    other.cancel()
        else:
            selector.unregister(fileobj)
        handle.cancel()
        return True

    # -- the watcher -----------------------------------------------------------

    async def _watch(self, scope: tether.CancelScope) -> None:
        selector = self._selector
        loop = self._loop
        ready: list[Any]
        wait = lowlevel.wait_readable
        selector_fd = selector.fileno()
        with scope:
            while True:
                await wait(selector_fd)
                if loop._frozen:
                    return
                ready = self._ready_handles()
                if ready:
                    run_callbacks(loop, ready)
                    # (Not kept alive by this frame until the next wakeup.)
                    ready.clear()

    def _ready_handles(self) -> list[Any]:
        """The callbacks of the fds that are ready now (dropping the
        registrations whose handle was cancelled)."""
        ready = []
        for key, mask in self._selector.select(0):
            reader, writer = key.data
            if mask & selectors.EVENT_READ and reader is not None:
                if reader._cancelled:
                    self.remove(key.fileobj, READER)
                else:
                    ready.append(reader)
            if mask & selectors.EVENT_WRITE and writer is not None:
                if writer._cancelled:
                    self.remove(key.fileobj, WRITER)
                else:
                    ready.append(writer)
        return ready
