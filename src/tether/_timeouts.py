"""Deadlines for the impatient: sleeping and scope shorthands.

The scope shorthands are built on `CancelScope`: `move_on_*` give up
silently, `fail_*` raise `TooSlowError` when the deadline was what ended
the block. Sleeping is the kernel's timed wait (`_core.sleep_until`).
"""

from __future__ import annotations

import math
import numbers
from types import TracebackType

from ._core import (
    Abort,
    CancelScope,
    Task,
    WaitInfo,
    checkpoint,
    current_time,
    effective_deadline_of,
    format_time,
    register_wait_describer,
    wait_task_rescheduled,
)
from ._core import sleep_until as _sleep_until
from ._core._traps import ABORT_BY_CANCELLING_TIMER


class TooSlowError(Exception):
    """Raised by `fail_after` / `fail_at` when the deadline expires first."""


def _check_deadline(deadline: float) -> None:
    if type(deadline) is not float and type(deadline) is not int:
        if not isinstance(deadline, numbers.Real):
            raise TypeError(f"deadline must be a number, got {deadline!r}")
    if deadline != deadline:
        raise ValueError("deadline must not be NaN")


def _check_seconds(seconds: float) -> None:
    # (The messages name the argument as trio's do. The usual int or float
    # is checked without the slower numbers.Real test.)
    if type(seconds) is not float and type(seconds) is not int:
        if not isinstance(seconds, numbers.Real):
            raise TypeError(f"`seconds` must be a number, got {seconds!r}")
    if seconds != seconds:
        raise ValueError("`seconds` must not be NaN")
    if seconds < 0:
        raise ValueError("`seconds` must be non-negative")


def move_on_at(deadline: float, *, shield: bool = False) -> CancelScope:
    """A `CancelScope` that cancels itself at the absolute time `deadline`
    (see `current_time`). Use as ``with move_on_at(d) as scope:``; afterwards
    ``scope.cancelled_caught`` tells whether the deadline cut the block short.
    Entering and exiting are not checkpoints.

    Raises `ValueError` for a NaN deadline, `TypeError` if it is not a number.
    """
    _check_deadline(deadline)
    return CancelScope(deadline=deadline, shield=shield)


def move_on_after(seconds: float, *, shield: bool = False) -> CancelScope:
    """A `CancelScope` that cancels itself `seconds` after it is entered.
    Entering and exiting are not checkpoints.

    Raises `ValueError` if `seconds` is negative or NaN, `TypeError` if it is
    not a number.
    """
    _check_seconds(seconds)
    return CancelScope(relative_deadline=seconds, shield=shield)


def fail_at(deadline: float, *, shield: bool = False) -> _FailScope:
    """Like `move_on_at`, but raise `TooSlowError` if the deadline expired and
    cancelled the block. The scope is returned by ``with ... as scope``."""
    _check_deadline(deadline)
    return _FailScope(CancelScope(deadline=deadline, shield=shield))


def fail_after(seconds: float, *, shield: bool = False) -> _FailScope:
    """Like `move_on_after`, but raise `TooSlowError` if the deadline expired
    and cancelled the block."""
    _check_seconds(seconds)
    return _FailScope(CancelScope(relative_deadline=seconds, shield=shield))


class _FailScope:
    """Context manager for fail_at/fail_after: a scope whose catching of its
    own deadline turns into `TooSlowError`."""

    __slots__ = ("_scope",)

    def __init__(self, scope: CancelScope) -> None:
        self._scope = scope

    def __enter__(self) -> CancelScope:
        return self._scope.__enter__()

    def __exit__(
        self,
        etype: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        swallowed = self._scope.__exit__(etype, exc, tb)
        if self._scope.cancelled_caught:
            raise TooSlowError
        return swallowed


def _abort_sleep(_: object) -> Abort:
    return Abort.SUCCEEDED


async def sleep_forever() -> None:
    """Block until cancelled. Only ends by raising `Cancelled`."""
    await wait_task_rescheduled(_abort_sleep)
    raise RuntimeError("sleep_forever() was rescheduled without being cancelled")


async def sleep_until(deadline: float) -> None:
    """Sleep until the absolute time `deadline` (by `current_time`). Always a
    checkpoint, even for a deadline in the past; cancellable."""
    _check_deadline(deadline)
    # (The kernel's timed wait: behaves as a wait inside a scope with this
    # deadline would, without the scope.)
    await _sleep_until(deadline)


async def sleep(seconds: float) -> None:
    """Sleep for `seconds`. ``sleep(0)`` is a checkpoint that does not wait.
    Cancellable; raises `ValueError` for negative or NaN durations."""
    _check_seconds(seconds)
    if seconds == 0:
        await checkpoint()
    else:
        await _sleep_until(current_time() + seconds)


def _describe_sleep(task: Task, abort_func: object, now: float) -> WaitInfo:
    """For the task tree: a task in `sleep_forever` (which `sleep` and
    `sleep_until` wait in) sleeps until the nearest deadline around it."""
    until = effective_deadline_of(task)
    if until == math.inf:
        text = "sleeping forever (until cancelled)"
    elif until == -math.inf:
        text = "sleeping, cancelled: wakes at its next step"
    else:
        text = f"sleeping until {format_time(until, now)}"
    return WaitInfo("sleep", text, details={"until": until})


register_wait_describer(_abort_sleep, _describe_sleep)


def _describe_timer(task: Task, abort_func: object, now: float) -> WaitInfo:
    """For the task tree: a task in `sleep_until` (the kernel's timed wait)
    sleeps until its timer, or the nearest deadline around it if earlier."""
    until = min(task.custom_sleep_data[0], effective_deadline_of(task))
    if until == -math.inf:
        text = "sleeping, cancelled: wakes at its next step"
    else:
        text = f"sleeping until {format_time(until, now)}"
    return WaitInfo("sleep", text, details={"until": until})


register_wait_describer(ABORT_BY_CANCELLING_TIMER, _describe_timer)
