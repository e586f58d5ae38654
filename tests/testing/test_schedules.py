"""Exploring interleavings: Schedule, schedules(), and finding known races.

The races live in `races.py`. Each is explored the way a user's property
test explores it (``@given(schedule=schedules())`` on a `tether_test`), with
hypothesis derandomized so that "found within N examples" is a fixed fact,
not a probability.
"""

import re
import subprocess
import sys
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tether
from tether import lowlevel
from tether.testing import MockClock, Schedule, schedules, tether_test

from . import races


@dataclass
class Exploration:
    examples: list  # the schedules, in the order hypothesis ran them
    failing: list  # indexes into `examples` of the runs that failed
    error: BaseException | None  # what hypothesis finally raised

    @property
    def first_failure(self):
        return self.failing[0] if self.failing else None

    @property
    def reported_schedule(self):
        """The schedule named in the replay note of the reported error."""
        notes = "\n".join(getattr(self.error, "__notes__", ()))
        match = re.search(r"this run used Schedule\(seed=(\d+)\)", notes)
        assert match, notes
        return Schedule(seed=int(match.group(1)))


def explore(program, *, max_examples):
    """Property-test `program` under drawn schedules, as a user would."""
    examples = []
    failing = []

    @settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
        report_multiple_bugs=False,
    )
    @given(schedule=schedules())
    @tether_test
    async def property_test(schedule):
        examples.append(schedule)
        try:
            await program()
        except BaseException:
            failing.append(len(examples) - 1)
            raise

    try:
        property_test()
    except BaseException as exc:
        return Exploration(examples, failing, exc)
    return Exploration(examples, failing, None)


def failure_of(program, schedule):
    try:
        schedule.run(program)
    except BaseException as exc:
        return exc
    return None


# Each race, the exception it causes, and how many examples the explorer may
# need to find it (derandomized, so the actual count is fixed; the bounds
# leave a margin for hypothesis's generation changing between versions).
RACES = [
    (races.reader_before_writer, AssertionError, 20),
    (races.lost_update, AssertionError, 20),
    (races.cancelled_producer, AssertionError, 20),
    (races.lock_order_inversion, tether.TooSlowError, 20),
    (races.two_unlucky_decisions, AssertionError, 300),
]
FIXED = [
    races.reader_after_writer,
    races.lost_update_fixed,
    races.cancelled_producer_fixed,
    races.lock_order_consistent,
]


def race_id(value):
    return getattr(value, "__name__", "")


def leaves(exc):
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for e in exc.exceptions for leaf in leaves(e)]
    return [exc]


@pytest.mark.parametrize("program", [race for race, _, _ in RACES], ids=lambda p: p.__name__)
def test_races_pass_under_the_default_schedule(program):
    # Which is why a plain test would never catch them.
    tether.run(program, clock=MockClock(autojump_threshold=0))


@pytest.mark.parametrize(("program", "error_type", "bound"), RACES, ids=race_id)
def test_exploration_finds_each_race_within_a_bound(program, error_type, bound):
    exploration = explore(program, max_examples=bound)
    assert exploration.first_failure is not None, f"not found in {bound} examples"
    assert exploration.first_failure < bound
    assert any(isinstance(leaf, error_type) for leaf in leaves(exploration.error))


@pytest.mark.parametrize(("program", "error_type", "bound"), RACES, ids=race_id)
def test_the_reported_schedule_replays_the_failure(program, error_type, bound):
    exploration = explore(program, max_examples=bound)
    reported = exploration.reported_schedule
    # Hypothesis shrinks the seed: the reported one is no bigger than the
    # first that failed.
    assert reported.seed <= exploration.examples[exploration.first_failure].seed
    for _ in range(3):
        replayed = failure_of(program, reported)
        assert replayed is not None
        assert any(isinstance(leaf, error_type) for leaf in leaves(replayed))
        assert f"this run used {reported!r}" in "\n".join(replayed.__notes__)


@pytest.mark.parametrize("program", FIXED, ids=lambda p: p.__name__)
def test_fixed_programs_survive_exploration(program):
    exploration = explore(program, max_examples=100)
    assert exploration.error is None, exploration.error
    assert len(exploration.examples) == 100


def test_the_failure_names_the_schedule_and_how_to_replay_it():
    exploration = explore(races.lost_update, max_examples=20)
    notes = "\n".join(exploration.error.__notes__)
    seed = exploration.reported_schedule.seed
    assert f"@hypothesis.example(schedule=Schedule(seed={seed}))" in notes
    assert f"tether.run(..., schedule_seed={seed}, clock=MockClock(autojump_threshold=0))" in notes
    # hypothesis's own report names it too.
    assert f"schedule=Schedule(seed={seed})" in notes


# -- Schedule and schedules() ------------------------------------------------------


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
def test_a_schedule_replays_the_same_interleaving_and_timing(seed):
    schedule = Schedule(seed=seed)
    assert schedule.run(trace_program) == schedule.run(trace_program)


def test_different_seeds_give_different_interleavings():
    traces = {tuple(Schedule(seed=seed).run(trace_program)) for seed in range(20)}
    assert len(traces) > 10


def test_schedule_runs_on_virtual_time_by_default():
    async def main():
        await tether.sleep(3600)
        return tether.current_time(), type(lowlevel.current_clock())

    assert Schedule(seed=1).run(main) == (3600, MockClock)


def test_schedule_without_autojump_uses_the_given_clock():
    clock = MockClock(autojump_threshold=0)
    clock.jump(100)

    async def main():
        return lowlevel.current_clock()

    assert Schedule(seed=1, autojump=False).run(main, clock=clock) is clock
    assert not isinstance(Schedule(seed=1, autojump=False).run(main), MockClock)


def test_schedule_repr_and_validation():
    assert repr(Schedule(seed=5)) == "Schedule(seed=5)"
    assert repr(Schedule(seed=5, autojump=False)) == "Schedule(seed=5, autojump=False)"
    assert Schedule(seed=5) == Schedule(5)
    with pytest.raises(TypeError):
        Schedule(seed="5")
    with pytest.raises(TypeError):
        Schedule(seed=True)


def test_the_replay_note_is_added_once_and_not_to_keyboard_interrupt():
    schedule = Schedule(seed=3)

    async def fails():
        raise ValueError("x")

    with pytest.raises(ValueError) as excinfo:
        schedule.run(fails)
    error = excinfo.value
    schedule.annotate(error)
    assert error.__notes__ == [schedule.replay_note()]
    interrupt = KeyboardInterrupt()
    schedule.annotate(interrupt)
    assert not hasattr(interrupt, "__notes__")


@given(schedule=schedules())
def test_schedules_draws_schedules(schedule):
    assert isinstance(schedule, Schedule)
    assert 0 <= schedule.seed <= 2**32 - 1
    assert schedule.autojump


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
