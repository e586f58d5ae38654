"""`Explorer`: the kernel scheduler behind a `Schedule`.

One explorer serves one run. At every batch the kernel hands it (in spawn
order, see `tether.lowlevel.Scheduler`) it:

1. makes the planned cancellations: the schedule may name *cancellable
   steps* (steps of a task that a cancel scope with a deadline encloses,
   counted through the run) at which that scope's deadline fires. It fires
   just before the batch, which is when a real deadline fires (the loop
   expires deadlines between batches);
2. orders the batch, one decision per position while more than one task is
   left (see `_policies`), asking its `Decisions` source;
3. records each step in the `Story`, if it keeps one.

When the kernel reports that every task is blocked with nothing to wake one,
and no `to_thread` job is running either, that is a deadlock: the explorer
reports it at once (no grace period: a run under a schedule is meant to be
deterministic, so only tether-visible events can wake it), and if the tasks
cannot even unwind after being cancelled, ends the run with the error.
"""

from __future__ import annotations

from collections.abc import Callable

from .. import CancelScope
from ..abc import Clock
from ..lowlevel import Scheduler, Task, current_statistics, enclosing_deadline_scope
from ._decisions import Decisions
from ._story import Story
from ._watchdog import HangError

DEADLOCK_DETAIL = (
    "every task is blocked and nothing can wake one (no deadline, no I/O wait, no "
    "pending callback, no to_thread job); under a schedule this is reported at once. "
    "A thread or signal handler of the test's own could still have woken a task: "
    "such a test cannot use a schedule"
)


class Explorer(Scheduler):
    """Decides one run's order of steps; see the module docstring."""

    def __init__(
        self,
        decisions: Decisions,
        *,
        clock: Clock,
        cancel_at: frozenset[int] = frozenset(),
        story: Story | None = None,
        on_deadlock: Callable[[str], HangError],
        abort_run: Callable[[], None],
    ) -> None:
        self._decisions = decisions
        self._policy = decisions.policy
        self._clock = clock
        self._cancel_at = cancel_at
        self.story = story
        self._on_deadlock = on_deadlock
        self._abort_run = abort_run
        #: What the decision source raised, if it did (hypothesis stopping
        #: the example): the run is then cancelled and this re-raised after.
        self.aborted: BaseException | None = None
        #: Decisions made so far.
        self.decisions = 0
        #: Steps so far.
        self.steps = 0
        #: Steps of tasks under a deadline, so far (see the module docstring).
        self.cancellable_steps = 0
        #: The decisions that were not the default: ``{decision: candidate}``.
        self.deviations: dict[int, int] = {}
        #: The cancellable steps at which a deadline was made to fire.
        self.cancelled: list[int] = []
        #: The deadlock this explorer reported, and the story up to then.
        self.deadlock: HangError | None = None
        self.deadlock_story: str | None = None

    @property
    def mismatch(self) -> tuple[int, int, int] | None:
        """A replayed decision that did not fit the run (see `Decisions`)."""
        return self._decisions.mismatch

    def schedule_batch(self, batch: list[Task]) -> None:
        cancelled: dict[Task, CancelScope] = {}
        if self._cancel_at:
            for task in batch:
                scope = enclosing_deadline_scope(task)
                if scope is None:
                    continue
                self.cancellable_steps += 1
                if self.cancellable_steps in self._cancel_at:
                    scope.cancel()
                    self.cancelled.append(self.cancellable_steps)
                    cancelled[task] = scope
        story = self.story
        if story is not None:
            story.saw(batch)
        deviations: dict[Task, tuple[int, Task]] = {}
        if len(batch) > 1:
            batch[:] = self._order(batch, deviations)
        time = self._clock.current_time() if story is not None else 0.0
        for task in batch:
            self.steps += 1
            self._policy.stepped(task, self.steps)
            if story is not None:
                step = story.record(self.steps, task, time)
                step.decision = deviations.get(task)
                step.cancelled = cancelled.get(task)

    def _order(self, batch: list[Task], deviations: dict[Task, tuple[int, Task]]) -> list[Task]:
        """The batch's tasks in the order decided. For each task a decision
        placed against the default order, `deviations` gets the decision's
        number and the task the default order would have run there."""
        candidates = list(batch)
        order: list[Task] = []
        while len(candidates) > 1:
            self.decisions += 1
            value = self._choose(candidates)
            if value:
                self.deviations[self.decisions] = value
                deviations[candidates[value]] = (self.decisions, candidates[0])
            order.append(candidates.pop(value))
        order.append(candidates[0])
        return order

    def _choose(self, candidates: list[Task]) -> int:
        if self.aborted is not None:
            return 0
        proposal = self._policy.propose(candidates, self.decisions)
        try:
            return self._decisions.choose(self.decisions, proposal, len(candidates))
        except BaseException as exc:
            # hypothesis ends an example this way (it has no more data for
            # it, say). Raising it through the kernel would leave the tasks'
            # cleanup half done; cancel the run instead, so that they unwind
            # the way they would on any cancellation, then re-raise it.
            self.aborted = exc
            self._abort_run()
            return 0

    def all_tasks_blocked(self) -> None:
        # (Never called while a to_thread job or a tether.aio loop's
        # executor job is running: the kernel counts a worker thread's
        # report as something that can wake a task.)
        if self.aborted is not None:
            raise self.aborted  # the run is being abandoned anyway
        if self.deadlock is None:
            if self.story is not None:
                self.deadlock_story = self.format_story("")
            # Reported, and the test (or run) cancelled.
            self.deadlock = self._on_deadlock(DEADLOCK_DETAIL)
            if current_statistics().tasks_runnable:
                return  # the cancellation woke tasks: let them unwind
        # Cancelled, and still nothing can run: the tasks cannot unwind.
        raise self.deadlock

    def format_story(self, headline: str) -> str:
        """The story so far, under `headline` ("" if none is kept)."""
        if self.story is None:
            return ""
        return self.story.format(decisions=self.decisions, headline=headline)
