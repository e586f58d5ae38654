"""Instrument hooks: order, add/remove at runtime, faulty instruments."""

import logging

import pytest

import tether
from tether import lowlevel
from tether.testing import MockClock, wait_all_tasks_blocked

HOOKS = (
    "before_run",
    "after_run",
    "task_spawned",
    "task_scheduled",
    "before_task_step",
    "after_task_step",
    "task_exited",
    "before_io_wait",
    "after_io_wait",
)


class Recorder(lowlevel.Instrument):
    def __init__(self):
        self.events = []

    def before_run(self):
        self.events.append(("before_run",))

    def after_run(self):
        self.events.append(("after_run",))

    def task_spawned(self, task):
        self.events.append(("task_spawned", task))

    def task_scheduled(self, task):
        self.events.append(("task_scheduled", task))

    def before_task_step(self, task):
        self.events.append(("before_task_step", task))

    def after_task_step(self, task):
        self.events.append(("after_task_step", task))

    def task_exited(self, task):
        self.events.append(("task_exited", task))

    def before_io_wait(self, timeout):
        self.events.append(("before_io_wait", timeout))

    def after_io_wait(self, timeout):
        self.events.append(("after_io_wait", timeout))

    def for_task(self, task):
        return [e[0] for e in self.events if len(e) == 2 and e[1] is task]


def check_task_lifecycle(names):
    """A task's own events: spawned first; every step is preceded by exactly
    one scheduling (a task is never queued twice); steps alternate
    before/after; it exits exactly once, during or after its last step."""
    assert names[0] == "task_spawned"
    assert names.count("task_spawned") == 1
    assert names.count("task_exited") == 1
    exited_at = names.index("task_exited")
    last_step = len(names) - 1 - names[::-1].index("before_task_step")
    assert exited_at > last_step, names
    pending = 0
    in_step = False
    for name in names[1:]:
        if name == "task_scheduled":
            pending += 1
            assert pending == 1, names
        elif name == "before_task_step":
            assert not in_step, names
            assert pending == 1, names
            pending -= 1
            in_step = True
        elif name == "after_task_step":
            assert in_step, names
            in_step = False
    assert not in_step
    assert pending == 0
    assert names.count("before_task_step") >= 1


def test_hook_sequence_for_simple_run():
    rec = Recorder()
    tasks = {}

    async def child():
        tasks["child"] = lowlevel.current_task()
        await lowlevel.checkpoint()
        await lowlevel.checkpoint()

    async def main():
        tasks["main"] = lowlevel.current_task()
        async with tether.open_nursery() as nursery:
            nursery.start_soon(child)
        return "ok"

    assert tether.run(main, instruments=[rec]) == "ok"
    assert rec.events[0] == ("before_run",)
    assert rec.events[-1] == ("after_run",)
    assert sum(1 for e in rec.events if e[0] in ("before_run", "after_run")) == 2
    for task in tasks.values():
        check_task_lifecycle(rec.for_task(task))
    # child did at least three steps (start + two checkpoints)
    assert rec.for_task(tasks["child"]).count("before_task_step") >= 3
    # the child is spawned while main is stepping
    main_steps = [i for i, e in enumerate(rec.events) if e == ("before_task_step", tasks["main"])]
    child_spawn = rec.events.index(("task_spawned", tasks["child"]))
    assert main_steps[0] < child_spawn


def test_task_steps_do_not_overlap():
    rec = Recorder()

    async def worker():
        for _ in range(3):
            await lowlevel.checkpoint()

    async def main():
        async with tether.open_nursery() as nursery:
            for _ in range(4):
                nursery.start_soon(worker)

    tether.run(main, instruments=[rec])
    current = None
    for event in rec.events:
        if event[0] == "before_task_step":
            assert current is None
            current = event[1]
        elif event[0] == "after_task_step":
            assert current is event[1]
            current = None
    assert current is None


def test_io_wait_hooks_pair_up():
    rec = Recorder()

    async def main():
        await tether.sleep(3)
        await lowlevel.checkpoint()

    tether.run(main, clock=MockClock(autojump_threshold=0), instruments=[rec])
    io = [e for e in rec.events if e[0] in ("before_io_wait", "after_io_wait")]
    assert io, "no io wait hooks were called"
    for before, after in zip(io[0::2], io[1::2], strict=True):
        assert before[0] == "before_io_wait"
        assert after[0] == "after_io_wait"
        assert before[1] == after[1]
        assert before[1] >= 0


def test_partial_instrument_only_needs_some_hooks():
    class Counter(lowlevel.Instrument):
        def __init__(self):
            self.steps = 0

        def before_task_step(self, task):
            self.steps += 1

    counter = Counter()

    async def main():
        for _ in range(5):
            await lowlevel.checkpoint()

    tether.run(main, instruments=[counter])
    assert counter.steps >= 6


def test_add_and_remove_instrument_during_run():
    rec = Recorder()
    marks = {}

    async def main():
        me = lowlevel.current_task()
        await lowlevel.checkpoint()
        lowlevel.add_instrument(rec)
        marks["added"] = len(rec.events)
        await lowlevel.checkpoint()
        await lowlevel.checkpoint()
        lowlevel.remove_instrument(rec)
        marks["removed"] = len(rec.events)
        await lowlevel.checkpoint()
        with pytest.raises(KeyError):
            lowlevel.remove_instrument(rec)
        return me

    me = tether.run(main)
    assert marks["added"] == 0
    assert ("before_run",) not in rec.events
    assert ("after_run",) not in rec.events
    assert len(rec.events) == marks["removed"]
    assert rec.for_task(me).count("before_task_step") == 2


def test_added_instrument_sees_after_run():
    rec = Recorder()

    async def main():
        lowlevel.add_instrument(rec)
        await lowlevel.checkpoint()

    tether.run(main)
    assert rec.events[-1] == ("after_run",)


def test_instrument_that_raises_is_removed_and_logged(caplog):
    class Exploding(lowlevel.Instrument):
        def __init__(self):
            self.calls = 0

        def before_task_step(self, task):
            self.calls += 1
            raise RuntimeError("instrument exploded")

    bad = Exploding()
    good = Recorder()

    async def main():
        for _ in range(3):
            await lowlevel.checkpoint()
        return "survived"

    with caplog.at_level(logging.ERROR):
        assert tether.run(main, instruments=[bad, good]) == "survived"
    assert bad.calls == 1
    assert sum(1 for e in good.events if e[0] == "before_task_step") >= 4
    logged = [
        r
        for r in caplog.records
        if r.exc_info
        and isinstance(r.exc_info[1], RuntimeError)
        and "instrument exploded" in str(r.exc_info[1])
    ]
    assert len(logged) == 1


def test_instrument_raising_in_before_run_is_removed(caplog):
    class BadStart(lowlevel.Instrument):
        def __init__(self):
            self.steps = 0

        def before_run(self):
            raise ValueError("nope")

        def before_task_step(self, task):
            self.steps += 1  # pragma: no cover

    bad = BadStart()

    async def main():
        await lowlevel.checkpoint()
        return 7

    with caplog.at_level(logging.ERROR):
        assert tether.run(main, instruments=[bad]) == 7
    assert bad.steps == 0
    assert any(r.exc_info and isinstance(r.exc_info[1], ValueError) for r in caplog.records)


def test_task_spawned_reports_child_with_parent_running():
    rec = Recorder()
    seen = {}

    async def child():
        seen["child"] = lowlevel.current_task()

    async def main():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(child, name="instrumented-child")
            await wait_all_tasks_blocked()

    tether.run(main, instruments=[rec])
    spawned = [e[1] for e in rec.events if e[0] == "task_spawned"]
    assert seen["child"] in spawned
    assert seen["child"].name == "instrumented-child"
    check_task_lifecycle(rec.for_task(seen["child"]))


def test_hook_names_exist_on_base_class():
    for hook in HOOKS:
        assert hasattr(lowlevel.Instrument, hook), hook


def test_io_wait_hooks_see_every_turn_even_when_nothing_waits():
    # With an I/O-wait hook installed, the loop polls for I/O (timeout 0)
    # on turns where tasks are runnable, instead of skipping the poll.
    class IOWaits(lowlevel.Instrument):
        def __init__(self):
            self.timeouts = []

        def before_io_wait(self, timeout):
            self.timeouts.append(timeout)

    hook = IOWaits()

    async def main():
        for _ in range(3):
            await lowlevel.checkpoint()

    tether.run(main, instruments=[hook])
    assert len(hook.timeouts) >= 3
    assert set(hook.timeouts) == {0.0}


def test_hooks_are_read_when_installed():
    class Empty(lowlevel.Instrument):
        pass

    empty = Empty()
    steps = []

    async def main():
        me = lowlevel.current_task()
        # Installed with no hooks; a hook added to the object later is not
        # called until the instrument is installed again.
        empty.before_task_step = steps.append
        await lowlevel.checkpoint()
        assert steps == []
        lowlevel.remove_instrument(empty)
        lowlevel.add_instrument(empty)
        lowlevel.add_instrument(empty)  # already installed: no second copy
        await lowlevel.checkpoint()
        await lowlevel.checkpoint()
        lowlevel.remove_instrument(empty)
        await lowlevel.checkpoint()
        return me

    me = tether.run(main, instruments=[empty])
    assert steps == [me, me]


def test_an_instrument_whose_hook_cannot_be_read_is_not_installed():
    class Unreadable(lowlevel.Instrument):
        def task_exited(self, task):  # pragma: no cover - never installed
            raise AssertionError("called although the install failed")

        @property
        def after_run(self):
            raise LookupError("cannot read this hook")

    unreadable = Unreadable()

    async def main():
        with pytest.raises(LookupError, match="cannot read"):
            lowlevel.add_instrument(unreadable)
        # Nothing of it was installed: removing it is an error.
        with pytest.raises(KeyError):
            lowlevel.remove_instrument(unreadable)
        async with tether.open_nursery() as nursery:
            nursery.start_soon(lowlevel.checkpoint)

    tether.run(main)


def test_hooks_are_found_at_install_and_looked_up_at_each_call():
    calls = []

    class Spawns:  # not derived from Instrument: any object will do
        def task_spawned(self, task):
            calls.append("spawned")

    spawns = Spawns()

    async def main():
        # A hook it already has, replaced: used from now on.
        spawns.task_spawned = lambda task: calls.append("replaced")
        # A hook it did not have when installed: not called yet.
        spawns.task_exited = lambda task: calls.append("exited")
        calls.clear()
        async with tether.open_nursery() as nursery:
            nursery.start_soon(lowlevel.checkpoint)
        assert calls == ["replaced"]
        calls.clear()
        lowlevel.remove_instrument(spawns)
        lowlevel.add_instrument(spawns)
        async with tether.open_nursery() as nursery:
            nursery.start_soon(lowlevel.checkpoint)
        assert calls == ["replaced", "exited"]

    tether.run(main, instruments=[spawns])
