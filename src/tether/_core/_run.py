"""The run loop.

`run()` creates a `Runner`, spawns the root task (which opens the system
nursery and starts the main task in it) and loops until the root task is
done. Each turn of the loop:

1. waits for I/O, for at most the time until the nearest deadline (not at
   all if a task is runnable);
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
need.
"""

from __future__ import annotations

import contextvars
import math
import operator
import signal
import sys
import threading
import types
from collections.abc import Awaitable, Callable, Coroutine, Generator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import outcome
from sortedcontainers import SortedDict

from ._asyncgens import AsyncGenerators
from ._cancel import CancelScope
from ._cancel_reason import CancelReason
from ._clock import Clock, SystemClock
from ._deadlines import Deadlines
from ._entry_queue import EntryQueue, TetherToken
from ._exceptions import TetherInternalError
from ._instrumentation import Instrument, Instruments
from ._io import IOStatistics, make_io_manager
from ._ki import install_sigint_handler, register_step_loop
from ._loose_groups import warn_loose
from ._misnesting import misnested_task_exit, report_lost_errors
from ._nursery import Nursery, NurseryManager
from ._parking_lot import ParkingLot, broken_lot_error
from ._run_context import GLOBAL_RUN_CONTEXT, current_task
from ._scheduler import Scheduler, SeededScheduler
from ._task import PARKED_IN_LOT, CoroutineTask, Task
from ._task_coroutine import coroutine_or_error, task_name
from ._traps import (
    CANCEL_SHIELDED_CHECKPOINT,
    CHECKPOINT,
    TASK_EXIT,
    Abort,
    PermanentlyDetach,
    WaitTaskRescheduled,
    wait_task_rescheduled,
)

T = TypeVar("T")

# The longest the loop sleeps in one wait, even with no deadline at all;
# keeps timeouts inside what the OS pollers accept.
_MAX_TIMEOUT = 86400.0

_VALUE_NONE = outcome.Value(None)
_new_coroutine_task = CoroutineTask.__new__


class _CheckpointResume:
    """Marker in ``task._next_send``: the task yielded `CHECKPOINT`, so check
    for cancellation when it resumes (not when it yielded: a deadline may
    expire, or a sibling may cancel, in between)."""

    __slots__ = ()


_RESUME_CHECKPOINT: Any = _CheckpointResume()


class _ThrowOnResume:
    """Marker in ``task._next_send``: throw ``task._pending_throw`` into the
    task when it resumes (used when a task yielded something that is not a
    trap, so there is no trap frame to unwrap an outcome)."""

    __slots__ = ()


_THROW: Any = _ThrowOnResume()


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


@dataclass(frozen=True)
class RunStatistics:
    """What `current_statistics` reports about the current run (trio's
    fields, in trio's order).

    Attributes:
      tasks_living: tasks started and not yet finished, the run's own root
        task included (tether runs `run_sync_soon` callbacks in the loop
        itself, not in a task as trio does, so a run has one task fewer).
      tasks_runnable: tasks queued to take a step in the next batch.
      seconds_to_next_deadline: time until the nearest cancel-scope deadline
        (``inf`` for none; negative if it passed and is not processed yet).
      io_statistics: the I/O backend's numbers (``backend`` names it).
      run_sync_soon_queue_size: callbacks queued with
        `TetherToken.run_sync_soon` and not run yet.
    """

    tasks_living: int
    tasks_runnable: int
    seconds_to_next_deadline: float
    io_statistics: IOStatistics
    run_sync_soon_queue_size: int


_spawn_index = operator.attrgetter("_spawn_index")


class Runner:
    """The state of one `tether.run` call. Lives in the thread running it."""

    def __init__(
        self,
        clock: Clock,
        instruments: Sequence[Instrument],
        scheduler: Scheduler | None,
        strict_exception_groups: bool = True,
    ) -> None:
        self.clock = clock
        #: What `open_nursery()` uses when not told.
        self.strict_exception_groups = strict_exception_groups
        self.instruments = Instruments(instruments)
        self.io_manager = make_io_manager()
        self.runq: list[Task] = []
        self.tasks_living = 0
        self.tasks_spawned = 0
        self.deadlines = Deadlines()
        self.entry_queue = EntryQueue(self.io_manager.wakeup_threadsafe)
        self.token = TetherToken(self)
        self.run_vars: dict[Any, Any] = {}
        self.waiting_for_idle: SortedDict = SortedDict()
        self._idle_sequence = 0
        #: Decides the order of each batch, and hears when the run is stuck.
        self.scheduler = scheduler
        self.asyncgens = AsyncGenerators(self)
        self.system_context = contextvars.copy_context()
        self.init_task: Task | None = None
        self.init_task_outcome: outcome.Outcome[Any] | None = None
        self.main_task: Task | None = None
        self.main_task_outcome: outcome.Outcome[Any] | None = None
        #: The root task's nurseries, outermost first: `run_nursery` holds
        #: `system_nursery` (system tasks), which holds the main task's.
        self.run_nursery: Nursery | None = None
        self.system_nursery: Nursery | None = None
        #: The task being stepped right now; None between steps.
        self.current_task: Task | None = None
        #: A KeyboardInterrupt arrived in protected code and waits to be
        #: delivered to the main task.
        self.ki_pending = False
        #: Whether a real SIGINT reached this run's handler.
        self.sigint_received = False
        #: Errors that crashed the run (see `crash`).
        self.crash_errors: list[BaseException] = []
        #: Set while `_close_remaining_tasks` closes the coroutines of tasks
        #: that can no longer be woken: their nurseries cannot wait then.
        self.closing_tasks = False
        #: Those of them that came after the run's nurseries had closed:
        #: `run` raises them itself.
        self.late_crash_errors: list[BaseException] = []
        #: Nurseries left open by a task that exited (see _misnesting.py).
        self.abandoned_nurseries: list[Nursery] = []

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
        if nursery is not None and nursery._closed:
            raise RuntimeError("Nursery is closed to new arrivals")
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
        """The part of spawning shared by every way in: make the task, put it
        in its nursery and schedule its first step."""
        task = _new_coroutine_task(CoroutineTask)
        task.name = name
        #: See `CoroutineTask.foreign_yield_handler`.
        task.foreign_yield_handler = None
        self.spawn_task(nursery, task, coro, context, system_task)
        return task

    def spawn_task(
        self,
        nursery: Nursery | None,
        task: Task,
        coro: Any,
        context: contextvars.Context,
        system_task: bool = False,
    ) -> None:
        """Set the kernel's fields of `task` (the `TASK_SLOTS`) for a new
        start, put it in `nursery` and schedule its first step.

        For every task: the kernel's own (`spawn_coroutine`) and a face's
        (`lowlevel.spawn_task`; this is the unchecked fast path, also
        offered to faces through `current_stepping_state`). All in one
        function, since it runs once per task spawned.
        """
        if nursery is not None and nursery._closed:
            raise RuntimeError("Nursery is closed to new arrivals")
        #: What the kernel steps: ``coro.send``/``coro.throw``, in `context`.
        task.coro = coro
        task.context = context
        task._runner = self
        #: System tasks (the root task, spawn_system_task) are protected from
        #: KeyboardInterrupt; see _ki.py.
        task._system = system_task
        task._parent_nursery = nursery
        # Created on first use: most tasks never open a nursery.
        task._child_nurseries = ()
        task._abort_func = None
        #: A fresh coroutine must first be sent None.
        task._next_send = None
        #: Parking lots to break if this task exits while holding them (the
        #: lock it owns): see `add_parking_lot_breaker`.
        task._lots_to_break = None
        #: Free for the code that parks this task (ParkingLot, I/O waits) to
        #: record what it is waiting on; the kernel never reads it.
        task.custom_sleep_data = None
        task._foreign_wait = False
        # ``_pending_throw`` and ``_eventual_parent_nursery`` stay unset until
        # used (each is written before it is read): an unset field costs the
        # garbage collector nothing when it traverses the task. (Nor is there
        # a cached ``coro.send`` bound method: one more GC-tracked object per
        # task costs more, with many tasks alive, than the attribute lookup
        # it saves per step.)
        self.tasks_living += 1
        #: Position in the run's spawn order; gives seeded schedules a
        #: deterministic starting order.
        task._spawn_index = self.tasks_spawned = self.tasks_spawned + 1
        if nursery is not None:
            nursery._children.add(task)
            # (`_activate_cancel_status`, inlined: a new task has no status
            # to leave and no wait to abort.)
            status = nursery._cancel_status
            status.tasks.add(task)
            task._cancel_status = status
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
        if task._abort_func is None:
            raise RuntimeError(
                f"cannot reschedule {task!r}: it is not blocked in wait_task_rescheduled "
                "(was it rescheduled twice?)"
            )
        task._abort_func = None
        task.custom_sleep_data = None
        if task._foreign_wait:
            # The task waits at a foreign yield, which cannot unwrap an
            # outcome: send the value or throw the error there directly.
            task._foreign_wait = False
            if isinstance(next_send, outcome.Value):
                task._next_send = next_send.value
            else:
                assert isinstance(next_send, outcome.Error)
                task._pending_throw = next_send.error
                task._next_send = _THROW
        else:
            task._next_send = next_send
        self.runq.append(task)
        if self.instruments and "task_scheduled" in self.instruments:
            self.instruments.call("task_scheduled", task)

    def task_exited(self, task: Task, result: outcome.Outcome[Any]) -> None:
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
            # (`_activate_cancel_status(None)`, inlined.)
            task._cancel_status = None
            status.tasks.discard(task)
        # Drop what the last step was sent (an outcome whose error's
        # traceback can reference the task): a face's task object outlives
        # its kernel run.
        task._next_send = None
        self.tasks_living -= 1
        if task is self.main_task:
            # (A fresh outcome: run() unwraps it, and the shared one must
            # never be unwrapped.)
            self.main_task_outcome = outcome.Value(None) if result is _VALUE_NONE else result
            result = _VALUE_NONE
        if task is self.init_task:
            self.init_task_outcome = result
        else:
            nursery = task._parent_nursery
            if nursery is not None:
                # (`nursery._child_finished(task, result)`, inlined.)
                children = nursery._children
                children.remove(task)
                if type(result) is not outcome.Value:
                    nursery._child_failed(task, result.error)  # type: ignore[attr-defined]
                if not children:
                    nursery._check_nursery_closed()
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

    def _compute_timeout(self) -> tuple[float, str | None]:
        if self.runq or self.entry_queue.queue or self.entry_queue.idempotent_queue:
            return 0.0, None
        deadline = self.deadlines.next_deadline()
        if deadline == math.inf:
            timeout = _MAX_TIMEOUT
        else:
            timeout = min(max(0.0, self.clock.deadline_to_sleep_time(deadline)), _MAX_TIMEOUT)
        if self.waiting_for_idle:
            cushion = self.waiting_for_idle.keys()[0][0]
            if cushion < timeout:
                return cushion, "idle"
            return timeout, None
        threshold = getattr(self.clock, "autojump_threshold", math.inf)
        # Autojumping only helps when there is a deadline to jump to; with
        # none, every task waits on something else (I/O, another thread, or
        # a deadlock), so sleep instead of spinning.
        if threshold < timeout and deadline != math.inf:
            return threshold, "autojump"
        return timeout, None

    def _run_loop(self) -> None:
        io_manager = self.io_manager
        # The loop reads these containers' truth values directly instead of
        # calling methods: this part runs once per batch, and with one or two
        # runnable tasks per batch its cost is per task switch.
        io_waiters = io_manager._waiters
        deadline_scopes = self.deadlines._scopes
        entry_deque = self.entry_queue.queue
        entry_idempotent = self.entry_queue.idempotent_queue
        crash_errors = self.crash_errors
        instruments = self.instruments
        entry_queue = self.entry_queue
        deadlines = self.deadlines
        clock = self.clock
        while self.init_task_outcome is None:
            # 1. Wait for I/O (skipped when tasks are runnable and nothing could
            # become ready: cross-thread callbacks land in the entry queue,
            # which step 3 reads without a system call).
            idle_primed: str | None = None
            if crash_errors and self._stuck():
                # After a crash every task was cancelled; if nothing can ever
                # wake the rest (a primitive whose abort failed), stop here
                # instead of sleeping forever.
                self._close_remaining_tasks()
                raise TetherInternalError(
                    "the run crashed and some tasks could not be woken to unwind"
                ) from self.crash_errors[0]
            if self.runq and not io_waiters and not (instruments and instruments.io_wait_hooked):
                events: list[tuple[int, int]] = []
            else:
                if self.scheduler is not None and self._stuck():
                    self._call_scheduler(self.scheduler.all_tasks_blocked)
                timeout, idle_primed = self._compute_timeout()
                if instruments and "before_io_wait" in instruments:
                    instruments.call("before_io_wait", timeout)
                events = io_manager.get_events(timeout)
                if instruments and "after_io_wait" in instruments:
                    instruments.call("after_io_wait", timeout)
                if events:
                    io_manager.process_events(events)

            # 2. Deadlines.
            if deadline_scopes and deadlines.expire(clock.current_time()):
                idle_primed = None

            # 3. Callbacks from run_sync_soon.
            if entry_deque or entry_idempotent:
                idle_primed = None
                for sync_fn, args in entry_queue.drain():
                    try:
                        sync_fn(*args)
                    except BaseException as exc:
                        self.crash(exc, f"run_sync_soon callback {sync_fn!r} raised")

            # Nothing happened for the whole timeout: wake idle waiters or
            # jump a mock clock forward.
            if idle_primed is not None and not self.runq and not events:
                if idle_primed == "idle":
                    self._wake_idle_waiters()
                else:
                    self.clock._autojump()  # type: ignore[attr-defined]

            # 4. One step for each task that is runnable now.
            batch = self.runq
            if not batch:
                continue
            self.runq = runq = []
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
                    if next_send is _RESUME_CHECKPOINT:
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
                    elif next_send is _THROW:
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
                    self.task_exited(task, outcome.Error(exc))
                    del exc, tb
                else:
                    if msg is CHECKPOINT:
                        task._next_send = _RESUME_CHECKPOINT
                        runq.append(task)
                        if instruments and "task_scheduled" in instruments:
                            instruments.call("task_scheduled", task)
                    elif type(msg) is ParkingLot:
                        self._park(task, msg)
                    elif type(msg) is WaitTaskRescheduled:
                        task._abort_func = msg.abort_func
                        if self.ki_pending and task is self.main_task:
                            self._deliver_pending_ki()
                        status = task._cancel_status
                        if status is not None and status.effectively_cancelled:
                            task._attempt_delivery_of_any_pending_cancel()
                    elif msg is CANCEL_SHIELDED_CHECKPOINT:
                        task._next_send = None
                        runq.append(task)
                        if instruments and "task_scheduled" in instruments:
                            instruments.call("task_scheduled", task)
                    elif msg is TASK_EXIT and type(task) is not CoroutineTask:
                        # A face's stepper ended its task (see TASK_EXIT).
                        self.task_exited(task, _VALUE_NONE)
                    else:
                        self._foreign_yield(task, msg)
                if instruments and "after_task_step" in instruments:
                    instruments.call("after_task_step", task)
            self.current_task = None
            batch.clear()
            if self.ki_pending:
                # Once per batch rather than per step: the main task may have
                # reached a checkpoint in this batch.
                self._deliver_pending_ki()

    # -- KeyboardInterrupt -------------------------------------------------------

    def deliver_ki(self) -> None:
        """Entry-queue callback queued by the SIGINT handler when the signal
        arrived in protected code (the handler has set `ki_pending`; the
        loop may have delivered it since)."""
        if self.ki_pending:
            self._deliver_pending_ki()

    def _raise_ki(self) -> Any:
        self.ki_pending = False
        raise KeyboardInterrupt

    def _deliver_pending_ki(self) -> None:
        # KeyboardInterrupt is outside every cancel scope: it reaches the main
        # task at a checkpoint or in a wait, shielded or not, but never at a
        # cancel-shielded checkpoint (which is not a cancel point at all).
        task = self.main_task
        if task is None or self.main_task_outcome is not None:
            return
        if task._abort_func is not None:
            task._attempt_abort(self._raise_ki)
        elif task._next_send is _RESUME_CHECKPOINT:
            task._next_send = _THROW
            task._pending_throw = KeyboardInterrupt()
            self.ki_pending = False

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
        return (
            not self.runq
            and not self.deadlines
            and not self.io_manager.has_waiters
            and not self.waiting_for_idle
            and not self.entry_queue.queue
            and not self.entry_queue.idempotent_queue
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

    def _park(self, task: Task, lot: ParkingLot) -> None:
        """The task yielded `lot` (``await lot.park()``): queue it there,
        or throw `BrokenResourceError` into it if the lot is broken."""
        if lot._broken_by is not None:
            task._pending_throw = broken_lot_error(lot)
            task._next_send = _THROW
            self.runq.append(task)
            return
        lot._parked[task] = None
        task.custom_sleep_data = lot
        task._abort_func = PARKED_IN_LOT
        if self.ki_pending and task is self.main_task:
            self._deliver_pending_ki()
        status = task._cancel_status
        if status is not None and status.effectively_cancelled:
            task._attempt_delivery_of_any_pending_cancel()

    def _foreign_yield(self, task: Task, msg: object) -> None:
        if type(msg) is PermanentlyDetach:
            # The coroutine is someone else's now; the task ends here.
            self.task_exited(task, msg.final_outcome)
            return
        if isinstance(msg, ParkingLot):
            # A subclass of ParkingLot: the step loop only checks the exact
            # type.
            self._park(task, msg)
            return
        if msg is TASK_EXIT:
            # (Only a face's stepper may end its task this way.)
            task._pending_throw = TypeError(
                f"{task!r} yielded tether.lowlevel.TASK_EXIT, which only a face's "
                "stepper returns (see tether.lowlevel.spawn_task)"
            )
            task._next_send = _THROW
            self.runq.append(task)
            return
        handler = task.foreign_yield_handler
        if handler is not None:
            try:
                abort_func = handler(task, msg)
            except BaseException as exc:
                # The handler refused the object: the task gets the error.
                task._pending_throw = exc
                task._next_send = _THROW
                self.runq.append(task)
                return
            task._abort_func = abort_func
            task._foreign_wait = True
            task._attempt_delivery_of_any_pending_cancel()
            return
        error = TypeError(
            f"{task!r} yielded {msg!r} to the tether kernel, which runs only tether "
            "traps. This usually means the task awaited something written for "
            "another async framework (an asyncio future, a bare 'yield' in a "
            "generator-based coroutine); use tether's equivalent or tether.aio."
        )
        # The task resumes in the next batch with the TypeError thrown in at
        # the point where it yielded.
        task._pending_throw = error
        task._next_send = _THROW
        self.runq.append(task)

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


# ---------------------------------------------------------------------------
# Public entry point and introspection


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


register_step_loop(Runner._run_loop)


def _runner() -> Runner:
    try:
        return GLOBAL_RUN_CONTEXT.runner
    except AttributeError:
        raise RuntimeError("must be called from inside tether.run()") from None


def current_root_task() -> Task | None:
    """The run's root task, which every other task descends from."""
    return _runner().init_task


def current_time() -> float:
    """The current time on the run's clock, in seconds. Not a checkpoint."""
    return _runner().clock.current_time()


def current_clock() -> Clock:
    """The clock the current run uses."""
    return _runner().clock


def current_effective_deadline() -> float:
    """The deadline that applies to the calling code: the earliest deadline of
    the enclosing cancel scopes (stopping at a shield); ``-inf`` if it is
    already cancelled, ``inf`` if there is none. Not a checkpoint."""
    status = current_task()._cancel_status
    if status is None:
        return math.inf
    return status.effective_deadline()


def reschedule(task: Task, next_send: outcome.Outcome[Any] = _VALUE_NONE) -> None:
    """Wake `task`, which is blocked in `wait_task_rescheduled`, with
    `next_send` (an `outcome.Value` or `outcome.Error`) as the result of its
    wait. Raises `RuntimeError` if the task is not blocked."""
    if not isinstance(next_send, outcome.Value | outcome.Error):
        raise TypeError(f"next_send must be an outcome.Value or outcome.Error, got {next_send!r}")
    _runner().reschedule(task, next_send)


def spawn_coroutine(
    nursery: Nursery,
    coro: Coroutine[Any, Any, Any],
    *,
    name: str,
    context: contextvars.Context,
) -> Task:
    """Start a task in `nursery` that runs the existing coroutine object
    `coro`, stepped in `context` itself (not a copy), named `name`; return
    the new `Task`. Not a checkpoint.

    For faces built on the kernel (`tether.aio`'s ``create_task`` gets a
    coroutine object and a context of its own). Everyday code uses
    `Nursery.start_soon`, which also checks its argument and copies the
    caller's context.

    Raises:
      RuntimeError: if the nursery is closed.
      TypeError: if `coro` is not a coroutine object.
    """
    runner = _runner()
    if nursery._closed:
        raise RuntimeError("Nursery is closed to new arrivals")
    if not isinstance(coro, Coroutine):
        raise TypeError(f"spawn_coroutine() expected a coroutine object, got {coro!r}")
    if not isinstance(context, contextvars.Context):
        raise TypeError(f"context must be a contextvars.Context, got {context!r}")
    return runner.spawn_coroutine(coro, name, context, nursery)


def spawn_task(
    nursery: Nursery,
    task: Task,
    coro: Any,
    *,
    context: contextvars.Context,
) -> None:
    """Start `task`, an object of a face's own task class, as a task in
    `nursery` that steps `coro` (an object with a coroutine's ``send``,
    ``throw`` and ``close``) in `context` (used as is). Not a checkpoint.

    For faces built on the kernel whose task objects are kernel tasks
    themselves (`tether.aio.Task` is an `asyncio.Future` and a kernel task
    at once). The class derives from `Task`, lists `TASK_SLOTS` in its
    ``__slots__`` and provides ``name`` and ``foreign_yield_handler``
    (fields or class attributes). The kernel sets the fields it reads
    before writing here, so a task object may be started again once its
    previous start has exited (in the same run or a later one).

    The stepper's ``send(value)`` and ``throw(exc)`` step the task's code
    and return what it yields; they end the task by returning `TASK_EXIT`
    or by raising (``StopIteration`` is a return). One stepper may serve
    many tasks (see `current_stepping_state`). The task's code, stepper
    included, can be interrupted by Ctrl-C like any task's code; mark
    stepper methods with `enable_ki_protection` to defer it there. For the
    task tree, hang reports and that protection, the class overrides
    ``_code_coroutine()`` to return the coroutine that runs the task's code.

    Raises:
      RuntimeError: if the nursery is closed, or `task` is running.
      TypeError: if `task` is not a `Task` or `context` not a
        `contextvars.Context`.
    """
    runner = _runner()
    if not isinstance(task, Task):
        raise TypeError(f"spawn_task() expected a tether.lowlevel.Task, got {task!r}")
    if getattr(task, "_cancel_status", None) is not None and task._runner is runner:
        raise RuntimeError(f"{task!r} is already running")
    if type(context) is not contextvars.Context:
        raise TypeError(f"context must be a contextvars.Context, got {context!r}")
    runner.spawn_task(nursery, task, coro, context)


class SteppingState(Protocol):
    """What `current_stepping_state` returns: the run itself, seen through
    what a face's hot paths need."""

    @property
    def current_task(self) -> Task | None:
        """The task being stepped right now; None between steps."""

    def spawn_task(
        self, nursery: Nursery, task: Task, coro: Any, context: contextvars.Context
    ) -> None:
        """`spawn_task` without its argument checks (the nursery must belong
        to this run; a closed nursery still raises `RuntimeError`)."""


def current_stepping_state() -> SteppingState:
    """An object of the current run whose ``current_task`` attribute is the
    task the kernel is stepping at the moment it is read (None between
    steps). Not a checkpoint.

    For a face's stepper (see `spawn_task`): one stepper object can serve
    all of a face's tasks, reading this attribute to learn which task a
    ``send`` is for, at the cost of one attribute lookup instead of a call
    to `current_task`. Its ``spawn_task`` method is `spawn_task` without
    the argument checks, for a face that creates many tasks. Valid for the
    current run only.

    Raises `RuntimeError` outside a run.
    """
    return _runner()


def abort_wait(task: Task, raise_exc: Callable[[], Any]) -> bool:
    """Interrupt `task` if it is parked in any kernel wait, with the exception
    that ``raise_exc()`` raises, as a cancellation would: the wait's abort
    function is called with `raise_exc`; if it agrees (`Abort.SUCCEEDED`) the
    task is rescheduled to raise that exception where it waits. Returns
    whether the task was interrupted (False if it was not parked, or its wait
    cannot be abandoned).

    For faces with edge-triggered cancellation (asyncio's ``Task.cancel()``
    must interrupt whatever the task awaits, tether-native waits included).
    """
    _runner()
    if task._abort_func is None:
        return False
    task._attempt_abort(raise_exc)
    return task._abort_func is None


def spawn_system_task(
    async_fn: Callable[..., Awaitable[Any]],
    *args: object,
    name: object = None,
    context: contextvars.Context | None = None,
) -> Task:
    """Start a task in the run's system nursery, outside the main task's tree.

    System tasks are cancelled when the main task finishes, and must then
    exit promptly. An exception escaping a system task crashes the whole run
    with `TetherInternalError`: catch what you expect inside the task. By
    default it runs in a copy of the context the run started with.
    """
    runner = _runner()
    if runner.system_nursery is None:
        raise RuntimeError("the system nursery is not open yet")
    return runner.spawn_impl(
        async_fn, args, runner.system_nursery, name, system_task=True, context=context
    )


def current_statistics() -> RunStatistics:
    """Numbers about the current run, for debugging and monitoring."""
    runner = _runner()
    return RunStatistics(
        tasks_living=runner.tasks_living,
        tasks_runnable=len(runner.runq),
        seconds_to_next_deadline=runner.deadlines.next_deadline() - runner.clock.current_time(),
        run_sync_soon_queue_size=len(runner.entry_queue),
        io_statistics=runner.io_manager.statistics(),
    )


def current_tether_token() -> TetherToken:
    """The `TetherToken` of the current run, for use from other threads."""
    return _runner().token


def in_tether_run() -> bool:
    """Whether this thread is inside a `tether.run` (in a task or not)."""
    return getattr(GLOBAL_RUN_CONTEXT, "runner", None) is not None


def in_tether_task() -> bool:
    """Whether this code runs inside a tether task."""
    runner = getattr(GLOBAL_RUN_CONTEXT, "runner", None)
    return runner is not None and runner.current_task is not None


def add_instrument(instrument: Instrument) -> None:
    """Install `instrument` in the current run (nothing happens if it is
    already installed). The hooks it implements are read now."""
    _runner().instruments.add_instrument(instrument)


def remove_instrument(instrument: Instrument) -> None:
    """Remove `instrument` from the current run; `KeyError` if it is not
    installed (never added, or removed after one of its hooks raised)."""
    _runner().instruments.remove_instrument(instrument)


async def wait_all_tasks_blocked(cushion: float = 0.0) -> None:
    """Block until every other task of the run is blocked (waiting on
    something other than a checkpoint), and has been for `cushion` seconds
    of real time. Mostly for tests: "let everything settle, then check".
    Cancellable."""
    runner = _runner()
    if cushion < 0 or math.isnan(cushion):
        raise ValueError(f"cushion must be a non-negative number, got {cushion!r}")
    task = current_task()
    key = runner.add_idle_waiter(cushion, task)

    def abort(_: Callable[[], Any]) -> Abort:
        del runner.waiting_for_idle[key]
        return Abort.SUCCEEDED

    await wait_task_rescheduled(abort)


@types.coroutine
def checkpoint_if_cancelled() -> Generator[Any, Any, None]:
    """``await checkpoint_if_cancelled()``: a checkpoint only if this task is
    in a cancelled scope (then it raises `Cancelled`), or is the main task with
    a Ctrl-C pending; otherwise it returns without letting other tasks run.

    Generator-based, so the common case (not cancelled) costs a function call
    and no coroutine frame."""
    runner = _runner()
    task = runner.current_task
    if task is None:
        raise RuntimeError("must be called from inside a tether task")
    status = task._cancel_status
    if (status is not None and status.effectively_cancelled) or (
        runner.ki_pending and task is runner.main_task
    ):
        yield CHECKPOINT
