"""Why a cancel scope was cancelled.

A `CancelScope` records one `CancelReason`: the first cause that cancelled
it (a later cause does not overwrite it). A scope that becomes cancelled
only because an enclosing scope was inherits that scope's reason. Each
`Cancelled` raised inside the scope carries the reason's fields, so its
message says which kind of cancellation reached the code, why, and from
which task::

    cancelled due to nursery with reason 'child task raised exception
    ValueError()' from task <Task 'app.worker' at 0x7f...>

Tasks are recorded by their ``repr`` rather than referenced, so a kept
exception never keeps a task (and everything it references) alive.
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
    """The cause recorded on a cancelled scope (immutable)."""

    __slots__ = ("reason", "source", "source_task")

    #: What kind of event it was (see `CancelSource`).
    source: CancelSource
    #: The ``repr`` of the task that caused it, if known (a string, so that
    #: a kept reason does not keep the task alive).
    source_task: str | None
    #: The text given to ``cancel(reason=...)``, or tether's description of
    #: the cause; None for none.
    reason: str | None

    def __init__(
        self,
        source: CancelSource,
        *,
        source_task: str | None = None,
        reason: str | None = None,
    ) -> None:
        self.source = source
        self.source_task = source_task
        self.reason = reason

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
