"""A run, and an asyncio program on tether's loop, leave nothing in
reference cycles: everything they made is freed by reference counting once
the last reference goes, without waiting for the garbage collector (as the
standard library's loop does once closed; tornado's test suite checks it).
`cyclic_garbage` (tests/conftest.py) runs a function with the collector off
and lists what the collector then finds."""

from __future__ import annotations

import asyncio
import gc
import signal
import socket
import sys
import time
import warnings

import pytest

import tether
import tether.aio
from tether.testing import MockClock


def test_a_run_with_nurseries_timeouts_channels_and_threads_leaves_no_cycles(cyclic_garbage):
    async def main():
        async with tether.open_nursery() as nursery:
            event = tether.Event()

            async def waiter():
                await event.wait()

            nursery.start_soon(waiter)
            await tether.sleep(1)
            event.set()
            with tether.move_on_after(1):
                await tether.sleep(10)
            send, receive = tether.open_memory_channel(1)

            async def produce():
                async with send:
                    await send.send("item")

            nursery.start_soon(produce)
            async with receive:
                assert [item async for item in receive] == ["item"]
            assert await tether.to_thread.run_sync(lambda: 42) == 42
        try:
            async with tether.open_nursery() as nursery:

                async def fail():
                    raise ValueError("caught below")

                nursery.start_soon(fail)
        except* ValueError:
            pass
        return "done"

    results = []
    garbage = cyclic_garbage(
        lambda: results.append(tether.run(main, clock=MockClock(autojump_threshold=0)))
    )
    assert results == ["done"]
    assert garbage == []


def test_a_run_with_sockets_and_a_subprocess_leaves_no_cycles(cyclic_garbage):
    async def main():
        async def echo(stream):
            async with stream:
                await stream.send_all(await stream.receive_some(100))

        async with tether.open_nursery() as nursery:
            listeners = await nursery.start(tether.serve_tcp, echo, 0)
            port = listeners[0].socket.getsockname()[1]
            async with await tether.open_tcp_stream("127.0.0.1", port) as stream:
                await stream.send_all(b"ping")
                assert await stream.receive_some(100) == b"ping"
            await tether.run_process([sys.executable, "-c", "pass"])
            nursery.cancel_scope.cancel()

    assert cyclic_garbage(lambda: tether.run(main)) == []


async def _asyncio_program(asyncio=asyncio):
    # (`asyncio` is the standard library's module or tether.aio: the same
    # program through either API.)
    loop = asyncio.get_running_loop()
    await asyncio.sleep(0)
    await asyncio.gather(asyncio.sleep(0), asyncio.sleep(0.001))
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(asyncio.sleep(10), 0.001)
    async with asyncio.TaskGroup() as group:
        group.create_task(asyncio.sleep(0))
    queue: asyncio.Queue[int] = asyncio.Queue()
    queue.put_nowait(1)
    assert await queue.get() == 1
    assert await loop.run_in_executor(None, lambda: 7) == 7
    loop.call_later(10, print).cancel()
    task = asyncio.create_task(asyncio.sleep(10))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    async def echo(reader, writer):
        writer.write(await reader.read(100))
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"ping")
    await writer.drain()
    assert await reader.read(100) == b"ping"
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()

    a, b = socket.socketpair()
    a.setblocking(False)
    got = loop.create_future()
    loop.add_reader(a, lambda: got.done() or got.set_result(a.recv(10)))
    b.send(b"x")
    assert await got == b"x"
    loop.remove_reader(a)
    a.close()
    b.close()
    loop.add_signal_handler(signal.SIGUSR1, print)
    loop.remove_signal_handler(signal.SIGUSR1)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "print('out')", stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    assert out.strip() == b"out"


def test_an_asyncio_program_on_tethers_loop_leaves_no_cycles(cyclic_garbage):
    def run():
        with asyncio.Runner(loop_factory=tether.aio.new_event_loop) as runner:
            runner.run(_asyncio_program())

    assert cyclic_garbage(run) == []


def test_the_same_program_through_tether_aio_leaves_no_cycles(cyclic_garbage):
    # tether.aio's own run (its Ctrl-C handling, in the main thread, must let
    # go of the loop), gather, wait_for, TaskGroup, queues...
    results = []
    program = _asyncio_program(tether.aio)
    assert cyclic_garbage(lambda: results.append(tether.aio.run(program))) == []
    assert results == [None]


def test_a_loop_closed_without_running_leaves_no_cycles(cyclic_garbage):
    def make_and_close():
        tether.aio.new_event_loop().close()

    assert cyclic_garbage(make_and_close) == []


def test_a_loop_whose_time_is_replaced_leaves_no_cycles(cyclic_garbage):
    # The loop watches a replaced time() at every turn of the run (an
    # instrument that refers to the loop); the watch goes with the segment.
    def run_with_replaced_time():
        loop = tether.aio.new_event_loop()
        loop.time = lambda: time.monotonic() + 100.0

        async def main():
            loop.call_later(0.001, lambda: None)
            await asyncio.sleep(0.002)

        loop.run_until_complete(main())
        loop.close()

    assert cyclic_garbage(run_with_replaced_time) == []


def test_an_unclosed_loop_is_reported_as_soon_as_it_is_dropped():
    # (By reference counting, not when the collector happens to find it.)
    enabled = gc.isenabled()
    gc.disable()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            tether.aio.new_event_loop()
            reported = [(w.category, str(w.message).split(" <")[0]) for w in caught]
    finally:
        if enabled:
            gc.enable()
    assert reported == [(ResourceWarning, "unclosed event loop")]


def test_the_loop_still_refuses_work_once_closed():
    # Closing drops the loop's fd-callback machinery (it referred back to the
    # loop): what comes after still gets asyncio's errors.
    loop = tether.aio.new_event_loop()
    a, b = socket.socketpair()
    try:
        loop.add_reader(a, print)
        loop.close()
        assert loop.remove_reader(a) is False
        with pytest.raises(RuntimeError, match="Event loop is closed"):
            loop.add_reader(a, print)
        with pytest.raises(RuntimeError, match="Event loop is closed"):
            loop.add_signal_handler(signal.SIGUSR1, print)
        assert loop.remove_signal_handler(signal.SIGUSR1) is False
    finally:
        a.close()
        b.close()


def test_as_completed_with_a_timeout_leaves_no_cycles(cyclic_garbage):
    async def main():
        with pytest.raises(TimeoutError):
            for next_done in tether.aio.as_completed([tether.aio.sleep(10)], timeout=0.001):
                await next_done

    assert cyclic_garbage(lambda: tether.aio.run(main())) == []
