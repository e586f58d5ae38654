"""Waiting on the outside world: socket readiness and worker threads.

    python3 benchmarks/bench_io.py            # full run (about a minute)
    python3 benchmarks/bench_io.py --quick    # smoke run
    python3 benchmarks/bench_io.py --only socket_pingpong --libs tether,trio

Every (workload, library) pair runs in its own subprocess; see _harness.py and
benchmarks/README.md for what is measured and how to read the ratios.

tether and trio share one implementation of each workload (the same
`lowlevel.wait_readable` and `to_thread.run_sync` API; the module is passed
in). asyncio gets its idiomatic equivalent: `loop.sock_recv` /
`loop.sock_sendall` (which try the call first and register a reader only
when it would block) and `asyncio.to_thread` (the loop's default
`ThreadPoolExecutor`).
"""

from __future__ import annotations

import os
import socket
import sys
from time import perf_counter
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _harness import ASYNCIO, TETHER, TRIO, Suite, resolve, run_trio_style

suite = Suite(
    "io",
    description="tether I/O and thread benchmarks: socketpair ping-pong, to_thread round trips",
    libraries=[TETHER, TRIO, ASYNCIO],
    subject="tether",
    baselines=["trio", "asyncio"],
)


def _check(done: int, expected: int, what: str) -> None:
    """Refuse to report a time for a run that did not do all its work."""
    if done != expected:
        raise AssertionError(f"only {done} of {expected} {what} completed")


def _socketpair() -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    return a, b


# ---------------------------------------------------------------------------
# 1. socketpair ping-pong

pingpong = suite.workload(
    "socket_pingpong",
    title="socketpair ping-pong",
    per="round trip",
    params={"rounds": 100_000},
    quick_params={"rounds": 10_000},
    ops=lambda p: p["rounds"],
    description="Two tasks on the two ends of a Unix socketpair bounce one byte back "
    "and forth. Each side waits for readability, then recv(1)s, then send()s "
    "(tether/trio: lowlevel.wait_readable + socket methods; asyncio: "
    "loop.sock_recv / loop.sock_sendall). One round trip = 2 sends, 2 "
    "readiness waits in the I/O backend, 2 recvs.",
)


@suite.impl(pingpong, "trio", requires=["run", "open_nursery", "lowlevel.wait_readable"])
@suite.impl(pingpong, "tether", requires=["run", "open_nursery", "lowlevel.wait_readable"])
def pingpong_trio_style(mod: Any, rounds: int) -> float:
    wait_readable = resolve(mod, "lowlevel.wait_readable")
    a, b = _socketpair()
    received = [0, 0]

    async def pinger() -> None:
        for _ in range(rounds):
            a.send(b"x")
            await wait_readable(a)
            received[0] += len(a.recv(1))

    async def ponger() -> None:
        for _ in range(rounds):
            await wait_readable(b)
            received[1] += len(b.recv(1))
            b.send(b"y")

    async def main() -> float:
        t0 = perf_counter()
        async with mod.open_nursery() as nursery:
            nursery.start_soon(ponger)
            nursery.start_soon(pinger)
        return perf_counter() - t0

    try:
        elapsed = run_trio_style(mod, main)
    finally:
        a.close()
        b.close()
    _check(min(received), rounds, "round trips")
    return float(elapsed)


@suite.impl(pingpong, "asyncio")
def pingpong_asyncio(asyncio: Any, rounds: int) -> float:
    a, b = _socketpair()
    received = [0, 0]

    async def pinger() -> None:
        loop = asyncio.get_running_loop()
        for _ in range(rounds):
            await loop.sock_sendall(a, b"x")
            received[0] += len(await loop.sock_recv(a, 1))

    async def ponger() -> None:
        loop = asyncio.get_running_loop()
        for _ in range(rounds):
            received[1] += len(await loop.sock_recv(b, 1))
            await loop.sock_sendall(b, b"y")

    async def main() -> float:
        t0 = perf_counter()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(ponger())
            tg.create_task(pinger())
        return perf_counter() - t0

    try:
        elapsed = asyncio.run(main())
    finally:
        a.close()
        b.close()
    _check(min(received), rounds, "round trips")
    return float(elapsed)


# ---------------------------------------------------------------------------
# 2. to_thread round trips

to_thread = suite.workload(
    "to_thread",
    title="to_thread.run_sync round trip",
    per="call",
    params={"calls": 20_000},
    quick_params={"calls": 3_000},
    ops=lambda p: p["calls"],
    description="One task calls a no-op function in a worker thread N times in a row "
    "(tether/trio: to_thread.run_sync; asyncio: asyncio.to_thread). Each call: "
    "hand the job to a cached worker, wake it, run, wake the event loop from "
    "the worker, resume the task.",
)


def _noop() -> int:
    return 1


@suite.impl(to_thread, "trio", requires=["run", "to_thread.run_sync"])
@suite.impl(to_thread, "tether", requires=["run", "to_thread.run_sync"])
def to_thread_trio_style(mod: Any, calls: int) -> float:
    run_sync = resolve(mod, "to_thread.run_sync")

    async def main() -> tuple[float, int]:
        await run_sync(_noop)  # start a worker thread outside the timing
        done = 0
        t0 = perf_counter()
        for _ in range(calls):
            done += await run_sync(_noop)
        return perf_counter() - t0, done

    elapsed, done = run_trio_style(mod, main)
    _check(done, calls, "calls")
    return float(elapsed)


@suite.impl(to_thread, "asyncio")
def to_thread_asyncio(asyncio: Any, calls: int) -> float:
    async def main() -> tuple[float, int]:
        await asyncio.to_thread(_noop)
        done = 0
        t0 = perf_counter()
        for _ in range(calls):
            done += await asyncio.to_thread(_noop)
        return perf_counter() - t0, done

    elapsed, done = asyncio.run(main())
    _check(done, calls, "calls")
    return float(elapsed)


# ---------------------------------------------------------------------------
# 3. to_thread with several callers at once

to_thread_parallel = suite.workload(
    "to_thread_parallel",
    title="to_thread.run_sync, 10 callers",
    per="call",
    params={"tasks": 10, "calls": 2_000},
    quick_params={"tasks": 10, "calls": 300},
    ops=lambda p: p["tasks"] * p["calls"],
    description="Ten tasks each make N no-op to_thread calls in a row, so up to ten "
    "worker threads run and report back at once (asyncio: asyncio.to_thread "
    "in a TaskGroup). Measures the thread cache and the wakeup path under "
    "contention.",
)


@suite.impl(to_thread_parallel, "trio", requires=["run", "open_nursery", "to_thread.run_sync"])
@suite.impl(to_thread_parallel, "tether", requires=["run", "open_nursery", "to_thread.run_sync"])
def to_thread_parallel_trio_style(mod: Any, tasks: int, calls: int) -> float:
    run_sync = resolve(mod, "to_thread.run_sync")
    done = [0]

    async def caller() -> None:
        for _ in range(calls):
            value = await run_sync(_noop)
            done[0] += value

    async def main() -> float:
        async with mod.open_nursery() as nursery:
            for _ in range(tasks):
                nursery.start_soon(run_sync, _noop)  # warm up the workers
        done[0] = 0
        t0 = perf_counter()
        async with mod.open_nursery() as nursery:
            for _ in range(tasks):
                nursery.start_soon(caller)
        return perf_counter() - t0

    elapsed = run_trio_style(mod, main)
    _check(done[0], tasks * calls, "calls")
    return float(elapsed)


@suite.impl(to_thread_parallel, "asyncio")
def to_thread_parallel_asyncio(asyncio: Any, tasks: int, calls: int) -> float:
    done = [0]

    async def caller() -> None:
        for _ in range(calls):
            value = await asyncio.to_thread(_noop)
            done[0] += value

    async def main() -> float:
        async with asyncio.TaskGroup() as tg:
            for _ in range(tasks):
                tg.create_task(asyncio.to_thread(_noop))
        done[0] = 0
        t0 = perf_counter()
        async with asyncio.TaskGroup() as tg:
            for _ in range(tasks):
                tg.create_task(caller())
        return perf_counter() - t0

    elapsed = asyncio.run(main())
    _check(done[0], tasks * calls, "calls")
    return float(elapsed)


if __name__ == "__main__":
    raise SystemExit(suite.main())
