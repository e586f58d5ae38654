"""Networking through the streams APIs: a TCP echo server with many clients,
and bulk transfer over a socket pair.

    python3 benchmarks/bench_net.py            # full run (about a minute on 2 cores)
    python3 benchmarks/bench_net.py --quick    # smoke run
    python3 benchmarks/bench_net.py --only echo,echo_cpu --libs tether,trio,asyncio

The subject is tether's trio-style face (`serve_tcp`, `open_tcp_stream`,
`SocketStream.send_all` / `receive_some`). trio runs literally the same
functions (the module is passed in). The asyncio-style program (streams:
`start_server`, `open_connection`, `StreamWriter.write` + `drain`,
`StreamReader.read` / `readexactly`) runs three ways: on the standard
library's asyncio, on asyncio with uvloop's event loop, and on `tether.aio`.

Each (workload, library) pair runs in its own subprocess; see _harness.py and
benchmarks/README.md for how the numbers are taken and how to read them.
"""

from __future__ import annotations

import os
import socket
import sys
from functools import partial
from time import perf_counter, process_time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _harness import ASYNCIO, TETHER, TRIO, Library, Suite, run_trio_style

AIO = Library(
    "tether.aio",
    module="tether.aio",
    dist="tether",
    install_hint="pip install -e .  (from the repository root)",
)
UVLOOP = Library("uvloop", module="uvloop", install_hint="pip install uvloop")

suite = Suite(
    "net",
    description="TCP echo and stream throughput: tether (trio-style) vs trio, asyncio, "
    "uvloop and tether.aio",
    libraries=[TETHER, TRIO, ASYNCIO, UVLOOP, AIO],
    subject="tether",
    baselines=["trio", "asyncio", "uvloop", "tether.aio"],
)

TRIO_STYLE = ("tether", "trio")
ASYNCIO_STYLE = ("asyncio", "uvloop", "tether.aio")
TRIO_STYLE_NEEDS = ["run", "open_nursery", "serve_tcp", "open_tcp_stream", "SocketStream"]
ASYNCIO_STYLE_NEEDS = ["run", "start_server", "open_connection", "gather"]

#: Bytes one receive asks for (and the chunk size of the throughput test).
CHUNK = 65536
MIB = 1 << 20


def _api(mod: Any) -> tuple[Any, Any]:
    """The asyncio-like module to write the program against, and the
    function that runs a coroutine on the library's event loop."""
    if mod.__name__ == "uvloop":
        import asyncio

        return asyncio, mod.run
    return mod, mod.run


def _check(what: str, got: int, expected: int) -> None:
    """Refuse to report a time for a run that did not do all its work."""
    if got != expected:
        raise AssertionError(f"{what}: got {got}, expected {expected}")


def _clock(measure: str) -> Any:
    """Wall-clock time, or the CPU time of the whole process (all threads,
    user + system): the cost of the work rather than its latency."""
    if measure == "cpu":
        return process_time
    if measure == "wall":
        return perf_counter
    raise ValueError(f"measure must be 'wall' or 'cpu', not {measure!r}")


def _impl_for(workload: Any, names: tuple[str, ...], requires: list[str]) -> Any:
    def register(fn: Any) -> Any:
        for name in names:
            needs = requires if name in ("tether", "trio", "tether.aio") else []
            suite.impl(workload, name, requires=needs)(fn)
        return fn

    return register


# ---------------------------------------------------------------------------
# 1. TCP echo: many clients, small messages

_ECHO_PARAMS = {"clients": 50, "rounds": 400, "size": 64}
_ECHO_QUICK = {"clients": 50, "rounds": 60, "size": 64}
_ECHO_DESCRIPTION = (
    "An echo server and C clients in one process, over TCP on 127.0.0.1. The "
    "clients connect first (not timed); then each sends a SIZE-byte message, waits "
    "for all of it to come back, R times. The server echoes whatever it receives. "
    "tether/trio: serve_tcp + open_tcp_stream, send_all / receive_some; "
    "asyncio, uvloop, tether.aio: start_server + open_connection, write + drain / "
    "read(65536) on the server, readexactly on the client."
)

echo = suite.workload(
    "echo",
    title="TCP echo, 50 clients (wall)",
    per="round trip",
    params={**_ECHO_PARAMS, "measure": "wall"},
    quick_params={**_ECHO_QUICK, "measure": "wall"},
    ops=lambda p: p["clients"] * p["rounds"],
    rate="round trips/s",
    description=_ECHO_DESCRIPTION + " Timed: wall clock from the first send to the "
    "last client's last receive.",
)

echo_cpu = suite.workload(
    "echo_cpu",
    title="TCP echo, 50 clients (CPU)",
    per="round trip",
    params={**_ECHO_PARAMS, "measure": "cpu"},
    quick_params={**_ECHO_QUICK, "measure": "cpu"},
    ops=lambda p: p["clients"] * p["rounds"],
    description="The same program as `echo`, timed in process CPU time "
    "(time.process_time: every thread, user + system) over the same span: what a "
    "round trip costs whether or not the CPU was shared.",
)


@_impl_for(echo, TRIO_STYLE, TRIO_STYLE_NEEDS)
@_impl_for(echo_cpu, TRIO_STYLE, TRIO_STYLE_NEEDS)
def echo_trio_style(mod: Any, clients: int, rounds: int, size: int, measure: str) -> float:
    clock = _clock(measure)
    message = b"x" * size
    done = [0]

    async def handler(stream: Any) -> None:
        receive_some = stream.receive_some
        send_all = stream.send_all
        while data := await receive_some(CHUNK):
            await send_all(data)

    async def client(stream: Any) -> None:
        receive_some = stream.receive_some
        send_all = stream.send_all
        for _ in range(rounds):
            await send_all(message)
            got = 0
            while got < size:
                data = await receive_some(CHUNK)
                if not data:
                    raise AssertionError("the server closed the connection")
                got += len(data)
            done[0] += 1
        await stream.aclose()

    async def main() -> float:
        async with mod.open_nursery() as server_nursery:
            listeners = await server_nursery.start(
                partial(mod.serve_tcp, handler, 0, host="127.0.0.1")
            )
            port = listeners[0].socket.getsockname()[1]
            streams = [await mod.open_tcp_stream("127.0.0.1", port) for _ in range(clients)]
            t0 = clock()
            async with mod.open_nursery() as nursery:
                for stream in streams:
                    nursery.start_soon(client, stream)
            elapsed = clock() - t0
            server_nursery.cancel_scope.cancel()
        return elapsed

    elapsed = run_trio_style(mod, main)
    _check("round trips", done[0], clients * rounds)
    return float(elapsed)


@_impl_for(echo, ASYNCIO_STYLE, ASYNCIO_STYLE_NEEDS)
@_impl_for(echo_cpu, ASYNCIO_STYLE, ASYNCIO_STYLE_NEEDS)
def echo_asyncio_style(mod: Any, clients: int, rounds: int, size: int, measure: str) -> float:
    asyncio, run = _api(mod)
    clock = _clock(measure)
    message = b"x" * size
    done = [0]

    async def handle(reader: Any, writer: Any) -> None:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        writer.close()

    async def client(reader: Any, writer: Any) -> None:
        for _ in range(rounds):
            writer.write(message)
            await writer.drain()
            await reader.readexactly(size)
            done[0] += 1
        writer.close()
        await writer.wait_closed()

    async def main() -> float:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        connections = [await asyncio.open_connection("127.0.0.1", port) for _ in range(clients)]
        t0 = clock()
        await asyncio.gather(*(client(reader, writer) for reader, writer in connections))
        elapsed = clock() - t0
        server.close()
        await server.wait_closed()
        return elapsed

    elapsed = run(main())
    _check("round trips", done[0], clients * rounds)
    return float(elapsed)


# ---------------------------------------------------------------------------
# 2. Bulk transfer over a socket pair

throughput = suite.workload(
    "throughput",
    title="socketpair stream, 64 KiB chunks",
    per="MiB",
    params={"mib": 512},
    quick_params={"mib": 64},
    ops=lambda p: p["mib"],
    rate="MiB/s",
    description="One task sends N MiB in 64 KiB chunks through one end of a Unix "
    "socketpair, another receives it (receive_some(65536) / read(65536)) until the "
    "end of the stream. tether/trio: SocketStream over tether.socket / trio.socket "
    "socketpair; asyncio, uvloop, tether.aio: open_connection(sock=...) on each end, "
    "write + drain / read. Timed: wall clock from the first send to the last byte "
    "received.",
)


def _stdlib_socketpair() -> tuple[socket.socket, socket.socket]:
    return socket.socketpair()


@_impl_for(throughput, TRIO_STYLE, ["run", "open_nursery", "SocketStream", "socket.socketpair"])
def throughput_trio_style(mod: Any, mib: int) -> float:
    chunk = b"x" * CHUNK
    chunks = mib * MIB // CHUNK
    received = [0]

    async def sender(stream: Any) -> None:
        send_all = stream.send_all
        for _ in range(chunks):
            await send_all(chunk)
        await stream.aclose()

    async def receiver(stream: Any) -> None:
        receive_some = stream.receive_some
        total = 0
        while data := await receive_some(CHUNK):
            total += len(data)
        received[0] = total
        await stream.aclose()

    async def main() -> float:
        left, right = mod.socket.socketpair()
        t0 = perf_counter()
        async with mod.open_nursery() as nursery:
            nursery.start_soon(sender, mod.SocketStream(left))
            nursery.start_soon(receiver, mod.SocketStream(right))
        return perf_counter() - t0

    elapsed = run_trio_style(mod, main)
    _check("bytes received", received[0], chunks * CHUNK)
    return float(elapsed)


@_impl_for(throughput, ASYNCIO_STYLE, ["run", "open_connection", "gather"])
def throughput_asyncio_style(mod: Any, mib: int) -> float:
    asyncio, run = _api(mod)
    chunk = b"x" * CHUNK
    chunks = mib * MIB // CHUNK
    received = [0]

    async def sender(writer: Any) -> None:
        for _ in range(chunks):
            writer.write(chunk)
            await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def receiver(reader: Any, writer: Any) -> None:
        total = 0
        while data := await reader.read(CHUNK):
            total += len(data)
        received[0] = total
        writer.close()

    async def main() -> float:
        left, right = _stdlib_socketpair()
        _, left_writer = await asyncio.open_connection(sock=left)
        right_reader, right_writer = await asyncio.open_connection(sock=right)
        t0 = perf_counter()
        await asyncio.gather(sender(left_writer), receiver(right_reader, right_writer))
        return perf_counter() - t0

    elapsed = run(main())
    _check("bytes received", received[0], chunks * CHUNK)
    return float(elapsed)


if __name__ == "__main__":
    raise SystemExit(suite.main())
