"""Unix signal callbacks: the loop's `add_signal_handler`.

The Python-level signal handler does only what is safe at any bytecode
boundary: it appends the signal number to a deque (an atomic operation) and
asks the kernel, through its thread-safe, signal-safe entry queue, to run
the loop's dispatcher. The dispatcher queues each registered callback with
``call_soon``. A signal that arrives while the loop is not running is kept
and dispatched when it runs again. While other code has replaced the Python
handler (``signal.signal``), the callback still runs, as on asyncio: the
signal's number reaches the run's wakeup fd, which the kernel reads
(`SignalHandlers.on_wakeup_signals`).
"""

from __future__ import annotations

import asyncio
import signal
import threading
import weakref
from asyncio import events
from collections import deque
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

from .. import RunFinishedError

if TYPE_CHECKING:
    from ._loop_core import LoopCore


class SignalHandlers:
    """The signal callbacks of one loop."""

    def __init__(self, loop: LoopCore) -> None:
        # (Weak: the loop refers to this, and is freed without the garbage
        # collector's help.)
        self._loop_ref = weakref.ref(loop)
        self._handles: dict[int, Any] = {}
        self._arrived: deque[int] = deque()

    def __bool__(self) -> bool:
        return bool(self._handles)

    def add(self, sig: int, callback: Callable[..., object], args: Any) -> None:
        loop: Any = self._loop_ref()
        if asyncio_iscoroutine_like(callback):
            raise TypeError("coroutines cannot be used with add_signal_handler()")
        self._check_signal(sig)
        loop._check_closed()
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("set_wakeup_fd only works in main thread of the main interpreter")
        handle: Any = events.Handle(callback, args, loop, None)
        previous = self._handles.get(sig)
        self._handles[sig] = handle
        try:
            # A signal handler must not be restarted: interrupted system
            # calls fail with EINTR (and are retried by Python), as asyncio.
            signal.signal(sig, self._on_signal)
            signal.siginterrupt(sig, False)
        except OSError as exc:
            if previous is None:
                del self._handles[sig]
            else:
                self._handles[sig] = previous
            if exc.errno == 22:  # EINVAL
                raise RuntimeError(f"sig {sig:d} cannot be caught") from exc
            raise

    def remove(self, sig: int) -> bool:
        self._check_signal(sig)
        handle = self._handles.pop(sig, None)
        if handle is None:
            return False
        handle.cancel()
        default: Any = signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
        try:
            signal.signal(sig, default)
        except OSError as exc:
            if exc.errno == 22:
                raise RuntimeError(f"sig {sig:d} cannot be caught") from exc
            raise
        return True

    def close(self) -> None:
        for sig in list(self._handles):
            self.remove(sig)

    @staticmethod
    def _check_signal(sig: int) -> None:
        if not isinstance(sig, int):
            raise TypeError(f"sig must be an int, not {sig!r}")
        if sig not in signal.valid_signals():
            raise ValueError(f"invalid signal number {sig}")

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # Any bytecode boundary of the main thread: only atomic operations,
        # and the entry queue (which is made for this).
        self._arrived.append(signum)
        loop = self._loop_ref()
        token = None if loop is None else loop._token
        if token is not None:
            try:
                token.run_sync_soon(self.dispatch, idempotent=True)
            except RunFinishedError:
                pass

    def on_wakeup_signals(self, signums: bytes) -> None:
        """The kernel read `signums` from the run's wakeup fd (see
        `lowlevel.set_signal_listener`): dispatch those of them that have a
        callback but whose Python-level handler is somebody else's now
        (replaced with ``signal.signal``). asyncio's loop reads its
        callbacks' signals from its wakeup fd, so they run whichever Python
        handler is installed; the others come through `_on_signal`."""
        ours = self._on_signal
        arrived = False
        for signum in signums:
            if signum in self._handles and signal.getsignal(signum) != ours:
                self._arrived.append(signum)
                arrived = True
        if arrived:
            self.dispatch()

    def dispatch(self) -> None:
        """Queue the callbacks of the signals that arrived (in the loop)."""
        while self._arrived:
            handle = self._handles.get(self._arrived.popleft())
            if handle is not None and not handle._cancelled:
                loop = self._loop_ref()
                if loop is not None:
                    loop._enqueue(handle)


def asyncio_iscoroutine_like(callback: object) -> bool:

    return asyncio.iscoroutine(callback) or asyncio.iscoroutinefunction(callback)
