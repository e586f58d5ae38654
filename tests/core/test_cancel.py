"""CancelScope semantics: level-triggered cancellation, nesting, shields, deadlines, misuse."""

import math
import traceback

import pytest

import tether
from tether import lowlevel
from tether.testing import MockClock, wait_all_tasks_blocked


def run_mock(async_fn, *args, **kwargs):
    return tether.run(async_fn, *args, clock=MockClock(autojump_threshold=0), **kwargs)


def test_fresh_scope_state():
    async def main():
        cs = tether.CancelScope()
        assert not cs.cancel_called
        assert not cs.cancelled_caught
        assert not cs.shield
        assert cs.deadline == math.inf
        return "ok"

    assert tether.run(main) == "ok"


def test_cancel_before_entry_cancels_first_checkpoint():
    log = []

    async def main():
        cs = tether.CancelScope()
        cs.cancel()
        with cs:
            log.append("entered")
            await lowlevel.checkpoint()
            log.append("not reached")  # pragma: no cover
        log.append("after")
        return cs

    cs = tether.run(main)
    assert log == ["entered", "after"]
    assert cs.cancel_called
    assert cs.cancelled_caught


def test_cancel_without_checkpoint_is_not_caught():
    async def main():
        with tether.CancelScope() as cs:
            cs.cancel()
            x = 1 + 1
        return cs, x

    cs, x = tether.run(main)
    assert x == 2
    assert cs.cancel_called
    assert not cs.cancelled_caught


def test_cancelled_is_base_exception_and_not_constructible():
    with pytest.raises((TypeError, RuntimeError)):
        tether.Cancelled()


def test_cancellation_is_level_triggered():
    count = []

    async def main():
        with tether.CancelScope() as cs:
            cs.cancel()
            for _ in range(3):
                try:
                    await lowlevel.checkpoint()
                except tether.Cancelled:
                    count.append(1)
            await lowlevel.checkpoint()
        return cs.cancelled_caught

    assert tether.run(main) is True
    assert len(count) == 3


def test_cancelled_exception_is_instance_of_cancelled():
    caught = []

    async def main():
        with tether.CancelScope() as cs:
            cs.cancel()
            try:
                await lowlevel.checkpoint()
            except BaseException as exc:
                caught.append(exc)
                raise

    tether.run(main)
    assert len(caught) == 1
    assert isinstance(caught[0], tether.Cancelled)
    assert not isinstance(caught[0], Exception)


def test_code_after_cancelled_scope_keeps_running():
    async def main():
        with tether.CancelScope() as cs:
            cs.cancel()
            await lowlevel.checkpoint()
        await lowlevel.checkpoint()
        with tether.CancelScope() as cs2:
            await lowlevel.checkpoint()
        return cs2.cancelled_caught

    assert tether.run(main) is False


def test_outer_cancel_is_caught_by_outer_scope_not_inner():
    async def main():
        with tether.CancelScope() as outer:
            with tether.CancelScope() as inner:
                outer.cancel()
                await lowlevel.checkpoint()
        return outer, inner

    outer, inner = tether.run(main)
    assert outer.cancelled_caught
    assert not inner.cancelled_caught
    assert not inner.cancel_called


def test_inner_cancel_does_not_affect_outer():
    log = []

    async def main():
        with tether.CancelScope() as outer:
            with tether.CancelScope() as inner:
                inner.cancel()
                await lowlevel.checkpoint()
            log.append("after inner")
            await lowlevel.checkpoint()
            log.append("outer still alive")
        return outer, inner

    outer, inner = tether.run(main)
    assert inner.cancelled_caught
    assert not outer.cancel_called
    assert not outer.cancelled_caught
    assert log == ["after inner", "outer still alive"]


def test_both_cancelled_outermost_catches():
    async def main():
        with tether.CancelScope() as outer:
            with tether.CancelScope() as inner:
                inner.cancel()
                outer.cancel()
                await lowlevel.checkpoint()
        return outer, inner

    outer, inner = tether.run(main)
    assert outer.cancelled_caught
    assert not inner.cancelled_caught


def test_non_cancelled_exception_passes_through_cancelled_scope():
    class Boom(Exception):
        pass

    async def main():
        with tether.CancelScope() as cs:
            cs.cancel()
            raise Boom

    with pytest.raises(Boom):
        tether.run(main)


def test_cancel_is_idempotent_and_harmless_after_exit():
    async def main():
        with tether.CancelScope() as cs:
            cs.cancel()
            cs.cancel()
            await lowlevel.checkpoint()
        cs.cancel()
        await lowlevel.checkpoint()
        return "ok"

    assert tether.run(main) == "ok"


def test_reentering_scope_is_runtime_error():
    async def main():
        cs = tether.CancelScope()
        with cs:
            pass
        with pytest.raises(RuntimeError):
            with cs:
                pass  # pragma: no cover
        return "ok"

    assert tether.run(main) == "ok"


def test_nested_reentry_is_runtime_error():
    async def main():
        cs = tether.CancelScope()
        with cs:
            with pytest.raises(RuntimeError):
                cs.__enter__()
        return "ok"

    assert tether.run(main) == "ok"


def test_exiting_scopes_out_of_order_is_runtime_error():
    errors = []

    async def main():
        a = tether.CancelScope()
        b = tether.CancelScope()
        a.__enter__()
        b.__enter__()
        try:
            a.__exit__(None, None, None)
        except RuntimeError as exc:
            errors.append(exc)
        # best-effort cleanup; whatever happens, the run must not hang or crash
        try:
            b.__exit__(None, None, None)
        except RuntimeError:
            pass
        return "finished"

    assert tether.run(main) == "finished"
    assert len(errors) == 1


def test_cancel_wakes_blocked_task_from_other_task():
    log = []

    async def sleeper(cs):
        with cs:
            await tether.sleep_forever()
        log.append(("sleeper woke", tether.current_time()))

    async def main():
        cs = tether.CancelScope()
        async with tether.open_nursery() as nursery:
            nursery.start_soon(sleeper, cs)
            await tether.sleep(7)
            cs.cancel()
        return cs

    cs = run_mock(main)
    assert log == [("sleeper woke", 7.0)]
    assert cs.cancelled_caught


def test_cancelling_nursery_scope_cancels_all_children():
    log = []

    async def child(i):
        try:
            await tether.sleep_forever()
        except tether.Cancelled:
            log.append(i)
            raise

    async def main():
        async with tether.open_nursery() as nursery:
            for i in range(4):
                nursery.start_soon(child, i)
            await wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
        return nursery.cancel_scope.cancelled_caught

    assert run_mock(main) is True
    assert sorted(log) == [0, 1, 2, 3]


# ---- shields


def test_shield_blocks_outer_cancellation():
    log = []

    async def main():
        with tether.CancelScope() as outer:
            outer.cancel()
            with tether.CancelScope(shield=True) as shielded:
                await lowlevel.checkpoint()
                await tether.sleep(1)
                log.append(("shielded ran", tether.current_time()))
            assert not shielded.cancel_called
            log.append("after shield")
            await lowlevel.checkpoint()
            log.append("not reached")  # pragma: no cover
        return outer, shielded

    outer, shielded = run_mock(main)
    assert log == [("shielded ran", 1.0), "after shield"]
    assert outer.cancelled_caught
    assert not shielded.cancelled_caught
    assert not shielded.cancel_called


def test_shielded_scope_can_still_cancel_itself():
    async def main():
        with tether.CancelScope() as outer:
            outer.cancel()
            with tether.CancelScope(shield=True) as shielded:
                shielded.cancel()
                await lowlevel.checkpoint()
        return outer, shielded

    outer, shielded = tether.run(main)
    assert shielded.cancelled_caught
    assert not outer.cancelled_caught


def test_shield_property_is_settable_and_unshielding_wakes_task():
    log = []

    async def sleeper(scope_box):
        with tether.CancelScope() as outer:
            with tether.CancelScope(shield=True) as shielded:
                scope_box.append((outer, shielded))
                try:
                    await tether.sleep(100)
                except tether.Cancelled:
                    log.append(("cancelled", tether.current_time()))
                    raise
        log.append(("outer caught", outer.cancelled_caught))

    async def main():
        box = []
        async with tether.open_nursery() as nursery:
            nursery.start_soon(sleeper, box)
            await tether.sleep(1)
            outer, shielded = box[0]
            assert shielded.shield is True
            outer.cancel()
            await tether.sleep(2)
            assert log == []
            shielded.shield = False
            assert shielded.shield is False

    run_mock(main)
    assert log == [("cancelled", 3.0), ("outer caught", True)]


def test_setting_shield_on_running_scope_protects_it():
    log = []

    async def main():
        with tether.CancelScope() as outer:
            with tether.CancelScope() as inner:
                inner.shield = True
                outer.cancel()
                await lowlevel.checkpoint()
                log.append("survived while shielded")
                inner.shield = False
                await lowlevel.checkpoint()
                log.append("not reached")  # pragma: no cover
        return outer.cancelled_caught, inner.cancelled_caught

    assert tether.run(main) == (True, False)
    assert log == ["survived while shielded"]


# ---- deadlines


def test_deadline_cancels_at_that_virtual_time():
    async def main():
        with tether.CancelScope(deadline=tether.current_time() + 5) as cs:
            await tether.sleep(10)
        return cs.cancelled_caught, tether.current_time()

    assert run_mock(main) == (True, 5.0)


def test_deadline_in_the_past_cancels_at_first_checkpoint():
    log = []

    async def main():
        await tether.sleep(3)
        with tether.CancelScope(deadline=1) as cs:
            log.append("entered")
            await lowlevel.checkpoint()
            log.append("not reached")  # pragma: no cover
        return cs.cancelled_caught

    assert run_mock(main) is True
    assert log == ["entered"]


def test_moving_deadline_earlier_wakes_sleeper():
    async def sleeper(box):
        with tether.CancelScope() as cs:
            box.append(cs)
            await tether.sleep(100)
        box.append(tether.current_time())

    async def main():
        box = []
        async with tether.open_nursery() as nursery:
            nursery.start_soon(sleeper, box)
            await tether.sleep(2)
            box[0].deadline = tether.current_time() + 3
        return box

    box = run_mock(main)
    assert box[0].cancelled_caught
    assert box[1] == 5.0


def test_moving_deadline_later_postpones_cancellation():
    async def main():
        with tether.CancelScope(deadline=2) as cs:
            cs.deadline = 8
            assert cs.deadline == 8
            await tether.sleep(100)
        return tether.current_time(), cs.cancelled_caught

    assert run_mock(main) == (8.0, True)


def test_removing_deadline():
    async def main():
        with tether.CancelScope(deadline=2) as cs:
            cs.deadline = math.inf
            await tether.sleep(10)
        return tether.current_time(), cs.cancel_called

    assert run_mock(main) == (10.0, False)


def test_relative_deadline_counts_from_entry():
    async def main():
        cs = tether.CancelScope(relative_deadline=4)
        assert cs.relative_deadline == 4
        await tether.sleep(10)
        with cs:
            assert cs.deadline == 14.0
            await tether.sleep_forever()
        return tether.current_time(), cs.cancelled_caught

    assert run_mock(main) == (14.0, True)


def test_relative_deadline_settable_while_entered():
    async def main():
        with tether.CancelScope() as cs:
            await tether.sleep(1)
            cs.relative_deadline = 2
            assert cs.deadline == 3.0
            await tether.sleep(100)
        return tether.current_time()

    assert run_mock(main) == 3.0


def test_deadline_argument_validation():
    with pytest.raises(ValueError, match="both a deadline and a relative deadline"):
        tether.CancelScope(deadline=1, relative_deadline=1)
    with pytest.raises(ValueError, match="non-negative"):
        tether.CancelScope(relative_deadline=-1)
    with pytest.raises(ValueError, match=r"^deadline must not be NaN"):
        tether.CancelScope(deadline=math.nan)
    with pytest.raises(ValueError, match=r"^relative deadline must not be NaN"):
        tether.CancelScope(relative_deadline=math.nan)
    with pytest.raises(TypeError, match="deadline must be a number, got '5'"):
        tether.CancelScope(deadline="5")
    with pytest.raises(TypeError, match="relative_deadline must be a number"):
        tether.CancelScope(relative_deadline=None)
    with pytest.raises(TypeError, match="shield must be a bool"):
        tether.CancelScope(shield=1)


def test_deadline_setters_validate():
    scope = tether.CancelScope()
    with pytest.raises(ValueError, match="deadline must not be NaN"):
        scope.deadline = math.nan
    with pytest.raises(TypeError, match="deadline must be a number"):
        scope.deadline = "soon"
    with pytest.raises(ValueError, match="relative deadline must be non-negative"):
        scope.relative_deadline = -3
    with pytest.raises(TypeError, match="shield must be a bool"):
        scope.shield = "yes"
    scope.relative_deadline = 5
    assert scope.relative_deadline == 5
    # A relative scope has no absolute deadline until it is entered, and an
    # absolute one no relative deadline.
    with pytest.raises(RuntimeError, match="relative cancel scope does not have an absolute"):
        scope.deadline  # noqa: B018
    with pytest.raises(RuntimeError, match="relative_deadline instead"):
        scope.deadline = 7
    absolute = tether.CancelScope(deadline=5)
    with pytest.raises(RuntimeError, match="non-relative cancel scope does not have a relative"):
        absolute.relative_deadline  # noqa: B018


def test_cancel_scope_cannot_be_subclassed():
    with pytest.raises(TypeError, match="cannot be subclassed"):
        type("MyScope", (tether.CancelScope,), {})


def test_cancel_scope_repr_shows_state_and_time_left():
    async def main():
        scope = tether.CancelScope()
        reprs = [repr(scope)]
        with scope:
            reprs.append(repr(scope))
            scope.deadline = tether.current_time() - 1
            reprs.append(repr(scope))
            scope.deadline = tether.current_time() + 10
            reprs.append(repr(scope))
            # Outside the run's thread the time left is unknown.
            reprs.append(await tether.to_thread.run_sync(repr, scope))
            scope.cancel()
            reprs.append(repr(scope))
        reprs.append(repr(scope))
        return reprs

    # (A clock that does not jump while the thread runs.)
    reprs = tether.run(main, clock=MockClock())
    assert all(r.startswith("<tether.CancelScope at 0x") for r in reprs)
    unbound, active, past, future, elsewhere, cancelled, exited = reprs
    assert unbound.endswith(", unbound>")
    assert active.endswith(", active>")
    assert past.endswith(", active, deadline is 1.00 seconds ago>")
    assert future.endswith(", active, deadline is 10.00 seconds from now>")
    assert elsewhere.endswith(", active>")
    assert cancelled.endswith(", active, cancelled>")
    assert exited.endswith(", exited, cancelled>")


def test_cancel_called_reflects_expired_deadline():
    async def main():
        with tether.CancelScope(deadline=1) as cs:
            assert not cs.cancel_called
            await tether.sleep(0.5)
            assert not cs.cancel_called
            with tether.CancelScope(shield=True):
                await tether.sleep(1)
            assert cs.cancel_called
        return cs.cancelled_caught

    # no checkpoint after the deadline expired inside the scope
    assert run_mock(main) is False


# ---- effective deadline


def test_current_effective_deadline():
    async def main():
        assert tether.current_effective_deadline() == math.inf
        with tether.CancelScope(deadline=10):
            assert tether.current_effective_deadline() == 10
            with tether.CancelScope(deadline=20):
                assert tether.current_effective_deadline() == 10
                with tether.CancelScope(deadline=5):
                    assert tether.current_effective_deadline() == 5
                with tether.CancelScope(deadline=30, shield=True):
                    assert tether.current_effective_deadline() == 30
                with tether.CancelScope(shield=True):
                    assert tether.current_effective_deadline() == math.inf
            assert tether.current_effective_deadline() == 10
        with tether.CancelScope() as cs:
            cs.cancel()
            assert tether.current_effective_deadline() == -math.inf
            with tether.CancelScope(shield=True):
                assert tether.current_effective_deadline() == math.inf
        return "ok"

    assert run_mock(main) == "ok"


def test_effective_deadline_is_inherited_by_child_tasks():
    seen = []

    async def child():
        seen.append(tether.current_effective_deadline())

    async def main():
        with tether.CancelScope(deadline=42):
            async with tether.open_nursery() as nursery:
                nursery.start_soon(child)

    run_mock(main)
    assert seen == [42]


# ---- lowlevel checkpoints vs cancellation


def test_checkpoint_if_cancelled_only_raises_when_cancelled():
    async def main():
        await lowlevel.checkpoint_if_cancelled()
        with tether.CancelScope() as cs:
            cs.cancel()
            await lowlevel.checkpoint_if_cancelled()
            raise AssertionError("not reached")  # pragma: no cover
        return cs.cancelled_caught

    assert tether.run(main) is True


def test_cancel_shielded_checkpoint_ignores_cancellation():
    async def main():
        with tether.CancelScope() as cs:
            cs.cancel()
            await lowlevel.cancel_shielded_checkpoint()
            reached = True
        return reached, cs.cancelled_caught

    assert tether.run(main) == (True, False)


def test_cancelled_child_in_cancelled_nursery_does_not_escape_run():
    async def child():
        await tether.sleep_forever()

    async def main():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(child)
            nursery.start_soon(child)
            await tether.sleep(1)
            nursery.cancel_scope.cancel()
        return "clean"

    assert run_mock(main) == "clean"


def test_relative_deadline_reads_remaining_time_once_entered():
    async def main():
        with tether.CancelScope(relative_deadline=4) as cs:
            assert cs.relative_deadline == 4.0
            await tether.sleep(1)
            assert cs.relative_deadline == 3.0
        return "ok"

    assert run_mock(main) == "ok"


def test_deadline_change_reaches_tasks_in_child_nurseries():
    log = []

    async def child(i):
        try:
            await tether.sleep(100 + i)
        except tether.Cancelled:
            log.append((i, tether.current_time()))
            raise

    async def main():
        with tether.CancelScope(deadline=50) as cs:
            async with tether.open_nursery() as nursery:
                for i in range(3):
                    nursery.start_soon(child, i)
                await tether.sleep(2)
                cs.deadline = 6
                await tether.sleep(1)
                cs.deadline = 9  # later again: nobody is cancelled at 6
                await tether.sleep_forever()
        return cs.cancelled_caught, tether.current_time()

    assert run_mock(main) == (True, 9.0)
    assert sorted(log) == [(0, 9.0), (1, 9.0), (2, 9.0)]


def test_unshielding_scope_cancels_blocked_children():
    log = []

    async def child():
        try:
            await tether.sleep_forever()
        except tether.Cancelled:
            log.append(tether.current_time())
            raise

    async def main():
        with tether.CancelScope() as outer:
            with tether.CancelScope(shield=True) as shielded:
                async with tether.open_nursery() as nursery:
                    nursery.start_soon(child)
                    nursery.start_soon(child)
                    await tether.sleep(1)
                    outer.cancel()
                    await tether.sleep(1)
                    assert log == []
                    shielded.shield = False
                    await tether.sleep_forever()
        return outer.cancelled_caught

    assert run_mock(main) is True
    assert log == [2.0, 2.0]


def test_cancellation_is_permanent_even_if_deadline_removed():
    async def main():
        with tether.CancelScope(deadline=1) as cs:
            with tether.CancelScope(shield=True):
                await tether.sleep(2)
            assert cs.cancel_called
            cs.deadline = math.inf
            assert cs.cancel_called
            await lowlevel.checkpoint()
            raise AssertionError("not reached")  # pragma: no cover
        return cs.cancelled_caught

    assert run_mock(main) is True


def test_children_spawned_in_cancelled_nursery_run_until_first_checkpoint():
    log = []

    async def child():
        log.append("started")
        await lowlevel.checkpoint()
        log.append("not reached")  # pragma: no cover

    async def main():
        async with tether.open_nursery() as nursery:
            nursery.cancel_scope.cancel()
            nursery.start_soon(child)
            nursery.start_soon(child)
        return nursery.cancel_scope.cancelled_caught

    assert tether.run(main) is True
    assert log == ["started", "started"]


def test_sleep_inf_sleeps_forever():
    async def main():
        with tether.move_on_after(1000) as cs:
            await tether.sleep(math.inf)
        return cs.cancelled_caught, tether.current_time()

    assert run_mock(main) == (True, 1000.0)


def test_cancelled_checkpoint_raises_one_schedule_round_later():
    # A checkpoint that finds its scope cancelled first lets the task be
    # rescheduled; Cancelled arrives at its next step. So a task stepped
    # after it in the same batch still takes that step before the
    # cancelled task unwinds (trio's order).
    log = []

    async def victim(cs):
        with cs:
            await lowlevel.checkpoint()
        log.append("victim unwound")

    async def bystander():
        await lowlevel.checkpoint()
        log.append("bystander step 2")
        await lowlevel.checkpoint()
        log.append("bystander step 3")

    async def main():
        cs = tether.CancelScope()
        async with tether.open_nursery() as nursery:
            nursery.start_soon(victim, cs)
            nursery.start_soon(bystander)
            cs.cancel()

    tether.run(main)
    assert log.index("bystander step 2") < log.index("victim unwound")


@pytest.mark.parametrize("wait", ["event", "sleep", "wait_task_rescheduled"])
def test_a_cancelled_wait_raises_in_the_tasks_own_frames(wait):
    # The Cancelled is raised where the task waits: its traceback goes from
    # the task's code down to the kernel's trap, through no frame of the
    # run loop or of the outcome library.
    errors = []

    async def waits():
        try:
            if wait == "event":
                await tether.Event().wait()
            elif wait == "sleep":
                await tether.sleep(10)
            else:
                await lowlevel.wait_task_rescheduled(lambda _: lowlevel.Abort.SUCCEEDED)
        except tether.Cancelled as exc:
            errors.append(exc)
            raise

    async def main():
        with tether.CancelScope() as scope:
            async with tether.open_nursery() as nursery:
                nursery.start_soon(waits)
                await wait_all_tasks_blocked()
                scope.cancel()
        return scope.cancelled_caught

    assert run_mock(main) is True
    (error,) = errors
    files = [frame.f_code.co_filename for frame, _ in traceback.walk_tb(error.__traceback__)]
    assert files[0] == __file__
    assert [f for f in files if "outcome" in f or f.endswith("_run.py")] == []
