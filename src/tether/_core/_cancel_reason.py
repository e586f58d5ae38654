"""Why a cancel scope was cancelled.

A `CancelScope` records one `CancelReason`: the first cause that cancelled
it (a later cause does not overwrite it). A scope that becomes cancelled
only because an enclosing scope was inherits that scope's reason. Each
`Cancelled` raised inside the scope carries the reason's fields, so its
message says which kind of cancellation reached the code, why, and from
which task::

    cancelled due to nursery with reason 'child task raised exception
    ValueError()' from task <Task 'app.worker' at 0x7f...>

A `Cancelled` records the task by its ``repr`` rather than referencing it,
so a kept exception never keeps a task (and everything it references) alive.
The reason itself may hold the task until that text is first needed:
`CancelScope.cancel` runs in whatever loop cancels things, and building a
``repr`` there that nobody may ever read (no checkpoint left in the scope)
is wasted work. The first read of `CancelReason.source_task` (when the
first `Cancelled` is made, or a task tree is drawn) builds the text and
lets go of the task.
"""

from __future__ import annotations

from typing import Literal, TypeAlias

from ._exceptions import Cancelled

#: What kind of event cancelled a scope: `CancelScope.cancel` ("explicit"),
#: a deadline, a nursery whose child or body raised, a KeyboardInterrupt
#: delivered while a nursery waited for its children, the end of the run
#: ("shutdown"), or nothing recorded ("unknown": a scope left cancelled by
#: misnested scopes).
CancelSource: TypeAlias = Literal[
    "KeyboardInterrupt",
    "deadline",
    "explicit",
    "nursery",
    "shutdown",
    "unknown",
]


class CancelReason:
    """The cause recorded on a cancelled scope (immutable, apart from the
    task text built on first read)."""

    __slots__ = ("_by_task", "_source_task", "reason", "source")

    #: What kind of event it was (see `CancelSource`).
    source: CancelSource
    #: The text given to ``cancel(reason=...)``, or tether's description of
    #: the cause; None for none.
    reason: str | None
    #: The ``repr`` of the task that caused it, once built (see
    #: `source_task`); None while `_by_task` holds the task, or if unknown.
    _source_task: str | None
    #: The task that caused it, until `source_task` is first read; then
    #: None. Invariant: at most one of `_by_task` and `_source_task` is set.
    _by_task: object | None

    def __init__(
        self,
        source: CancelSource,
        *,
        source_task: str | None = None,
        reason: str | None = None,
        by_task: object | None = None,
    ) -> None:
        """`source_task` is the causing task's text if already built;
        `by_task` is the task itself, for its text to be built lazily."""
        self.source = source
        self.reason = reason
        self._source_task = source_task
        self._by_task = by_task

    @property
    def source_task(self) -> str | None:
        """The ``repr`` of the task that caused it, if known (a string, so
        that a `Cancelled` made from this reason does not keep the task
        alive). Built on first read."""
        task = self._by_task
        if task is not None:
            self._source_task = repr(task)
            self._by_task = None
        return self._source_task

    def __repr__(self) -> str:
        return (
            f"CancelReason(source={self.source!r}, source_task={self.source_task!r}, "
            f"reason={self.reason!r})"
        )


#: Shared by every scope cancelled by its deadline (it names no task).
DEADLINE = CancelReason("deadline")


def cancelled_for(reason: CancelReason | None) -> Cancelled:
    """The `Cancelled` to raise in code under a scope cancelled for
    `reason` (None: the scope was left cancelled by misnested scopes)."""
    if reason is None:
        return Cancelled._create(source="unknown", reason="misnesting")
    return Cancelled._create(
        source=reason.source, source_task=reason.source_task, reason=reason.reason
    )
