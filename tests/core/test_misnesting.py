"""Scopes and nurseries exited out of order: a clear error, never a crash."""

import contextlib
import logging
from contextlib import AsyncExitStack, ExitStack, asynccontextmanager

import pytest

import tether
from tether import lowlevel
from tether.testing import wait_all_tasks_blocked


def test_exiting_outer_scope_first_names_the_inner_one():
    async def main():
        outer = tether.CancelScope()
        with ExitStack() as stack:
            stack.enter_context(outer)
            with tether.CancelScope():
                with pytest.raises(RuntimeError, match="still within its child") as info:
                    stack.close()
                # The task is back in the scope around both; the inner
                # scope's own exit then passes quietly.
                await lowlevel.checkpoint()
        return str(info.value)

    message = tether.run(main)
    assert "Cancel scope stack corrupted" in message
    assert "leaves it, innermost first" in message


def test_exiting_scope_from_unrelated_task_changes_nothing():
    async def holder(task_status=tether.TASK_STATUS_IGNORED):
        with tether.CancelScope() as scope:
            task_status.started(scope)
            await tether.sleep_forever()

    async def main():
        async with tether.open_nursery() as nursery:
            scope = await nursery.start(holder)
            with pytest.raises(RuntimeError, match="from unrelated"):
                scope.__exit__(None, None, None)
            # Still a working scope of its task.
            scope.cancel()

    tether.run(main)


def test_task_exiting_with_its_nursery_open_is_reported():
    async def leaves_nursery_open(manager):
        nursery = await manager.__aenter__()
        nursery.start_soon(tether.sleep, 1)

    async def main():
        with pytest.RaisesGroup(
            pytest.RaisesExc(RuntimeError, match="Nursery stack corrupted"),
        ):
            async with tether.open_nursery() as nursery:
                nursery.start_soon(leaves_nursery_open, tether.open_nursery())

    tether.run(main)


def test_nursery_left_open_by_async_exit_stack_is_reported_and_cleaned_up(caplog):
    cleaned_up = []

    async def abandoned():
        try:
            await lowlevel.checkpoint()
        finally:
            cleaned_up.append(True)
            raise ValueError("nobody can catch this")

    @asynccontextmanager
    async def nursery_owner():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(abandoned)
            yield

    async def main():
        # The exit stack is entered by a child task, which then exits with
        # the context manager's nursery still open.
        with pytest.RaisesGroup(
            pytest.RaisesGroup(pytest.RaisesExc(RuntimeError, match="Nursery stack corrupted"))
        ):
            async with AsyncExitStack() as stack, tether.open_nursery() as nursery:
                nursery.start_soon(stack.enter_async_context, nursery_owner())
        assert not cleaned_up

    with caplog.at_level(logging.ERROR, logger="tether"):
        tether.run(main)
    # The abandoned task still unwound before the run ended, and its error,
    # which had nowhere to go, was logged.
    assert cleaned_up == [True]
    (record,) = caplog.records
    assert "abandoned" in record.getMessage()
    error = record.exc_info[1]
    assert "closed before the task exited" in str(error)
    assert isinstance(error.__context__, ValueError)


def test_scope_closed_around_running_tasks_fails_them():
    async def sleeper():
        await tether.sleep_forever()

    async def main():
        manager = tether.open_nursery()
        nursery = await manager.__aenter__()
        nursery.start_soon(sleeper)
        await wait_all_tasks_blocked()
        # The nursery's own scope is exited by hand, with its task running.
        nursery.cancel_scope.__exit__(None, None, None)
        with pytest.raises(RuntimeError, match="already been exited") as info:
            await manager.__aexit__(None, None, None)
        return info.value.__context__

    group = tether.run(main)
    (error,) = group.exceptions
    assert isinstance(error, RuntimeError)
    assert "closed before the task exited" in str(error)
    assert isinstance(error.__context__, tether.Cancelled)


def test_nursery_body_leaving_inner_nursery_open():
    async def main():
        async with tether.open_nursery():
            await tether.open_nursery().__aenter__()

    with pytest.raises(RuntimeError, match="Nursery stack corrupted") as info:
        tether.run(main)
    # The outer nursery noticed on its exit that it was not the innermost.
    assert isinstance(info.value.__context__, AssertionError)


def test_run_after_misnesting_is_clean():
    async def main():
        with contextlib.suppress(RuntimeError):
            async with tether.open_nursery():
                await tether.open_nursery().__aenter__()

    with contextlib.suppress(RuntimeError):
        tether.run(main)

    async def fine():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(tether.sleep, 0)
        return "ok"

    assert tether.run(fine) == "ok"


def test_errors_of_an_abandoned_nursery_are_logged_at_the_end_of_the_run(caplog):
    async def fails_when_cancelled():
        try:
            await tether.sleep_forever()
        finally:
            raise KeyError("from an abandoned task")

    async def leaves_nursery_open():
        nursery = await tether.open_nursery().__aenter__()
        nursery.start_soon(fails_when_cancelled)
        nursery.start_soon(tether.sleep_forever)
        await wait_all_tasks_blocked()

    async def main():
        with pytest.RaisesGroup(pytest.RaisesExc(RuntimeError, match="Nursery stack corrupted")):
            async with tether.open_nursery() as nursery:
                nursery.start_soon(leaves_nursery_open)

    with caplog.at_level(logging.ERROR, logger="tether"):
        tether.run(main)
    # Only the real error: not the Cancelled of the task that just stopped.
    (record,) = caplog.records
    assert isinstance(record.exc_info[1], KeyError)
    assert "could not be raised anywhere" in record.getMessage()
