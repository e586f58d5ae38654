"""`Sequencer`: force tasks through a chosen order, for tests."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from .. import Cancelled
from .._sync import Event


class Sequencer:
    """Make tasks run pieces of code in a chosen order.

    ``async with seq(n):`` waits until the block for every position below
    `n` (each claimed by some task) has exited, then runs its own block.
    Positions start at 0 and each can be used once::

        seq = Sequencer()

        async def worker1():
            async with seq(0):
                ...  # runs first
            async with seq(2):
                ...  # runs third

        async def worker2():
            async with seq(1):
                ...  # runs second

    Entering position 0 does not wait (and is not a checkpoint); any other
    position is a checkpoint while it waits.

    If a task is cancelled while it waits for its turn, the sequence is
    *broken*: the waiting task gets ``RuntimeError`` (not `Cancelled`:
    a test whose order was broken should fail loudly), every other waiting
    task wakes with ``RuntimeError``, and so does every later use of the
    sequencer.
    """

    def __init__(self) -> None:
        self._turns: defaultdict[int, Event] = defaultdict(Event)
        self._claimed: set[int] = set()
        self._broken = False

    def __repr__(self) -> str:
        state = "broken" if self._broken else f"{len(self._claimed)} positions claimed"
        return f"<tether.testing.Sequencer at {id(self):#x}, {state}>"

    @asynccontextmanager
    async def __call__(self, position: int) -> AsyncIterator[None]:
        if not isinstance(position, int) or position < 0:
            raise ValueError(f"sequence positions are ints from 0 up, got {position!r}")
        if position in self._claimed:
            raise RuntimeError(f"sequence position {position} was already used")
        if self._broken:
            raise RuntimeError("the sequence is broken (a task was cancelled while waiting)")
        self._claimed.add(position)
        if position != 0:
            try:
                await self._turns[position].wait()
            except Cancelled:
                self._break()
                raise RuntimeError(
                    f"cancelled while waiting for sequence position {position}; "
                    "the sequence is broken"
                ) from None
            if self._broken:
                raise RuntimeError("the sequence is broken (a task was cancelled while waiting)")
        try:
            yield
        finally:
            self._turns[position + 1].set()

    def _break(self) -> None:
        self._broken = True
        for turn in self._turns.values():
            turn.set()
