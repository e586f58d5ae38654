"""Loose exception groups: the deprecated ``strict_exception_groups=False``.

By default a nursery raises its errors as an `ExceptionGroup`, even a single
one (strict). trio's older *loose* mode, still accepted for code written
against it, raises a single error bare and marks the groups it does raise
with `LOOSE_GROUP_NOTE`. Such a marked group is collapsed to its only member
when a cancel scope strips the `Cancelled` out of it and one error is left
(`collapse_loose_groups`): a loose nursery whose other children were merely
cancelled still raises its one real error bare. Groups without the note (the
strict ones, and any the user raises) are never collapsed.

Choosing loose mode warns with `TetherDeprecationWarning`, as trio warns.
"""

from __future__ import annotations

import warnings
from types import TracebackType

from ._exceptions import TetherDeprecationWarning

LOOSE_GROUP_NOTE = (
    'This is a "loose" ExceptionGroup (strict_exception_groups=False): it may be '
    "collapsed to its only exception once Cancelled is taken out of it. Handling "
    "errors as groups (strict_exception_groups=True, the default) is recommended."
)


def warn_loose(what: str) -> None:
    """Warn that `what` (the call, as the user wrote it) asked for loose
    groups; the warning points at the caller of the caller."""
    warnings.warn(
        f"{what} is deprecated, as in trio: keep the default "
        "(strict_exception_groups=True) and handle errors from nurseries as "
        "ExceptionGroups ('except*', or ExceptionGroup.split)",
        TetherDeprecationWarning,
        stacklevel=3,
    )


def collapse_loose_groups(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """`group` with each loose group inside it (itself included) that holds
    one exception replaced by that exception."""
    members = list(group.exceptions)
    changed = False
    for index, member in enumerate(members):
        if isinstance(member, BaseExceptionGroup):
            collapsed = collapse_loose_groups(member)
            if collapsed is not member:
                members[index] = collapsed
                changed = True
    if len(members) == 1 and LOOSE_GROUP_NOTE in getattr(group, "__notes__", ()):
        only = members[0]
        # Keep the frames the group travelled through, then the member's own.
        return only.with_traceback(_concat(group.__traceback__, only.__traceback__))
    if changed:
        # As `split` does: the new group keeps the original's metadata.
        derived = group.derive(members)
        derived.__cause__ = group.__cause__
        derived.__context__ = group.__context__
        derived.__traceback__ = group.__traceback__
        if hasattr(group, "__notes__"):
            derived.__notes__ = list(group.__notes__)
        return derived
    return group


def _concat(head: TracebackType | None, tail: TracebackType | None) -> TracebackType | None:
    """The traceback `head` followed by `tail` (new entries; neither is
    modified)."""
    entries = []
    while head is not None:
        entries.append(head)
        head = head.tb_next
    for entry in reversed(entries):
        tail = TracebackType(tail, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    return tail
