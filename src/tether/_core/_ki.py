"""KeyboardInterrupt handling: never in the middle of the kernel's bookkeeping.

Python raises `KeyboardInterrupt` wherever the main thread happens to be when
SIGINT arrives. If that is inside the kernel (halfway through rescheduling a
task, say) the run's state would be corrupted. So while a run is active in
the main thread, tether installs its own SIGINT handler, which looks at the
interrupted frames:

- in user code: raise `KeyboardInterrupt` right there, as Python would, so a
  runaway loop can still be interrupted;
- in protected code (tether's own modules, functions marked with
  `enable_ki_protection`, system tasks): note that an interrupt is pending and
  let the run loop deliver it to the main task at its next checkpoint (or
  wake it from whatever it is blocked in), so nurseries unwind in order.

A decision is made by the innermost frame that has an opinion: an explicit
mark on its code object, then its module, then the boundary of the running
task (system tasks are protected, others not).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import CodeType, FrameType
from typing import Any, TypeVar

from ._run_context import GLOBAL_RUN_CONTEXT

F = TypeVar("F", bound=Callable[..., Any])

_CODE_MARKS: dict[CodeType, bool] = {}

# Modules of tether whose code must not be interrupted half-way. The testing
# tools and the faces run user callbacks, so they are not listed.
_PROTECTED_PREFIXES = (
    "tether._core",
    "tether._sync",
    "tether._channel",
    "tether._timeouts",
    "tether._threads",
    "tether._signals",
)


#: The code of the kernel's step loop, which calls into the task being
#: stepped (registered by _run.py). Walking up from where a signal arrived
#: to this frame through unmarked, unprotected frames means they were all
#: the task's own: its coroutine, or a face's stepper (see spawn_task).
_STEP_LOOP_CODES: set[CodeType] = set()


def register_step_loop(fn: Callable[..., Any]) -> None:
    _STEP_LOOP_CODES.add(fn.__code__)


def _mark(fn: F, protected: bool) -> F:
    code = getattr(fn, "__code__", None)
    if code is None:
        raise TypeError(f"expected a Python function, got {fn!r}")
    _CODE_MARKS[code] = protected
    return fn


def enable_ki_protection(fn: F) -> F:
    """Decorator: a `KeyboardInterrupt` arriving while `fn` runs (a sync,
    async or generator function) is delayed until the next checkpoint outside
    it, instead of being raised in the middle of it."""
    return _mark(fn, True)


def disable_ki_protection(fn: F) -> F:
    """Decorator: `fn` can be interrupted by `KeyboardInterrupt` at any point,
    even when called from protected code."""
    return _mark(fn, False)


def ki_protected(frame: FrameType | None) -> bool:
    """Whether a KeyboardInterrupt arriving in `frame` must be deferred."""
    runner = getattr(GLOBAL_RUN_CONTEXT, "runner", None)
    task = runner.current_task if runner is not None else None
    root_frame = task._root_frame() if task is not None else None
    start = frame
    while frame is not None:
        code = frame.f_code
        mark = _CODE_MARKS.get(code)
        if mark is not None:
            return mark
        if frame is root_frame or (
            task is not None and code in _STEP_LOOP_CODES and frame is not start
        ):
            assert task is not None
            return bool(task._system)
        module = frame.f_globals.get("__name__", "")
        if module.startswith(_PROTECTED_PREFIXES):
            return True
        frame = frame.f_back
    return False


def currently_ki_protected() -> bool:
    """Whether a KeyboardInterrupt arriving now would be deferred."""
    return ki_protected(sys._getframe(1))
