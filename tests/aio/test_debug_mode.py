"""Debug mode's checks and warnings, compared with asyncio's loop: a callback
or task step that runs too long is logged, and what only the loop's own
thread may do is refused from another thread."""

from __future__ import annotations

import asyncio
import logging
import re
import threading

import pytest

from tether import aio


def slow_story(new_loop, caplog):
    """A callback, a timer, a task step and a cancelled task's step that each
    take a while by the loop's (patched) clock, in debug mode: what was
    logged about them, as (what ran, seconds)."""
    now = [1000.0]

    def slow_callback():
        now[0] += 0.25

    def slow_timer():
        now[0] += 0.5

    async def slow_steps():
        now[0] += 0.125
        await asyncio.sleep(0)
        try:
            await asyncio.sleep(3600)
        finally:
            now[0] += 0.375

    async def main():
        loop = asyncio.get_running_loop()
        loop.call_soon(slow_callback)
        loop.call_later(0, slow_timer)
        task = loop.create_task(slow_steps())
        for _ in range(3):
            await asyncio.sleep(0)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        # Fast enough: not reported.
        loop.slow_callback_duration = 1.0
        loop.call_soon(slow_callback)
        await asyncio.sleep(0)

    loop = new_loop()
    loop.time = lambda: now[0]
    loop.set_debug(True)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        try:
            loop.run_until_complete(main())
        finally:
            loop.close()
    found = []
    for record in caplog.records:
        message = record.getMessage()
        if message.startswith("Executing"):
            # (Line numbers and names compared as they are.)
            found.append(re.sub(r"(name='Task-)\d+'", r"\1N'", message))
    return sorted(found)


def test_slow_callbacks_and_steps_are_logged_in_debug_mode(caplog):
    expected = slow_story(asyncio.new_event_loop, caplog)
    assert len(expected) == 4
    assert any("slow_steps() running at" in line and "0.125 seconds" in line for line in expected)
    assert slow_story(aio.new_event_loop, caplog) == expected


def test_no_slow_callback_warnings_outside_debug_mode(caplog):
    async def main():
        loop = asyncio.get_running_loop()
        assert loop.slow_callback_duration == 0.1
        loop.slow_callback_duration = 0.0
        loop.call_soon(len, "")
        await asyncio.sleep(0)

    with caplog.at_level(logging.WARNING, logger="asyncio"):
        aio.run(main())
    assert not [r for r in caplog.records if "Executing" in r.getMessage()]


def from_another_thread(new_loop, action, prepare=None):
    """In debug mode, do `action` (given the loop and a pending future, or
    what `prepare` returns first, with a task waiting on what it returns
    second) from another thread: what it raised, and whether the waiting
    task finished afterwards."""
    outcome = {}

    async def main():
        loop = asyncio.get_running_loop()
        if prepare is None:
            fut = awaited = loop.create_future()
        else:
            fut, awaited = prepare()

        async def waits():
            return await awaited

        task = loop.create_task(waits())
        await asyncio.sleep(0)

        def run():
            try:
                action(loop, fut)
                outcome["raised"] = None
            except RuntimeError as exc:
                outcome["raised"] = str(exc)

        thread = threading.Thread(target=run)
        thread.start()
        thread.join()
        for _ in range(5):
            await asyncio.sleep(0)
        outcome["task finished"] = task.done()
        # (Not awaited: after a refused wakeup the task never runs again.)
        task.cancel()

    loop = new_loop()
    loop.set_debug(True)
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    return outcome


def _noop_coroutine_task(loop, fut):
    async def nothing():
        pass

    coro = nothing()
    try:
        loop.create_task(coro)
    finally:
        coro.close()


@pytest.mark.parametrize(
    "action",
    [
        pytest.param(lambda loop, fut: fut.set_result(1), id="set_result"),
        pytest.param(_noop_coroutine_task, id="create_task"),
    ],
)
def test_debug_mode_refuses_loop_work_from_another_thread(action):
    expected = from_another_thread(asyncio.new_event_loop, action)
    assert expected["raised"] is not None and "thread" in expected["raised"]
    assert from_another_thread(aio.new_event_loop, action) == expected


def _waiting_for_an_event(event_class):
    def prepare():
        event = event_class()
        return event, event.wait()

    return prepare


def test_debug_mode_refuses_waking_a_parked_task_from_another_thread():
    # (tether.aio's Event parks its waiters instead of giving them futures.)
    def set_event(loop, event):
        event.set()

    expected = from_another_thread(
        asyncio.new_event_loop, set_event, _waiting_for_an_event(asyncio.Event)
    )
    assert expected["raised"] is not None and "thread" in expected["raised"]
    actual = from_another_thread(aio.new_event_loop, set_event, _waiting_for_an_event(aio.Event))
    assert actual == expected
