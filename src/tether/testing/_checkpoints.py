"""`assert_checkpoints` and `assert_no_checkpoints`.

A checkpoint is a *schedule point* (the task yields to the kernel, so other
tasks may run) together with a *cancel point* (a pending cancellation would
be delivered there). Primitives often build one from two halves, as trio's
do: ``checkpoint_if_cancelled()`` (a cancel point that does not yield unless
cancelled) then ``cancel_shielded_checkpoint()`` (a schedule point only).

The kernel keeps no per-task counters (they would cost every step), so for
the duration of a block these watch the current task from the outside:

* an `Instrument` sees each time the task yields. The yield is a schedule
  point, and a cancel point unless the task yielded from
  `cancel_shielded_checkpoint` (every other trap can deliver a
  cancellation);
* a profile function (`sys.setprofile`, in the run's thread) sees each call
  of `checkpoint_if_cancelled` by the task: a cancel point.
"""

from __future__ import annotations

import sys
import threading
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

from ..abc import Instrument
from ..lowlevel import Task, add_instrument, current_task, in_tether_task, remove_instrument
from ..lowlevel import cancel_shielded_checkpoint as _cancel_shielded_checkpoint
from ..lowlevel import checkpoint_if_cancelled as _checkpoint_if_cancelled

# Code objects of the two half-checkpoints: a task whose innermost await frame
# runs the first yielded without a chance to be cancelled; a frame running
# the second is a cancel point.
_SHIELDED_CODE = cast(types.FunctionType, _cancel_shielded_checkpoint).__code__
_CANCEL_CHECK_CODE = cast(types.FunctionType, _checkpoint_if_cancelled).__code__

_ProfileFunction = Callable[[types.FrameType, str, Any], object]


class _Counter(Instrument):
    __slots__ = ("cancel_points", "schedule_points", "task")

    def __init__(self, task: Task) -> None:
        self.task = task
        self.schedule_points = 0
        self.cancel_points = 0

    def after_task_step(self, task: Task) -> None:
        if task is not self.task:
            return
        innermost = None
        for frame, _ in task.iter_await_frames():
            innermost = frame
        if innermost is None:
            return  # the task finished
        self.schedule_points += 1
        if innermost.f_code is not _SHIELDED_CODE:
            self.cancel_points += 1


class _ThreadState(threading.local):
    # Every counter active in this thread; the profile function is installed
    # while there is one (blocks in several tasks may overlap).
    active: list[_Counter]
    previous_profile: _ProfileFunction | None = None

    def __init__(self) -> None:
        self.active = []


_state = _ThreadState()


def _profile(frame: types.FrameType, event: str, arg: Any) -> None:
    if event == "call" and frame.f_code is _CANCEL_CHECK_CODE and in_tether_task():
        task = current_task()
        for counter in _state.active:
            if counter.task is task:
                counter.cancel_points += 1
    previous = _state.previous_profile
    if previous is not None:
        previous(frame, event, arg)


@contextmanager
def _counting() -> Iterator[_Counter]:
    counter = _Counter(current_task())
    add_instrument(counter)
    state = _state
    if not state.active:
        state.previous_profile = cast("_ProfileFunction | None", sys.getprofile())
        sys.setprofile(_profile)
    state.active.append(counter)
    try:
        yield counter
    finally:
        state.active.remove(counter)
        if not state.active:
            sys.setprofile(state.previous_profile)
            state.previous_profile = None
        remove_instrument(counter)


@contextmanager
def assert_checkpoints() -> Iterator[None]:
    """Assert that the block executes at least one checkpoint: it yields to
    the scheduler, and checks for cancellation.

    ``with assert_checkpoints(): await operation()`` fails with
    `AssertionError` if the block finishes without both a schedule point and
    a cancel point (a `cancel_shielded_checkpoint` alone is not enough;
    `checkpoint_if_cancelled` followed by `cancel_shielded_checkpoint` is).
    If the block raises, the exception propagates and nothing is asserted.
    Use it inside a tether task; the block itself is cancellable as usual.
    Only the current task's checkpoints count.
    """
    __tracebackhide__ = True
    with _counting() as counter:
        yield
    if counter.schedule_points and counter.cancel_points:
        return
    if counter.schedule_points:
        raise AssertionError(
            "assert_checkpoints() block yielded only at cancel-shielded schedule "
            "points: it never checked for cancellation"
        )
    if counter.cancel_points:
        raise AssertionError(
            "assert_checkpoints() block checked for cancellation but never yielded to the scheduler"
        )
    raise AssertionError("assert_checkpoints() block finished without a checkpoint")


@contextmanager
def assert_no_checkpoints() -> Iterator[None]:
    """Assert that the block contains no checkpoint, not even half of one:
    it never yields to the scheduler (so no other task can run in the middle
    of it) and never checks for cancellation (so it cannot be cancelled).

    Fails with `AssertionError` when the block exits, even by an exception,
    if it yielded or called ``checkpoint_if_cancelled()`` (which checks for
    cancellation even when it finds none; as in trio, either half of a
    checkpoint fails this assertion). Use it inside a tether task.
    """
    __tracebackhide__ = True
    with _counting() as counter:
        try:
            yield
        finally:
            if counter.schedule_points:
                raise AssertionError(
                    f"assert_no_checkpoints() block yielded to the scheduler "
                    f"{counter.schedule_points} time(s)"
                )
            if counter.cancel_points:
                raise AssertionError(
                    f"assert_no_checkpoints() block checked for cancellation "
                    f"{counter.cancel_points} time(s)"
                )
