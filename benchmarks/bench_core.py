"""Core kernel benchmarks: tether against trio, asyncio and a pure-Python floor.

    python3 benchmarks/bench_core.py            # full run (about 2-3 minutes)
    python3 benchmarks/bench_core.py --quick    # smoke run (under 30 s)
    python3 benchmarks/bench_core.py --only checkpoints --json benchmarks/results/core.json

Every (workload, library) pair runs in its own subprocess; see _harness.py and
benchmarks/README.md for what is measured and how to read the ratios.

tether and trio share one implementation of each workload (the API is the
same; the module is passed in). asyncio gets the closest idiomatic equivalent.
"""

from __future__ import annotations

import gc
import os
import sys
import tracemalloc
import types
from collections import deque
from time import perf_counter
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _harness import ASYNCIO, FLOOR, TETHER, TRIO, Suite, resolve, run_trio_style

suite = Suite(
    "core",
    description="tether kernel benchmarks: spawn, checkpoints, events, cancel scopes, memory",
    libraries=[TETHER, TRIO, ASYNCIO, FLOOR],
    subject="tether",
    baselines=["trio", "asyncio", "floor"],
)

TRIO_STYLE = ("tether", "trio")


def _check_finished(finished: int, expected: int) -> None:
    """Refuse to report a time for a run that did not do all its work."""
    if finished != expected:
        raise AssertionError(f"only {finished} of {expected} tasks finished")


# ---------------------------------------------------------------------------
# 1. spawn + join

spawn = suite.workload(
    "spawn",
    title="spawn+join",
    per="task",
    params={"tasks": 100_000},
    quick_params={"tasks": 20_000},
    ops=lambda p: p["tasks"],
    description="Start N tasks that return immediately inside one nursery (asyncio: "
    "TaskGroup) and wait for all of them. Timed from before the first "
    "start_soon to the nursery's exit.",
)


@suite.impl(spawn, "trio", requires=["run", "open_nursery"])
@suite.impl(spawn, "tether", requires=["run", "open_nursery"])
def spawn_trio_style(mod: Any, tasks: int) -> float:
    async def noop() -> None:
        return None

    async def main() -> float:
        t0 = perf_counter()
        async with mod.open_nursery() as nursery:
            start_soon = nursery.start_soon
            for _ in range(tasks):
                start_soon(noop)
        return perf_counter() - t0

    return run_trio_style(mod, main)


@suite.impl(spawn, "asyncio")
def spawn_asyncio(asyncio: Any, tasks: int) -> float:
    async def noop() -> None:
        return None

    async def main() -> float:
        t0 = perf_counter()
        async with asyncio.TaskGroup() as tg:
            create_task = tg.create_task
            for _ in range(tasks):
                create_task(noop())
        return perf_counter() - t0

    return asyncio.run(main())


# ---------------------------------------------------------------------------
# 2. checkpoints (schedule points) -- the pure context-switch cost

checkpoints = suite.workload(
    "checkpoints",
    title="checkpoint",
    per="checkpoint",
    params={"tasks": 1000, "each": 100},
    quick_params={"tasks": 200, "each": 100},
    ops=lambda p: p["tasks"] * p["each"],
    description="T tasks each execute K checkpoints (tether/trio: lowlevel.checkpoint; "
    "asyncio: sleep(0); floor: a bare yield driven by send(None) from a "
    "deque). Timed from after the last spawn to the nursery's exit, so task "
    "creation is excluded but every switch is in.",
)


@suite.impl(checkpoints, "trio", requires=["run", "open_nursery", "lowlevel.checkpoint"])
@suite.impl(checkpoints, "tether", requires=["run", "open_nursery", "lowlevel.checkpoint"])
def checkpoints_trio_style(mod: Any, tasks: int, each: int) -> float:
    checkpoint = resolve(mod, "lowlevel.checkpoint")
    finished = [0]

    async def worker() -> None:
        for _ in range(each):
            await checkpoint()
        finished[0] += 1

    async def main() -> float:
        async with mod.open_nursery() as nursery:
            for _ in range(tasks):
                nursery.start_soon(worker)
            # Nothing has run yet: the children start when this task blocks
            # in the nursery's __aexit__.
            t0 = perf_counter()
        return perf_counter() - t0

    elapsed = run_trio_style(mod, main)
    _check_finished(finished[0], tasks)
    return elapsed


@suite.impl(checkpoints, "asyncio")
def checkpoints_asyncio(asyncio: Any, tasks: int, each: int) -> float:
    sleep = asyncio.sleep
    finished = [0]

    async def worker() -> None:
        for _ in range(each):
            await sleep(0)
        finished[0] += 1

    async def main() -> float:
        async with asyncio.TaskGroup() as tg:
            for _ in range(tasks):
                tg.create_task(worker())
            t0 = perf_counter()
        return perf_counter() - t0

    elapsed = asyncio.run(main())
    _check_finished(finished[0], tasks)
    return elapsed


@types.coroutine
def _bare_yield() -> Any:
    yield


@suite.impl(checkpoints, "floor")
def checkpoints_floor(_mod: None, tasks: int, each: int) -> float:
    finished = [0]

    async def worker() -> None:
        for _ in range(each):
            await _bare_yield()
        finished[0] += 1

    ready = deque(worker() for _ in range(tasks))
    popleft = ready.popleft
    append = ready.append
    t0 = perf_counter()
    while ready:
        coro = popleft()
        try:
            coro.send(None)
        except StopIteration:
            continue
        append(coro)
    elapsed = perf_counter() - t0
    _check_finished(finished[0], tasks)
    return elapsed


# ---------------------------------------------------------------------------
# 3. Event ping-pong

pingpong = suite.workload(
    "pingpong",
    title="Event ping-pong",
    per="round trip",
    params={"rounds": 50_000},
    quick_params={"rounds": 10_000},
    ops=lambda p: p["rounds"],
    description="Two tasks take turns: each sets a fresh Event the other waits on, "
    "then waits on its own. One round trip = 2 sets + 2 parks + 2 wakeups.",
)


async def _ping_pong(event_cls: Any, rounds: int, spawn: Any) -> float:
    """Shared body; ``spawn(fn)`` starts ``fn()`` as a sibling task."""
    # slot[0]: the event the ponger waits on; slot[1]: the one the pinger waits on.
    slot = [event_cls(), event_cls()]

    async def pinger() -> None:
        for _ in range(rounds):
            reply = slot[1] = event_cls()
            slot[0].set()
            await reply.wait()

    async def ponger() -> None:
        for _ in range(rounds):
            await slot[0].wait()
            slot[0] = event_cls()
            slot[1].set()

    t0 = perf_counter()
    await spawn(pinger, ponger)
    return perf_counter() - t0


@suite.impl(pingpong, "trio", requires=["run", "open_nursery", "Event"])
@suite.impl(pingpong, "tether", requires=["run", "open_nursery", "Event"])
def pingpong_trio_style(mod: Any, rounds: int) -> float:
    async def both(a: Any, b: Any) -> None:
        async with mod.open_nursery() as nursery:
            nursery.start_soon(a)
            nursery.start_soon(b)

    async def main() -> float:
        return await _ping_pong(mod.Event, rounds, both)

    return run_trio_style(mod, main)


@suite.impl(pingpong, "asyncio")
def pingpong_asyncio(asyncio: Any, rounds: int) -> float:
    async def both(a: Any, b: Any) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(a())
            tg.create_task(b())

    async def main() -> float:
        return await _ping_pong(asyncio.Event, rounds, both)

    return asyncio.run(main())


# ---------------------------------------------------------------------------
# 4. cancel scope with a deadline, entered and left

timeouts = suite.workload(
    "move_on_after",
    title="move_on_after(10)",
    per="enter/exit",
    params={"n": 100_000},
    quick_params={"n": 20_000},
    ops=lambda p: p["n"],
    description="One task enters and leaves `with move_on_after(10):` around one "
    "checkpoint N times (asyncio: `async with asyncio.timeout(10):` around "
    "sleep(0)). Measures scope + deadline bookkeeping plus one switch.",
)


@suite.impl(timeouts, "trio", requires=["run", "move_on_after", "lowlevel.checkpoint"])
@suite.impl(timeouts, "tether", requires=["run", "move_on_after", "lowlevel.checkpoint"])
def timeouts_trio_style(mod: Any, n: int) -> float:
    checkpoint = resolve(mod, "lowlevel.checkpoint")
    move_on_after = mod.move_on_after

    async def main() -> float:
        t0 = perf_counter()
        for _ in range(n):
            with move_on_after(10):
                await checkpoint()
        return perf_counter() - t0

    return run_trio_style(mod, main)


@suite.impl(timeouts, "asyncio")
def timeouts_asyncio(asyncio: Any, n: int) -> float:
    timeout = asyncio.timeout
    sleep = asyncio.sleep

    async def main() -> float:
        t0 = perf_counter()
        for _ in range(n):
            async with timeout(10):
                await sleep(0)
        return perf_counter() - t0

    return asyncio.run(main())


# ---------------------------------------------------------------------------
# 5. memory per parked task

memory = suite.workload(
    "memory",
    title="parked task memory",
    per="task",
    kind="bytes",
    params={"tasks": 100_000},
    quick_params={"tasks": 20_000},
    ops=lambda p: p["tasks"],
    # tracemalloc makes each run several times slower and the number barely
    # moves between runs (spread ~0%), so three repeats are plenty.
    repeat=3,
    description="N tasks block on one Event. Reported: bytes traced by tracemalloc "
    "once all are parked minus the bytes traced just before the first "
    "spawn (gc.collect() before both readings), divided by N.",
)


def _traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


@suite.impl(
    memory, "trio", requires=["run", "open_nursery", "Event", "testing.wait_all_tasks_blocked"]
)
@suite.impl(
    memory, "tether", requires=["run", "open_nursery", "Event", "testing.wait_all_tasks_blocked"]
)
def memory_trio_style(mod: Any, tasks: int) -> float:
    wait_all_tasks_blocked = resolve(mod, "testing.wait_all_tasks_blocked")

    async def parked(event: Any) -> None:
        await event.wait()

    async def main() -> float:
        event = mod.Event()
        tracemalloc.start()
        try:
            async with mod.open_nursery() as nursery:
                before = _traced()
                for _ in range(tasks):
                    nursery.start_soon(parked, event)
                await wait_all_tasks_blocked()
                after = _traced()
                tracemalloc.stop()
                event.set()
        finally:
            tracemalloc.stop()
        return float(after - before)

    return run_trio_style(mod, main)


@suite.impl(memory, "asyncio")
def memory_asyncio(asyncio: Any, tasks: int) -> float:
    async def parked(event: Any) -> None:
        await event.wait()

    async def main() -> float:
        event = asyncio.Event()
        tracemalloc.start()
        try:
            async with asyncio.TaskGroup() as tg:
                before = _traced()
                for _ in range(tasks):
                    tg.create_task(parked(event))
                # Every task was queued before this one; after one sleep(0)
                # each has run its first step and parked. A few more for safety.
                for _ in range(3):
                    await asyncio.sleep(0)
                after = _traced()
                tracemalloc.stop()
                event.set()
        finally:
            tracemalloc.stop()
        return float(after - before)

    return asyncio.run(main())


if __name__ == "__main__":
    raise SystemExit(suite.main())
