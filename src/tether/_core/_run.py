"""The `Runner`: the state of one run, spawning, and the run loop.

`run()` (in _entry_point.py) creates a `Runner`, spawns the root task (which
opens the system nursery and starts the main task in it) and drives
`Runner._run_loop` until the root task is done. The loop is a generator that
never blocks itself: when it has to wait for I/O it yields the timeout, and
its driver waits (`run()` in its own thread, a guest run in a worker thread,
see _guest.py) and sends the events back. Each turn of the loop:

1. waits for I/O, for at most the time until the nearest deadline (not at
   all if a task is runnable, except in a guest run, which yields to its
   host after every batch);
2. expires passed deadlines (which cancels scopes, which aborts the waits of
   the tasks inside them);
3. runs callbacks queued with `TetherToken.run_sync_soon`;
4. steps every task that was runnable at the start of the batch, once.

Tasks made runnable during a batch run in the next one, so a task that keeps
checkpointing cannot starve the others. With a `schedule_seed`, each batch is
shuffled by a `random.Random` seeded with it: a deterministic exploration of
interleavings that a test can replay; any `Scheduler` (``scheduler=``) can
decide the order instead (see _scheduler.py).

Stepping a task sends it a value (or throws into it) inside the task's own
`contextvars.Context`, and dispatches on the trap it yields next. That
dispatch is the hottest code in tether: keep it free of calls it does not
need (the rare yields go to _foreign_yield.py).
"""

from __future__ import annotations

import contextvars
import enum
import math
import operator
import sys
from collections.abc import Awaitable, Callable, Coroutine, Generator, Sequence
from typing import Any

import outcome
from sortedcontainers import SortedDict

from ._asyncgens import AsyncGenerators
from ._cancel import CancelScope
from ._cancel_reason import CancelReason
from ._clock import Clock
from ._deadlines import Deadlines
from ._entry_queue import CallbackInbox, TetherToken
from ._exceptions import TetherInternalError
from ._fd_watch import FdWatchSet, call_ready_hooks
from ._foreign_yield import foreign_yield
from ._instrumentation import Instrument, Instruments
from ._io import make_io_manager
from ._ki import deliver_ki_at_checkpoint, deliver_pending_ki, register_step_loop
from ._misnesting import misnested_task_exit
from ._nursery import Nursery, NurseryManager, closed_nursery_error
from ._parking_lot import ParkingLot, queue_in_lot
from ._run_context import outside_task_error
from ._scheduler import Scheduler
from ._task import CoroutineTask, Task, TaskResult, outcome_of, refusal_to_reschedule
from ._task_coroutine import coroutine_or_error, task_name
from ._traps import (
    CANCEL_SHIELDED_CHECKPOINT,
    CHECKPOINT,
    RESUME_CHECKPOINT,
    TASK_EXIT,
    THROW_ON_RESUME,
    Abort,
    WaitTaskRescheduled,
)

# The longest the loop sleeps in one wait for a deadline (however far off);
# keeps timeouts inside what the OS pollers accept. With no deadline at all
# the wait has no limit: the timeout is ``inf``, which `IOManager.get_events`
# takes as "until woken" (a system call without a timer, which is cheaper).
_MAX_TIMEOUT = 86400.0
_NO_TIMEOUT = math.inf

_VALUE_NONE = outcome.Value(None)
_new_coroutine_task = CoroutineTask.__new__


class IdleAction(enum.Enum):
    """What the loop does when its wait for I/O lasted the whole timeout
    with nothing happening (no I/O, no deadline passed, no callback): the
    run has been idle for that long."""

    #: Wake the tasks in `wait_all_tasks_blocked` whose cushion has passed.
    WAKE_IDLE_WAITERS = "wake idle waiters"
    #: Call the clock's ``autojump()`` (see `Clock`): move virtual time to
    #: the nearest deadline.
    AUTOJUMP_CLOCK = "autojump clock"


def _take_pending_throw(task: Task) -> BaseException:
    error = task._pending_throw
    task._pending_throw = None
    assert error is not None
    return error


def _abort_at_once(_: Callable[[], Any]) -> Abort:
    return Abort.SUCCEEDED


#: What a task "yields" when it resumes from a checkpoint in a cancelled
#: scope: a wait that the cancellation aborts at once.
_CANCEL_AT_NEXT_STEP: Any = WaitTaskRescheduled(_abort_at_once)


_spawn_index = operator.attrgetter("_spawn_index")


class Runner:
    """The state of one `tether.run` call. Lives in the thread running it."""

    # Slots: CPython 3.11 reads an attribute of a plain object more slowly
    # once its instances have 30 names (about 5% of a task switch here).
    # fmt: off
    __slots__ = (
        "_idle_sequence", "abandoned_nurseries", "asyncgens", "cancelled_statuses", "clock",
        "closing_tasks", "crash_errors", "current_task", "deadlines", "entry_queue",
        "foreign_wait_kinds", "init_task", "init_task_outcome", "instruments", "io_manager",
        "ki_pending", "late_crash_errors", "main_task", "main_task_outcome", "no_task_reason",
        "no_task_stepping", "ready_watches", "run_nursery", "run_vars", "runq",
        "scheduler", "sigint_received", "strict_exception_groups", "system_context",
        "system_nursery", "tasks_living", "tasks_spawned", "token", "waiting_for_idle",
    )
    # fmt: on

    def __init__(
        self,
        clock: Clock,
        instruments: Sequence[Instrument],
        scheduler: Scheduler | None,
        strict_exception_groups: bool = True,
    ) -> None:
        #: Where "now" comes from, and how long a wait for a deadline lasts.
        self.clock = clock
        #: What `open_nursery()` uses when not told.
        self.strict_exception_groups = strict_exception_groups
        #: The installed instruments, by hook; empty (false) when none is,
        #: which is all the hot paths test.
        self.instruments = Instruments(instruments)
        #: Waits for file descriptors; its wakeup socket also wakes the
        #: loop from other threads and signal handlers.
        self.io_manager = make_io_manager()
        #: The tasks to step in the next batch. Invariant: a task is in it at
        #: most once, and only while it is not blocked (``_abort_func`` is
        #: None). Each batch swaps in the previous batch's list, emptied.
        self.runq: list[Task] = []
        #: Watch sets with an ``on_ready`` hook that the last I/O step found
        #: ready while no task was runnable: the loop calls their hooks just
        #: before the next batch instead of waking their tasks (see
        #: `FdWatchSet` and `call_ready_hooks`). Usually empty.
        self.ready_watches: list[FdWatchSet] = []
        #: The `ForeignWaitAbort` classes yielded so far (`foreign_yield`
        #: adds each): the step loop blocks a task on one itself.
        self.foreign_wait_kinds: set[type] = set()
        #: Tasks started and not exited yet (the root task included).
        self.tasks_living = 0
        #: Tasks started so far: the last task's ``_spawn_index``.
        self.tasks_spawned = 0
        #: The deadlines of the entered cancel scopes, and the timers of
        #: the tasks in `sleep_until`.
        self.deadlines = Deadlines(lambda task: self._wake(task, RESUME_CHECKPOINT))
        #: Callbacks from other threads and signal handlers
        #: (`TetherToken.run_sync_soon`), run by the loop between batches.
        self.entry_queue = CallbackInbox(self.io_manager.wakeup_threadsafe)
        #: The run's `TetherToken` (one per run: tokens compare by identity).
        self.token = TetherToken(self)
        #: The values of `RunVar` objects in this run.
        self.run_vars: dict[Any, Any] = {}
        #: Tasks blocked in `wait_all_tasks_blocked`, keyed by ``(cushion,
        #: sequence number)``: the smallest cushion decides how long the
        #: loop may wait before it wakes them (see `IdleAction`).
        self.waiting_for_idle: SortedDict = SortedDict()
        #: The last sequence number given out for `waiting_for_idle`.
        self._idle_sequence = 0
        #: Decides the order of each batch, and hears when the run is stuck.
        self.scheduler = scheduler
        #: The async generators of the run and the hooks that track them.
        self.asyncgens = AsyncGenerators(self)
        #: A copy of the context `run` was called in: system tasks start in
        #: copies of it rather than of their spawner's.
        self.system_context = contextvars.copy_context()
        #: The root task (``<init>``), which opens the run's nurseries, and
        #: its outcome; the loop runs until that outcome is set.
        self.init_task: Task | None = None
        self.init_task_outcome: outcome.Outcome[Any] | None = None
        #: The task running the function given to `run`, and its outcome
        #: (what `run` returns or raises).
        self.main_task: Task | None = None
        self.main_task_outcome: outcome.Outcome[Any] | None = None
        #: The root task's nurseries, outermost first: `run_nursery` holds
        #: `system_nursery` (system tasks), which holds the main task's.
        #: None until the root task opens them.
        self.run_nursery: Nursery | None = None
        self.system_nursery: Nursery | None = None
        #: The task being stepped right now; None between steps. (Read for
        #: `current_task` through the thread's run context: a plain
        #: attribute here is much cheaper to write per step than a
        #: thread-local.)
        self.current_task: Task | None = None
        #: Why ``current_task`` is None in the middle of a step, and the task
        #: being stepped then, if a face said (see `SteppingState`).
        self.no_task_reason: str | None = None
        self.no_task_stepping: Task | None = None
        #: A KeyboardInterrupt arrived in protected code and waits to be
        #: delivered to the main task (at its next checkpoint or wait).
        self.ki_pending = False
        #: How many of the run's cancel statuses are effectively cancelled
        #: (never fewer; see _cancel.py): at 0 no task is in a cancelled scope.
        self.cancelled_statuses = 0
        #: Whether a real SIGINT reached this run's handler.
        self.sigint_received = False
        #: Errors that crashed the run (see `crash`). Not empty: every task
        #: has been cancelled, and the loop watches for a run that cannot
        #: unwind.
        self.crash_errors: list[BaseException] = []
        #: Those crash errors that came after the run's nurseries had
        #: closed: `run` raises them itself.
        self.late_crash_errors: list[BaseException] = []
        #: Set while `_close_remaining_tasks` closes the coroutines of tasks
        #: that can no longer be woken: their nurseries cannot wait then.
        self.closing_tasks = False
        #: Nurseries left open by a task that exited (see _misnesting.py).
        self.abandoned_nurseries: list[Nursery] = []
        # (No more instance attributes here: CPython 3.11 keeps at most 29
        # of them in the fast inline layout that the loop's attribute reads
        # are specialized for; one more made task switches 4% slower.)

    #: Whether this is a guest run (a `GuestRunner`, see _guest.py).
    is_guest = False

    # -- spawning and scheduling ---------------------------------------------

    def spawn_impl(
        self,
        async_fn: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        nursery: Nursery | None,
        name: object,
        *,
        system_task: bool = False,
        context: contextvars.Context | None = None,
    ) -> Task:
        """Start a task running ``async_fn(*args)`` in `nursery` (None only
        for the root task): the kernel's own way in, behind
        `Nursery.start_soon`, `Nursery.start` and `spawn_system_task`."""
        # Checked before the function is called: a refused task must not
        # leave a coroutine behind that was never awaited.
        if nursery is not None and nursery._closed:
            raise closed_nursery_error()
        if context is None:
            context = self.system_context.copy() if system_task else contextvars.copy_context()
        coro = context.run(coroutine_or_error, async_fn, *args)
        if name is None:
            name = async_fn
        if not isinstance(name, str):
            # Interned: 100k tasks of one function share one name string.
            name = sys.intern(task_name(name))
        return self.spawn_coroutine(coro, name, context, nursery, system_task=system_task)

    def spawn_coroutine(
        self,
        coro: Coroutine[Any, Any, Any],
        name: str,
        context: contextvars.Context,
        nursery: Nursery | None,
        *,
        system_task: bool = False,
    ) -> Task:
        """Start a kernel task (a `CoroutineTask`) that runs `coro`. The
        caller has checked that `nursery` is open (`spawn_impl` does so
        before it makes the coroutine)."""
        task = _new_coroutine_task(CoroutineTask)
        task.name = name
        task.foreign_yield_handler = (
            None if nursery is None else nursery._parent_task.child_foreign_yield_handler
        )
        task._system = system_task
        self.spawn_task(nursery, task, coro, context)
        return task

    def spawn_task(
        self,
        nursery: Nursery | None,
        task: Task,
        coro: Any,
        context: contextvars.Context,
    ) -> None:
        """Start `task`: set the kernel's fields of it (the `TASK_SLOTS`) for
        a new start, put it in `nursery` and schedule its first step.
        Refuses a closed nursery. Every way of spawning ends here (after
        its own argument checks: `spawn_coroutine` for the trio face,
        `lowlevel.spawn_task` and `current_stepping_state` for the other
        faces), so this is written for speed: it runs once per task
        spawned, in one call (the aio face spawns every task through it).
        """
        if nursery is not None and nursery._closed:
            raise closed_nursery_error()
        # (What each field means, and its invariant: see `Task`.)
        task.coro = coro
        task.context = context
        task._runner = self
        task._parent_nursery = nursery
        task._child_nurseries = ()
        task._abort_func = None
        task._next_send = None
        task._lots_to_break = None
        task.custom_sleep_data = None
        task._foreign_wait = False
        # ``_pending_throw`` and ``_eventual_parent_nursery`` stay unset (each
        # is written before it is read): an unset slot costs the garbage
        # collector nothing when it traverses the task. (Nor is there a
        # cached ``coro.send`` bound method: one more GC-tracked object per
        # task costs more, with many tasks alive, than the attribute lookup
        # it saves per step.)
        self.tasks_living += 1
        task._spawn_index = self.tasks_spawned = self.tasks_spawned + 1
        if nursery is not None:
            nursery._children.add(task)
            # (`_activate_cancel_status`, inlined: a new task has no status
            # to leave and no wait to abort, and the nursery's status finds
            # its children through the nursery: see `CancelStatus.tasks`.)
            task._cancel_status = nursery._cancel_status
        else:
            task._cancel_status = None
        instruments = self.instruments
        if instruments:
            if "task_spawned" in instruments:
                instruments.call("task_spawned", task)
            self.runq.append(task)
            if "task_scheduled" in instruments:
                instruments.call("task_scheduled", task)
        else:
            self.runq.append(task)

    def reschedule(self, task: Task, next_send: outcome.Outcome[Any] = _VALUE_NONE) -> None:
        if task._abort_func is None or task._runner is not self:
            raise RuntimeError(refusal_to_reschedule(task, self))
        task._abort_func = None
        task.custom_sleep_data = None
        if task._foreign_wait:
            # The task waits at a foreign yield, which cannot unwrap an
            # outcome: send the value or throw the error there directly.
            task._foreign_wait = False
            if next_send is _VALUE_NONE:
                # (The usual wakeup, tested first.)
                task._next_send = None
            elif isinstance(next_send, outcome.Value):
                task._next_send = next_send.value
            elif isinstance(next_send, outcome.Error):
                task._pending_throw = next_send.error
                task._next_send = THROW_ON_RESUME
            else:
                task._pending_throw = TypeError(
                    f"reschedule() needs an outcome.Value or outcome.Error, got {next_send!r}"
                )
                task._next_send = THROW_ON_RESUME
        else:
            task._next_send = next_send
        self.runq.append(task)
        if self.instruments and "task_scheduled" in self.instruments:
            self.instruments.call("task_scheduled", task)

    def resume_foreign_wait(self, task: Task, value: Any = None) -> None:
        """`reschedule(task, outcome.Value(value))` for a task that the
        caller's stepper blocked at a foreign wait (by yielding a
        `ForeignWaitAbort`) and knows is still blocked there; only that is
        checked. (A face's wakeup runs it on most of its tasks' steps.)"""
        if not task._foreign_wait:
            raise RuntimeError(f"resume_foreign_wait: {task!r} is not at a foreign wait")
        task._abort_func = None
        task.custom_sleep_data = None
        task._foreign_wait = False
        task._next_send = value
        self.runq.append(task)
        if self.instruments and "task_scheduled" in self.instruments:
            self.instruments.call("task_scheduled", task)

    def reschedule_with_error(self, task: Task, error: BaseException) -> None:
        """`reschedule` with `error` for a `CoroutineTask` blocked at a kernel
        trap, which raises what is thrown in: no `outcome.Error` to unwrap."""
        task._foreign_wait = False
        task._pending_throw = error
        self._wake(task, THROW_ON_RESUME)

    def _wake(self, task: Task, next_send: Any) -> None:
        """Make a blocked task runnable, to be sent `next_send` (or whatever
        that marker says) at its next step."""
        task._abort_func = None
        task.custom_sleep_data = None
        task._next_send = next_send
        self.runq.append(task)
        if self.instruments and "task_scheduled" in self.instruments:
            self.instruments.call("task_scheduled", task)

    def cancel_pending(self) -> bool:
        """See `SteppingState.cancel_pending`."""
        task = self.current_task
        if task is None:
            raise outside_task_error(self)
        status = task._cancel_status
        return (status is not None and status.effectively_cancelled) or (
            self.ki_pending and task is self.main_task
        )

    def task_exited(self, task: Task, result: TaskResult) -> None:
        """`task` is over, with `result` (see `TaskResult`): forget it, and
        tell its nursery (or `run`, for the main and root tasks)."""
        status = task._cancel_status
        if task._child_nurseries or (
            status is not None and status.abandoned_by_misnesting and status.parent is None
        ):
            result = misnested_task_exit(task, result)
        lots = task._lots_to_break
        if lots:
            task._lots_to_break = None
            for lot in lots:
                lot.break_lot(task)
        if status is not None:
            # (`_activate_cancel_status(None)`, inlined; a no-op discard for
            # a child directly under its nursery's status.)
            task._cancel_status = None
            status.tasks.discard(task)
        # Drop what the last step was sent (an outcome whose error's
        # traceback can reference the task): a face's task object outlives
        # its kernel run.
        task._next_send = None
        self.tasks_living -= 1
        if task is self.main_task:
            self.main_task_outcome = outcome_of(result)
            result = _VALUE_NONE
        if task is self.init_task:
            self.init_task_outcome = outcome_of(result)
        else:
            nursery = task._parent_nursery
            if nursery is not None:
                nursery._child_finished(task, result)
        if self.instruments and "task_exited" in self.instruments:
            self.instruments.call("task_exited", task)

    # -- the root task ---------------------------------------------------------

    async def init(self, async_fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...]) -> None:
        # The run's own nurseries are strict whatever the user chose: an
        # error that crashes the run (see `crash`) leaves the root task in
        # the same shape of group every time.
        async with NurseryManager(True) as run_nursery:
            self.run_nursery = run_nursery
            async with NurseryManager(True) as system_nursery:
                self.system_nursery = system_nursery
                try:
                    async with NurseryManager(True) as main_task_nursery:
                        try:
                            self.main_task = self.spawn_impl(
                                async_fn, args, main_task_nursery, None
                            )
                        except BaseException as exc:
                            self.main_task_outcome = outcome.Error(exc)
                finally:
                    # The main task is done: system tasks are cancelled.
                    system_nursery.cancel_scope._cancel(
                        CancelReason(
                            "shutdown",
                            source_task=repr(self.init_task),
                            reason="main task done, shutting down system tasks",
                        )
                    )
            # (Still inside `run_nursery`, where a crash after the system
            # nursery closed is raised.)
            with CancelScope(shield=True):
                await self.asyncgens.finalize_remaining()

    # -- the loop --------------------------------------------------------------

    def _compute_timeout(self) -> tuple[float, IdleAction | None]:
        """How long the loop may wait for I/O (``inf``: until woken), and
        what to do if that whole time passes with nothing happening (None:
        nothing)."""
        if self.runq or self.entry_queue.ordered or self.entry_queue.coalesced:
            return 0.0, None
        if not self.deadlines._scopes and not self.waiting_for_idle:
            # No deadline at all (so nothing for a clock to jump to) and
            # nobody waiting for idleness: sleep until I/O or a wakeup.
            return _NO_TIMEOUT, None
        deadline = self.deadlines.next_deadline()
        if deadline == math.inf:
            timeout = _NO_TIMEOUT
        else:
            timeout = min(max(0.0, self.clock.deadline_to_sleep_time(deadline)), _MAX_TIMEOUT)
        if self.waiting_for_idle:
            cushion = self.waiting_for_idle.keys()[0][0]
            if cushion < timeout:
                return cushion, IdleAction.WAKE_IDLE_WAITERS
            return timeout, None
        # An optional member of the clock protocol (see `Clock`), read with a
        # default for a clock object that does not derive from `Clock`.
        threshold = getattr(self.clock, "autojump_threshold", math.inf)
        # Autojumping only helps when there is a deadline to jump to; with
        # none, every task waits on something else (I/O, another thread, or
        # a deadlock), so sleep instead of spinning. (A task waiting for a
        # worker thread is blocked like any other, as in trio: the clock
        # jumps under it. See MockClock.)
        if threshold < timeout and deadline != math.inf:
            return threshold, IdleAction.AUTOJUMP_CLOCK
        return timeout, None

    def _run_loop(self, guest: bool) -> Generator[float, list[tuple[int, int]], None]:
        """Run turns until the root task is done. Yields the timeout whenever
        the run must wait for I/O; the driver waits that long at most
        (``io_manager.get_events``) and sends the events back. With `guest`,
        it yields after every batch (with timeout 0 if tasks are runnable),
        so that the host loop runs in between."""
        io_manager = self.io_manager
        # The loop reads these containers' truth values directly instead of
        # calling methods: this part runs once per batch, and with one or two
        # runnable tasks per batch its cost is per task switch.
        io_waiters = io_manager._waiters
        deadline_scopes = self.deadlines._scopes
        entry_deque = self.entry_queue.ordered
        entry_idempotent = self.entry_queue.coalesced
        crash_errors = self.crash_errors
        instruments = self.instruments
        entry_queue = self.entry_queue
        deadlines = self.deadlines
        clock = self.clock
        ready_watches = self.ready_watches
        foreign_wait_kinds = self.foreign_wait_kinds
        # Whether the last turn ran ready hooks (see step 4).
        hooks_ran = False
        spare: list[Task] = []
        sync_fn: Callable[..., object] | None
        args: tuple[Any, ...] | None
        while self.init_task_outcome is None:
            # 1. Wait for I/O (skipped when tasks are runnable and nothing could
            # become ready: cross-thread callbacks land in the entry queue,
            # which step 3 reads without a system call; and skipped right
            # after ready hooks ran, whose wakeups were held back for this
            # turn only to keep their place after steps 2 and 3).
            idle_action: IdleAction | None = None
            if crash_errors and self._stuck():
                # After a crash every task was cancelled; if nothing can ever
                # wake the rest (a primitive whose abort failed), stop here
                # instead of sleeping forever.
                self._close_remaining_tasks()
                raise TetherInternalError(
                    "the run crashed and some tasks could not be woken to unwind"
                ) from self.crash_errors[0]
            if (
                self.runq
                and (hooks_ran or not io_waiters)
                and not guest
                and not (instruments and instruments.io_wait_hooked)
            ):
                events: Sequence[tuple[int, int]] = ()
            else:
                # (In a guest run the host can always wake a task: never stuck.)
                if self.scheduler is not None and not guest and self._stuck():
                    self._call_scheduler(self.scheduler.all_tasks_blocked)
                # Set before the inbox is looked at (in `_compute_timeout`):
                # a call handed over after that look wakes the wait.
                entry_queue.loop_may_sleep = True
                timeout, idle_action = self._compute_timeout()
                if instruments and "before_io_wait" in instruments:
                    # (Instruments see a day at most, as in trio.)
                    instruments.call("before_io_wait", min(timeout, _MAX_TIMEOUT))
                # (Nor, while it waits, the last task stepped, what it was
                # sent and yielded, and its cancel status.)
                task = msg = next_send = status = None
                events = yield timeout
                entry_queue.loop_may_sleep = False
                if instruments and "after_io_wait" in instruments:
                    instruments.call("after_io_wait", min(timeout, _MAX_TIMEOUT))
                if events:
                    io_manager.process_events(events)

            # 2. Deadlines (the heap's first entry is tested here: most turns
            # have a deadline pending, a timeout, and none due).
            if deadline_scopes:
                now = clock.current_time()
                if deadline_scopes[0][0] <= now and deadlines.expire(now):
                    idle_action = None

            # 3. Callbacks from run_sync_soon.
            if entry_deque or entry_idempotent:
                idle_action = None
                for sync_fn, args in entry_queue.take_all():
                    try:
                        sync_fn(*args)
                    except BaseException as exc:
                        self.crash(exc, f"run_sync_soon callback {sync_fn!r} raised")
                # (This frame lives as long as the run: it keeps no callback,
                # nor what the callback refers to, until the next one.)
                sync_fn = args = None

            # Nothing happened for the whole timeout: wake idle waiters or
            # jump a mock clock forward.
            if idle_action is not None and not self.runq and not events:
                if idle_action is IdleAction.WAKE_IDLE_WAITERS:
                    self._wake_idle_waiters()
                else:
                    self.clock.autojump()

            # 4. One step for each task that is runnable now, after the
            # ready hooks of watch sets: they stand in for steps of the tasks
            # waiting on those sets, which would have come first in this
            # batch, so what the hooks wake joins the next batch.
            batch = self.runq
            # (The list the previous batch ran from: no new list per batch.)
            self.runq = runq = spare
            hooks_ran = False
            if ready_watches:
                call_ready_hooks(self)
                hooks_ran = True
            if not batch:
                spare = batch
                continue
            if self.scheduler is not None:
                # Wakeups can arrive in an order that depends on set iteration
                # (by object address), so put the batch in spawn order first:
                # the same decisions then give the same schedule in every run.
                batch.sort(key=_spawn_index)
                self._call_scheduler(self.scheduler.schedule_batch, batch)
            for task in batch:
                self.current_task = task
                if instruments and "before_task_step" in instruments:
                    instruments.call("before_task_step", task)
                next_send = task._next_send
                try:
                    if next_send is RESUME_CHECKPOINT:
                        status = task._cancel_status
                        if status is not None and status.effectively_cancelled:
                            # As in trio: the task is rescheduled with
                            # Cancelled, thrown in at its next step, so the
                            # rest of this batch runs first. (A foreign wait,
                            # so that the error is thrown in where it yielded.)
                            task._foreign_wait = True
                            msg = _CANCEL_AT_NEXT_STEP
                        else:
                            msg = task.context.run(task.coro.send, None)
                    elif next_send is THROW_ON_RESUME:
                        # (No local holds the error: its traceback will hold
                        # the task's frames, which must die with the task.)
                        msg = task.context.run(task.coro.throw, _take_pending_throw(task))
                    else:
                        msg = task.context.run(task.coro.send, next_send)
                except StopIteration as stop:
                    value = stop.value
                    # Most tasks return None: share one outcome for them.
                    self.task_exited(task, _VALUE_NONE if value is None else outcome.Value(value))
                    del value
                except BaseException as exc:
                    # Drop this frame from the traceback: it is the kernel's,
                    # not the task's.
                    tb = exc.__traceback__
                    if tb is not None:
                        exc = exc.with_traceback(tb.tb_next)
                    self.task_exited(task, exc)
                    del exc, tb
                else:
                    if msg is CHECKPOINT:
                        task._next_send = RESUME_CHECKPOINT
                        runq.append(task)
                        if instruments and "task_scheduled" in instruments:
                            instruments.call("task_scheduled", task)
                    elif msg is CANCEL_SHIELDED_CHECKPOINT:
                        # (Second: every channel send and receive ends here.)
                        task._next_send = None
                        runq.append(task)
                        if instruments and "task_scheduled" in instruments:
                            instruments.call("task_scheduled", task)
                    elif (kind := type(msg)) is ParkingLot:
                        queue_in_lot(self, task, msg)
                    elif kind is WaitTaskRescheduled:
                        task._abort_func = msg.abort_func
                        if self.ki_pending and task is self.main_task:
                            deliver_pending_ki(self)
                        status = task._cancel_status
                        if status is not None and status.effectively_cancelled:
                            task._attempt_delivery_of_any_pending_cancel()
                    else:
                        try:
                            known = kind in foreign_wait_kinds
                        except TypeError:  # (a class that cannot be hashed)
                            known = False
                        if known:
                            # A face's stepper started a foreign wait (an aio
                            # task's every wait), with a `ForeignWaitAbort`
                            # of a class `foreign_yield` has seen in this
                            # run: `block_at_foreign_wait`, written out.
                            task._abort_func = msg
                            task._foreign_wait = True
                            if self.ki_pending and task is self.main_task:
                                deliver_pending_ki(self)
                            status = task._cancel_status
                            if status is not None and status.effectively_cancelled:
                                task._attempt_delivery_of_any_pending_cancel()
                        elif msg is TASK_EXIT and type(task) is not CoroutineTask:
                            # A face's stepper ended its task (see TASK_EXIT).
                            self.task_exited(task, _VALUE_NONE)
                        else:
                            foreign_yield(self, task, msg)
                if instruments and "after_task_step" in instruments:
                    instruments.call("after_task_step", task)
            self.current_task = None
            batch.clear()
            spare = batch
            if self.ki_pending:
                # Once per batch rather than per step: the main task may have
                # reached a checkpoint in this batch. (Only that: its waits
                # are tried when it starts one, so an abort function that
                # refused is not asked again every batch.)
                deliver_ki_at_checkpoint(self)

    def _close_remaining_tasks(self) -> None:
        """Close the coroutines of every task still alive, innermost first,
        so that their ``finally`` blocks run now rather than whenever the
        garbage collector gets to them."""
        order: list[Task] = []
        todo = [self.init_task] if self.init_task is not None else []
        while todo:
            task = todo.pop()
            order.append(task)
            for nursery in task._child_nurseries:
                todo.extend(nursery._children)
        self.closing_tasks = True
        for task in reversed(order):
            self.current_task = task
            try:
                task.coro.close()
            except BaseException:
                pass  # already crashing; nothing better to do with it
        self.current_task = None

    def _stuck(self) -> bool:
        """Whether nothing the kernel knows of can ever wake a task: none
        is runnable, no deadline, no I/O wait, no idle waiter, no callback
        queued, and no worker thread still owes the run its report."""
        entry_queue = self.entry_queue
        return (
            not self.runq
            and not self.deadlines
            and not self.io_manager.has_waiters
            and not self.waiting_for_idle
            and not entry_queue.ordered
            and not entry_queue.coalesced
            and not entry_queue.reports_due
        )

    def _call_scheduler(self, hook: Callable[..., None], *args: Any) -> None:
        """Call a hook of the run's scheduler. If it raises, the run ends
        with that exception: the tasks' coroutines are closed here, in the
        run, where their ``finally`` blocks can still run."""
        try:
            hook(*args)
        except BaseException:
            self._close_remaining_tasks()
            raise

    def crash(self, error: BaseException, what: str) -> None:
        """Shut the run down in order because of an error that nobody can
        catch (a failing run_sync_soon callback or abort function): it is
        raised in the system nursery, as if a system task had raised it, so
        every task is cancelled and unwinds; then `run` raises
        `TetherInternalError` with it (in the root task's groups) as the
        cause. After the system nursery has closed, the run's outermost
        nursery takes it; after that, `run` raises it directly."""
        error.add_note(what)
        self.crash_errors.append(error)
        for nursery in (self.system_nursery, self.run_nursery):
            if nursery is not None and nursery._pending_excs is not None:
                nursery._add_exc(
                    error,
                    CancelReason("shutdown", reason=f"the run crashed: {what}: {error!r}"),
                )
                return
        self.late_crash_errors.append(error)

    def _wake_idle_waiters(self) -> None:
        waiting = self.waiting_for_idle
        cushion = waiting.keys()[0][0]
        while waiting:
            key, task = waiting.peekitem(0)
            if key[0] != cushion:
                break
            del waiting[key]
            self.reschedule(task)

    def add_idle_waiter(self, cushion: float, task: Task) -> tuple[float, int]:
        self._idle_sequence += 1
        key = (cushion, self._idle_sequence)
        self.waiting_for_idle[key] = task
        return key


register_step_loop(Runner._run_loop)
