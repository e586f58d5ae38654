"""Guest mode on an asyncio host (``loop.call_soon_threadsafe``): each side
waits for the other's work; the guest run ends first or the host does; the
host's callbacks fail."""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
import time
import warnings

import outcome
import pytest
import sniffio

import tether
from tether import lowlevel
from tether.testing import MockClock

from .guest_hosts import QueueHost, run_on_asyncio

#: How long the tests below wait (polling) for something another thread
#: does, before they give up: far more than it ever takes.
_PATIENCE = 20.0


def test_each_side_awaits_the_others_work():
    async def guest_main():
        loop = asyncio.get_running_loop()  # the host's: guest code may use it
        to_guest, from_host = tether.open_memory_channel(10)
        to_host: asyncio.Queue[int] = asyncio.Queue()

        async def host_worker():
            # Host side: takes numbers from the guest, answers with n + 1.
            while True:
                n = await to_host.get()
                to_guest.send_nowait(n + 1)

        worker = loop.create_task(host_worker())
        # A guest task that waits for an asyncio future, set on the host.
        answer = loop.create_future()
        loop.call_later(0, answer.set_result, "from the host")
        got = tether.Event()
        answer.add_done_callback(lambda _: got.set())

        to_host.put_nowait(0)
        async for n in from_host:
            if n >= 10:
                break
            to_host.put_nowait(n + 1)
        await got.wait()
        worker.cancel()
        return n, answer.result()

    async def host_waits_for_guest_work():
        # The host awaits work done in the guest: an asyncio future that a
        # tether task completes.
        loop = asyncio.get_running_loop()
        future = loop.create_future()

        async def in_the_guest():
            await tether.sleep(0)
            loop.call_soon(future.set_result, "from the guest")

        # Host code may start tasks in the guest run directly.
        lowlevel.spawn_system_task(in_the_guest)
        assert await future == "from the guest"

    assert run_on_asyncio(guest_main, host_main=host_waits_for_guest_work) == (
        11,
        "from the host",
    )


def test_only_the_threadsafe_callback():
    async def guest_main():
        for _ in range(3):
            await lowlevel.checkpoint()
        return "ok"

    async def host():
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        lowlevel.start_guest_run(
            guest_main,
            run_sync_soon_threadsafe=loop.call_soon_threadsafe,
            done_callback=done.set_result,
        )
        return (await done).unwrap()

    assert asyncio.run(host()) == "ok"


def test_deadlines_follow_tethers_clock_not_the_hosts():
    async def guest_main():
        with tether.move_on_after(7200) as scope:
            await tether.sleep(3600)
        return tether.current_time(), scope.cancelled_caught

    assert run_on_asyncio(guest_main, clock=MockClock(autojump_threshold=0)) == (3600, False)


def test_guest_error_reaches_the_host():
    async def guest_main():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(tether.sleep_forever)
            raise LookupError("in the guest")

    with pytest.raises(ExceptionGroup) as info:
        run_on_asyncio(guest_main)
    assert info.group_contains(LookupError, match="in the guest")


def test_sniffio_on_an_asyncio_host():
    async def guest_main():
        seen = {"guest task": sniffio.current_async_library()}
        loop = asyncio.get_running_loop()

        async def asyncio_task():
            seen["asyncio task made by the guest"] = sniffio.current_async_library()

        done = tether.Event()
        loop.create_task(asyncio_task()).add_done_callback(lambda _: done.set())
        await done.wait()
        return seen

    async def host_main():
        assert sniffio.current_async_library() == "asyncio"

    assert run_on_asyncio(guest_main, host_main=host_main) == {
        "guest task": "tether",
        "asyncio task made by the guest": "asyncio",
    }


def test_guest_run_ends_and_the_host_goes_on():
    async def guest_main(label):
        await tether.sleep(0)
        return label

    async def host():
        loop = asyncio.get_running_loop()
        results = []
        for label in ("first", "second"):
            done = loop.create_future()
            lowlevel.start_guest_run(
                guest_main,
                label,
                run_sync_soon_threadsafe=loop.call_soon_threadsafe,
                run_sync_soon_not_threadsafe=loop.call_soon,
                done_callback=done.set_result,
            )
            results.append((await done).unwrap())
            # The guest run is over, the host goes on.
            assert not lowlevel.in_tether_run()
            await asyncio.sleep(0)
        return results

    assert asyncio.run(host()) == ["first", "second"]


def test_done_callback_error_goes_to_the_hosts_exception_handler():
    async def guest_main():
        return "ok"

    async def host():
        loop = asyncio.get_running_loop()
        reported = loop.create_future()
        loop.set_exception_handler(lambda loop, context: reported.set_result(context["exception"]))

        def done_callback(result):
            raise OSError("the host's own bug")

        lowlevel.start_guest_run(
            guest_main,
            run_sync_soon_threadsafe=loop.call_soon_threadsafe,
            run_sync_soon_not_threadsafe=loop.call_soon,
            done_callback=done_callback,
        )
        return await reported

    error = asyncio.run(host())
    assert isinstance(error, OSError)
    assert not lowlevel.in_tether_run()


def _wait_for(condition, what):
    deadline = time.monotonic() + _PATIENCE
    while not condition():
        if time.monotonic() > deadline:  # pragma: no cover
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.001)


def test_host_stops_first():
    # The host loop stops while the guest waits for I/O in the worker thread.
    # When that wait ends, the closed loop refuses the next turn: the run is
    # abandoned with a warning, from the worker thread. Its host thread's
    # part of the teardown happens at the next run there.
    a, b = socket.socketpair()
    record = []

    async def guest_main(ready):
        try:
            ready()
            await lowlevel.wait_readable(a)
        finally:
            record.append("finally ran")

    async def host():
        loop = asyncio.get_running_loop()
        ready = asyncio.Event()
        lowlevel.start_guest_run(
            guest_main,
            lambda: loop.call_soon(ready.set),
            run_sync_soon_threadsafe=loop.call_soon_threadsafe,
            run_sync_soon_not_threadsafe=loop.call_soon,
            done_callback=pytest.fail,
        )
        await ready.wait()
        # ... and the host stops here, with the guest run still going.

    with a, b, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        asyncio.run(host())
        b.send(b"x")  # ends the worker's wait
        _wait_for(lambda: record, "the abandoned run's teardown")
        _wait_for(lambda: caught, "the warning")
    assert "abandoned" in str(caught[0].message)
    assert "Event loop is closed" in str(caught[0].message)
    assert record == ["finally ran"]
    # The next run in this thread finishes the teardown, then runs.
    assert tether.run(_answer) == 42
    assert not lowlevel.in_tether_run()
    assert signal.set_wakeup_fd(-1) == -1


def test_host_stops_first_ctrl_c_is_not_swallowed():
    # As above, on a host that leaves SIGINT to tether: once the run is
    # over, Ctrl-C raises KeyboardInterrupt again, even before the host
    # thread's part of the teardown has run.
    host = QueueHost()
    closed = threading.Event()

    def call_soon_threadsafe(fn):
        if closed.is_set():
            raise RuntimeError("the host is closed")
        host.call_soon_threadsafe(fn)

    a, b = socket.socketpair()
    record = []

    async def guest_main():
        try:
            await lowlevel.wait_readable(a)
        finally:
            record.append("finally ran")

    with a, b, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lowlevel.start_guest_run(
            guest_main,
            run_sync_soon_threadsafe=call_soon_threadsafe,
            run_sync_soon_not_threadsafe=host.call_soon,
            done_callback=pytest.fail,
        )
        # Turns until the guest waits for I/O in the worker thread.
        while not host.callbacks.empty():
            host.callbacks.get()()
        closed.set()
        b.send(b"x")
        _wait_for(lambda: caught, "the warning")
    assert record == ["finally ran"]
    with pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)
    assert tether.run(_answer) == 42
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


async def _answer():
    await lowlevel.checkpoint()
    return 42


def test_outcome_is_what_run_would_give():
    async def guest_main():
        raise ValueError("same as tether.run")

    async def host():
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        lowlevel.start_guest_run(
            guest_main,
            run_sync_soon_threadsafe=loop.call_soon_threadsafe,
            done_callback=done.set_result,
        )
        return await done

    result = asyncio.run(host())
    assert isinstance(result, outcome.Error)
    assert isinstance(result.error, ValueError)
