"""Unix signal callbacks: the loop's `add_signal_handler`.

The Python-level signal handler does only what is safe at any bytecode
boundary: it appends the signal number to a deque (an atomic operation) and
asks the kernel, through its thread-safe, signal-safe entry queue, to run
the loop's dispatcher. The dispatcher queues each registered callback with
``call_soon``. A signal that arrives while the loop is not running is kept
and dispatched when it runs again.

While the loop runs and its run owns the signal wakeup fd, the callbacks
also run, as on asyncio, for signals that arrive while other code has
replaced the Python handler (``signal.signal``): the C-level handler writes
every signal's number to the wakeup fd, and the kernel gives the numbers to
`SignalHandlers.on_wakeup_signals` (`lowlevel.set_signal_listener`). Each
signal the Python handler saw is *claimed* (its number queued), and a
number read from the fd dispatches only if no claim for it is waiting:
so a signal runs its callback once, whichever handler saw it. (Between two
runs of the loop, only the Python handler's signals are kept; asyncio's
wakeup fd also keeps those that came while another handler was installed.)
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

from .. import RunFinishedError, lowlevel

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
        #: While numbers come from the wakeup fd: the signals the Python
        #: handler saw whose number has not been read yet (see above).
        self._claims: deque[int] = deque()
        self._claiming = False

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
        if self._claiming:
            self._claims.append(signum)
        self._arrived.append(signum)
        loop = self._loop_ref()
        token = None if loop is None else loop._token
        if token is not None:
            try:
                token.run_sync_soon(self.dispatch, idempotent=True)
            except RunFinishedError:
                pass

    def segment_started(self) -> None:
        """The loop's run starts: take signal numbers from the run's wakeup
        fd too, if it has them (in the loop's thread)."""
        # (Claiming starts first: a signal the handler sees from now on has
        # its number, if any, read by the listener; numbers written before
        # are dropped by `set_signal_listener`, their signals dispatched by
        # the handler's path. One that the handler sees between the two
        # steps leaves a claim whose number was dropped: at worst, one later
        # signal of that number that only another handler saw is then not
        # dispatched.)
        self._claims.clear()
        self._claiming = True
        if not lowlevel.set_signal_listener(self.on_wakeup_signals):
            self.segment_ending()

    def segment_ending(self) -> None:
        """The loop's run ends (or its run has no numbers to give): the
        numbers written so far go to the listener (`set_signal_listener`
        drains them), then it stops."""
        if self._claiming:
            lowlevel.set_signal_listener(None)
            self._claiming = False
            self._claims.clear()

    def on_wakeup_signals(self, signums: bytes) -> None:
        """The kernel read `signums` from the run's wakeup fd: dispatch each
        signal that the Python handler did not see (another handler was
        installed when it came), as asyncio's loop dispatches every number
        its wakeup fd gets."""
        claims = self._claims
        arrived = False
        for signum in signums:
            try:
                claims.remove(signum)
            except ValueError:
                # Not claimed: the Python handler did not see it.
                if signum in self._handles:
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
