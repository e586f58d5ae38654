"""Why code was cancelled: `Cancelled` names its source, reason and task."""

import math
import pickle

import pytest

import tether
from tether import lowlevel
from tether.testing import MockClock, wait_all_tasks_blocked


def run_mock(async_fn, *args, **kwargs):
    return tether.run(async_fn, *args, clock=MockClock(autojump_threshold=0), **kwargs)


async def cancelled_at_checkpoint():
    try:
        await lowlevel.checkpoint()
    except tether.Cancelled as exc:
        return exc
    raise AssertionError("the checkpoint was not cancelled")


def test_explicit_cancel_names_reason_and_task():
    async def main():
        with tether.CancelScope() as cs:
            cs.cancel(reason="user pressed stop")
            exc = await cancelled_at_checkpoint()
        return exc, repr(lowlevel.current_task())

    exc, me = tether.run(main)
    assert exc.source == "explicit"
    assert exc.reason == "user pressed stop"
    assert exc.source_task == me
    assert str(exc) == f"cancelled due to explicit with reason 'user pressed stop' from task {me}"


def test_cancel_without_reason_still_names_task():
    async def main():
        with tether.CancelScope() as cs:
            cs.cancel()
            exc = await cancelled_at_checkpoint()
        return exc, repr(lowlevel.current_task())

    exc, me = tether.run(main)
    assert exc.reason is None
    assert str(exc) == f"cancelled due to explicit from task {me}"


def test_deadline_reason_from_expiry_entry_and_setter():
    async def main():
        excs = []
        with tether.move_on_after(1):
            try:
                await tether.sleep_forever()
            except tether.Cancelled as exc:
                excs.append(exc)
                raise
        with tether.CancelScope(deadline=-math.inf):
            excs.append(await cancelled_at_checkpoint())
        with tether.CancelScope() as cs:
            cs.deadline = -math.inf
            excs.append(await cancelled_at_checkpoint())
        return excs

    for exc in run_mock(main):
        assert str(exc) == "cancelled due to deadline"
        assert exc.source_task is None


def test_first_reason_is_kept():
    async def main():
        with tether.CancelScope() as cs:
            cs.deadline = -math.inf
            first = await cancelled_at_checkpoint()
            cs.cancel(reason="too late to matter")
            second = await cancelled_at_checkpoint()
        return first, second

    first, second = tether.run(main)
    assert first.source == second.source == "deadline"
    assert second.reason is None


def test_inner_scope_inherits_outer_reason():
    async def main():
        with tether.CancelScope() as outer:
            with tether.CancelScope():
                outer.cancel(reason="outer said so")
                return await cancelled_at_checkpoint()

    exc = tether.run(main)
    assert exc.source == "explicit"
    assert exc.reason == "outer said so"


def test_child_error_cancels_siblings_with_nursery_reason():
    seen = []

    async def sibling():
        try:
            await tether.sleep_forever()
        except tether.Cancelled as exc:
            seen.append(exc)
            raise

    async def failing(task_status=tether.TASK_STATUS_IGNORED):
        task_status.started(repr(lowlevel.current_task()))
        await wait_all_tasks_blocked()
        raise ValueError("boom")

    async def main():
        with pytest.RaisesGroup(ValueError):
            async with tether.open_nursery() as nursery:
                nursery.start_soon(sibling)
                seen.append(await nursery.start(failing))

    tether.run(main)
    failing_task, exc = seen
    assert exc.source == "nursery"
    assert exc.source_task == failing_task
    assert exc.reason == "child task raised exception ValueError('boom')"


def test_nursery_body_error_reason_names_parent():
    seen = []

    async def child():
        try:
            await tether.sleep_forever()
        except tether.Cancelled as exc:
            seen.append(exc)
            raise

    async def main():
        with pytest.RaisesGroup(KeyError):
            async with tether.open_nursery() as nursery:
                nursery.start_soon(child)
                await wait_all_tasks_blocked()
                raise KeyError(7)
        return repr(lowlevel.current_task())

    me = tether.run(main)
    (exc,) = seen
    assert str(exc) == (
        "cancelled due to nursery with reason 'Code block inside nursery "
        f"contextmanager raised exception KeyError(7)' from task {me}"
    )


def test_system_tasks_are_cancelled_with_shutdown_reason():
    seen = []

    async def system_task():
        try:
            await tether.sleep_forever()
        except tether.Cancelled as exc:
            seen.append(exc)

    async def main():
        lowlevel.spawn_system_task(system_task)
        await wait_all_tasks_blocked()

    tether.run(main)
    (exc,) = seen
    assert exc.source == "shutdown"


def test_cancelled_cannot_be_subclassed_or_constructed():
    with pytest.raises(TypeError, match="cannot be subclassed"):
        type("MyCancelled", (tether.Cancelled,), {})
    with pytest.raises(TypeError, match="no public constructor"):
        tether.Cancelled()


def test_cancelled_survives_pickling():
    async def main():
        with tether.CancelScope() as cs:
            cs.cancel(reason="pickled")
            return await cancelled_at_checkpoint()

    exc = tether.run(main)
    copy = pickle.loads(pickle.dumps(exc))
    assert type(copy) is tether.Cancelled
    assert (copy.source, copy.source_task, copy.reason) == (
        exc.source,
        exc.source_task,
        exc.reason,
    )
    assert str(copy) == str(exc)


def test_cancelled_repr_names_every_fact():
    async def main():
        with tether.CancelScope(deadline=-math.inf):
            return await cancelled_at_checkpoint()

    exc = tether.run(main)
    assert repr(exc) == (f"Cancelled(source='deadline', source_task=None, reason={exc.reason!r})")

    async def explicit():
        with tether.CancelScope() as cs:
            cs.cancel(reason="stop")
            return await cancelled_at_checkpoint()

    exc = tether.run(explicit)
    assert repr(exc) == (
        f"Cancelled(source='explicit', source_task={exc.source_task!r}, reason='stop')"
    )
    assert exc.source_task is not None


def test_own_deadline_after_a_borrowed_cancellation_ends_says_deadline():
    # The inner scope is first cancelled from outside (explicitly); then a
    # shield keeps that out, and what cancels the code later is the inner
    # scope's own deadline: its Cancelled says so.
    async def main():
        with tether.CancelScope() as outer:
            with tether.CancelScope() as inner:
                outer.cancel(reason="outer said so")
                borrowed = await cancelled_at_checkpoint()
                inner.shield = True
                inner.deadline = tether.current_time() + 1
                try:
                    await tether.sleep(5)
                except tether.Cancelled as exc:
                    own = exc
                    raise
            assert inner.cancelled_caught
        return borrowed, own

    borrowed, own = run_mock(main)
    assert (borrowed.source, borrowed.reason) == ("explicit", "outer said so")
    assert (own.source, own.reason, own.source_task) == ("deadline", None, None)
    assert str(own) == "cancelled due to deadline"


def test_borrowed_reason_follows_the_outer_scope_that_reaches_in_now():
    # Shielded while the first outer scope is cancelled, then unshielded
    # under a second cancellation: the reason is the one in effect.
    async def main():
        with tether.CancelScope() as outer:
            with tether.CancelScope() as middle:
                with tether.CancelScope() as inner:
                    middle.cancel(reason="first")
                    first = await cancelled_at_checkpoint()
                    inner.shield = True
                    await lowlevel.checkpoint()  # not cancelled: shielded
                    outer.cancel(reason="ignored: middle keeps its own reason")
                    inner.shield = False
                    second = await cancelled_at_checkpoint()
        return first, second

    first, second = tether.run(main)
    assert first.reason == second.reason == "first"


def test_cancel_builds_the_task_text_only_when_a_cancelled_needs_it(monkeypatch):
    reprs = []

    async def main():
        task_type = type(lowlevel.current_task())
        plain_repr = task_type.__repr__

        def counting_repr(task):
            reprs.append(task)
            return plain_repr(task)

        monkeypatch.setattr(task_type, "__repr__", counting_repr)
        for _ in range(3):
            with tether.CancelScope() as cs:
                cs.cancel()  # nothing inside is ever cancelled by it
        assert reprs == []

        # A child cancels and exits; the text still names it afterwards.
        with tether.CancelScope() as cs:
            async with tether.open_nursery() as nursery:
                nursery.start_soon(_cancel, cs)
            exc = await cancelled_at_checkpoint()
        return exc, list(reprs)

    exc, built = run_mock(main)
    assert len(built) == 1  # built once, for the first Cancelled
    assert exc.source == "explicit"
    assert exc.source_task.startswith("<Task ") and "_cancel" in exc.source_task


async def _cancel(scope):
    scope.cancel()
