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

import gc
import os
import sys
import tracemalloc
from time import perf_counter, process_time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _harness import ASYNCIO, UVLOOP, Library, Suite, asyncio_api

AIO = Library(
    "tether.aio",
    module="tether.aio",
    dist="tether",
    install_hint="pip install -e .  (from the repository root)",
)

suite = Suite(
    "aio",
    description="asyncio-style programs: tether.aio vs asyncio vs uvloop",
    libraries=[AIO, ASYNCIO, UVLOOP],
    subject="tether.aio",
    baselines=["asyncio", "uvloop"],
)

ALL = ("tether.aio", "asyncio", "uvloop")


_api = asyncio_api


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


# ---------------------------------------------------------------------------
# 4b. ping-pong between protocols (fd callbacks, no tasks)

proto_echo = suite.workload(
    "proto_echo",
    title="protocol ping-pong",
    per="message",
    clock="cpu",
    params={"pairs": 1, "messages": 50_000},
    quick_params={"pairs": 1, "messages": 10_000},
    ops=lambda p: p["pairs"] * p["messages"],
    description="P socketpairs, each end a transport with a Protocol whose "
    "data_received writes the 64 bytes straight back, M messages per pair: "
    "the loop's fd-callback path (poll, dispatch, recv, protocol, send) "
    "with no task in between.",
)


@_impl(proto_echo, ["run", "Protocol", "gather"])
def proto_echo_asyncio_style(mod: Any, pairs: int, messages: int) -> float:
    import socket

    asyncio, run = _api(mod)

    class Bounce(asyncio.Protocol):  # type: ignore[name-defined, misc]
        def __init__(self, left: int, done: Any) -> None:
            self.left = left
            self.done = done
            self.received = 0

        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            self.received += 1
            self.left -= 1
            if self.left <= 0:
                if self.done is not None and not self.done.done():
                    self.done.set_result(self.received)
                return
            self.transport.write(data)

    async def main() -> float:
        loop = asyncio.get_running_loop()
        finished = []
        starters = []
        transports = []
        for _ in range(pairs):
            a, b = socket.socketpair()
            done = loop.create_future()
            finished.append(done)
            ta, _ = await loop.connect_accepted_socket(lambda d=done: Bounce(messages, d), a)
            tb, _ = await loop.connect_accepted_socket(lambda: Bounce(messages + 1, None), b)
            starters.append(ta)
            transports += [ta, tb]
        t0 = process_time()
        for transport in starters:
            transport.write(b"x" * 64)
        counts = await asyncio.gather(*finished)
        elapsed = process_time() - t0
        for transport in transports:
            transport.close()
        _check_finished(sum(counts), pairs * messages)
        return elapsed

    return run(main())  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------
# 5. create_task, then gather the tasks

create_gather = suite.workload(
    "create_gather",
    title="create_task + gather(tasks)",
    per="task",
    clock="cpu",
    params={"n": 100_000},
    quick_params={"n": 20_000},
    ops=lambda p: p["n"],
    description="create_task() N times with a coroutine that returns at once, then "
    "`await gather(*tasks)`. CPU time from before the first create_task to "
    "gather's return: task creation, one step each, completion callbacks, "
    "and gather's bookkeeping over finished and unfinished tasks.",
)


@_impl(create_gather, ["run", "create_task", "gather"])
def create_gather_asyncio_style(mod: Any, n: int) -> float:
    asyncio, run = _api(mod)

    async def trivial(i: int) -> int:
        return i

    async def main() -> float:
        c0 = process_time()
        create_task = asyncio.create_task
        tasks = [create_task(trivial(i)) for i in range(n)]
        results = await asyncio.gather(*tasks)
        elapsed = process_time() - c0
        if len(results) != n or results[-1] != n - 1:
            raise AssertionError("gather returned the wrong results")
        return elapsed

    return run(main())  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------
# 6. wait_for around a coroutine that does not block

wait_for = suite.workload(
    "wait_for",
    title="wait_for(done(), 10)",
    per="call",
    clock="cpu",
    params={"n": 50_000},
    quick_params={"n": 10_000},
    ops=lambda p: p["n"],
    description="One task awaits `wait_for(done(), 10)` N times, where done() "
    "returns without blocking: the timeout's setup and teardown (on Python "
    "3.11's asyncio, a task per call; on 3.12+, a timeout context) around "
    "almost no work. CPU time.",
)


@_impl(wait_for, ["run", "wait_for"])
def wait_for_asyncio_style(mod: Any, n: int) -> float:
    asyncio, run = _api(mod)

    async def done() -> int:
        return 1

    async def main() -> float:
        wait = asyncio.wait_for
        total = 0
        c0 = process_time()
        for _ in range(n):
            total += await wait(done(), 10)
        elapsed = process_time() - c0
        _check_finished(total, n)
        return elapsed

    return run(main())  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------
# 7. memory per task parked on an Event

memory = suite.workload(
    "memory",
    title="parked task memory",
    per="task",
    kind="bytes",
    params={"tasks": 100_000},
    quick_params={"tasks": 20_000},
    ops=lambda p: p["tasks"],
    # tracemalloc is slow and the number barely moves between runs.
    repeat=3,
    description="N tasks made with create_task block on one Event. Bytes traced by "
    "tracemalloc once all are blocked minus the bytes traced just before the "
    "first create_task (gc.collect() before both readings), divided by N: the "
    "task object, its coroutine frame, the Event's waiter entry, and the "
    "loop's own bookkeeping for the task.",
)


def _traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


@_impl(memory, ["run", "create_task", "Event", "sleep", "gather"])
def memory_asyncio_style(mod: Any, tasks: int) -> float:
    asyncio, run = _api(mod)
    started = [0]

    async def parked(event: Any) -> None:
        started[0] += 1
        await event.wait()

    async def main() -> float:
        event = asyncio.Event()
        tracemalloc.start()
        try:
            before = _traced()
            create_task = asyncio.create_task
            children = [create_task(parked(event)) for _ in range(tasks)]
            while started[0] < tasks:
                await asyncio.sleep(0)
            after = _traced()
            tracemalloc.stop()
            event.set()
            await asyncio.gather(*children)
        finally:
            tracemalloc.stop()
        # The list of tasks is the benchmark's, not the library's.
        return float(after - before - sys.getsizeof(children))

    return run(main())  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------
# 8. spawn, park and wake

spawn_park_wake = suite.workload(
    "spawn_park_wake",
    title="spawn + park + wake",
    per="task",
    clock="cpu",
    params={"tasks": 100_000},
    quick_params={"tasks": 20_000},
    ops=lambda p: p["tasks"],
    description="create_task() N tasks that each wait on one Event; once every "
    "task is blocked, set the Event and gather them. CPU time for all of it: "
    "creation, a first step that parks, the wake-up, a second step that "
    "finishes, and gather's collection of the results.",
)


@_impl(spawn_park_wake, ["run", "create_task", "Event", "sleep", "gather"])
def spawn_park_wake_asyncio_style(mod: Any, tasks: int) -> float:
    asyncio, run = _api(mod)
    started = [0]

    async def parked(event: Any) -> None:
        started[0] += 1
        await event.wait()

    async def main() -> float:
        event = asyncio.Event()
        c0 = process_time()
        create_task = asyncio.create_task
        children = [create_task(parked(event)) for _ in range(tasks)]
        while started[0] < tasks:
            await asyncio.sleep(0)
        event.set()
        await asyncio.gather(*children)
        elapsed = process_time() - c0
        if not all(child.done() for child in children):
            raise AssertionError("gather returned before every task finished")
        return elapsed

    return run(main())  # type: ignore[no-any-return]


if __name__ == "__main__":
    raise SystemExit(suite.main())
