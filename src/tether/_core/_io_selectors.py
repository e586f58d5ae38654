"""The I/O manager for platforms without epoll: kqueue, poll or select,
through the standard `selectors` module (see `_io.py` for the shared part)."""

from __future__ import annotations

import os
import selectors

from ._io import _CLOSED_FD_SOMEWHERE, _INF, _READ_BIT, _WRITE_BIT, IOManager


class SelectorIOManager(IOManager):
    """Fallback for platforms without epoll (kqueue, poll or select via the
    standard `selectors` module)."""

    #: The platform's best `selectors` class (its name is `backend`).
    _selector: selectors.BaseSelector

    def __init__(self) -> None:
        super().__init__()
        self._selector = selectors.DefaultSelector()
        self.backend = type(self._selector).__name__
        self._selector.register(self._wakeup_fd, selectors.EVENT_READ)
        self._own = frozenset(self._own_fds())

    def close(self) -> None:
        self._selector.close()
        super().close()

    def _register(self, fd: int, mask: int, already: bool, level: bool) -> None:
        # (Level-triggered by nature; `process_events` makes waits one-shot.)
        events = (selectors.EVENT_READ if mask & _READ_BIT else 0) | (
            selectors.EVENT_WRITE if mask & _WRITE_BIT else 0
        )
        selector = self._selector
        try:
            if already:
                if selector.get_key(fd).events == events:
                    # `modify` would not tell the OS (nothing changed for
                    # `selectors`): register afresh, in case the fd was
                    # closed and its number reused (see `_apply`).
                    selector.unregister(fd)
                    selector.register(fd, events)
                else:
                    selector.modify(fd, events)
            else:
                selector.register(fd, events)
        except KeyError:
            selector.modify(fd, events)

    def _unregister(self, fd: int) -> None:
        try:
            self._selector.unregister(fd)
        except (KeyError, OSError, ValueError):
            pass

    def _evict_closed_fds(self) -> None:
        for fd in list(self._waiters):
            try:
                os.fstat(fd)
            except OSError:
                self.notify_closing(fd)

    def get_events(self, timeout: float) -> list[tuple[int, int]]:
        # (Possibly in a guest run's worker thread: no bookkeeping here, see
        # the module docstring.)
        try:
            ready = self._selector.select(None if timeout == _INF else timeout)
        except (OSError, ValueError):
            # select()/poll() fail as a whole when one registered fd was
            # closed behind our back: `process_events` evicts the closed ones.
            return [_CLOSED_FD_SOMEWHERE]
        converted = []
        for key, events in ready:
            mask = (_READ_BIT if events & selectors.EVENT_READ else 0) | (
                _WRITE_BIT if events & selectors.EVENT_WRITE else 0
            )
            converted.append((key.fd, mask))
        return converted

    def process_events(self, events: list[tuple[int, int]]) -> None:
        for fd, _ in events:
            if fd == _CLOSED_FD_SOMEWHERE[0]:
                # Their waiters get ClosedResourceError; everyone else keeps
                # waiting.
                self._evict_closed_fds()
                continue
            waiters = self._waiters.get(fd)
            if waiters is not None and not waiters.watch_mask:
                # Emulate one-shot: `super().process_events` registers again
                # what is still wanted. (A watched fd stays registered.)
                self._unregister(fd)
                waiters.registered = False
        super().process_events(events)
