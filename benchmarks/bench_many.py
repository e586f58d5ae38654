"""Many tasks at once: thousands of timers, and cancelling thousands of
blocked tasks in one go. tether against trio, asyncio and uvloop.

    python3 benchmarks/bench_many.py            # full run (about a minute)
    python3 benchmarks/bench_many.py --quick    # smoke run
    python3 benchmarks/bench_many.py --only timers --libs tether,asyncio

Every (workload, library) pair runs in its own subprocess; see _harness.py and
benchmarks/README.md for what is measured and how to read the ratios.

Both workloads report **CPU time** (`time.process_time`): the timer workload
spends most of its wall time sleeping, so wall time would say nothing about
the library, and CPU time is also steadier on a machine shared with other
work. tether and trio share one implementation (the module is passed in);
asyncio and uvloop run the same asyncio program.
"""

from __future__ import annotations

import os
import random
import sys
from time import perf_counter, process_time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _harness import (
    ASYNCIO,
    TETHER,
    TRIO,
    UVLOOP,
    Extra,
    Suite,
    asyncio_api,
    resolve,
    run_trio_style,
)

suite = Suite(
    "many",
    description="many tasks at once: random timers, cancelling blocked tasks",
    libraries=[TETHER, TRIO, ASYNCIO, UVLOOP],
    subject="tether",
    baselines=["asyncio", "uvloop", "trio"],
)

TRIO_STYLE = ("tether", "trio")
ASYNCIO_STYLE = ("asyncio", "uvloop")


def _check(what: str, got: Any, expected: Any) -> None:
    """Refuse to report a time for a run that did not do all its work."""
    if got != expected:
        raise AssertionError(f"{what}: got {got}, expected {expected}")


# ---------------------------------------------------------------------------
# 1. timers

timers = suite.workload(
    "timers",
    title="random timers",
    per="timer",
    clock="cpu",
    params={"tasks": 20_000, "max_delay": 0.2, "seed": 15},
    quick_params={"tasks": 5_000, "max_delay": 0.1, "seed": 15},
    ops=lambda p: p["tasks"],
    extras={"late": Extra("worst wake-up lateness")},
    description="N tasks are started at once; each sleeps a random delay drawn "
    "uniformly from [0, MAX_DELAY] (the same delays, from SEED, for every "
    "library) and exits. CPU time from before the first spawn to the "
    "nursery's (TaskGroup's) exit, per timer: spawning, registering the "
    "deadline, expiring it, waking the task, and its exit. Also reported: "
    "the worst lateness of any wake-up (when it woke minus when it asked "
    "to), which grows when the loop falls behind.",
)


def _delays(tasks: int, max_delay: float, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.uniform(0.0, max_delay) for _ in range(tasks)]


def _sleeper_factory(sleep: Any, woke: list[float]) -> Any:
    """The task body shared by every library: sleep, then record how late
    the wake-up was (``woke[0]``: worst so far; ``woke[1]``: count)."""

    async def sleeper(delay: float) -> None:
        target = perf_counter() + delay
        await sleep(delay)
        late = perf_counter() - target
        if late > woke[0]:
            woke[0] = late
        woke[1] += 1

    return sleeper


@suite.impl(timers, "trio", requires=["run", "open_nursery", "sleep"])
@suite.impl(timers, "tether", requires=["run", "open_nursery", "sleep"])
def timers_trio_style(
    mod: Any, tasks: int, max_delay: float, seed: int
) -> tuple[float, dict[str, float]]:
    delays = _delays(tasks, max_delay, seed)
    woke = [0.0, 0]
    sleeper = _sleeper_factory(mod.sleep, woke)

    async def main() -> float:
        c0 = process_time()
        async with mod.open_nursery() as nursery:
            start_soon = nursery.start_soon
            for delay in delays:
                start_soon(sleeper, delay)
        return process_time() - c0

    elapsed = run_trio_style(mod, main)
    _check("timers that woke", woke[1], tasks)
    return float(elapsed), {"late": woke[0]}


@suite.impl(timers, "asyncio")
@suite.impl(timers, "uvloop")
def timers_asyncio(
    mod: Any, tasks: int, max_delay: float, seed: int
) -> tuple[float, dict[str, float]]:
    asyncio, run = asyncio_api(mod)
    delays = _delays(tasks, max_delay, seed)
    woke = [0.0, 0]
    sleeper = _sleeper_factory(asyncio.sleep, woke)

    async def main() -> float:
        c0 = process_time()
        async with asyncio.TaskGroup() as tg:
            create_task = tg.create_task
            for delay in delays:
                create_task(sleeper(delay))
        return process_time() - c0

    elapsed = run(main())
    _check("timers that woke", woke[1], tasks)
    return float(elapsed), {"late": woke[0]}


# ---------------------------------------------------------------------------
# 2. cancelling many blocked tasks

cancel = suite.workload(
    "cancel_many",
    title="cancel blocked tasks",
    per="task",
    clock="cpu",
    params={"tasks": 10_000},
    quick_params={"tasks": 2_000},
    ops=lambda p: p["tasks"],
    description="N tasks block on one Event that is never set. Once all are "
    "blocked, they are cancelled (tether/trio: the nursery's "
    "cancel_scope.cancel(); asyncio: cancel() on each task in the order they "
    "were created, then gather(return_exceptions=True)). CPU time from the "
    "first cancel() until everything has unwound, per task: delivering the "
    "cancellation, each task's exit, and the group's bookkeeping.",
)


@suite.impl(
    cancel, "trio", requires=["run", "open_nursery", "Event", "testing.wait_all_tasks_blocked"]
)
@suite.impl(
    cancel, "tether", requires=["run", "open_nursery", "Event", "testing.wait_all_tasks_blocked"]
)
def cancel_trio_style(mod: Any, tasks: int) -> float:
    wait_all_tasks_blocked = resolve(mod, "testing.wait_all_tasks_blocked")

    async def blocked(event: Any) -> None:
        await event.wait()

    async def main() -> float:
        event = mod.Event()
        async with mod.open_nursery() as nursery:
            for _ in range(tasks):
                nursery.start_soon(blocked, event)
            await wait_all_tasks_blocked()
            _check("tasks blocked", event.statistics().tasks_waiting, tasks)
            c0 = process_time()
            nursery.cancel_scope.cancel()
        elapsed = process_time() - c0
        # The event was never set: the nursery exited because every task
        # was cancelled.
        _check("nursery cancelled", nursery.cancel_scope.cancelled_caught, True)
        return elapsed

    return float(run_trio_style(mod, main))


@suite.impl(cancel, "asyncio")
@suite.impl(cancel, "uvloop")
def cancel_asyncio(mod: Any, tasks: int) -> float:
    asyncio, run = asyncio_api(mod)
    started = [0]

    async def blocked(event: Any) -> None:
        started[0] += 1
        await event.wait()

    async def main() -> float:
        event = asyncio.Event()
        children = [asyncio.create_task(blocked(event)) for _ in range(tasks)]
        # Every child runs its first step (and blocks) within a few loop
        # iterations; wait for all of them.
        while started[0] < tasks:
            await asyncio.sleep(0)
        c0 = process_time()
        for child in children:
            child.cancel()
        results = await asyncio.gather(*children, return_exceptions=True)
        elapsed = process_time() - c0
        cancelled = sum(isinstance(r, asyncio.CancelledError) for r in results)
        _check("tasks cancelled", cancelled, tasks)
        return elapsed

    return float(run(main()))


if __name__ == "__main__":
    raise SystemExit(suite.main())
