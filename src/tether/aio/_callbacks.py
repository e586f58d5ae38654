"""Callbacks: how the loop queues them in batches and runs them.

Callbacks queued one after the other with no task step in between form a
`CallbackBatch`, which one kernel task (a *callback runner*) runs in one
step (see `_loop_core.py` for where a batch opens and closes).
`run_callbacks` is the one place where callbacks are called: the batches',
the due timers' and the ready file descriptors'.

tether.aio's own helpers (gather, TaskGroup, wait...) add a `LoopCallback`
to futures, which the loop queues without making an `asyncio.Handle`; a
`CountingHook` counts the members of a group (a gather's children) as they
finish, so that most of them need no callback at all.
"""

from __future__ import annotations

import asyncio
import logging
import reprlib
from asyncio import events
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from .. import lowlevel

if TYPE_CHECKING:
    from ._loop_core import LoopCore

logger = logging.getLogger("asyncio")

R = TypeVar("R")


class CountingHook:
    """The done callback of a group of futures (a `gather`'s children) whose
    callback has work to do only for a member that raised or was cancelled,
    and for the last member to finish; for the others it would only count
    them.

    A member that is a new task with the hook as its ``_done_hook`` is
    counted by the task's finish, which queues ``callback`` only in those
    cases. Every member of a group must be counted the same way: a group
    with other futures among its members gives every member a callback that
    calls `count_one`, or the last count could come before the callback of
    a member that finished earlier had run. ``last`` is the member that
    finished last, once all ``count`` of them have."""

    __slots__ = ("callback", "count", "finished", "last")

    def __init__(self, callback: Any) -> None:
        self.callback = callback
        self.count = 0
        self.finished = 0
        self.last: Any = None

    def count_one(self, member: Any) -> None:
        """Count `member` (a future that is not a task made for the group)
        as finished."""
        self.finished += 1
        if self.finished == self.count:
            self.last = member

    def member_finished(self, member: Any, returned: bool) -> LoopCallback | None:
        """Count `member`, a new task whose ``_done_hook`` this is, as
        finished, and return the callback to queue for it: only if it did
        not return (`returned` false: it raised or was cancelled), or if it
        is the last member to finish; otherwise None."""
        self.finished += 1
        if self.finished == self.count:
            self.last = member
            return self.callback  # type: ignore[no-any-return]
        return None if returned else self.callback


class LoopCallback:
    """A done callback that tether.aio's own helpers (gather, TaskGroup,
    wait...) add to futures. ``call_soon`` queues it like any callback, in
    the same place, but without creating an `asyncio.Handle`, and runs it
    outside any context (these callbacks use no context variables)."""

    __slots__ = ("function",)

    def __init__(self, function: Callable[..., object]) -> None:
        self.function = function

    def __call__(self, *args: Any) -> None:
        self.function(*args)

    def __repr__(self) -> str:
        return f"<LoopCallback {self.function!r}>"


def _call_in_context(*group: Any) -> None:  # pragma: no cover - never called
    raise AssertionError("run_callbacks runs a CONTEXT_CALL itself")


#: Queues a callback without a Handle, to run in a context: a standard-library
#: task's wakeup (`call_soon` says when). A LoopCallback whose entry in a
#: batch is followed by three: the callback, its arguments (a tuple) and the
#: context to run it in.
CONTEXT_CALL = LoopCallback(_call_in_context)

#: What a callback batch holds: see `CallbackBatch`.
QueuedCallback = Any


class CallbackBatch(list[QueuedCallback]):
    """Callbacks queued back to back, which one callback runner (a kernel
    task) runs in one step. The only code that reads or writes how they
    are stored:

    - in a batch, an entry is an `asyncio.Handle`, or a `LoopCallback`
      followed by its argument: two entries, so that queueing one keeps no
      new object alive (with 100k tasks finishing in one batch, kept tuples
      would make the garbage collector walk them all); `CONTEXT_CALL` is
      followed by three (a callback, its arguments, its context);
    - outside a batch (the loop's pending queue, between segments), each
      such group travels as one tuple: ``(callback, arg)``, or
      ``(CONTEXT_CALL, callback, args, context)``.

    A runner keeps its batch for as long as it lives, empties it after each
    run and waits to be given the next: opening a batch allocates nothing.
    """

    __slots__ = ("runner", "runq")

    #: The runner task that runs this batch (set when it starts).
    runner: lowlevel.Task
    #: The kernel's run queue (``SteppingState.runq``) when the batch was
    #: opened, with the runner in it. Once the kernel has taken that list
    #: for the batch it runs, its ``runq`` is another list, and this batch
    #: takes no more callbacks: what is queued from then on runs in the
    #: next iteration, as in asyncio, even though this batch has not run.
    runq: list[Any]

    def add(self, item: QueuedCallback) -> None:
        """Queue `item`: a Handle, or a tuple from the pending queue."""
        if type(item) is tuple:
            self.extend(item)
        else:
            self.append(item)

    def add_callback(self, callback: LoopCallback, arg: Any) -> None:
        """Queue ``callback.function(arg)``."""
        self.append(callback)
        self.append(arg)

    def __repr__(self) -> str:
        # What the story of a run (tether.testing) calls the runner of
        # this batch. A Handle is named with its callback's arguments:
        # asyncio's own repr leaves them out outside debug mode since
        # Python 3.13, and the story needs them to tell callbacks apart.
        # (A CONTEXT_CALL reads as the Handle it stands for.)
        parts = []
        entries = iter(self)
        for entry in entries:
            if entry is CONTEXT_CALL:
                callback = next(entries)
                parts.append(_describe_call("Handle", callback, next(entries)))
                next(entries)
            elif isinstance(entry, events.Handle):
                handle: Any = entry  # (typeshed does not declare _callback)
                if handle._callback is None:
                    parts.append(f"<{type(handle).__name__} cancelled>")
                else:
                    parts.append(
                        _describe_call(type(handle).__name__, handle._callback, handle._args)
                    )
            else:
                parts.append(repr(entry))
        return f"[{', '.join(parts)}]"


def _describe_call(kind: str, callback: Any, args: Any) -> str:
    """``<Handle function(arg, ...)>``, the arguments shortened."""
    name = getattr(callback, "__qualname__", None) or repr(callback)
    arguments = ", ".join(reprlib.repr(arg) for arg in args or ())
    return f"<{kind} {name}({arguments})>"


@lowlevel.enable_ki_protection
def requeue_callbacks(remaining: Iterable[QueuedCallback], pending: deque[QueuedCallback]) -> None:
    """Put the entries of `remaining` (stored as in `CallbackBatch`: the rest
    of a batch, not run) back in the pending queue, each LoopCallback with
    what follows it as one tuple."""
    items = iter(remaining)
    for entry in items:
        if entry is CONTEXT_CALL:
            pending.append((entry, next(items), next(items), next(items)))
        elif type(entry) is LoopCallback:
            pending.append((entry, next(items)))
        else:
            pending.append(entry)


#: Why tether-native code cannot run in a callback (the `RuntimeError` it
#: gets says so; see `run_callbacks`).
OUTSIDE_TASK_REASON = (
    "this runs in a callback of a tether.aio loop, or in a step of a "
    "standard-library asyncio.Task, which the loop runs as callbacks: one made "
    "by asyncio.Task(...) or started eagerly, as aiohttp makes its handlers on "
    "Python 3.12 and later; tether-native code (cancel scopes, nurseries, "
    "tether.sleep...) needs a tether.aio task: loop.create_task() or "
    "tether.aio.create_task(), on a loop without a task factory that makes "
    "standard-library tasks (such as asyncio.eager_task_factory)"
)


@lowlevel.enable_ki_protection
def run_callbacks(loop: LoopCore, entries: list[QueuedCallback]) -> None:
    """Run the callbacks in `entries` (stored as in `CallbackBatch`; a list
    of Handles is such a list too), in order. An error in a callback goes
    to the loop's exception handler; a KeyboardInterrupt or SystemExit
    stops the loop (`LoopCore._segment_failed`), and the callbacks not run
    yet go back to the pending queue. The caller empties `entries`
    afterwards.

    Callbacks belong to no kernel task, and neither do the steps of the
    standard library's C tasks, which they include: they run as code of no
    task (`call_outside_task`).

    A Ctrl-C is raised in a callback, as asyncio's loop would raise it
    (`Handle._run` and `call_unprotected` are not protected), but not in
    the loop's own code around them (this function and `_run_entries` are):
    there it is delivered to the run's main task, which stops the loop
    (`LoopCore._segment_failed`)."""
    call_outside_task(loop._kernel, _run_entries, loop, entries)


#: Why tether-native code cannot run in a task factory called from a task.
FACTORY_REASON = (
    "this runs in the loop's task factory (loop.set_task_factory), which the "
    "loop calls as code of no task: a factory may start a standard-library "
    "task eagerly, such as asyncio.eager_task_factory, and run its first step "
    "inside the call, which would otherwise act for the task calling "
    "create_task(); tether-native code (cancel scopes, nurseries, "
    "tether.sleep...) needs a tether.aio task, made on a loop without such a "
    "factory"
)


@lowlevel.disable_ki_protection
def call_unprotected(function: Callable[..., R], *args: Any) -> R:
    """``function(*args)``, where a Ctrl-C is raised at once, as in user code
    (for a callback whose frames would otherwise be found under the loop's
    protected code: a standard-library task's step, a task factory)."""
    return function(*args)


# asyncio's Handle runs a callback: the callback is user code, which a Ctrl-C
# interrupts (a mark on the code object, consulted only by tether's SIGINT
# handler, inside a tether run).
lowlevel.disable_ki_protection(events.Handle._run)


def call_outside_task(
    kernel: Any, function: Callable[..., R], *args: Any, why: str = OUTSIDE_TASK_REASON
) -> R:
    """``function(*args)``, run as code of no kernel task: while it runs,
    the kernel has no current task (`SteppingState.current_task`), so that
    tether-native code there gets a `RuntimeError` that says why (a cancel
    scope entered there would otherwise belong to the kernel task being
    stepped, `kernel.current_task`, and its deadline would cancel that
    task); such code gets `why` in its error. For the loop's callbacks,
    and for a task factory, which may start a standard-library task eagerly
    (its first step runs inside the factory's call)."""
    stepped = kernel.current_task
    reason = kernel.no_task_reason
    stepping = kernel.no_task_stepping
    try:
        # (Set inside the block: a Ctrl-C between two of these assignments
        # still puts everything back.)
        kernel.no_task_stepping = stepped
        kernel.no_task_reason = why
        kernel.current_task = None
        return function(*args)
    finally:
        kernel.no_task_reason = reason
        kernel.no_task_stepping = stepping
        kernel.current_task = stepped


@lowlevel.enable_ki_protection
def _run_entries(loop: LoopCore, entries: list[QueuedCallback]) -> None:
    """`run_callbacks`, with the kernel's current task set aside."""
    # A frame that outlives a callback, in the traceback of an error the
    # callback kept (a task's exception), links back to this frame and keeps
    # its locals as they are when it returns: so no handle may be left in
    # them, as asyncio's loop drops its own, or the handle (and what it
    # refers to) would stay alive until the cycle collector runs.
    items = iter(entries)
    handle = arg = args = None
    # The loop tracks the handle it runs in debug mode only, as asyncio
    # does (for the handle's source traceback in error reports), and only
    # then times each callback.
    debug = loop._debug
    try:
        for handle in items:
            if type(handle) is LoopCallback:
                # The loop's own done callbacks, run without a Handle; the
                # next entry is the argument.
                arg = next(items)
                if debug:
                    start = loop.time()
                try:
                    if handle is CONTEXT_CALL:
                        # A standard-library task's wakeup: `arg` is the
                        # callback; its arguments and its context follow.
                        args = next(items)
                        call_unprotected(next(items).run, arg, *args)
                    else:
                        handle.function(arg)
                except (SystemExit, KeyboardInterrupt):
                    raise
                except BaseException as exc:
                    loop.call_exception_handler(
                        {"message": f"Exception in callback {handle!r}", "exception": exc}
                    )
                if debug:
                    # (A stdlib task's wakeup is named by its callback, the
                    # task's method.)
                    warn_if_slow(loop, arg if handle is CONTEXT_CALL else handle, start)
                handle = arg = args = None
                continue
            if handle._cancelled:
                continue
            if debug:
                loop._current_handle = handle
                start = loop.time()
            try:
                # (Handle._run reports every error but these two.)
                handle._run()
            finally:
                if debug:
                    loop._current_handle = None
                    warn_if_slow(loop, handle, start)
                handle = arg = None
    except (SystemExit, KeyboardInterrupt) as exc:
        # From a callback (this function's own lines are protected: the
        # entries consumed are whole groups): stop, and keep the callbacks
        # not run yet, in order (first: they are kept even if stopping
        # fails).
        requeue_callbacks(items, loop._pending)
        loop._segment_failed(exc)
    handle = arg = args = None


def warn_if_slow(loop: LoopCore, what: Any, start: float) -> None:
    """In debug mode: log a warning, as asyncio's loop does, if running
    `what` (a callback's Handle or LoopCallback, a standard-library task's
    wakeup, or a task for one of its steps) since loop time `start` took at
    least the loop's ``slow_callback_duration``."""
    duration = loop.time() - start
    if duration >= loop.slow_callback_duration:
        # (A standard-library task's step, with or without a Handle, is named
        # by the task; formatted now, in its state after the step.)
        owner = getattr(getattr(what, "_callback", what), "__self__", None)
        if isinstance(owner, asyncio.Task):
            what = owner
        logger.warning("Executing %s took %.3f seconds", str(what), duration)
