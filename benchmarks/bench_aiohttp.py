"""A real framework on the asyncio face: aiohttp's server and client, on
tether's loop against asyncio's own loop and uvloop.

    python3 benchmarks/bench_aiohttp.py            # full run (a minute or two)
    python3 benchmarks/bench_aiohttp.py --quick    # smoke run
    python3 benchmarks/bench_aiohttp.py --only get_2000 --libs tether.aio,asyncio

The program is unmodified asyncio code (aiohttp imports ``asyncio`` itself);
only the loop differs: ``asyncio.Runner(loop_factory=...)`` with
``tether.aio.new_event_loop``, with the standard library's default loop, or
with ``uvloop.new_event_loop`` (skipped if uvloop is not installed). Needs
aiohttp (``pip install -e '.[compat]'``); without it the script says so and
exits. Each (workload, library) pair runs in its own subprocess (see
_harness.py); the figure is wall-clock time per request, and the table's
ratios compare the loops of the same run.
"""

from __future__ import annotations

import importlib.util
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
    "aiohttp",
    description="aiohttp server + client on 127.0.0.1: tether.aio's loop vs asyncio vs uvloop",
    libraries=[AIO, ASYNCIO, UVLOOP],
    subject="tether.aio",
    baselines=["asyncio", "uvloop"],
)

ALL = ("tether.aio", "asyncio", "uvloop")

#: The response body of every request.
BODY = b"x" * 64
#: The server's listen backlog: room for every warm-up connect at once.
LISTEN_BACKLOG = 4096


def _loop_factory(mod: Any) -> Any:
    if mod.__name__ == "uvloop":
        return mod.new_event_loop
    if mod.__name__ == "tether.aio":
        return mod.new_event_loop
    return None  # the standard library's default loop


def _serve_and_fetch(mod: Any, concurrency: int, requests: int) -> float:
    """Start an aiohttp server, open ``concurrency`` keep-alive connections
    to it (one ClientSession, a pool of that size, one warm-up request
    each), then fetch ``requests`` GETs with ``concurrency`` in flight.
    Returns the seconds from the first timed request to the last response:
    the steady state of serving requests, not connection setup (which, with
    thousands of simultaneous connects, measures the kernel's accept queue
    more than the loop)."""
    import asyncio

    from aiohttp import ClientSession, TCPConnector, web

    async def hello(request: web.Request) -> web.Response:
        return web.Response(body=BODY)

    async def main() -> float:
        app = web.Application()
        app.router.add_get("/", hello)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=LISTEN_BACKLOG)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        url = f"http://127.0.0.1:{port}/"
        remaining = [requests]
        received = [0]
        try:
            async with ClientSession(connector=TCPConnector(limit=concurrency)) as session:

                async def worker() -> None:
                    while remaining[0] > 0:
                        remaining[0] -= 1
                        async with session.get(url) as response:
                            if await response.read() == BODY:
                                received[0] += 1

                remaining[0] = concurrency
                await asyncio.gather(*(worker() for _ in range(concurrency)))
                remaining[0] = requests
                received[0] = 0
                t0 = perf_counter()
                await asyncio.gather(*(worker() for _ in range(concurrency)))
                elapsed = perf_counter() - t0
        finally:
            await runner.cleanup()
        if received[0] != requests:
            raise AssertionError(f"only {received[0]} of {requests} responses were right")
        return elapsed

    with asyncio.Runner(loop_factory=_loop_factory(mod)) as runner:
        return runner.run(main())


def _register(workload: Any) -> None:
    for name in ALL:
        suite.impl(workload, name)(_serve_and_fetch)


get_200 = suite.workload(
    "get_200",
    title="aiohttp GET, 200 at once",
    per="request",
    params={"concurrency": 200, "requests": 6000},
    quick_params={"concurrency": 200, "requests": 1000},
    ops=lambda p: p["requests"],
    description="An aiohttp web server and an aiohttp ClientSession in one process; "
    "200 workers, each with a warmed-up keep-alive connection, fetch GET / (64-byte "
    "body) until N requests are done.",
)
_register(get_200)

get_2000 = suite.workload(
    "get_2000",
    title="aiohttp GET, 2000 at once",
    per="request",
    params={"concurrency": 2000, "requests": 10000},
    quick_params={"concurrency": 1000, "requests": 2000},
    ops=lambda p: p["requests"],
    description="The same with 2000 concurrent workers and connections.",
    repeat=3,
)
_register(get_2000)


if __name__ == "__main__":
    if importlib.util.find_spec("aiohttp") is None:
        print("bench_aiohttp.py needs aiohttp: pip install -e '.[compat]'")
        raise SystemExit(0)
    raise SystemExit(suite.main())
