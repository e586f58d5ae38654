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

# Design (tether's own): three pieces.
#
# * `as_safe_channel` only wraps: the function it returns (with `fn`'s name
#   and docstring) hands its arguments to `_serve`, an async context manager
#   written as a generator, which does the work.
# * `_serve` opens an unbuffered memory channel and a nursery, starts the
#   producer task in it, yields a `_SafeReceiveChannel`, and afterwards
#   closes the receiving end (synchronously: a checkpoint there could swap
#   the block's exception for a Cancelled) and cancels the producer. The
#   nursery's group is unwrapped by `_raise_single_error`.
# * Demand is a `Semaphore` counting values asked for and not yet being
#   made: `receive` releases it, the producer acquires it before advancing
#   the generator. A receive that fails takes its request back if it can;
#   if the producer already took it, the value in the making is counted as
#   an orphan and handed to the next receive, which then asks for nothing.
# * The producer (`_produce` / `_pump`) owns the send channel and the
#   generator: whatever way it ends, the generator is closed first
#   (`_close_generator`, which tolerates the one GeneratorExit that closing
#   throws in, even inside an exception group) and the send channel second,
#   so the consumer sees end-of-channel only after the cleanup ran.

from __future__ import annotations

import functools
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Generic, NoReturn, ParamSpec, TypeVar

from ._channel import MemoryReceiveChannel, MemorySendChannel, open_memory_channel
from ._core import BrokenResourceError, Cancelled, TaskStatus, WouldBlock, open_nursery
from ._sync import Semaphore
from .abc import ReceiveChannel

__all__ = ["as_safe_channel"]

P = ParamSpec("P")
T = TypeVar("T")

#: Added to the exception group raised when both the generator's cleanup and
#: the ``async with`` block failed, so neither could be picked as *the* error
#: (trio's tests match these words).
SEVERAL_ERRORS_NOTE = (
    "Encountered exception during cleanup of generator object, as well as "
    "exception in the contextmanager body - unable to unwrap."
)


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

    @functools.wraps(fn)
    def open_channel(
        *args: P.args, **kwargs: P.kwargs
    ) -> AbstractAsyncContextManager[ReceiveChannel[T]]:
        return _serve(fn, args, kwargs)

    return open_channel


@asynccontextmanager
async def _serve(
    fn: Callable[..., AsyncGenerator[T, None]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> AsyncIterator[ReceiveChannel[T]]:
    """Run ``fn(*args, **kwargs)`` in a producer task for the length of the
    ``async with`` block; see `as_safe_channel`."""
    sender, values = open_memory_channel[T](0)
    demand = Semaphore(0)
    try:
        async with open_nursery() as nursery:
            gen = fn(*args, **kwargs)
            # start(), not start_soon(): once it returns, the producer runs and
            # is responsible for closing the generator and the send channel.
            await nursery.start(_produce, gen, sender, demand)
            try:
                yield _SafeReceiveChannel(values, demand)
            finally:
                values.close()
            # The block is over: stop the generator wherever it is.
            nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        _raise_single_error(group)


class _SafeReceiveChannel(ReceiveChannel[T], Generic[T]):
    """The receive channel an `as_safe_channel` block gets: a memory receive
    channel that also asks the producer for each value it receives."""

    __slots__ = ("_demand", "_orphans", "_values")

    def __init__(self, values: MemoryReceiveChannel[T], demand: Semaphore) -> None:
        self._values = values
        self._demand = demand
        # Values the producer is making (or has made) for receives that ended.
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
        if self._orphans == 0:
            self._demand.release()
        else:
            self._orphans -= 1
        try:
            return await self._values.receive()
        except BaseException:
            self._withdraw()
            raise

    def _withdraw(self) -> None:
        """Take back the request of a receive that ended without a value."""
        try:
            self._demand.acquire_nowait()
        except WouldBlock:
            # Too late: the producer took it, so what it makes is unclaimed.
            self._orphans += 1

    async def aclose(self) -> None:
        """Close the channel: further `receive` calls (and ones blocked now)
        raise `ClosedResourceError`, and the generator is not advanced any
        more. A checkpoint; closes even if cancelled."""
        await self._values.aclose()


async def _produce(
    gen: AsyncGenerator[T, None],
    sender: MemorySendChannel[T],
    demand: Semaphore,
    task_status: TaskStatus[None],
) -> None:
    """The producer task: serve requests with `gen`'s values, then close the
    generator and (last) the send channel, however it ends."""
    with sender:
        task_status.started()
        try:
            await _pump(gen, sender, demand)
        finally:
            await _close_generator(gen)


async def _pump(
    gen: AsyncGenerator[T, None], sender: MemorySendChannel[T], demand: Semaphore
) -> None:
    """Advance `gen` once per request and send the value on, until the
    generator is exhausted or nobody is left to receive."""
    while True:
        await demand.acquire()
        if sender.statistics().open_receive_channels == 0:
            # Nobody can receive the value: don't compute it.
            return
        try:
            value = await anext(gen)
        except StopAsyncIteration:
            return
        try:
            await sender.send(value)
        except BrokenResourceError:
            # The channel was closed while the value was computed.
            return


async def _close_generator(gen: AsyncGenerator[object, None]) -> None:
    """``await gen.aclose()``, treating the GeneratorExit it throws in as
    the normal way to stop even when it comes back inside an exception
    group (the generator was suspended in a nursery)."""
    try:
        await gen.aclose()
    except BaseExceptionGroup as group:
        exits, others = group.split(GeneratorExit)
        thrown = _leaf_count(exits)
        if thrown > 1:
            # aclose throws one GeneratorExit; more means the generator's
            # tasks raised their own, which would otherwise vanish here.
            extra = AssertionError(
                f"{thrown} GeneratorExit exceptions came out of closing the async "
                "generator, which threw in only one; the others were raised by "
                "its own code"
            )
            kept = () if others is None else others.exceptions
            others = group.derive([*kept, extra])
        # `others` came from split(), which keeps the group's traceback and
        # notes; the GeneratorExit that was thrown in is dropped.
        if others is not None:
            raise others from None


def _leaf_count(group: BaseExceptionGroup[BaseException] | None) -> int:
    """How many non-group exceptions `group` holds, at any depth."""
    if group is None:
        return 0
    count = 0
    for exc in group.exceptions:
        count += _leaf_count(exc) if isinstance(exc, BaseExceptionGroup) else 1
    return count


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
