"""KeyboardInterrupt handling: never in the middle of the kernel's bookkeeping.

Python raises `KeyboardInterrupt` wherever the main thread happens to be when
SIGINT arrives. If that is inside the kernel (halfway through rescheduling a
task, say) the run's state would be corrupted. So while a run is active in
the main thread, tether installs its own SIGINT handler, which looks at the
interrupted frames:

- in user code: raise `KeyboardInterrupt` right there, as Python would, so a
  runaway loop can still be interrupted;
- in protected code: note that an interrupt is pending and let the run loop
  deliver it to the main task at its next checkpoint (or wake it from
  whatever it is blocked in), so nurseries unwind in order.

Protection follows the code that runs, not the call that started it: walking
out from the interrupted frame, the innermost frame with an opinion decides.
In order, a frame has one if

1. its code object was marked with `enable_ki_protection` or
   `disable_ki_protection` (marks are kept per code object, by identity, so
   they hold for every call of a function: sync, async, generators, async
   generators, methods);
2. it is a ``__del__`` method: the garbage collector runs it at arbitrary
   points, kernel code included, so it counts as protected;
3. it is where the running task's own code starts (or the step loop that
   called into it): system tasks are protected, other tasks not;
4. it belongs to one of tether's protected modules (the kernel and the
   primitives; faces and testing tools run user callbacks, so they are not
   listed).

Code outside every task (the run loop itself, `run_sync_soon` callbacks,
code outside any run) is protected; code that a face runs for no task in
the middle of a step (tether.aio's loop callbacks, with the kernel's
``current_task`` None and ``no_task_reason`` set) is not, as the callbacks
of asyncio's loop are not.
"""

from __future__ import annotations

import signal
import sys
import threading
import weakref
from collections.abc import Callable
from types import CodeType, FrameType
from typing import TYPE_CHECKING, Any, TypeVar

from ._run_context import GLOBAL_RUN_CONTEXT
from ._traps import RESUME_CHECKPOINT, THROW_ON_RESUME

if TYPE_CHECKING:
    from ._run import Runner

F = TypeVar("F", bound=Callable[..., Any])


class _CodeMarks:
    """Protection marks of code objects, looked up by identity. (Code objects
    compare equal by value, so two functions with identical code would share
    a dict entry.) A mark does not keep its code object alive."""

    __slots__ = ("_marks",)

    #: ``id(code) -> (weak reference to code, protected?)``. The weak
    #: reference tells a live entry from one whose id was reused, and its
    #: callback removes the entry when the code object dies.
    _marks: dict[int, tuple[weakref.ref[CodeType], bool]]

    def __init__(self) -> None:
        self._marks = {}

    def set(self, code: CodeType, protected: bool) -> None:
        key = id(code)
        marks = self._marks

        def forget(ref: weakref.ref[CodeType]) -> None:
            entry = marks.get(key)
            if entry is not None and entry[0] is ref:
                del marks[key]

        marks[key] = (weakref.ref(code, forget), protected)

    def get(self, code: CodeType) -> bool | None:
        entry = self._marks.get(id(code))
        if entry is None or entry[0]() is not code:
            return None
        return entry[1]


_CODE_MARKS = _CodeMarks()

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
    # A staticmethod or classmethod object (decorated before it was turned
    # into one) carries its function in __func__.
    target = getattr(fn, "__func__", fn)
    code = getattr(target, "__code__", None)
    if not isinstance(code, CodeType):
        decorator = "enable_ki_protection" if protected else "disable_ki_protection"
        raise TypeError(
            f"{decorator} expects a Python function (sync, async, generator or async "
            f"generator; a method or staticmethod is fine), got {fn!r}; for a callable "
            "object, decorate the method it calls"
        )
    _CODE_MARKS.set(code, protected)
    return fn


def enable_ki_protection(fn: F) -> F:
    """Decorator: a `KeyboardInterrupt` arriving while `fn` runs (a sync,
    async, generator or async generator function, or a method) is delayed
    until the next checkpoint outside it, instead of being raised in the
    middle of it. Applies to every call of `fn`, and to what it calls unless
    that is marked otherwise. Returns `fn` itself."""
    return _mark(fn, True)


def disable_ki_protection(fn: F) -> F:
    """Decorator: `fn` can be interrupted by `KeyboardInterrupt` at any point,
    even when called from protected code. Returns `fn` itself."""
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
        if code.co_name == "__del__":
            return True
        if frame is root_frame or (code in _STEP_LOOP_CODES and frame is not start):
            if task is None:
                # Below a step, with no current task: code that a face runs
                # for no task (its callbacks: `SteppingState.no_task_reason`
                # is set), which is not protected; otherwise the kernel's
                # own (a run_sync_soon callback between two batches).
                return runner is None or runner.no_task_reason is None
            return bool(task._system)
        module = frame.f_globals.get("__name__", "")
        if module.startswith(_PROTECTED_PREFIXES):
            return True
        frame = frame.f_back
    # Outside every task: the run loop itself, or no run at all.
    return True


def currently_ki_protected() -> bool:
    """Whether a KeyboardInterrupt arriving now would be deferred (see
    `enable_ki_protection`). Not a checkpoint; works outside a run too."""
    return ki_protected(sys._getframe(1))


def install_sigint_handler(runner: Runner, restrict_to_checkpoints: bool) -> Callable[[], None]:
    """Install the run's SIGINT handler if this is the main thread and
    Python's default handler is in place (a handler someone else installed
    is left alone). Returns the function that puts the default handler back
    at the end of the run; it does nothing if the handler was not installed,
    or if someone replaced it during the run (theirs stays). Called in
    another thread, it makes the handler act as the default one instead;
    called again in the main thread, it removes it."""
    if threading.current_thread() is not threading.main_thread():
        return _nothing_to_uninstall
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return _nothing_to_uninstall

    #: Set when the run ended in another thread, which could not put the
    #: default handler back (Python changes handlers only in the main
    #: thread): until the main thread does, this handler acts as the default.
    run_over = False

    def handler(signum: int, frame: FrameType | None) -> None:
        if run_over:
            raise KeyboardInterrupt
        runner.sigint_received = True
        if restrict_to_checkpoints or ki_protected(frame):
            # Only atomic operations here: this can interrupt the kernel
            # anywhere, including the entry queue's own methods. The flag
            # alone makes `run` raise KeyboardInterrupt at its end, should
            # the loop never get to the callback (the run is ending).
            runner.ki_pending = True
            runner.entry_queue.ordered.append((deliver_ki, (runner,)))
            runner.io_manager.wakeup_threadsafe()
        else:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)

    def uninstall() -> None:
        nonlocal run_over
        if threading.current_thread() is not threading.main_thread():
            run_over = True
            return
        if signal.getsignal(signal.SIGINT) is handler:
            signal.signal(signal.SIGINT, signal.default_int_handler)

    return uninstall


def _nothing_to_uninstall() -> None:
    pass


# -- delivery to the main task ---------------------------------------------------


def deliver_ki(runner: Runner) -> None:
    """Entry-queue callback queued by the SIGINT handler when the signal
    arrived in protected code (the handler has set ``ki_pending``; the loop
    may have delivered it since)."""
    if runner.ki_pending:
        deliver_pending_ki(runner)


def deliver_pending_ki(runner: Runner) -> None:
    """Deliver the pending KeyboardInterrupt to the main task if it can take
    it now: in a wait (by aborting it) or at a checkpoint.

    KeyboardInterrupt is outside every cancel scope: it reaches the main
    task at a checkpoint or in a wait, shielded or not, but never at a
    cancel-shielded checkpoint (which is not a cancel point at all). Tried
    when it arrives (`deliver_ki`), whenever the main task starts a wait
    while it is pending (the step loop, `queue_in_lot`,
    `block_at_foreign_wait`), and after each batch for a checkpoint
    (`deliver_ki_at_checkpoint`). A wait whose abort function refused is not
    asked again: the task's next wait or checkpoint takes it."""
    task = runner.main_task
    if task is None or runner.main_task_outcome is not None:
        return
    if task._abort_func is not None:

        def raise_ki() -> Any:
            runner.ki_pending = False
            raise KeyboardInterrupt

        task._attempt_abort(raise_ki)
    else:
        deliver_ki_at_checkpoint(runner)


def deliver_ki_at_checkpoint(runner: Runner) -> None:
    """If the main task resumes from a checkpoint next, make it raise the
    pending KeyboardInterrupt there."""
    task = runner.main_task
    if (
        task is not None
        and task._next_send is RESUME_CHECKPOINT
        and runner.main_task_outcome is None
    ):
        task._next_send = THROW_ON_RESUME
        task._pending_throw = KeyboardInterrupt()
        runner.ki_pending = False
