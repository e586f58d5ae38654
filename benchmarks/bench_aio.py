"""The asyncio face: tether.aio against asyncio and uvloop, same programs.

    python3 benchmarks/bench_aio.py            # full run (about a minute)
    python3 benchmarks/bench_aio.py --quick    # smoke run
    python3 benchmarks/bench_aio.py --only gather --json benchmarks/results/aio.json

Every workload is one asyncio-style program, run three ways: with
``tether.aio`` (``from tether import aio as asyncio``), with the standard
library's asyncio, and with asyncio on uvloop's event loop (skipped if uvloop
is not installed: ``pip install uvloop``). Each (workload, library) pair runs
in its own subprocess; see _harness.py and benchmarks/README.md.
"""

from __future__ import annotations

import os
import sys
from time import perf_counter
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _harness import ASYNCIO, Library, Suite

AIO = Library(
    "tether.aio",
    module="tether.aio",
    dist="tether",
    install_hint="pip install -e .  (from the repository root)",
)
UVLOOP = Library("uvloop", module="uvloop", install_hint="pip install uvloop")

suite = Suite(
    "aio",
    description="asyncio-style programs: tether.aio vs asyncio vs uvloop",
    libraries=[AIO, ASYNCIO, UVLOOP],
    subject="tether.aio",
    baselines=["asyncio", "uvloop"],
)

ALL = ("tether.aio", "asyncio", "uvloop")


def _api(mod: Any) -> tuple[Any, Any]:
    """The asyncio-like module to write the program against, and the
    function that runs a coroutine with the library's event loop."""
    if mod.__name__ == "uvloop":
        import asyncio

        return asyncio, mod.run
    return mod, mod.run


def _check_finished(finished: int, expected: int) -> None:
    if finished != expected:
        raise AssertionError(f"only {finished} of {expected} tasks finished")


def _impl(workload: Any, requires: list[str]) -> Any:
    def register(fn: Any) -> Any:
        for name in ALL:
            suite.impl(workload, name, requires=requires if name == "tether.aio" else [])(fn)
        return fn

    return register


# ---------------------------------------------------------------------------
# 1. spawn + join

spawn = suite.workload(
    "spawn",
    title="spawn+join",
    per="task",
    params={"tasks": 100_000},
    quick_params={"tasks": 20_000},
    ops=lambda p: p["tasks"],
    description="Create N tasks that return immediately with TaskGroup.create_task and "
    "wait for the group. Timed from before the first create_task to the group's exit.",
)


@_impl(spawn, ["run", "TaskGroup"])
def spawn_asyncio_style(mod: Any, tasks: int) -> float:
    asyncio, run = _api(mod)

    async def noop() -> None:
        return None

    async def main() -> float:
        t0 = perf_counter()
        async with asyncio.TaskGroup() as tg:
            create_task = tg.create_task
            for _ in range(tasks):
                create_task(noop())
        return perf_counter() - t0

    return run(main())  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------
# 2. checkpoints: sleep(0)

checkpoints = suite.workload(
    "checkpoints",
    title="sleep(0) switch",
    per="switch",
    params={"tasks": 1000, "each": 100},
    quick_params={"tasks": 200, "each": 100},
    ops=lambda p: p["tasks"] * p["each"],
    description="T tasks each await sleep(0) K times. Timed from after the last "
    "create_task (nothing has run yet) to the TaskGroup's exit: almost purely the "
    "cost of one task switch.",
)


@_impl(checkpoints, ["run", "TaskGroup", "sleep"])
def checkpoints_asyncio_style(mod: Any, tasks: int, each: int) -> float:
    asyncio, run = _api(mod)
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

    elapsed = run(main())
    _check_finished(finished[0], tasks)
    return elapsed  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------
# 3. gather

gather = suite.workload(
    "gather",
    title="gather",
    per="awaitable",
    params={"n": 100_000},
    quick_params={"n": 20_000},
    ops=lambda p: p["n"],
    description="await gather() of N coroutines that return their argument: task "
    "creation, one step each, the per-child callbacks and the result list.",
)


@_impl(gather, ["run", "gather"])
def gather_asyncio_style(mod: Any, n: int) -> float:
    asyncio, run = _api(mod)

    async def echo(i: int) -> int:
        return i

    async def main() -> float:
        coros = [echo(i) for i in range(n)]
        t0 = perf_counter()
        results = await asyncio.gather(*coros)
        elapsed = perf_counter() - t0
        if results[-1] != n - 1 or len(results) != n:
            raise AssertionError("gather returned the wrong results")
        return elapsed

    return run(main())  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------
# 4. TCP echo over streams

echo = suite.workload(
    "echo",
    title="TCP echo (streams)",
    per="round trip",
    params={"clients": 10, "rounds": 1000, "size": 64},
    quick_params={"clients": 4, "rounds": 500, "size": 64},
    ops=lambda p: p["clients"] * p["rounds"],
    description="C clients each send a SIZE-byte message R times over TCP on "
    "localhost to an echo server (start_server / open_connection, "
    "write + drain + readexactly on both sides) and wait for it to come back.",
)


@_impl(echo, ["run", "start_server", "open_connection", "gather"])
def echo_asyncio_style(mod: Any, clients: int, rounds: int, size: int) -> float:
    asyncio, run = _api(mod)
    message = b"x" * size

    async def handle(reader: Any, writer: Any) -> None:
        try:
            while True:
                data = await reader.readexactly(size)
                writer.write(data)
                await writer.drain()
        except asyncio.IncompleteReadError:
            pass
        writer.close()

    async def client(port: int) -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        done = 0
        for _ in range(rounds):
            writer.write(message)
            await writer.drain()
            if await reader.readexactly(size) == message:
                done += 1
        writer.close()
        await writer.wait_closed()
        return done

    async def main() -> float:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        t0 = perf_counter()
        counts = await asyncio.gather(*(client(port) for _ in range(clients)))
        elapsed = perf_counter() - t0
        server.close()
        await server.wait_closed()
        _check_finished(sum(counts), clients * rounds)
        return elapsed

    return run(main())  # type: ignore[no-any-return]


if __name__ == "__main__":
    raise SystemExit(suite.main())
