"""Scheduling policies: what a schedule proposes at each decision.

A *decision* is made whenever the kernel steps a batch of runnable tasks and
more than one of them could go next: the schedule picks one of the
candidates, which are the batch's remaining tasks in spawn order (the task
started first is candidate 0). Candidate 0 is the *default*: a run whose
every decision is 0 steps each batch in spawn order.

A policy proposes a candidate for every decision. The proposals follow
strategies known to find ordering bugs quickly:

- `Reverse`: always the newest task (each batch in reverse spawn order), so
  every pair of tasks that are runnable together runs the other way round.
- `PriorityChangePoints` (PCT, Burckhardt et al., "A randomized scheduler
  with probabilistic guarantees of finding bugs", ASPLOS 2010): every task
  gets a random priority, the highest-priority runnable task goes first, and
  at ``depth - 1`` random steps the task that runs gets a priority below all
  others. PCT is stated for a scheduler that picks one thread per step,
  where a run finds a bug of depth d among n threads and k steps with
  probability at least 1/(n·k^(d-1)); tether's kernel steps every runnable
  task once per batch, so here the priorities order each batch, which keeps
  the spirit (a few consistent orderings, a few switches) but not that exact
  bound.
- `Preemptions`: the default order except at a few random decisions, where
  another candidate goes first (bounded preemption: most bugs need only one
  or two).
- `RandomWalk`: a uniformly random candidate at every decision.

Policies are deterministic given their parameters, so a schedule replays.
"""

from __future__ import annotations

import random

from ..lowlevel import Task

#: Horizons (in decisions) a policy spreads its random change points over;
#: the right one depends on the program's length, so schedules draw one.
#: Small ones matter: many bugs need a deviation within the first few
#: decisions. (PCT counts steps, about two per decision: it doubles them.)
HORIZONS = (4, 16, 64, 256, 1024)


class Policy:
    """Proposes the candidate for each decision; the default order."""

    #: The name shown in reports.
    name = "default"

    def propose(self, candidates: list[Task], decision: int) -> int:
        """The index in `candidates` (remaining tasks, spawn order) of the
        task to run next, at the `decision`-th decision of the run (from
        1)."""
        return 0

    def stepped(self, task: Task, step: int) -> None:
        """`task` will take the `step`-th step of the run (from 1)."""


class Reverse(Policy):
    name = "reverse"

    def propose(self, candidates: list[Task], decision: int) -> int:
        return len(candidates) - 1


class RandomWalk(Policy):
    name = "random"

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)

    def propose(self, candidates: list[Task], decision: int) -> int:
        return self._random.randrange(len(candidates))


class PriorityChangePoints(Policy):
    name = "pct"

    def __init__(self, seed: int, depth: int, horizon: int) -> None:
        self._random = random.Random(seed)
        self._depth = depth
        steps = 2 * horizon
        #: Step number -> which change point it is (1 .. depth-1).
        points = self._random.sample(range(1, steps + 1), min(depth - 1, steps))
        self._change_points = {step: number for number, step in enumerate(sorted(points), 1)}
        self._priority: dict[Task, float] = {}

    def _priority_of(self, task: Task) -> float:
        priority = self._priority.get(task)
        if priority is None:
            # Above every change-point priority (1 .. depth-1).
            priority = self._priority[task] = self._depth + self._random.random()
        return priority

    def propose(self, candidates: list[Task], decision: int) -> int:
        priorities = [self._priority_of(task) for task in candidates]
        return priorities.index(max(priorities))

    def stepped(self, task: Task, step: int) -> None:
        number = self._change_points.get(step)
        if number is not None:
            self._priority_of(task)
            self._priority[task] = number


class Preemptions(Policy):
    name = "preemptions"

    def __init__(self, seed: int, count: int, horizon: int) -> None:
        self._random = random.Random(seed)
        self._at = set(self._random.sample(range(1, horizon + 1), min(count, horizon)))

    def propose(self, candidates: list[Task], decision: int) -> int:
        if decision in self._at:
            return self._random.randrange(1, len(candidates))
        return 0
