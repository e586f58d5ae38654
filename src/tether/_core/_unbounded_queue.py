"""`UnboundedQueue`: a queue whose producers never wait, read in batches.

Kept for trio compatibility (trio deprecates it in favour of
``open_memory_channel(math.inf)``). A consumer takes *everything* queued in
one call, which bounds the backlog in practice if each batch is processed
without yielding.

Invariants:

* ``_ready`` is True exactly when a batch may be taken without waiting: the
  queue holds items and no parked consumer has been handed them.
* An item put into an empty queue wakes exactly one parked consumer (the one
  waiting longest) or, if none is parked, sets ``_ready``. So two waiting
  consumers never both wake for one batch (no spurious wake-ups), and a
  consumer that was woken owns the next batch: ``_ready`` stays False until
  it takes it, so nobody can take it first with `get_batch_nowait`. Items
  put meanwhile join that batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Self, TypeVar, final

from ._exceptions import WouldBlock
from ._parking_lot import ParkingLot
from ._traps import cancel_shielded_checkpoint, checkpoint_if_cancelled

T = TypeVar("T")


@dataclass(frozen=True)
class UnboundedQueueStatistics:
    """What `UnboundedQueue.statistics` reports.

    ``qsize``: items in the queue; ``tasks_waiting``: tasks blocked in
    `UnboundedQueue.get_batch`.
    """

    qsize: int
    tasks_waiting: int


@final
class UnboundedQueue(Generic[T]):
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

    __slots__ = ("_data", "_lot", "_ready")

    #: The consumers waiting for a batch, oldest first.
    _lot: ParkingLot
    #: The queued items (the next batch).
    _data: list[T]
    #: Whether any consumer may take `_data` now; False while a woken
    #: consumer owns it (see the module docstring).
    _ready: bool

    def __init__(self) -> None:
        self._lot = ParkingLot()
        self._data = []
        self._ready = False

    def __repr__(self) -> str:
        return f"<tether.lowlevel.UnboundedQueue holding {len(self._data)} items>"

    def qsize(self) -> int:
        """The number of items in the queue (including any that a woken
        consumer is about to take)."""
        return len(self._data)

    def empty(self) -> bool:
        """Whether the queue holds no items. Not a promise that
        `get_batch_nowait` succeeds: items already promised to a woken
        consumer count as queued."""
        return not self._data

    def put_nowait(self, obj: T) -> None:
        """Add `obj` to the queue. Never blocks and never fails (the queue
        has no bound, which is why there is no blocking ``put``). Not a
        checkpoint."""
        if not self._data:
            if self._lot:
                self._lot.unpark(count=1)
            else:
                self._ready = True
        self._data.append(obj)

    def _take_batch(self) -> list[T]:
        batch = self._data
        self._data = []
        self._ready = False
        return batch

    def get_batch_nowait(self) -> list[T]:
        """Take every queued item, oldest first, without blocking. Not a
        checkpoint.

        Raises:
          WouldBlock: the queue is empty, or its items are promised to a
            consumer that is already waiting in `get_batch`.
        """
        if not self._ready:
            raise WouldBlock
        return self._take_batch()

    async def get_batch(self) -> list[T]:
        """Take every queued item, oldest first, waiting until there is at
        least one. The returned list is never empty.

        Cancellation: a checkpoint. If cancelled while waiting, nothing is
        taken; once woken with a batch, the batch is returned even if a
        cancellation arrives meanwhile (the next checkpoint raises).
        """
        await checkpoint_if_cancelled()
        if not self._ready:
            await self._lot.park()
            return self._take_batch()
        batch = self._take_batch()
        await cancel_shielded_checkpoint()
        return batch

    def statistics(self) -> UnboundedQueueStatistics:
        """The queue's size and how many tasks wait in `get_batch`."""
        return UnboundedQueueStatistics(qsize=len(self._data), tasks_waiting=len(self._lot))

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> list[T]:
        return await self.get_batch()
