"""`tether.run`, the entry point: set up a run in this thread, loop, tear down.

`run` makes the `Runner`, installs what a run needs from the process (the
thread's run context, async-generator hooks, the SIGINT handler, the signal
wakeup fd), spawns the root task and runs the loop until the root task is
done. Then it undoes the setup in reverse order (callbacks accepted from other
threads still run first) and turns the main task's outcome into a return
value or an exception.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import TypeVar

import outcome

from ._clock import Clock, SystemClock
from ._exceptions import TetherInternalError
from ._instrumentation import Instrument
from ._ki import install_sigint_handler
from ._loose_groups import warn_loose
from ._misnesting import report_lost_errors
from ._run import Runner
from ._run_context import GLOBAL_RUN_CONTEXT
from ._scheduler import Scheduler, SeededScheduler

T = TypeVar("T")


def run(
    async_fn: Callable[..., Awaitable[T]],
    *args: object,
    clock: Clock | None = None,
    instruments: Sequence[Instrument] = (),
    schedule_seed: int | None = None,
    restrict_keyboard_interrupt_to_checkpoints: bool = False,
    strict_exception_groups: bool = True,
    scheduler: Scheduler | None = None,
) -> T:
    """Run ``async_fn(*args)`` as the main task of a new tether run.

    Returns when the main task and every task under it have finished, with
    the main task's return value, or raises its exception. Errors in the
    kernel itself (and in system tasks or run_sync_soon callbacks) raise
    `TetherInternalError`.

    Args:
      clock: the clock to use; default `time.perf_counter`-based.
        `tether.testing.MockClock` gives virtual time for tests.
      instruments: `tether.lowlevel.Instrument` objects to install.
      schedule_seed: if given, the order in which runnable tasks are stepped
        is shuffled from this seed, deterministically: the same seed replays
        the same interleaving. For exploring races in tests. (Shorthand for
        ``scheduler=lowlevel.SeededScheduler(seed)``.)
      restrict_keyboard_interrupt_to_checkpoints: if true, Ctrl-C is always
        delivered to the main task at its next checkpoint; by default it is
        raised at once when it arrives while user code runs (so that a busy
        loop can be interrupted), and deferred to a checkpoint only when it
        arrives inside tether's own code.
      strict_exception_groups: what `open_nursery` does when not told:
        raise even a single error in an `ExceptionGroup` (True, the
        default). False is deprecated (it warns with
        `TetherDeprecationWarning`, as trio does).
      scheduler: a `tether.lowlevel.Scheduler` that decides the order in
        which each batch of runnable tasks is stepped, and is told when
        every task is blocked with nothing to wake one (for testing tools
        such as `tether.testing.Schedule`).

    KeyboardInterrupt: when run in the main thread with Python's default
    SIGINT handler in place, tether installs its own for the duration of the
    run (and puts the default back after, unless code in the run replaced
    tether's with a handler of its own). A Ctrl-C reaches the main task,
    nurseries unwind in order running ``finally`` blocks, and `run` raises a
    plain `KeyboardInterrupt` (with the exception group it travelled in, if
    any, as its ``__context__``).

    Raises:
      RuntimeError: when called inside a running tether run in this thread
        (``await`` the function instead, or start a task).
      TypeError: when given a coroutine object instead of a function, or a
        `scheduler` that is not a `tether.lowlevel.Scheduler`.
      ValueError: when given both `schedule_seed` and `scheduler`.
    """
    if getattr(GLOBAL_RUN_CONTEXT, "runner", None) is not None:
        raise RuntimeError(
            "tether.run() called from inside a running tether run in this thread; "
            "await the function directly or start it in a nursery instead"
        )
    if isinstance(async_fn, Coroutine):
        async_fn.close()
        raise TypeError(
            "tether.run() was expecting an async function, but instead it got a coroutine "
            f"object {async_fn!r}. Write 'tether.run(fn, arg)' instead of "
            "'tether.run(fn(arg))'"
        )
    if not strict_exception_groups:
        warn_loose("tether.run(..., strict_exception_groups=False)")
    if clock is None:
        clock = SystemClock()
    if schedule_seed is not None:
        if scheduler is not None:
            raise ValueError(
                "pass schedule_seed or scheduler, not both "
                "(schedule_seed=N is scheduler=lowlevel.SeededScheduler(N))"
            )
        scheduler = SeededScheduler(schedule_seed)
    elif scheduler is not None and not isinstance(scheduler, Scheduler):
        raise TypeError(f"scheduler must be a tether.lowlevel.Scheduler, got {scheduler!r}")
    runner = Runner(clock, instruments, scheduler, strict_exception_groups)
    GLOBAL_RUN_CONTEXT.runner = runner
    runner.asyncgens.install_hooks()
    uninstall_sigint_handler = install_sigint_handler(
        runner, restrict_keyboard_interrupt_to_checkpoints
    )
    previous_wakeup_fd = _install_wakeup_fd(runner)
    try:
        clock.start_clock()
        if runner.instruments and "before_run" in runner.instruments:
            runner.instruments.call("before_run")
        runner.init_task = runner.spawn_impl(
            runner.init, (async_fn, args), None, "<init>", system_task=True
        )
        runner._run_loop()
        if runner.abandoned_nurseries:
            report_lost_errors(runner.abandoned_nurseries)
        if runner.instruments and "after_run" in runner.instruments:
            runner.instruments.call("after_run")
    finally:
        with runner.entry_queue.lock:
            runner.entry_queue.done = True
        # Callbacks accepted before `done` was set still run: a thread that
        # was told its call was accepted must not be left waiting.
        for sync_fn, cb_args in runner.entry_queue.drain():
            try:
                sync_fn(*cb_args)
            except BaseException as exc:
                exc.add_note(f"run_sync_soon callback {sync_fn!r} raised at the end of the run")
                runner.late_crash_errors.append(exc)
        if previous_wakeup_fd is not None:
            signal.set_wakeup_fd(previous_wakeup_fd)
        runner.asyncgens.uninstall_hooks()
        uninstall_sigint_handler()
        runner.io_manager.close()
        del GLOBAL_RUN_CONTEXT.runner
    init_outcome = runner.init_task_outcome
    if isinstance(init_outcome, outcome.Error):
        raise TetherInternalError(
            "the run crashed: an error escaped a system task, a run_sync_soon callback "
            "or tether itself (the cause); all tasks were cancelled"
        ) from init_outcome.error
    late = runner.late_crash_errors
    if late:
        cause: BaseException = late[0]
        if len(late) > 1:
            cause = BaseExceptionGroup("errors that crashed the run", late)
        raise TetherInternalError(
            "the run was crashed by an error outside any task at its end"
        ) from cause
    main_outcome = runner.main_task_outcome
    assert main_outcome is not None
    if runner.sigint_received and isinstance(main_outcome, outcome.Error):
        _raise_keyboard_interrupt_plainly(main_outcome.error)
    if runner.ki_pending:
        # Ctrl-C arrived after the main task had finished.
        ki = KeyboardInterrupt()
        if isinstance(main_outcome, outcome.Error):
            ki.__context__ = main_outcome.error
        raise ki
    result: T = main_outcome.unwrap()
    return result


def _raise_keyboard_interrupt_plainly(error: BaseException) -> None:
    """A Ctrl-C that unwound through nurseries arrives wrapped in exception
    groups; raise a plain `KeyboardInterrupt` so that ``except
    KeyboardInterrupt`` around `run` (and Python's own exit handling) works,
    keeping the group as its context. Only for a real SIGINT: a
    KeyboardInterrupt that user code raised itself propagates unchanged, as
    any other error does."""
    if not isinstance(error, BaseExceptionGroup):
        return
    matched, _ = error.split(KeyboardInterrupt)
    if matched is None:
        return
    ki = KeyboardInterrupt()
    ki.__context__ = error
    raise ki


def _install_wakeup_fd(runner: Runner) -> int | None:
    """Have the C-level signal handler write to the run's wakeup socket, so a
    signal wakes the loop even when the OS delivered it to another thread
    (Python handlers only run once the main thread wakes up). Only in the
    main thread, and only if nobody else set a wakeup fd. Returns the value
    to restore, or None."""
    if threading.current_thread() is not threading.main_thread():
        return None
    fd = runner.io_manager.wakeup_send_fileno()
    previous = signal.set_wakeup_fd(fd, warn_on_full_buffer=False)
    if previous != -1:
        # Someone else (another event loop) owns it; leave theirs in place.
        signal.set_wakeup_fd(previous)
        return None
    return previous


def forget_run_after_fork() -> None:
    """In a child process that `os.fork` made while a tether run was running
    in the forking thread, forget that run: it belongs to the parent, and
    the child can start runs of its own (``tether.run`` would otherwise say
    it is called inside a running one). Also stops signals in the child
    from being written to the parent's wakeup socket. Call it only in a
    forked child (``os.register_at_fork(after_in_child=...)``), never in a
    process whose run is live. Not a checkpoint."""
    if getattr(GLOBAL_RUN_CONTEXT, "runner", None) is None:
        return
    del GLOBAL_RUN_CONTEXT.runner
    try:
        signal.set_wakeup_fd(-1)
    except ValueError:  # pragma: no cover - forked from a non-main thread
        pass
