"""The kernel's scheduler hook: `run(scheduler=...)` and `lowlevel.Scheduler`."""

import pytest

import tether
from tether import lowlevel
from tether.testing import MockClock


class Recorder(lowlevel.Scheduler):
    """Records every batch it is given, then reverses it."""

    def __init__(self):
        self.batches = []
        self.blocked_calls = 0

    def schedule_batch(self, batch):
        self.batches.append([task.name for task in batch])
        batch.reverse()

    def all_tasks_blocked(self):
        self.blocked_calls += 1


async def two_workers(trace, steps=2):
    async def worker(name):
        for step in range(steps):
            trace.append((name, step))
            await lowlevel.checkpoint()

    async with tether.open_nursery() as nursery:
        nursery.start_soon(worker, "a", name="a")
        nursery.start_soon(worker, "b", name="b")


def test_the_scheduler_orders_every_batch():
    trace = []
    scheduler = Recorder()
    tether.run(two_workers, trace, scheduler=scheduler)
    # Reversed batches: b goes first every time.
    assert trace == [("b", 0), ("a", 0), ("b", 1), ("a", 1)]
    # Each batch arrives in spawn order, whatever order it ran in before.
    assert ["a", "b"] in scheduler.batches
    assert ["b", "a"] not in scheduler.batches


def test_without_a_scheduler_tasks_run_in_fifo_order():
    trace = []
    tether.run(two_workers, trace)
    assert trace == [("a", 0), ("b", 0), ("a", 1), ("b", 1)]


def test_the_base_scheduler_keeps_spawn_order():
    trace = []
    tether.run(two_workers, trace, scheduler=lowlevel.Scheduler())
    assert trace == [("a", 0), ("b", 0), ("a", 1), ("b", 1)]


def test_schedule_seed_is_a_seeded_scheduler():
    def trace_with(**kwargs):
        trace = []
        tether.run(two_workers, trace, 5, **kwargs)
        return trace

    for seed in range(5):
        assert trace_with(schedule_seed=seed) == trace_with(
            scheduler=lowlevel.SeededScheduler(seed)
        )
    assert repr(lowlevel.SeededScheduler(3)) == "SeededScheduler(3)"


def test_bad_scheduler_arguments():
    async def main():
        pass

    with pytest.raises(ValueError, match="not both"):
        tether.run(main, schedule_seed=1, scheduler=lowlevel.Scheduler())
    with pytest.raises(TypeError, match=r"must be a tether\.lowlevel\.Scheduler"):
        tether.run(main, scheduler=object())


def test_all_tasks_blocked_is_called_when_nothing_can_wake_a_task():
    class CancelWhenStuck(lowlevel.Scheduler):
        def __init__(self):
            self.calls = 0
            self.scope = None

        def all_tasks_blocked(self):
            self.calls += 1
            self.scope.cancel()

    scheduler = CancelWhenStuck()

    async def main():
        with tether.CancelScope() as scheduler.scope:
            await tether.Event().wait()
        return "unstuck"

    assert tether.run(main, scheduler=scheduler) == "unstuck"
    assert scheduler.calls == 1


def test_all_tasks_blocked_is_not_called_while_a_deadline_or_idle_waiter_can_wake_one():
    scheduler = Recorder()

    async def main():
        await tether.sleep(5)
        await tether.testing.wait_all_tasks_blocked()
        with tether.move_on_after(1):
            await tether.Event().wait()

    tether.run(main, scheduler=scheduler, clock=MockClock(autojump_threshold=0))
    assert scheduler.blocked_calls == 0


def test_an_exception_from_the_scheduler_ends_the_run_and_unwinds_tasks():
    class Stuck(Exception):
        pass

    class RaiseWhenStuck(lowlevel.Scheduler):
        def all_tasks_blocked(self):
            raise Stuck

    finally_ran = []

    async def waiter():
        try:
            await tether.Event().wait()
        finally:
            finally_ran.append(lowlevel.current_task().name)

    async def main():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(waiter, name="waiter")
            await tether.Event().wait()

    with pytest.raises(Stuck):
        tether.run(main, scheduler=RaiseWhenStuck())
    assert finally_ran == ["waiter"]


def test_an_exception_while_ordering_a_batch_ends_the_run_the_same_way():
    class Broken(Exception):
        pass

    class BreakOnSecondBatch(lowlevel.Scheduler):
        def __init__(self):
            self.batches = 0

        def schedule_batch(self, batch):
            self.batches += 1
            if self.batches == 3:
                raise Broken

    finally_ran = []

    async def main():
        try:
            for _ in range(10):
                await lowlevel.checkpoint()
        finally:
            finally_ran.append(True)

    with pytest.raises(Broken):
        tether.run(main, scheduler=BreakOnSecondBatch())
    assert finally_ran == [True]


def test_enclosing_deadline_scope():
    seen = {}

    async def main():
        task = lowlevel.current_task()
        seen["none"] = lowlevel.enclosing_deadline_scope(task)
        with tether.move_on_after(10) as outer:
            with tether.CancelScope():
                seen["outer"] = lowlevel.enclosing_deadline_scope(task) is outer
                with tether.CancelScope(shield=True):
                    seen["shielded"] = lowlevel.enclosing_deadline_scope(task)
                with tether.move_on_after(5) as inner:
                    seen["inner"] = lowlevel.enclosing_deadline_scope(task) is inner
                    inner.cancel()
                    # A cancelled scope's deadline can no longer fire.
                    seen["after cancel"] = lowlevel.enclosing_deadline_scope(task) is outer

    tether.run(main, clock=MockClock())
    assert seen == {
        "none": None,
        "outer": True,
        "shielded": None,
        "inner": True,
        "after cancel": True,
    }
