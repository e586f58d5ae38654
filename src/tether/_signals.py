"""Receiving Unix signals as an async iterator.

`open_signal_receiver` installs a Python signal handler for each requested
signal. The handler runs in the main thread (the run's thread: the receiver
only opens there), at a bytecode boundary, so it does only what is safe
there: it records the signal in the receiver's pending set (one dict store,
atomic under the GIL) and queues a wake-up with `TetherToken.run_sync_soon`
(idempotent, so a burst of signals queues one callback). The callback, in
the run loop, wakes the task iterating the receiver.

A signal is pending at most once: several deliveries of the same signal
before the iterator takes it coalesce, as the operating system itself does
for standard signals. When the block exits, the previous handlers are put
back first and then every pending signal is re-raised, in the exiting task,
so the restored handlers see each one, exactly once, and an exception from
one of them propagates from the block's exit like any signal handler's.
Because the handler records a signal before queueing the wake-up, no signal
can reach the receiver after that point: a wake-up that runs after the block
exited finds nothing to do.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import AsyncIterator, Callable
from types import FrameType, TracebackType
from typing import Any

from ._core import (
    BusyResourceError,
    ParkingLot,
    RunFinishedError,
    checkpoint,
    current_tether_token,
)

_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


class SignalReceiver(AsyncIterator[int]):
    """The async iterator returned by `open_signal_receiver`: yields signal
    numbers in the order they arrived, each pending signal once."""

    __slots__ = ("_closed", "_iterating", "_lot", "_pending")

    def __init__(self) -> None:
        # A dict as an ordered set: arrival order, no duplicates. Written by
        # the signal handler, read and emptied by the iterating task and at
        # the block's exit (all in the main thread).
        self._pending: dict[int, None] = {}
        self._lot = ParkingLot()
        self._closed = False
        self._iterating = False

    def __repr__(self) -> str:
        return f"<tether signal receiver, pending={list(self._pending)}>"

    def _wake(self) -> None:
        # In the run's thread, from the entry queue. After the block exited
        # the signals were already re-raised (see `_close`): nothing to do.
        if not self._closed and self._pending:
            self._lot.unpark()

    def _close(self) -> None:
        # Called after the previous handlers are back: nothing adds to
        # `_pending` any more.
        self._closed = True
        pending = list(self._pending)
        self._pending.clear()
        self._lot.unpark_all()
        error: BaseException | None = None
        for signum in pending:
            # Each one even if an earlier handler raises (SIGINT's does); the
            # last error is raised, with the earlier ones as its context.
            try:
                signal.raise_signal(signum)
            except BaseException as exc:
                if error is not None and exc.__context__ is None:
                    exc.__context__ = error
                error = exc
        if error is not None:
            raise error

    def __aiter__(self) -> SignalReceiver:
        return self

    async def __anext__(self) -> int:
        """Wait for the next signal. A checkpoint; cancellable while waiting
        (a cancelled wait takes no signal). `BusyResourceError` if another
        task is already iterating this receiver; `RuntimeError` after the
        ``with`` block exited."""
        if self._closed:
            raise RuntimeError("the open_signal_receiver block has already exited")
        if self._iterating:
            raise BusyResourceError("another task is already iterating this signal receiver")
        self._iterating = True
        try:
            if self._pending:
                await checkpoint()
            else:
                await self._lot.park()
            if not self._pending:
                # Woken by the block exiting under us.
                raise RuntimeError("the open_signal_receiver block exited while waiting")
            signum = next(iter(self._pending))
            del self._pending[signum]
            return signum
        finally:
            self._iterating = False

    def pending_count(self) -> int:
        """How many distinct signals arrived and were not taken yet."""
        return len(self._pending)


class _SignalReceiverManager:
    """What `open_signal_receiver` returns: usable with ``with`` (as in
    trio) and with ``async with``."""

    __slots__ = ("_previous", "_receiver", "_signals")

    def __init__(self, signals: tuple[int, ...]) -> None:
        self._signals = signals
        self._receiver: SignalReceiver | None = None
        self._previous: dict[int, _Handler] = {}

    def __enter__(self) -> SignalReceiver:
        if self._receiver is not None:
            raise RuntimeError("an open_signal_receiver() object can only be entered once")
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError(
                "open_signal_receiver() only works in the main thread: Python runs "
                "signal handlers there and only lets that thread install them"
            )
        token = current_tether_token()
        receiver = self._receiver = SignalReceiver()

        wake = receiver._wake

        def handler(signum: int, frame: FrameType | None) -> None:
            receiver._pending[signum] = None
            try:
                token.run_sync_soon(wake, idempotent=True)
            except RunFinishedError:
                # The run ended with the handler still in place (the block
                # was never exited); nothing can receive it any more.
                pass

        try:
            # dict.fromkeys: each signal once, in the order given.
            for signum in dict.fromkeys(self._signals):
                self._previous[signum] = signal.signal(signum, handler)
        except BaseException:
            self._restore()
            raise
        return receiver

    def _restore(self) -> None:
        previous = self._previous
        while previous:
            signum, handler = previous.popitem()
            signal.signal(signum, handler)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._restore()
        assert self._receiver is not None
        self._receiver._close()

    async def __aenter__(self) -> SignalReceiver:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc_value, traceback)


def open_signal_receiver(*signals: signal.Signals | int) -> _SignalReceiverManager:
    """Listen for the given signals while a block runs.

    Use as ``with tether.open_signal_receiver(signal.SIGHUP) as signals:``
    (``async with`` works too) and iterate with ``async for signum in
    signals``. Entering installs a handler for each signal (replacing the
    current one); exiting puts the previous handlers back. Several arrivals
    of one signal before it is taken are reported once. Signals that arrived
    but were not taken when the block exits are re-raised there, after the
    previous handlers are back, so the restored handlers see each of them
    once (for a signal whose default action is to end the process, that
    ends it: drain the iterator first if that matters); an exception that
    a restored handler raises propagates from the block's exit. No signal
    reaches the receiver after its block has exited.

    Neither entering nor exiting is a checkpoint; waiting in the iterator is
    a cancellable checkpoint. Must be used inside `tether.run`.

    Raises:
      TypeError: no signals were given.
      RuntimeError: not in the main thread (Python only lets the main thread
        install signal handlers), or outside `tether.run`.
      ValueError: a number that is not a signal that can be caught.
    """
    if not signals:
        raise TypeError(
            "No signals were provided: open_signal_receiver() needs at least one "
            "signal to listen for, as in open_signal_receiver(signal.SIGTERM)"
        )
    return _SignalReceiverManager(tuple(int(s) for s in signals))
