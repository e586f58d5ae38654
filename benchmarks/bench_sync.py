"""Synchronization benchmarks: memory channels and locks against trio and asyncio.

    python3 benchmarks/bench_sync.py            # full run (about 35 s on 2 cores)
    python3 benchmarks/bench_sync.py --quick    # smoke run (under 30 s)
    python3 benchmarks/bench_sync.py --only channel --json benchmarks/results/sync.json

Every (workload, library) pair runs in its own subprocess; see _harness.py and
benchmarks/README.md for what is measured and how to read the ratios.

tether and trio share one implementation of each workload (the API is the
same; the module is passed in). asyncio gets the closest idiomatic
equivalent: `asyncio.Queue(maxsize=...)` for a memory channel, `asyncio.Lock`
for a lock, `asyncio.sleep(0)` for a checkpoint.

Every row here reports **CPU time** (`time.process_time`): all of them are
pure computation in one thread, and CPU time is steadier than wall time on a
machine shared with other work. asyncio's programs also run on uvloop when it
is installed.

Keep in mind when reading the channel rows: in tether and trio every `send`
and `receive` is a checkpoint (a schedule point, so a task switch), whether
or not it blocks. `asyncio.Queue.put`/`get` switch only when they block, so
with a buffer of 100 asyncio switches tasks about twice per 100 items where
tether and trio switch twice per item.
"""

from __future__ import annotations

import os
import sys
from time import process_time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _harness import ASYNCIO, TETHER, TRIO, UVLOOP, Suite, asyncio_api, resolve, run_trio_style

suite = Suite(
    "sync",
    description="tether synchronization benchmarks: memory channels, lock hand-over",
    libraries=[TETHER, TRIO, ASYNCIO, UVLOOP],
    subject="tether",
    baselines=["trio", "asyncio", "uvloop"],
)


def _check(what: str, got: int, expected: int) -> None:
    """Refuse to report a time for a run that did not do all its work."""
    if got != expected:
        raise AssertionError(f"{what}: got {got}, expected {expected}")


# ---------------------------------------------------------------------------
# 1. channel throughput

channel = suite.workload(
    "channel",
    title="channel, buffer 100",
    per="item",
    clock="cpu",
    params={"items": 200_000, "buffer": 100},
    quick_params={"items": 40_000, "buffer": 100},
    ops=lambda p: p["items"],
    description="One producer sends N ints through a channel with a buffer of 100 "
    "(tether/trio: open_memory_channel(100), producer closes its end, consumer "
    "uses `async for`; asyncio: Queue(maxsize=100), a None sentinel ends the "
    "consumer). CPU time from before the two tasks start to the nursery's exit.",
)


@suite.impl(channel, "trio", requires=["run", "open_nursery", "open_memory_channel"])
@suite.impl(channel, "tether", requires=["run", "open_nursery", "open_memory_channel"])
def channel_trio_style(mod: Any, items: int, buffer: int) -> float:
    received = [0]

    async def main() -> float:
        send_channel, receive_channel = mod.open_memory_channel(buffer)

        async def producer() -> None:
            async with send_channel:
                send = send_channel.send
                for i in range(items):
                    await send(i)

        async def consumer() -> None:
            count = 0
            async for _ in receive_channel:
                count += 1
            received[0] = count

        t0 = process_time()
        async with mod.open_nursery() as nursery:
            nursery.start_soon(producer)
            nursery.start_soon(consumer)
        return process_time() - t0

    elapsed = run_trio_style(mod, main)
    _check("items received", received[0], items)
    return float(elapsed)


@suite.impl(channel, "asyncio")
@suite.impl(channel, "uvloop")
def channel_asyncio(mod: Any, items: int, buffer: int) -> float:
    asyncio, run = asyncio_api(mod)
    received = [0]

    async def main() -> float:
        queue = asyncio.Queue(maxsize=buffer)

        async def producer() -> None:
            put = queue.put
            for i in range(items):
                await put(i)
            await put(None)

        async def consumer() -> None:
            get = queue.get
            count = 0
            while (await get()) is not None:
                count += 1
            received[0] = count

        t0 = process_time()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(producer())
            tg.create_task(consumer())
        return process_time() - t0

    elapsed = run(main())
    _check("items received", received[0], items)
    return float(elapsed)


# ---------------------------------------------------------------------------
# 1b. what the two schedule points per item cost on their own

switches = suite.workload(
    "switch_floor",
    title="2 checkpoints, 2 tasks",
    per="item",
    clock="cpu",
    params={"items": 200_000},
    quick_params={"items": 40_000},
    ops=lambda p: p["items"],
    description="Not a channel: two tasks each await N bare checkpoints "
    "(asyncio: sleep(0)), i.e. only the two task switches per item that a "
    "trio-style channel must make (send and receive are each a schedule "
    "point). The gap between this row and `channel` is the channel's own "
    "cost; asyncio.Queue skips these switches when it does not block.",
)


@suite.impl(switches, "trio", requires=["run", "open_nursery", "lowlevel.checkpoint"])
@suite.impl(switches, "tether", requires=["run", "open_nursery", "lowlevel.checkpoint"])
def switches_trio_style(mod: Any, items: int) -> float:
    checkpoint = resolve(mod, "lowlevel.checkpoint")
    finished = [0]

    async def worker() -> None:
        for _ in range(items):
            await checkpoint()
        finished[0] += 1

    async def main() -> float:
        t0 = process_time()
        async with mod.open_nursery() as nursery:
            nursery.start_soon(worker)
            nursery.start_soon(worker)
        return process_time() - t0

    elapsed = run_trio_style(mod, main)
    _check("tasks finished", finished[0], 2)
    return float(elapsed)


@suite.impl(switches, "asyncio")
@suite.impl(switches, "uvloop")
def switches_asyncio(mod: Any, items: int) -> float:
    asyncio, run = asyncio_api(mod)
    sleep = asyncio.sleep
    finished = [0]

    async def worker() -> None:
        for _ in range(items):
            await sleep(0)
        finished[0] += 1

    async def main() -> float:
        t0 = process_time()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(worker())
            tg.create_task(worker())
        return process_time() - t0

    elapsed = run(main())
    _check("tasks finished", finished[0], 2)
    return float(elapsed)


# ---------------------------------------------------------------------------
# 2. channel without a buffer (tether and trio only)

rendezvous = suite.workload(
    "rendezvous",
    title="channel, buffer 0",
    per="item",
    clock="cpu",
    params={"items": 100_000},
    quick_params={"items": 20_000},
    ops=lambda p: p["items"],
    description="Like `channel` with open_memory_channel(0): every send waits for "
    "its receive, so each item is a direct hand-over between parked tasks. "
    "asyncio has no unbuffered queue, so it is not measured.",
)


@suite.impl(rendezvous, "trio", requires=["run", "open_nursery", "open_memory_channel"])
@suite.impl(rendezvous, "tether", requires=["run", "open_nursery", "open_memory_channel"])
def rendezvous_trio_style(mod: Any, items: int) -> float:
    return channel_trio_style(mod, items, 0)


# ---------------------------------------------------------------------------
# 3. lock hand-over ping-pong

lock = suite.workload(
    "lock",
    title="Lock hand-over",
    per="acquire",
    clock="cpu",
    params={"rounds": 50_000},
    quick_params={"rounds": 10_000},
    ops=lambda p: 2 * p["rounds"],
    description="Two tasks each run `async with lock: await checkpoint()` R times "
    "(asyncio: asyncio.Lock around sleep(0)). The holder checkpoints inside, "
    "so the other task is always queued when it releases: every acquire is a "
    "hand-over from the other task (checked). Per acquire: one park, one "
    "wake-up, one checkpoint.",
)


async def _ping_pong(lock_obj: Any, checkpoint: Any, rounds: int, spawn: Any) -> float:
    """Shared body; ``spawn(a, b)`` runs ``a()`` and ``b()`` as sibling tasks."""
    last = [""]
    hand_overs = [0]

    def make(name: str) -> Any:
        async def worker() -> None:
            for _ in range(rounds):
                async with lock_obj:
                    if last[0] != name:
                        hand_overs[0] += 1
                        last[0] = name
                    await checkpoint()

        return worker

    t0 = process_time()
    await spawn(make("a"), make("b"))
    elapsed = process_time() - t0
    # The first acquire is not a hand-over, nor is the last one of whichever
    # task finishes second.
    if hand_overs[0] < 2 * rounds - 2:
        raise AssertionError(f"only {hand_overs[0]} of {2 * rounds} acquires were hand-overs")
    return elapsed


@suite.impl(lock, "trio", requires=["run", "open_nursery", "Lock", "lowlevel.checkpoint"])
@suite.impl(lock, "tether", requires=["run", "open_nursery", "Lock", "lowlevel.checkpoint"])
def lock_trio_style(mod: Any, rounds: int) -> float:
    checkpoint = resolve(mod, "lowlevel.checkpoint")

    async def both(a: Any, b: Any) -> None:
        async with mod.open_nursery() as nursery:
            nursery.start_soon(a)
            nursery.start_soon(b)

    async def main() -> float:
        return await _ping_pong(mod.Lock(), checkpoint, rounds, both)

    return float(run_trio_style(mod, main))


@suite.impl(lock, "asyncio")
@suite.impl(lock, "uvloop")
def lock_asyncio(mod: Any, rounds: int) -> float:
    asyncio, run = asyncio_api(mod)

    async def both(a: Any, b: Any) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(a())
            tg.create_task(b())

    sleep = asyncio.sleep

    async def main() -> float:
        return await _ping_pong(asyncio.Lock(), lambda: sleep(0), rounds, both)

    return float(run(main()))


if __name__ == "__main__":
    raise SystemExit(suite.main())
