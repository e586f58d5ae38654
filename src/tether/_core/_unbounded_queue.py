"""`UnboundedQueue`: producers never wait; consumers take everything at once.

Kept for code written against trio's ``lowlevel.UnboundedQueue`` (trio
itself points users to ``open_memory_channel(math.inf)`` instead).

What it must do:

* ``put_nowait`` always succeeds at once and is not a checkpoint.
* A consumer receives a *batch*: every item queued so far, in order, as a
  list that is never empty (``get_batch`` waits for one; ``get_batch_nowait``
  raises `WouldBlock` instead).
* Fairness: consumers that wait are served oldest first, one batch each.
  When an item arrives while consumers wait, exactly one of them is woken,
  and the batch is *its*: items put before it runs join that batch, and
  nobody else (not even ``get_batch_nowait``) can take it first. So a batch
  never wakes two consumers, and no consumer wakes to find nothing.
* ``get_batch`` is a checkpoint: cancelled before it takes anything, nothing
  is taken; once a batch is taken (or handed to it), it is returned.

Design: the pending items are one list, ``_pending``, that is handed over
whole (and replaced) when a consumer takes it. The waiting consumers park in
a `ParkingLot`. When an item lands in an empty queue and someone is parked,
the oldest consumer is unparked and recorded as the *claimant* of
``_pending``; while there is a claimant, the batch is not for anyone else.
The claimant clears the claim when it takes the batch.

Invariant: ``_claimant is not None`` implies ``_pending`` is non-empty (a
claim is made only when an item arrives, and dropped when the items go).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, Self, TypeVar, final

from ._exceptions import WouldBlock
from ._parking_lot import ParkingLot
from ._traps import cancel_shielded_checkpoint, checkpoint_if_cancelled

if TYPE_CHECKING:
    from ._task import Task

ItemT = TypeVar("ItemT")


@dataclass(frozen=True)
class UnboundedQueueStatistics:
    """What `UnboundedQueue.statistics` reports.

    ``qsize``: items in the queue; ``tasks_waiting``: tasks blocked in
    `UnboundedQueue.get_batch`.
    """

    qsize: int
    tasks_waiting: int


@final
class UnboundedQueue(Generic[ItemT]):
    """A queue that `put_nowait` can always add to, and from which consumers
    take every queued item at once, as a list (a *batch*).

    Meant for producers that cannot be made to wait (a callback, a signal
    handler's helper); prefer ``tether.open_memory_channel(math.inf)``
    otherwise, which trio recommends instead of this deprecated class.

    Consumers are served in the order they started waiting, one batch each;
    a consumer woken for a batch gets it even if another task asks first.
    ``async for batch in queue:`` is ``while True: batch = await
    queue.get_batch()``.
    """

    __slots__ = ("_claimant", "_pending", "_waiting_consumers")

    #: The items not yet taken, oldest first: the next batch.
    _pending: list[ItemT]
    #: Consumers blocked in `get_batch`, oldest first.
    _waiting_consumers: ParkingLot
    #: The consumer that was woken for `_pending` and has not taken it yet.
    _claimant: Task | None

    def __init__(self) -> None:
        self._pending = []
        self._waiting_consumers = ParkingLot()
        self._claimant = None

    def __repr__(self) -> str:
        return f"<tether.lowlevel.UnboundedQueue holding {len(self._pending)} items>"

    def qsize(self) -> int:
        """The number of items in the queue (including any that a woken
        consumer is about to take)."""
        return len(self._pending)

    def empty(self) -> bool:
        """Whether the queue holds no items. Not a promise that
        `get_batch_nowait` succeeds: items already promised to a woken
        consumer count as queued."""
        return self.qsize() == 0

    def put_nowait(self, obj: ItemT) -> None:
        """Add `obj` to the queue. Never blocks and never fails (the queue
        has no bound, which is why there is no blocking ``put``). Not a
        checkpoint."""
        pending = self._pending
        pending.append(obj)
        # Only the first item of a batch wakes anyone: later ones join the
        # batch already claimed (or left for whoever asks next).
        if len(pending) == 1 and self._waiting_consumers:
            (self._claimant,) = self._waiting_consumers.unpark()

    def _hand_over(self) -> list[ItemT]:
        batch = self._pending
        self._pending = []
        self._claimant = None
        return batch

    def get_batch_nowait(self) -> list[ItemT]:
        """Take every queued item, oldest first, without blocking. Not a
        checkpoint.

        Raises:
          WouldBlock: the queue is empty, or its items are promised to a
            consumer that is already waiting in `get_batch`.
        """
        if self._claimant is not None or not self._pending:
            raise WouldBlock
        return self._hand_over()

    async def get_batch(self) -> list[ItemT]:
        """Take every queued item, oldest first, waiting until there is at
        least one. The returned list is never empty.

        Cancellation: a checkpoint. If cancelled while waiting, nothing is
        taken; once woken with a batch, the batch is returned even if a
        cancellation arrives meanwhile (the next checkpoint raises).
        """
        await checkpoint_if_cancelled()
        if self._claimant is None and self._pending:
            # Free items: take them now, and still let others run.
            batch = self._hand_over()
            await cancel_shielded_checkpoint()
            return batch
        # Woken only by `put_nowait`, which made this task the claimant.
        await self._waiting_consumers.park()
        return self._hand_over()

    async def __anext__(self) -> list[ItemT]:
        return await self.get_batch()

    def __aiter__(self) -> Self:
        return self

    def statistics(self) -> UnboundedQueueStatistics:
        """The queue's size and how many tasks wait in `get_batch`."""
        waiting = len(self._waiting_consumers)
        return UnboundedQueueStatistics(qsize=self.qsize(), tasks_waiting=waiting)
