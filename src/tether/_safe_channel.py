"""`as_safe_channel`: an async generator run as a task behind a channel.

Iterating an async generator directly is unsafe in structured code: its
body runs inside the consumer's cancel scopes between one ``yield`` and the
next, a ``yield`` inside a nursery or cancel scope hands control out of
that scope, and its cleanup runs whenever the garbage collector gets to it.
`as_safe_channel` instead runs the generator in a task of its own (the
*producer*), in a nursery that the returned async context manager opens,
and hands its values over an unbuffered memory channel.

Invariants:

* The generator is advanced only when a consumer asks for a value: each
  `receive` puts one request into a semaphore, and the producer takes one
  request before each ``__anext__``. When a `receive` ends without a value
  (cancelled, or failed), its request is taken back if the producer has not
  taken it yet; otherwise the value being made for it is an *orphan*, and
  the next `receive` claims it instead of adding a request. So the number of
  values made never runs ahead of the number asked for.
* When the ``async with`` block ends, however it ends, the producer is
  cancelled and the generator closed (``aclose``) before the block's exit
  returns; nothing of it outlives the block.
* Errors are not lost: an error from the generator, from its cleanup, or
  from the block reaches the code around ``async with``. The ExceptionGroup
  of the internal nursery is unwrapped when it holds a single error (so
  ``except ValueError`` works as if the generator were called directly) and
  kept, with a note, when several errors happened at once.
* The ``GeneratorExit`` that ``aclose`` throws into the generator is the
  closing mechanism, not an error: one that comes back wrapped in an
  exception group (the generator yielded inside a nursery) is removed from
  it; any other error in that group is kept.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import Generic, NoReturn, ParamSpec, Self, TypeVar

from ._channel import MemoryReceiveChannel, MemorySendChannel, open_memory_channel
from ._core import BrokenResourceError, Cancelled, TaskStatus, WouldBlock, open_nursery
from ._sync import Semaphore
from .abc import ReceiveChannel

__all__ = ["as_safe_channel"]

P = ParamSpec("P")
T = TypeVar("T")

#: Added to the exception group raised when both the generator's cleanup and
#: the ``async with`` block failed, so neither could be picked as *the* error.
SEVERAL_ERRORS_NOTE = (
    "Encountered exception during cleanup of generator object, as well as "
    "exception in the contextmanager body - unable to unwrap."
)


class _SafeReceiveChannel(ReceiveChannel[T], Generic[T]):
    """The receive channel an `as_safe_channel` block gets: a memory receive
    channel that also asks the producer for each value it receives."""

    __slots__ = ("_orphans", "_receive_channel", "_requests")

    def __init__(self, receive_channel: MemoryReceiveChannel[T], requests: Semaphore) -> None:
        self._receive_channel = receive_channel
        self._requests = requests
        # Values the producer took a request for whose receive has gone.
        self._orphans = 0

    def __repr__(self) -> str:
        return f"<tether.as_safe_channel receive channel at {id(self):#x}>"

    async def receive(self) -> T:
        """Ask the generator for its next value and wait for it.

        A checkpoint. If cancelled, no value is taken; a value the generator
        was already making for this call goes to the next `receive` (which
        then does not ask for another).

        Raises:
          EndOfChannel: the generator is exhausted (or failed; its error is
            raised when the ``async with`` block exits).
          ClosedResourceError: this channel was closed.
        """
        if self._orphans:
            self._orphans -= 1
        else:
            self._requests.release()
        try:
            return await self._receive_channel.receive()
        except BaseException:
            try:
                self._requests.acquire_nowait()
            except WouldBlock:
                # The producer took the request: what it makes is unclaimed.
                self._orphans += 1
            raise

    async def aclose(self) -> None:
        """Close the channel: further `receive` calls (and ones blocked now)
        raise `ClosedResourceError`, and the generator is not advanced any
        more. A checkpoint; closes even if cancelled."""
        await self._receive_channel.aclose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._receive_channel.close()


def as_safe_channel(
    fn: Callable[P, AsyncGenerator[T, None]],
) -> Callable[P, AbstractAsyncContextManager[ReceiveChannel[T]]]:
    """Decorator: turn an async generator function into a function returning
    an async context manager that yields a `ReceiveChannel` of the
    generator's values::

        @tether.as_safe_channel
        async def numbers(limit):
            for n in range(limit):
                await tether.sleep(1)
                yield n

        async with numbers(3) as channel:
            async for n in channel:
                print(n)

    The generator runs in a background task inside the ``async with`` block,
    one value at a time and only when asked: each receive on the channel
    advances it to its next ``yield`` (the channel has no buffer). So the
    generator may ``yield`` inside a nursery or a cancel scope, its
    cancel scopes never apply to the code in the ``async with`` block (nor
    the other way round), and its cleanup (``finally`` blocks, ``async
    with`` exits) runs when the block ends, not when the garbage collector
    gets to it.

    Errors: an exception raised by the generator ends the iteration (the
    channel reports end-of-channel) and is raised, as itself, when the
    ``async with`` block exits. If the block and the generator's cleanup
    both raise, both are raised together in an `ExceptionGroup` with a note
    saying so. An exception group raised by the block itself is passed on
    unchanged.

    Cancellation: leaving the block (normally, by an exception or by
    cancellation) cancels the generator's task and closes the generator, at
    whatever ``await`` or ``yield`` it is suspended. The block's exit waits
    for that cleanup and is where its errors are raised. Receiving from the
    channel is a checkpoint (see `ReceiveChannel.receive`).
    """

    @asynccontextmanager
    @functools.wraps(fn)
    async def open_safe_channel(
        *args: P.args, **kwargs: P.kwargs
    ) -> AsyncIterator[_SafeReceiveChannel[T]]:
        send_channel, receive_channel = open_memory_channel[T](0)
        try:
            async with open_nursery() as nursery:
                agen = fn(*args, **kwargs)
                requests = Semaphore(0)
                # start(), not start_soon(): once it returns, the producer is
                # running and owns the closing of the generator and of the
                # send channel.
                await nursery.start(_produce, agen, send_channel, requests)
                # A plain `with`: the channel's `async with` would checkpoint
                # on the way out, and could replace the block's exception.
                with _SafeReceiveChannel(receive_channel, requests) as safe_channel:
                    yield safe_channel
                # The block is done: stop the generator wherever it is.
                nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            _raise_single_error(group)

    return open_safe_channel


async def _produce(
    agen: AsyncGenerator[T, None],
    send_channel: MemorySendChannel[T],
    requests: Semaphore,
    task_status: TaskStatus[None],
) -> None:
    """The producer task: advance `agen` once per request and send each
    value on; close the generator and the channel when done or cancelled."""
    with send_channel:
        try:
            task_status.started()
            while True:
                await requests.acquire()
                if not send_channel.statistics().open_receive_channels:
                    # Nobody can receive the value: don't compute it.
                    return
                try:
                    value = await agen.__anext__()
                except StopAsyncIteration:
                    return
                try:
                    await send_channel.send(value)
                except BrokenResourceError:
                    # The channel was closed while the value was computed.
                    return
        finally:
            await _close_generator(agen)


async def _close_generator(agen: AsyncGenerator[object, None]) -> None:
    """``await agen.aclose()``, treating the GeneratorExit it throws in as
    the normal way to stop even when it comes back inside an exception
    group (the generator was suspended in a nursery)."""
    try:
        await agen.aclose()
    except BaseExceptionGroup as group:
        generator_exits, rest = group.split(GeneratorExit)
        found = _count_leaves(generator_exits)
        if found > 1:
            # aclose throws one GeneratorExit; more means the generator's
            # tasks raised their own, which would otherwise vanish here.
            problem = AssertionError(
                f"{found} GeneratorExit exceptions came out of closing the async "
                "generator, which threw in only one; the others were raised by "
                "its own code"
            )
            rest = group.derive([problem] if rest is None else [*rest.exceptions, problem])
        if rest is not None:
            raise rest from None


def _count_leaves(group: BaseExceptionGroup[BaseException] | None) -> int:
    if group is None:
        return 0
    return sum(
        _count_leaves(exc) if isinstance(exc, BaseExceptionGroup) else 1 for exc in group.exceptions
    )


def _raise_single_error(group: BaseExceptionGroup[BaseException]) -> NoReturn:
    """Raise the one error in the internal nursery's `group` as itself,
    ignoring `Cancelled` beside it (the producer's, or the block's own);
    raise the group, with a note, if there are several."""
    for exc in group.exceptions:
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise type(exc)(*exc.args) from group
    errors = [exc for exc in group.exceptions if not isinstance(exc, Cancelled)]
    if len(errors) > 1:
        group.add_note(SEVERAL_ERRORS_NOTE)
        raise group from None
    single = errors[0] if errors else group.exceptions[0]
    # Raising here would make the group the error's __context__: keep the
    # context it had.
    context = single.__context__
    try:
        raise single
    finally:
        single.__context__ = context
        del single, context
