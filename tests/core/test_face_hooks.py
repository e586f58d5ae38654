"""Kernel entry points for faces built on tether (tether.aio): spawning an
existing coroutine, interrupting any wait, and I/O registrations kept
between waits."""

from __future__ import annotations

import contextvars
import select
import socket

import pytest

import tether
import tether.testing
from tether import lowlevel
from tether._core import _io

var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")


class Interrupted(Exception):
    pass


def raise_interrupted():
    raise Interrupted("interrupted")


def test_spawn_coroutine_runs_the_coroutine_in_the_given_context_and_returns_task():
    async def child():
        return var.get()

    seen = {}

    async def record(coro_result_holder):
        coro_result_holder["value"] = await child()
        coro_result_holder["task"] = lowlevel.current_task()

    async def main():
        context = contextvars.copy_context()
        context.run(var.set, "from the given context")
        async with tether.open_nursery() as nursery:
            task = lowlevel.spawn_coroutine(nursery, record(seen), name="my task", context=context)
            assert isinstance(task, lowlevel.Task)
            assert task.name == "my task"
            assert task.context is context
            assert task in nursery.child_tasks
        return task

    task = tether.run(main)
    assert seen == {"value": "from the given context", "task": task}


def test_spawn_coroutine_rejects_bad_arguments():
    async def main():
        async with tether.open_nursery() as nursery:
            with pytest.raises(TypeError, match="coroutine object"):
                lowlevel.spawn_coroutine(
                    nursery, lambda: None, name="x", context=contextvars.copy_context()
                )
            coro = tether.sleep(0)
            with pytest.raises(TypeError, match=r"contextvars\.Context"):
                lowlevel.spawn_coroutine(nursery, coro, name="x", context=None)
            coro.close()
        with pytest.raises(RuntimeError, match="closed"):
            lowlevel.spawn_coroutine(
                nursery, tether.sleep(0), name="x", context=contextvars.copy_context()
            )

    with pytest.warns(RuntimeWarning, match="never awaited"):
        tether.run(main)


@pytest.mark.parametrize("kind", ["sleep", "event", "parking lot", "wait_task_rescheduled"])
def test_abort_wait_interrupts_any_kernel_wait_with_the_given_exception(kind):
    async def waiter(log):
        try:
            if kind == "sleep":
                await tether.sleep(100)
            elif kind == "event":
                await tether.Event().wait()
            elif kind == "parking lot":
                await lowlevel.ParkingLot().park()
            else:
                await lowlevel.wait_task_rescheduled(lambda _: lowlevel.Abort.SUCCEEDED)
        except Interrupted as exc:
            log.append(str(exc))

    async def main():
        log = []
        async with tether.open_nursery() as nursery:
            nursery.start_soon(waiter, log)
            await tether.testing.wait_all_tasks_blocked()
            (task,) = nursery.child_tasks
            assert lowlevel.abort_wait(task, raise_interrupted) is True
            # Not parked any more: a second call does nothing.
            assert lowlevel.abort_wait(task, raise_interrupted) is False
        return log

    clock = tether.testing.MockClock(autojump_threshold=0)
    assert tether.run(main, clock=clock) == ["interrupted"]


def test_abort_wait_respects_a_wait_that_cannot_be_abandoned():
    async def main():
        async with tether.open_nursery() as nursery:

            async def stubborn():
                await lowlevel.wait_task_rescheduled(lambda _: lowlevel.Abort.FAILED)

            nursery.start_soon(stubborn)
            await tether.testing.wait_all_tasks_blocked()
            (task,) = nursery.child_tasks
            assert lowlevel.abort_wait(task, raise_interrupted) is False
            lowlevel.reschedule(task)

    tether.run(main)


@pytest.mark.skipif(not hasattr(select, "epoll"), reason="epoll only")
def test_epoll_keeps_a_registration_between_waits(monkeypatch):
    calls = []
    real_epoll = select.epoll

    class CountingEpoll:
        def __init__(self):
            self._epoll = real_epoll()

        def __getattr__(self, name):
            attribute = getattr(self._epoll, name)
            if name in ("register", "modify", "unregister"):

                def counted(*args):
                    calls.append(name)
                    return attribute(*args)

                return counted
            return attribute

    monkeypatch.setattr(_io.select, "epoll", CountingEpoll)
    a, b = socket.socketpair()

    async def main():
        calls.clear()
        for _ in range(5):
            b.send(b"x")
            await lowlevel.wait_readable(a)
            assert a.recv(1) == b"x"
        lowlevel.notify_closing(a)

    try:
        tether.run(main)
    finally:
        a.close()
        b.close()
    # One registration, re-armed by modify for each later wait, dropped when
    # the fd is about to close.
    assert calls == ["register"] + ["modify"] * 4 + ["unregister"]


def test_kept_registration_survives_fd_number_reuse():
    async def main():
        a, b = socket.socketpair()
        b.send(b"1")
        await lowlevel.wait_readable(a)
        number = a.fileno()
        a.close()  # without notify_closing: epoll drops it on its own
        b.close()
        # New sockets; one of them may get the same number back.
        c, d = socket.socketpair()
        try:
            if c.fileno() != number:
                pytest.skip("the OS did not hand the same fd number out again")
            d.send(b"2")
            with tether.fail_after(5):
                await lowlevel.wait_readable(c)
            assert c.recv(1) == b"2"
        finally:
            c.close()
            d.close()

    tether.run(main)
