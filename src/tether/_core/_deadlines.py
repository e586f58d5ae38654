"""All active cancel-scope deadlines, in one binary heap.

The run loop asks for the nearest deadline to know how long it may sleep,
and expires every deadline that has passed after each wait.

The heap holds entries ``[deadline, sequence number, scope]``. Adding is a
push; removing (a scope exited, or its deadline changed) only marks the
entry dead (``scope`` None), and dead entries are dropped when they reach
the top, or all at once when they outnumber the live ones, or when none is
left alive: both stay O(log n), and the heap at most about twice the size
of what it holds. The sequence number keeps scopes with equal deadlines in
the order they were registered, and makes two entries never compare their
scopes.

Invariants: ``_live`` is the number of entries in the heap whose scope is
not None, and the heap is empty when that is 0 (between calls). A scope
keeps its entry (``_deadline_key``) to remove it.
"""

from __future__ import annotations

import heapq
import itertools
import math
from typing import TYPE_CHECKING, Any, TypeAlias

from ._cancel_reason import DEADLINE

if TYPE_CHECKING:
    from ._cancel import CancelScope

#: ``[deadline, sequence number, scope (None once dead)]``.
DeadlineEntry: TypeAlias = list[Any]

#: Rebuild the heap without its dead entries once more than half of it is
#: dead and at least this many are: removal stays O(1) without letting
#: the heap grow with entries that will never fire.
_COMPACT_AT_LEAST = 64


class Deadlines:
    """The run's registered deadlines."""

    __slots__ = ("_live", "_scopes", "_sequence")

    #: The heap of entries. The run loop tests its truth to skip `expire`
    #: when there is nothing, dead or alive, left.
    _scopes: list[DeadlineEntry]
    #: How many entries are alive (see the module docstring).
    _live: int
    #: Numbers for the entries, in registration order.
    _sequence: itertools.count[int]

    def __init__(self) -> None:
        self._scopes = []
        self._live = 0
        self._sequence = itertools.count()

    def __len__(self) -> int:
        return self._live

    def add(self, deadline: float, scope: CancelScope) -> DeadlineEntry:
        """Register `scope` to be cancelled at `deadline`; returns the key
        to pass to `remove`."""
        entry = [deadline, next(self._sequence), scope]
        heapq.heappush(self._scopes, entry)
        self._live += 1
        return entry

    def remove(self, key: DeadlineEntry) -> None:
        """Forget an entry that has not fired."""
        key[2] = None
        self._live -= 1
        heap = self._scopes
        if not self._live:
            # Nothing left to fire: an empty heap lets the run loop skip
            # `expire` (dead entries would keep it calling until their
            # times passed).
            heap.clear()
            return
        dead = len(heap) - self._live
        if dead > self._live and dead >= _COMPACT_AT_LEAST:
            heap[:] = [entry for entry in heap if entry[2] is not None]
            heapq.heapify(heap)

    def next_deadline(self) -> float:
        """The nearest deadline registered; ``inf`` for none."""
        heap = self._scopes
        while heap and heap[0][2] is None:
            heapq.heappop(heap)
        if not heap:
            return math.inf
        deadline: float = heap[0][0]
        return deadline

    def expire(self, now: float) -> bool:
        """Cancel every scope whose deadline is at or before `now`; return
        whether any was."""
        heap = self._scopes
        heappop = heapq.heappop
        did_something = False
        while heap and heap[0][0] <= now:
            entry = heappop(heap)
            scope = entry[2]
            if scope is None:
                continue
            entry[2] = None
            self._live -= 1
            did_something = True
            # The scope's registration is gone; tell it so cancel() does not
            # try to remove it a second time.
            scope._registered_deadline = math.inf
            scope._deadline_key = None
            scope._cancel(DEADLINE)
        if not self._live:
            heap.clear()  # (only dead entries are left; see `remove`)
        return did_something
