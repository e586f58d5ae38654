"""Where fd callbacks run in the loop's order when the loop was idle: the
watch set's hook runs them straight from the run loop, and that must look to
asyncio code exactly as the watcher task's step did (and as asyncio's own
iteration does). The data is sent from a callback, so that it arrives while
the loop waits with nothing runnable (the case the hook is for)."""

from __future__ import annotations

import asyncio
import signal
import socket
import types

import pytest

from tether import aio

pytestmark = pytest.mark.timeout(20)


def stop_inside_fd_callback(new_loop):
    """An fd callback queues a callback with call_soon and stops the loop:
    the queued callback belongs to the next run of the loop."""
    loop = new_loop()
    r, w = socket.socketpair()
    log = []
    try:

        def on_readable():
            r.recv(10)
            loop.remove_reader(r)
            loop.call_soon(log.append, "queued by the fd callback")
            loop.stop()

        loop.add_reader(r, on_readable)
        # (Sent from a callback, so that the data arrives while the loop
        # is idle.)
        loop.call_soon(w.send, b"x")
        loop.run_forever()
        first_run = list(log)
        loop.call_soon(loop.stop)
        loop.run_forever()
        return first_run, log
    finally:
        r.close()
        w.close()
        loop.close()


def test_stop_in_an_fd_callback_leaves_what_it_queued_for_the_next_run():
    expected = ([], ["queued by the fd callback"])
    assert stop_inside_fd_callback(asyncio.new_event_loop) == expected
    assert stop_inside_fd_callback(aio.new_event_loop) == expected


def fd_callback_order(run, sleep):
    """What runs first after data arrives on an idle loop: the fd callback,
    the task it wakes, and a callback the fd callback queues."""
    log = []

    async def main():
        loop = asyncio.get_running_loop()
        r, w = socket.socketpair()
        woken = loop.create_future()

        async def waiter():
            await woken
            log.append("task woken by the fd callback")

        def on_readable():
            r.recv(10)
            loop.remove_reader(r)
            log.append("fd callback")
            woken.set_result(None)
            loop.call_soon(log.append, "callback queued by the fd callback")
            log.append("fd callback ends")

        task = loop.create_task(waiter())
        await sleep(0)
        loop.add_reader(r, on_readable)
        loop.call_soon(w.send, b"x")
        await task
        r.close()
        w.close()

    run(main())
    return log


def test_fd_callback_wakeups_run_after_it_in_asyncio_order():
    expected = fd_callback_order(asyncio.run, asyncio.sleep)
    assert expected[:2] == ["fd callback", "fd callback ends"]
    assert fd_callback_order(aio.run, aio.sleep) == expected


def ctrl_c_in_fd_callback(new_loop):
    """Ctrl-C arrives while an fd callback runs (outside asyncio.run, whose
    handler would only cancel the main task): whether the callback got to
    its end."""
    finished = []
    loop = new_loop()
    r, w = socket.socketpair()

    def on_readable():
        r.recv(10)
        loop.remove_reader(r)
        signal.raise_signal(signal.SIGINT)
        for _ in range(1000):
            pass
        finished.append(True)

    async def main():
        loop.add_reader(r, on_readable)
        loop.call_soon(w.send, b"x")
        await asyncio.sleep(5)

    try:
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(main())
    finally:
        r.close()
        w.close()
        loop.close()
    return finished


def test_ctrl_c_interrupts_a_long_fd_callback():
    # The hook is not protected from KeyboardInterrupt: it reaches the
    # callback at once and stops the loop, as in asyncio (and as when the
    # watcher task ran the callback).
    assert ctrl_c_in_fd_callback(asyncio.new_event_loop) == []
    assert ctrl_c_in_fd_callback(aio.new_event_loop) == []


def test_pending_cancel_when_awaiting_a_future():
    # cancel() before the task awaits: the future is cancelled and the task
    # gets CancelledError at that await, with no error of the loop's own
    # underneath.
    async def main():
        loop = aio.get_running_loop()
        fut = loop.create_future()
        aio.current_task().cancel()
        try:
            await fut
        except aio.CancelledError as exc:
            return fut.cancelled(), exc.__context__
        return None

    assert aio.run(main()) == (True, None)


def pending_cancel_then_event_wait(run, event_class, wait_for):
    # cancel() before the task waits on an Event (tether.aio's parks): the
    # wait raises CancelledError at once.
    async def main():
        log = []
        asyncio.current_task().cancel()
        try:
            await event_class().wait()
        except asyncio.CancelledError:
            log.append("event wait cancelled")
        try:
            await wait_for(event_class().wait(), 0)
        except TimeoutError:
            log.append("then the next wait times out")
        return log

    return run(main())


def test_pending_cancel_when_parking_on_an_event():
    expected = pending_cancel_then_event_wait(asyncio.run, asyncio.Event, asyncio.wait_for)
    assert expected == ["event wait cancelled", "then the next wait times out"]
    assert pending_cancel_then_event_wait(aio.run, aio.Event, aio.wait_for) == expected


def current_handles(new_loop, debug):
    """What ``loop._current_handle`` is while a call_soon callback and a
    timer run, as (kind, whether it is set)."""
    loop = new_loop()
    loop.set_debug(debug)
    seen = []
    try:
        def timer():
            seen.append(("call_later", loop._current_handle is not None))
            loop.stop()

        loop.call_soon(lambda: seen.append(("call_soon", loop._current_handle is not None)))
        loop.call_later(0, timer)
        loop.run_forever()
    finally:
        loop.close()
    return seen


@pytest.mark.parametrize("debug", [False, True])
def test_the_loop_tracks_the_running_handle_in_debug_mode_only(debug):
    expected = current_handles(asyncio.new_event_loop, debug)
    assert expected == [("call_soon", debug), ("call_later", debug)]
    assert current_handles(aio.new_event_loop, debug) == expected


def test_a_coroutine_yielding_a_wakeup_object_gets_a_bad_yield_error():
    # Only the stepper may give the kernel a lowlevel.ForeignWaitAbort; a
    # coroutine that yields one gets asyncio's "bad yield" error instead of
    # blocking forever.
    from tether import lowlevel

    class Stray(lowlevel.ForeignWaitAbort):
        __slots__ = ()

        def __call__(self, raise_cancel):
            return lowlevel.Abort.SUCCEEDED

    @types.coroutine
    def yield_stray():
        yield Stray()

    async def main():
        with pytest.raises(RuntimeError, match="bad yield"):
            await yield_stray()

    aio.run(main())


def two_ready_fds(new_loop, first_does):
    """Two fds become readable in the same poll; the callback that runs first
    does `first_does` ("interrupt": raises KeyboardInterrupt; "remove":
    removes the other fd's reader). Returns how many callbacks ran in the
    first run of the loop (and, after an interrupt, in the next one, the
    data read away in between: what still runs was already due), and the
    errors reported to the loop's exception handler."""
    loop = new_loop()
    pairs = [socket.socketpair(), socket.socketpair()]
    for r, _ in pairs:
        r.setblocking(False)
    log = []
    errors = []
    loop.set_exception_handler(lambda _, context: errors.append(context.get("message")))

    def on_readable(index):
        sock = pairs[index][0]
        loop.remove_reader(sock)
        log.append(index)
        if len(log) == 1:
            if first_does == "interrupt":
                raise KeyboardInterrupt
            loop.remove_reader(pairs[1 - index][0])
            # (Runs after the rest of this poll's callbacks.)
            loop.call_soon(loop.stop)

    def send_both():
        # Both before the next poll, which then reports the two together.
        for _, w in pairs:
            w.send(b"x")

    try:
        for index, (r, _) in enumerate(pairs):
            loop.add_reader(r, on_readable, index)
        loop.call_soon(send_both)
        runs = []
        try:
            loop.run_forever()
        except KeyboardInterrupt:
            runs.append("interrupted")
        runs.append(len(log))
        if first_does == "interrupt":
            for r, _ in pairs:
                r.recv(10)
            # (What was still due runs before this.)
            loop.call_soon(loop.stop)
            loop.run_forever()
            runs.append(len(log))
        return runs, errors
    finally:
        for pair in pairs:
            for sock in pair:
                sock.close()
        loop.close()


@pytest.mark.parametrize("first_does", ["interrupt", "remove"])
def test_fd_callbacks_of_one_poll_after_an_interrupt_or_removal(first_does):
    # A KeyboardInterrupt from the first fd callback stops the loop, and the
    # other callback found ready by the same poll runs first thing in the
    # loop's next run (even if its fd is no longer ready); a reader removed
    # by an earlier callback of the same poll is not called. As in asyncio.
    expected = two_ready_fds(asyncio.new_event_loop, first_does)
    assert expected == ((["interrupted", 1, 2] if first_does == "interrupt" else [1]), [])
    assert two_ready_fds(aio.new_event_loop, first_does) == expected
