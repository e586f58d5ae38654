"""All active cancel-scope deadlines, in one sorted structure.

The run loop asks for the nearest deadline to know how long it may sleep, and
expires every deadline that has passed after each wait. Keys are
``(deadline, id(scope))`` so that scopes with equal deadlines coexist and are
expired in a stable order.
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING

from sortedcontainers import SortedDict

from ._cancel_reason import DEADLINE

if TYPE_CHECKING:
    from ._cancel import CancelScope


class Deadlines:
    """The run's registered deadlines."""

    __slots__ = ("_scopes", "_sequence")

    #: ``(deadline, sequence number) -> scope``, sorted, nearest first.
    #: Invariant: holds exactly the entered, uncancelled scopes with a
    #: finite deadline (each scope keeps its key to remove itself). The run
    #: loop tests its truth to skip expiring when there is nothing.
    _scopes: SortedDict
    #: Numbers for the keys, in registration order.
    _sequence: itertools.count[int]

    def __init__(self) -> None:
        self._scopes = SortedDict()
        self._sequence = itertools.count()

    def __len__(self) -> int:
        return len(self._scopes)

    def add(self, deadline: float, scope: CancelScope) -> tuple[float, int]:
        """Register `scope` to be cancelled at `deadline`; returns the key
        to pass to `remove`."""
        key = (deadline, next(self._sequence))
        self._scopes[key] = scope
        return key

    def remove(self, key: tuple[float, int]) -> None:
        del self._scopes[key]

    def next_deadline(self) -> float:
        scopes = self._scopes
        if not scopes:
            return math.inf
        deadline: float = scopes.keys()[0][0]
        return deadline

    def expire(self, now: float) -> bool:
        """Cancel every scope whose deadline is at or before `now`; return
        whether any was."""
        scopes = self._scopes
        did_something = False
        while scopes:
            key = scopes.keys()[0]
            if key[0] > now:
                break
            scope = scopes.pop(key)
            # The scope's registration is gone; tell it so cancel() does not
            # try to remove it a second time.
            scope._registered_deadline = math.inf
            scope._deadline_key = None
            scope._cancel(DEADLINE)
            did_something = True
        return did_something
