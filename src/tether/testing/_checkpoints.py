"""`assert_checkpoints` and `assert_no_checkpoints`.

A checkpoint is a *schedule point* (the task yields to the kernel, so other
tasks may run) together with a *cancel point* (a pending cancellation would
be delivered there). Primitives often build one from two halves, as trio's
do: ``checkpoint_if_cancelled()`` (a cancel point that does not yield unless
cancelled) then ``cancel_shielded_checkpoint()`` (a schedule point only).
The fastest primitives (memory channels) make the same two halves without
the helpers: they ask the run's stepping state ``cancel_pending()`` and
yield the kernel's ``CANCEL_SHIELDED_CHECKPOINT`` trap themselves.

The kernel keeps no per-task counters (they would cost every step), so for
the duration of a block these watch the current task from the outside:

* an `Instrument` sees each time the task yields. The yield is a schedule
  point, and a cancel point unless what the task yielded was the
  ``CANCEL_SHIELDED_CHECKPOINT`` trap (every other trap can deliver a
  cancellation);
* a profile function (`sys.setprofile`, in the run's thread) sees what the
  task's frames yield (a yield is a "return" event carrying the value), and
  each call the task makes to ``checkpoint_if_cancelled`` or to its
  stepping state's ``cancel_pending``: a cancel point. (Such a primitive
  asks only when the run's count of cancelled scopes is not 0; during a
  block the count is one higher, so that it asks.)
"""

from __future__ import annotations

import sys
import threading
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

from ..abc import Instrument
from ..lowlevel import (
    CANCEL_SHIELDED_CHECKPOINT,
    Task,
    add_instrument,
    current_stepping_state,
    current_task,
    in_tether_task,
    remove_instrument,
)
from ..lowlevel import checkpoint_if_cancelled as _checkpoint_if_cancelled

# The code object of the cancel-point half: a frame running it is a cancel
# point. (The other way to make one, the stepping state's
# ``cancel_pending``, is a method of the run, looked up when a block
# starts.)
_CANCEL_CHECK_CODE = cast(types.FunctionType, _checkpoint_if_cancelled).__code__

_ProfileFunction = Callable[[types.FrameType, str, Any], object]


class _Counter(Instrument):
    __slots__ = ("cancel_points", "schedule_points", "shielded_yield", "task")

    def __init__(self, task: Task) -> None:
        self.task = task
        self.schedule_points = 0
        self.cancel_points = 0
        # Set by the profile function when the task yields
        # CANCEL_SHIELDED_CHECKPOINT during a step; read and reset after it.
        self.shielded_yield = False

    def after_task_step(self, task: Task) -> None:
        if task is not self.task:
            return
        shielded = self.shielded_yield
        self.shielded_yield = False
        if next(task.iter_await_frames(), None) is None:
            return  # the task finished
        self.schedule_points += 1
        if not shielded:
            self.cancel_points += 1


class _ThreadState(threading.local):
    # Every counter active in this thread; the profile function is installed
    # while there is one (blocks in several tasks may overlap).
    active: list[_Counter]
    previous_profile: _ProfileFunction | None = None
    # The code of the run's ``cancel_pending`` method (see _counting).
    cancel_pending_code: types.CodeType | None = None

    def __init__(self) -> None:
        self.active = []


_state = _ThreadState()


def _profile(frame: types.FrameType, event: str, arg: Any) -> None:
    if event == "return":
        # (A yield is a "return" event too, with the yielded value: every
        # frame of the await chain reports the trap on its way out.)
        if arg is CANCEL_SHIELDED_CHECKPOINT and in_tether_task():
            task = current_task()
            for counter in _state.active:
                if counter.task is task:
                    counter.shielded_yield = True
    elif event == "call":
        code = frame.f_code
        if (code is _CANCEL_CHECK_CODE or code is _state.cancel_pending_code) and in_tether_task():
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
    stepping: Any = current_stepping_state()
    state = _state
    if not state.active:
        cancel_pending = cast(types.MethodType, stepping.cancel_pending)
        state.cancel_pending_code = cancel_pending.__func__.__code__
        state.previous_profile = cast("_ProfileFunction | None", sys.getprofile())
        sys.setprofile(_profile)
    state.active.append(counter)
    # A primitive that asks ``cancel_pending`` only when the run has any
    # cancelled scope (the count may be high, never low) would otherwise
    # make its cancel point without a call to see: one more in the count
    # makes it ask.
    stepping.cancelled_statuses += 1
    try:
        yield counter
    finally:
        stepping.cancelled_statuses -= 1
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
