"""Schedule, Schedule.replay, schedules(): the API, and finding known races.

The races live in `races.py`. Each is explored the way a user's property
test explores it (``@given(schedule=schedules())`` on a `tether_test`), with
hypothesis derandomized so that "found within N examples" is a fixed fact,
not a probability. (`test_explore.py` has the harder cases.)
"""

import subprocess
import sys
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tether
from tether import lowlevel
from tether.testing import HangError, MockClock, Schedule, schedules, tether_test

from . import races
from .exploration import explore, failure_of, has_leaf

# Each race, the exception it causes, how many examples the explorer may
# need to find it, and how many decisions (or cancellations) against the
# default order its shrunk failure may keep. (Derandomized, so the actual
# counts are fixed; the bounds leave a margin for hypothesis's generation
# changing between versions.)
RACES = [
    (races.reader_before_writer, AssertionError, 10, 1),
    (races.lost_update, AssertionError, 10, 1),
    (races.cancelled_producer, AssertionError, 10, 2),
    (races.lock_order_inversion, tether.TooSlowError, 10, 2),
    (races.two_unlucky_decisions, AssertionError, 10, 4),
]
FIXED = [
    races.reader_after_writer,
    races.lost_update_fixed,
    races.cancelled_producer_fixed,
    races.lock_order_consistent,
]


def race_id(value):
    return getattr(value, "__name__", "")


@pytest.mark.parametrize("program", [race for race, *_ in RACES], ids=race_id)
def test_races_pass_under_the_default_schedule(program):
    # Which is why a plain test would never catch them.
    tether.run(program, clock=MockClock(autojump_threshold=0))
    Schedule().run(program)


@pytest.mark.parametrize(("program", "error_type", "bound", "decisions"), RACES, ids=race_id)
def test_exploration_finds_each_race_within_a_bound(program, error_type, bound, decisions):
    exploration = explore(program, max_examples=bound, shrink=False)
    assert exploration.first_failure is not None, f"not found in {bound} examples"
    assert exploration.first_failure <= bound
    assert has_leaf(exploration.error, error_type)


@pytest.mark.parametrize(("program", "error_type", "bound", "decisions"), RACES, ids=race_id)
def test_the_reported_schedule_is_shrunk_and_replays_the_failure(
    program, error_type, bound, decisions
):
    exploration = explore(program, max_examples=bound)
    text = exploration.replay_text
    assert 1 <= len(text.split()) <= decisions, text
    for _ in range(3):
        replayed = failure_of(program, exploration.reported)
        assert replayed is not None
        assert has_leaf(replayed, error_type)
        assert f'this run used Schedule.replay("{text}")' in "\n".join(replayed.__notes__)


@pytest.mark.parametrize("program", FIXED, ids=race_id)
def test_fixed_programs_survive_exploration(program):
    exploration = explore(program, max_examples=100)
    assert exploration.error is None, exploration.error
    assert exploration.runs == 100


def test_the_failure_says_how_to_replay_it():
    exploration = explore(races.lost_update, max_examples=20)
    text = exploration.replay_text
    notes = exploration.notes
    assert f'@hypothesis.example(schedule=Schedule.replay("{text}"))' in notes
    assert f'Schedule.replay("{text}").run(...)' in notes
    # And tells the run's story (only the final, shrunk example does).
    assert notes.count("How the run went") == 1


# -- Schedule ----------------------------------------------------------------------


async def trace_program():
    trace = []

    async def worker(name):
        for step in range(3):
            trace.append((name, step, tether.current_time()))
            await tether.sleep(0.5 if name == "a" else 0)

    async with tether.open_nursery() as nursery:
        for name in "abcd":
            nursery.start_soon(worker, name)
    return trace


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_a_seeded_schedule_replays_the_same_interleaving_and_timing(seed):
    schedule = Schedule(seed=seed)
    assert schedule.run(trace_program) == schedule.run(trace_program)


def test_different_seeds_give_different_interleavings():
    traces = {tuple(Schedule(seed=seed).run(trace_program)) for seed in range(20)}
    assert len(traces) > 10


def test_the_decisions_of_a_run_replay_it():
    for seed in range(10):
        schedule = Schedule(seed=seed)
        trace = schedule.run(trace_program)
        replay = schedule.last_run
        assert replay.seed is None
        assert replay.run(trace_program) == trace


def test_the_default_order_runs_tasks_in_the_order_they_were_started():
    async def main():
        order = []

        async def worker(name):
            await lowlevel.checkpoint()
            order.append(name)

        async with tether.open_nursery() as nursery:
            for name in "abc":
                nursery.start_soon(worker, name)
        return order

    assert Schedule().run(main) == ["a", "b", "c"]
    assert Schedule.replay("").run(main) == ["a", "b", "c"]
    # Decision 2 (the second step's batch: a, b, c) runs candidate 2 (c)
    # first; decision 3 then picks among a and b, by default a.
    assert Schedule.replay("3:2").run(main) == ["c", "a", "b"]
    assert Schedule.replay("3:2 4:1").run(main) == ["c", "b", "a"]


def test_schedule_runs_on_virtual_time_by_default():
    async def main():
        await tether.sleep(3600)
        return tether.current_time(), type(lowlevel.current_clock())

    assert Schedule(seed=1).run(main) == (3600, MockClock)


def test_a_mock_clock_given_to_a_schedule_starts_from_zero_each_run():
    clock = MockClock(autojump_threshold=0)
    clock.jump(100)

    async def main():
        start = tether.current_time()
        await tether.sleep(5)
        return lowlevel.current_clock(), start

    assert Schedule(seed=1).run(main, clock=clock) == (clock, 0)
    assert Schedule(seed=1).run(main, clock=clock) == (clock, 0)
    assert clock.current_time() == 5


def test_schedule_without_autojump_uses_the_given_clock():
    async def main():
        return lowlevel.current_clock()

    clock = MockClock()
    assert Schedule(seed=1, autojump=False).run(main, clock=clock) is clock
    assert not isinstance(Schedule(seed=1, autojump=False).run(main), MockClock)


class RealTime(tether.abc.Clock):
    def start_clock(self):
        pass

    def current_time(self):
        return time.perf_counter()

    def deadline_to_sleep_time(self, deadline):
        return deadline - self.current_time()


def test_a_virtual_time_schedule_refuses_a_clock_that_is_not_a_mock_clock():
    async def main():
        return lowlevel.current_clock()

    with pytest.raises(ValueError, match=r"runs on virtual time.*autojump=False"):
        Schedule(seed=1).run(main, clock=RealTime())
    clock = RealTime()
    assert Schedule(seed=1, autojump=False).run(main, clock=clock) is clock


def test_schedule_repr_equality_and_validation():
    assert repr(Schedule(seed=5)) == "Schedule(seed=5)"
    assert repr(Schedule(seed=5, autojump=False)) == "Schedule(seed=5, autojump=False)"
    assert repr(Schedule()) == 'Schedule.replay("")'
    assert repr(Schedule.replay(" 4:1   2:3 cancel@7 ")) == 'Schedule.replay("2:3 4:1 cancel@7")'
    assert repr(Schedule.replay("1:0", autojump=False)) == 'Schedule.replay("", autojump=False)'
    assert Schedule(seed=5) == Schedule(5)
    assert Schedule.replay("2:1") == Schedule.replay("2:1")
    assert hash(Schedule.replay("2:1")) == hash(Schedule.replay("2:1"))
    assert Schedule.replay("2:1") != Schedule.replay("2:2")
    with pytest.raises(TypeError):
        Schedule(seed="5")
    with pytest.raises(TypeError):
        Schedule(seed=True)
    with pytest.raises(TypeError):
        Schedule.replay(5)
    for bad in ["2", "a:1", "2:1:3", "0:1", "cancel@0", "cancel", "2:1 2:2"]:
        with pytest.raises(ValueError, match=r"Schedule\.replay"):
            Schedule.replay(bad)


def test_a_replay_that_does_not_fit_the_program_says_so():
    async def step():
        await lowlevel.checkpoint()

    async def main():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(step)
            nursery.start_soon(step)

    with pytest.raises(ValueError, match="decision 1 asks for candidate 5, but only 2 tasks"):
        Schedule.replay("1:5").run(main)


def test_the_replay_note_is_added_once_and_not_to_keyboard_interrupt():
    schedule = Schedule(seed=3)

    async def fails():
        raise ValueError("x")

    with pytest.raises(ValueError) as excinfo:
        schedule.run(fails)
    error = excinfo.value
    notes = list(error.__notes__)
    assert notes[0].startswith("tether: this run used Schedule(seed=3), which made the decisions")
    schedule.annotate(error)
    assert error.__notes__ == notes
    interrupt = KeyboardInterrupt()
    schedule.annotate(interrupt)
    assert not hasattr(interrupt, "__notes__")


def test_a_deadlock_under_a_schedule_is_reported_at_once_with_the_task_tree():
    async def wait_then_set(wait_for, then_set):
        await wait_for.wait()
        then_set.set()

    async def main():
        first, second = tether.Event(), tether.Event()
        async with tether.open_nursery() as nursery:
            nursery.start_soon(wait_then_set, first, second, name="A")
            nursery.start_soon(wait_then_set, second, first, name="B")

    # Outside pytest and without a hang timeout: the run does not hang.
    with pytest.raises(HangError) as excinfo:
        Schedule().run(main)
    error = excinfo.value
    assert error.reason == "deadlock"
    assert "task 'A'" in error.task_tree and "task 'B'" in error.task_tree
    assert "in wait_then_set: await wait_for.wait()" in error.task_tree
    notes = "\n".join(error.__notes__)
    assert 'this run used Schedule.replay("")' in notes
    assert "A (wait_then_set)  start -> " in notes and "(still there)" in notes


def test_a_deadlock_that_cancellation_cannot_end_still_ends_the_run():
    async def main():
        with tether.CancelScope(shield=True):
            await tether.Event().wait()

    with pytest.raises(HangError, match="deadlocked"):
        Schedule().run(main)


def test_a_worker_thread_is_not_a_deadlock():
    async def main():
        await tether.to_thread.run_sync(time.sleep, 0.05)
        return "done"

    assert Schedule().run(main) == "done"


def test_a_worker_thread_waiting_for_the_run_is_part_of_a_deadlock():
    # The thread is blocked in from_thread.run, in a call that waits
    # forever: nothing will ever report back.
    async def never():
        await tether.Event().wait()

    async def main():
        await tether.to_thread.run_sync(tether.from_thread.run, never)

    with pytest.raises(HangError, match="deadlocked"):
        Schedule().run(main)


def test_a_worker_thread_with_its_own_limiter_is_not_a_deadlock():
    async def main():
        limiter = tether.CapacityLimiter(1)
        await tether.to_thread.run_sync(time.sleep, 0.05, limiter=limiter)
        return "done"

    assert Schedule().run(main) == "done"


# -- schedules() -------------------------------------------------------------------


@given(schedule=schedules())
def test_schedules_draws_schedules(schedule):
    assert isinstance(schedule, Schedule)
    assert schedule.autojump
    assert schedule.last_run is None
    assert "drawn by hypothesis" in repr(schedule)


@given(schedule=schedules(autojump=False))
def test_schedules_without_autojump(schedule):
    assert not schedule.autojump


def test_tether_test_takes_clock_and_schedule_from_arguments():
    seen = {}

    @tether_test
    async def check(schedule=None, clock=None):
        seen["clock"] = lowlevel.current_clock()
        await tether.sleep(10)

    clock = MockClock(autojump_threshold=0)
    check(clock=clock)
    assert seen["clock"] is clock
    check(schedule=Schedule(seed=2))
    assert isinstance(seen["clock"], MockClock) and seen["clock"] is not clock
    with pytest.raises(ValueError, match="two clocks"):
        check(schedule=MockClock(), clock=MockClock())


def test_tether_testing_imports_without_hypothesis():
    code = (
        "import sys; sys.modules['hypothesis'] = None\n"
        "import tether.testing\n"
        "try:\n"
        "    tether.testing.schedules()\n"
        "except ImportError:\n"
        "    print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "ok"
