"""lowlevel.ParkingLot: FIFO park/unpark, repark, cancellation, statistics."""

import pytest

import tether
from tether import lowlevel
from tether.testing import MockClock, wait_all_tasks_blocked


def run_mock(async_fn):
    return tether.run(async_fn, clock=MockClock(autojump_threshold=0))


async def parker(lot, name, log):
    await lot.park()
    log.append(name)


def test_empty_lot():
    lot = lowlevel.ParkingLot()
    assert len(lot) == 0
    assert not lot
    assert lot.statistics().tasks_waiting == 0

    async def main():
        assert lot.unpark() == []
        assert lot.unpark_all() == []
        return "ok"

    assert tether.run(main) == "ok"


def test_park_unpark_fifo_and_counts():
    log = []

    async def main():
        lot = lowlevel.ParkingLot()
        async with tether.open_nursery() as nursery:
            tasks = []
            for i in range(5):
                nursery.start_soon(parker, lot, i, log)
                await wait_all_tasks_blocked()
                tasks.append(next(t for t in nursery.child_tasks if t not in tasks))
            assert len(lot) == 5
            assert lot
            assert lot.statistics().tasks_waiting == 5

            woken = lot.unpark()
            assert woken == [tasks[0]]
            assert len(lot) == 4
            await wait_all_tasks_blocked()
            assert log == [0]

            woken = lot.unpark(count=2)
            assert woken == tasks[1:3]
            await wait_all_tasks_blocked()
            assert log == [0, 1, 2]

            woken = lot.unpark_all()
            assert woken == tasks[3:]
            assert len(lot) == 0
            assert not lot
        return log

    log = tether.run(main)
    # tasks woken together may run in any order
    assert log[:1] == [0]
    assert sorted(log[1:3]) == [1, 2]
    assert sorted(log[3:]) == [3, 4]


def test_unpark_more_than_waiting():
    log = []

    async def main():
        lot = lowlevel.ParkingLot()
        async with tether.open_nursery() as nursery:
            nursery.start_soon(parker, lot, "a", log)
            nursery.start_soon(parker, lot, "b", log)
            await wait_all_tasks_blocked()
            assert len(lot.unpark(count=10)) == 2
        return sorted(log)

    assert tether.run(main) == ["a", "b"]


def test_park_is_cancellable_and_leaves_lot():
    log = []

    async def cancellable(lot):
        with tether.move_on_after(3) as cs:
            await lot.park()
        log.append((cs.cancelled_caught, tether.current_time()))

    async def main():
        lot = lowlevel.ParkingLot()
        async with tether.open_nursery() as nursery:
            nursery.start_soon(cancellable, lot)
            await wait_all_tasks_blocked()
            assert len(lot) == 1
            await tether.sleep(5)
            assert len(lot) == 0
            assert lot.unpark() == []

    run_mock(main)
    assert log == [(True, 3.0)]


def test_repark_moves_tasks_to_new_lot():
    log = []

    async def main():
        lot1 = lowlevel.ParkingLot()
        lot2 = lowlevel.ParkingLot()
        async with tether.open_nursery() as nursery:
            for name in ("a", "b", "c"):
                nursery.start_soon(parker, lot1, name, log, name=name)
                await wait_all_tasks_blocked()
            tasks = {t.name: t for t in nursery.child_tasks}
            lot1.repark(lot2)
            assert (len(lot1), len(lot2)) == (2, 1)
            await wait_all_tasks_blocked()
            assert log == []  # reparking does not wake anyone
            lot1.repark(lot2, count=5)
            assert (len(lot1), len(lot2)) == (0, 3)
            assert lot1.unpark() == []
            assert lot2.unpark() == [tasks["a"]]
            await wait_all_tasks_blocked()
            assert log == ["a"]
            assert lot2.unpark_all() == [tasks["b"], tasks["c"]]
        return log

    assert sorted(tether.run(main)) == ["a", "b", "c"]


def test_repark_all():
    log = []

    async def main():
        lot1 = lowlevel.ParkingLot()
        lot2 = lowlevel.ParkingLot()
        async with tether.open_nursery() as nursery:
            for name in ("x", "y"):
                nursery.start_soon(parker, lot1, name, log, name=name)
                await wait_all_tasks_blocked()
            lot1.repark_all(lot2)
            assert len(lot1) == 0
            assert lot2.statistics().tasks_waiting == 2
            assert [t.name for t in lot2.unpark_all()] == ["x", "y"]
        return log

    assert sorted(tether.run(main)) == ["x", "y"]


def test_reparked_task_is_still_cancellable():
    log = []

    async def cancellable(lot):
        with tether.move_on_after(4) as cs:
            await lot.park()
        log.append(cs.cancelled_caught)

    async def main():
        lot1 = lowlevel.ParkingLot()
        lot2 = lowlevel.ParkingLot()
        async with tether.open_nursery() as nursery:
            nursery.start_soon(cancellable, lot1)
            await wait_all_tasks_blocked()
            lot1.repark_all(lot2)
            await tether.sleep(10)
            assert len(lot2) == 0

    run_mock(main)
    assert log == [True]


def test_repark_requires_parking_lot():
    async def main():
        lot = lowlevel.ParkingLot()
        with pytest.raises(TypeError):
            lot.repark(object())
        return "ok"

    assert tether.run(main) == "ok"


def test_subclass_of_parking_lot_parks_unparks_and_breaks_like_the_base():
    # The step loop's fast path checks the exact type; subclasses go through
    # the kernel's other route and must behave the same.
    class CountingLot(lowlevel.ParkingLot):
        __slots__ = ("parks",)

        def __init__(self):
            super().__init__()
            self.parks = 0

        def park(self):
            self.parks += 1
            return super().park()

    async def main():
        lot = CountingLot()
        woken = []

        async def waiter(name):
            await lot.park()
            woken.append(name)

        async with tether.open_nursery() as nursery:
            nursery.start_soon(waiter, "a")
            nursery.start_soon(waiter, "b")
            await wait_all_tasks_blocked()
            assert len(lot) == 2 and lot.parks == 2
            lot.unpark()
            await wait_all_tasks_blocked()
            assert woken == ["a"] and len(lot) == 1
            lot.unpark_all()
        assert woken == ["a", "b"]

    async def broken():
        lot = CountingLot()
        lot.break_lot()
        with pytest.raises(tether.BrokenResourceError):
            await lot.park()

    tether.run(main)
    tether.run(broken)


def test_non_integer_count_is_refused_with_trio_wording():
    async def main():
        lot = lowlevel.ParkingLot()
        with pytest.raises(ValueError, match=r"^Cannot pop a non-integer number of tasks\.$"):
            lot.unpark(count=1.5)
        with pytest.raises(ValueError, match="non-integer"):
            lot.repark(lowlevel.ParkingLot(), count=0.5)

    tether.run(main)


async def _park_and_report(lot, errors):
    try:
        await lot.park()
    except tether.BrokenResourceError as exc:
        errors.append(str(exc))


def test_breaking_wakes_parked_tasks_naming_the_breaker_and_refuses_later_parks():
    async def main():
        lot = lowlevel.ParkingLot()
        me = lowlevel.current_task()
        errors = []
        async with tether.open_nursery() as nursery:
            nursery.start_soon(_park_and_report, lot, errors)
            await wait_all_tasks_blocked()
            lot.break_lot()
        assert len(errors) == 1 and errors[0].startswith(f"Parking lot broken by {me!r}")
        assert "break_lot()" in errors[0]
        # A second break only records its cause.
        lot.break_lot()
        assert lot.broken_by == [me, me]
        with pytest.raises(tether.BrokenResourceError) as info:
            await lot.park()
        assert str(info.value) == f"Attempted to park in parking lot broken by {[me, me]}"

    tether.run(main)


def test_a_lot_breaker_that_exits_breaks_the_lot_for_its_waiters():
    async def breaker(lot, task_status=tether.TASK_STATUS_IGNORED):
        lowlevel.add_parking_lot_breaker(lowlevel.current_task(), lot)
        task_status.started(lowlevel.current_task())
        await tether.sleep(1)

    async def main():
        lot = lowlevel.ParkingLot()
        errors = []
        async with tether.open_nursery() as nursery:
            breaker_task = await nursery.start(breaker, lot)
            nursery.start_soon(_park_and_report, lot, errors)
        assert lot.broken_by == [breaker_task]
        assert len(errors) == 1 and errors[0].startswith(f"Parking lot broken by {breaker_task!r}")

    run_mock(main)


def test_parking_lot_park_can_be_started_as_a_task():
    # `park` is not an `async def`, but like trio's it can be given to
    # start_soon: the task waits in the lot.
    async def main():
        lot = lowlevel.ParkingLot()
        async with tether.open_nursery() as nursery:
            nursery.start_soon(lot.park)
            await wait_all_tasks_blocked()
            assert len(lot) == 1
            lot.break_lot()

    with pytest.raises(ExceptionGroup) as info:
        tether.run(main)
    assert info.group_contains(tether.BrokenResourceError, match="^Parking lot broken by")


def test_breaker_registration_is_counted_and_checked():
    async def sleeper(task_status=tether.TASK_STATUS_IGNORED):
        task_status.started(lowlevel.current_task())
        await tether.sleep_forever()

    async def main():
        lot = lowlevel.ParkingLot()
        me = lowlevel.current_task()
        with pytest.raises(RuntimeError, match="not registered"):
            lowlevel.remove_parking_lot_breaker(me, lot)
        # Two registrations need two removals.
        lowlevel.add_parking_lot_breaker(me, lot)
        lowlevel.add_parking_lot_breaker(me, lot)
        lowlevel.remove_parking_lot_breaker(me, lot)
        lowlevel.remove_parking_lot_breaker(me, lot)
        with pytest.raises(RuntimeError, match="not registered"):
            lowlevel.remove_parking_lot_breaker(me, lot)

        async with tether.open_nursery() as nursery:
            child = await nursery.start(sleeper)
            nursery.cancel_scope.cancel()
        # An exited task could never break the lot: refusing it beats a
        # registration that silently never fires.
        with pytest.raises(tether.BrokenResourceError, match="already exited"):
            lowlevel.add_parking_lot_breaker(child, lot)
        assert lot.broken_by == []
        # Breaking by hand in the name of an exited task is allowed.
        lot.break_lot(child)
        assert lot.broken_by == [child]

    tether.run(main)


def test_repark_into_a_broken_lot_wakes_the_moved_tasks_with_the_error():
    async def main():
        source = lowlevel.ParkingLot()
        broken = lowlevel.ParkingLot()
        broken.break_lot()
        errors = []
        async with tether.open_nursery() as nursery:
            nursery.start_soon(_park_and_report, source, errors)
            await wait_all_tasks_blocked()
            source.repark_all(broken)
        assert len(errors) == 1 and errors[0].startswith("Parking lot broken by")
        assert len(broken) == 0

    tether.run(main)


def test_count_must_be_a_non_negative_int_or_infinity():
    async def main():
        lot = lowlevel.ParkingLot()
        log = []
        async with tether.open_nursery() as nursery:
            for name in "abc":
                nursery.start_soon(parker, lot, name, log)
            await wait_all_tasks_blocked()
            with pytest.raises(ValueError, match="non-negative"):
                lot.unpark(count=-1)
            with pytest.raises(TypeError, match=r"int or math\.inf"):
                lot.unpark(count="2")
            # A refused count wakes nobody.
            assert len(lot) == 3
            assert lot.unpark(count=0) == []
            woken = lot.unpark(count=float("inf"))
            assert len(woken) == 3 and len(lot) == 0
        assert log == ["a", "b", "c"]

    tether.run(main)


def test_repr_tells_how_many_wait_and_whether_broken():
    async def main():
        lot = lowlevel.ParkingLot()
        async with tether.open_nursery() as nursery:
            nursery.start_soon(parker, lot, "a", [])
            await wait_all_tasks_blocked()
            assert "1 tasks parked" in repr(lot)
            assert "broken" not in repr(lot)
            lot.unpark()
        lot.break_lot()
        assert "broken" in repr(lot)

    tether.run(main)
