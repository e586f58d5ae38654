"""`tether.run`, the entry point, and the life cycle every run goes through.

A run, whether `tether.run` or a guest run (_guest.py), goes through the
same steps, written once here:

1. `new_runner`: check the arguments and make the `Runner`;
2. `HostThreadSetup`: install what a run needs from its thread and the
   process (the thread's run pointer, async-generator hooks, the SIGINT
   handler, the signal wakeup fd);
3. `lifetime`: a generator that starts the clock, spawns the root task,
   runs `Runner._run_loop` until the root task is done, and tears down in
   reverse order (callbacks accepted from other threads still run first),
   whether the loop finished, raised or was closed;
4. `final_outcome`: turn the main task's outcome into what `run` returns or
   raises.

`run` drives the generator in its own thread: it waits for I/O each time the
loop yields a timeout. A guest run drives the same generator from callbacks
on its host's loop.

Invariant: the thread-level parts of the setup are undone in the thread that
made them (Python allows nothing else for signal handlers and thread-locals).
A guest run whose end comes in another thread (its host stopped first)
leaves them to `HostThreadSetup.undo_later` in that thread, at the next run
there (see `check_no_run_here`).
"""

from __future__ import annotations

import signal
import threading
import warnings
from collections.abc import Awaitable, Callable, Coroutine, Generator, Sequence
from typing import Any, TypeVar

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

#: What the loop yields (a timeout) and is sent back (the I/O events).
Turns = Generator[float, list[tuple[int, int]], None]


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
        (``await`` the function instead, or start a task), including a
        guest run (`tether.lowlevel.start_guest_run`) hosted by this thread.
      TypeError: when given a coroutine object instead of a function, or a
        `scheduler` that is not a `tether.lowlevel.Scheduler`.
      ValueError: when given both `schedule_seed` and `scheduler`.
    """
    check_no_run_here("tether.run()")
    check_async_fn(async_fn, "tether.run")
    if not strict_exception_groups:
        warn_loose("tether.run(..., strict_exception_groups=False)")
    runner = new_runner(
        Runner, clock, instruments, schedule_seed, scheduler, strict_exception_groups
    )
    setup = HostThreadSetup(
        runner, restrict_keyboard_interrupt_to_checkpoints, take_over_wakeup_fd=False
    )
    turns = lifetime(runner, async_fn, args, setup, guest=False)
    get_events = runner.io_manager.get_events
    try:
        timeout = next(turns)
        while True:
            timeout = turns.send(get_events(timeout))
    except StopIteration:
        pass
    finally:
        # (If the wait itself raised: the loop ends here, and tears down.)
        turns.close()
    result: T = final_outcome(runner).unwrap()
    return result


def check_no_run_here(what: str) -> None:
    """Refuse to start a run in a thread that is running one already, with
    an error that says which kind. Finishes the teardown of a guest run that
    ended elsewhere (see the module's invariant)."""
    runner: Runner | None = getattr(GLOBAL_RUN_CONTEXT, "runner", None)
    if runner is None:
        return
    leftover = _UNDONE_ELSEWHERE.pop(runner, None)
    if leftover is not None:
        leftover.undo_later()
        return
    if runner.is_guest:
        raise RuntimeError(
            f"{what} called while this thread hosts a tether guest run (started "
            "with tether.lowlevel.start_guest_run), which is not finished: a thread "
            "has one tether run at a time. Start a task in the guest run instead, "
            "or wait for its done_callback (the host loop must keep running until then)"
        )
    raise RuntimeError(
        f"{what} called from inside a running tether run in this thread; "
        "await the function directly or start it in a nursery instead"
    )


def check_async_fn(async_fn: object, what: str) -> None:
    if isinstance(async_fn, Coroutine):
        async_fn.close()
        raise TypeError(
            f"{what}() was expecting an async function, but instead it got a coroutine "
            f"object {async_fn!r}. Write '{what}(fn, arg)' instead of '{what}(fn(arg))'"
        )


def new_runner(
    runner_class: type[Runner],
    clock: Clock | None,
    instruments: Sequence[Instrument],
    schedule_seed: int | None,
    scheduler: Scheduler | None,
    strict_exception_groups: bool,
) -> Runner:
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
    return runner_class(clock, instruments, scheduler, strict_exception_groups)


#: The setups of runs that ended in another thread than their host thread,
#: which undoes them at its next run (`check_no_run_here`). (Held until
#: then: a host thread that never runs tether again keeps this one entry.)
_UNDONE_ELSEWHERE: dict[Runner, HostThreadSetup] = {}


class HostThreadSetup:
    """What a run installs in the thread that runs it (its *host thread*)
    and in the process, and how to undo it."""

    __slots__ = ("_previous_wakeup_fd", "_runner", "_thread", "_uninstall_sigint")

    #: The run.
    _runner: Runner
    #: The thread that made the setup; only it can undo it.
    _thread: threading.Thread
    #: Undoes the SIGINT handler (a no-op if none was installed).
    _uninstall_sigint: Callable[[], None]
    #: The wakeup fd to put back, or None if the run did not set one.
    _previous_wakeup_fd: int | None

    def __init__(self, runner: Runner, restrict_ki: bool, take_over_wakeup_fd: bool | None) -> None:
        """Install. `take_over_wakeup_fd`: None leaves the signal wakeup fd
        alone; False sets the run's if nobody has one; True sets it even so
        (with a warning: whoever set the other one loses its wakeups)."""
        self._runner = runner
        self._thread = threading.current_thread()
        GLOBAL_RUN_CONTEXT.runner = runner
        runner.asyncgens.install_hooks()
        self._uninstall_sigint = install_sigint_handler(runner, restrict_ki)
        self._previous_wakeup_fd = None
        if take_over_wakeup_fd is not None:
            self._previous_wakeup_fd = _install_wakeup_fd(runner, take_over_wakeup_fd)

    def undo(self) -> bool:
        """Undo the setup, if called in the host thread; returns whether it
        was. Otherwise only the SIGINT handler is told that the run is over,
        and the rest waits for the host thread's next run."""
        runner = self._runner
        if threading.current_thread() is not self._thread:
            self._uninstall_sigint()
            _UNDONE_ELSEWHERE[runner] = self
            return False
        if self._previous_wakeup_fd is not None:
            signal.set_wakeup_fd(self._previous_wakeup_fd)
        runner.asyncgens.uninstall_hooks()
        self._uninstall_sigint()
        if getattr(GLOBAL_RUN_CONTEXT, "runner", None) is runner:
            del GLOBAL_RUN_CONTEXT.runner
        return True

    def undo_later(self) -> None:
        """`undo`, in the host thread, for a run that ended elsewhere."""
        runner = self._runner
        self.undo()
        # Kept open until now: the wakeup fd pointed at it.
        runner.io_manager.close()
        _drop_back_references(runner)


def lifetime(
    runner: Runner,
    async_fn: Callable[..., Awaitable[Any]],
    args: tuple[Any, ...],
    setup: HostThreadSetup,
    guest: bool,
) -> Turns:
    """The run from its start to its teardown, as a generator that yields
    each time the run must wait for I/O (see `Runner._run_loop`). Ends
    when the root task is done. The teardown runs whichever way it ends,
    also when the generator is closed half-way."""
    try:
        runner.clock.start_clock()
        if runner.instruments and "before_run" in runner.instruments:
            runner.instruments.call("before_run")
        runner.init_task = runner.spawn_impl(
            runner.init, (async_fn, args), None, "<init>", system_task=True
        )
        yield from runner._run_loop(guest)
        if runner.abandoned_nurseries:
            report_lost_errors(runner.abandoned_nurseries)
        if runner.instruments and "after_run" in runner.instruments:
            runner.instruments.call("after_run")
    finally:
        if runner.init_task_outcome is None:
            # Its driver stopped driving the run before it finished (a guest
            # run's host dropped it, or the wait for I/O failed): close the
            # tasks' coroutines now, innermost first, while the run is still
            # installed, rather than leave them to the garbage collector.
            _close_remaining_tasks(runner)
        runner.entry_queue.stop_accepting()
        # Callbacks accepted before `done` was set still run: a thread that
        # was told its call was accepted must not be left waiting.
        for sync_fn, cb_args in runner.entry_queue.take_all():
            try:
                sync_fn(*cb_args)
            except BaseException as exc:
                exc.add_note(f"run_sync_soon callback {sync_fn!r} raised at the end of the run")
                runner.late_crash_errors.append(exc)
        if setup.undo():
            runner.io_manager.close()
            _drop_back_references(runner)


def _drop_back_references(runner: Runner) -> None:
    """The run is over and torn down: drop the references from `runner` to
    the objects that refer back to it (its token, its root and main tasks
    and their nurseries, its deadline and async-generator bookkeeping), so
    that none of them is left in a reference cycle and everything goes as
    soon as the last reference does, without the garbage collector (as
    asyncio's loop does once closed). What outlives the run (a token a
    thread still holds, a task object, a generator's finalizer) may still
    refer to the runner; the outcomes stay."""
    runner.token = None  # type: ignore[assignment]
    runner.init_task = runner.main_task = None
    runner.run_nursery = runner.system_nursery = None
    del runner.deadlines, runner.asyncgens


def _close_remaining_tasks(runner: Runner) -> None:
    # The kernel code that the tasks' cleanup runs finds the run through the
    # thread's run pointer. This may be another thread than the run's (where
    # the garbage collector dropped an abandoned guest run): point it at the
    # run meanwhile.
    previous = getattr(GLOBAL_RUN_CONTEXT, "runner", None)
    GLOBAL_RUN_CONTEXT.runner = runner
    try:
        runner._close_remaining_tasks()
    finally:
        if previous is None:
            del GLOBAL_RUN_CONTEXT.runner
        else:
            GLOBAL_RUN_CONTEXT.runner = previous


def final_outcome(runner: Runner) -> outcome.Outcome[Any]:
    """What the finished run returns or raises, as an outcome."""
    init_outcome = runner.init_task_outcome
    if isinstance(init_outcome, outcome.Error):
        return outcome.Error(
            _caused_by(
                TetherInternalError(
                    "the run crashed: an error escaped a system task, a run_sync_soon "
                    "callback or tether itself (the cause); all tasks were cancelled"
                ),
                init_outcome.error,
            )
        )
    late = runner.late_crash_errors
    if late:
        cause: BaseException = late[0]
        if len(late) > 1:
            cause = BaseExceptionGroup("errors that crashed the run", late)
        return outcome.Error(
            _caused_by(
                TetherInternalError("the run was crashed by an error outside any task at its end"),
                cause,
            )
        )
    main_outcome = runner.main_task_outcome
    assert main_outcome is not None
    if runner.sigint_received and isinstance(main_outcome, outcome.Error):
        plain = _plain_keyboard_interrupt(main_outcome.error)
        if plain is not None:
            return outcome.Error(plain)
    if runner.ki_pending:
        # Ctrl-C arrived after the main task had finished.
        ki = KeyboardInterrupt()
        if isinstance(main_outcome, outcome.Error):
            ki.__context__ = main_outcome.error
        return outcome.Error(ki)
    return main_outcome


def _caused_by(error: BaseException, cause: BaseException) -> BaseException:
    """`error` as ``raise error from cause`` would raise it."""
    error.__cause__ = cause
    return error


def _plain_keyboard_interrupt(error: BaseException) -> KeyboardInterrupt | None:
    """A Ctrl-C that unwound through nurseries arrives wrapped in exception
    groups; a plain `KeyboardInterrupt` lets ``except KeyboardInterrupt``
    around `run` (and Python's own exit handling) work, keeping the group as
    its context. Only for a real SIGINT: a KeyboardInterrupt that user code
    raised itself propagates unchanged, as any other error does. None if
    `error` is not such a group."""
    if not isinstance(error, BaseExceptionGroup):
        return None
    matched, _ = error.split(KeyboardInterrupt)
    if matched is None:
        return None
    ki = KeyboardInterrupt()
    ki.__context__ = error
    return ki


def _install_wakeup_fd(runner: Runner, take_over: bool) -> int | None:
    """Have the C-level signal handler write to the run's wakeup socket, so a
    signal wakes the loop even when the OS delivered it to another thread
    (Python handlers only run once the main thread wakes up). Only in the
    main thread. If somebody else set a wakeup fd, theirs stays unless
    `take_over`. Returns the value to restore, or None."""
    if threading.current_thread() is not threading.main_thread():
        return None
    fd = runner.io_manager.wakeup_send_fileno()
    previous = signal.set_wakeup_fd(fd, warn_on_full_buffer=False)
    if previous != -1:
        if not take_over:
            # Someone else (another event loop) owns it; leave theirs in place.
            signal.set_wakeup_fd(previous)
            return None
        warnings.warn(
            "tether's signal handling code collided with another library's: a "
            "signal wakeup fd (signal.set_wakeup_fd) was already set when the "
            "guest run started. tether replaced it for the length of the run, so "
            "the other library misses signal wakeups until then. If the host loop "
            "set it, pass host_uses_signal_set_wakeup_fd=True to start_guest_run",
            RuntimeWarning,
            stacklevel=4,
        )
    # (Signal numbers reach the run's socket: see `set_signal_listener`.)
    runner.io_manager.owns_signal_wakeup = True
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
