"""How well schedules() explores: bugs that need many decisions, realistic
components, cancellations, deadlocks, and the story a failure tells.

Every exploration runs with hypothesis derandomized (`exploration.explore`),
so "found within N examples" is a fixed fact for these programs; the bounds
leave room for hypothesis's generation changing between versions.
`benchmarks/explore_depth.py` measures the same over many random seeds.
"""

import asyncio
import functools

import pytest

import tether
from tether import aio
from tether.testing import HangError, MockClock, Schedule

from . import components
from .exploration import explore, failure_of, has_leaf

#: Every bug below must be found within this many examples.
BOUND = 10


# -- a bug that needs k decisions --------------------------------------------------


@pytest.mark.parametrize("k", range(3, 12))
def test_a_bug_needing_k_decisions_is_found_within_a_handful_of_examples(k):
    program = components.needs_k_decisions(k)
    tether.run(program)  # hidden from the default order
    Schedule().run(program)
    exploration = explore(program, max_examples=BOUND)
    assert exploration.first_failure is not None, f"k={k}: not found in {BOUND} examples"
    assert exploration.first_failure <= BOUND
    # Shrunk to exactly the decisions the bug needs: B first in each of the
    # k + 1 batches where both tasks can run.
    assert exploration.replay_text == " ".join(f"{number}:1" for number in range(1, k + 2))
    replayed = failure_of(program, exploration.reported)
    assert has_leaf(replayed, AssertionError)


def test_a_bug_that_reversing_every_batch_misses_is_found_too():
    program = components.overtakes_once
    # Hidden from the default order and from every batch reversed.
    assert failure_of(program, Schedule()) is None
    assert failure_of(program, Schedule.replay("1:1 2:1 3:1 4:1")) is None
    exploration = explore(program, max_examples=2 * BOUND)
    assert exploration.first_failure is not None
    assert exploration.first_failure <= 2 * BOUND
    assert exploration.replay_text == "1:1"


# -- realistic components ----------------------------------------------------------

COMPONENTS = [
    # (program, its fixed twin, the error, the shrunk decisions)
    (
        functools.partial(components.cache_clients, [5.0, 0.5]),
        functools.partial(components.cache_clients, [5.0, 0.5], fixed=True),
        KeyError,
        "1:1",
    ),
    (
        components.pool_borrowers,
        functools.partial(components.pool_borrowers, fixed=True),
        AssertionError,
        "1:1",
    ),
    (
        components.pool_borrowers_without_timeouts,
        functools.partial(components.pool_borrowers_without_timeouts, fixed=True),
        HangError,
        "1:1",
    ),
    (
        components.rate_limited_requests,
        functools.partial(components.rate_limited_requests, fixed=True),
        AssertionError,
        "2:1",
    ),
]
IDS = ["single-flight cache", "pool", "pool deadlock", "rate limiter"]


@pytest.mark.parametrize(("program", "fixed", "error_type", "decisions"), COMPONENTS, ids=IDS)
def test_a_component_bug_is_found_shrunk_and_replayed(program, fixed, error_type, decisions):
    # Hidden from an ordinary test and from the default order.
    tether.run(fixed, clock=MockClock(autojump_threshold=0))
    if error_type is not HangError:
        tether.run(program, clock=MockClock(autojump_threshold=0))
    assert failure_of(program, Schedule()) is None
    exploration = explore(program, max_examples=BOUND)
    assert exploration.first_failure is not None and exploration.first_failure <= BOUND
    assert has_leaf(exploration.error, error_type)
    # Shrunk to one decision against the default order.
    assert exploration.replay_text == decisions
    for _ in range(3):
        replayed = failure_of(program, exploration.reported)
        assert has_leaf(replayed, error_type)


@pytest.mark.parametrize(("program", "fixed", "error_type", "decisions"), COMPONENTS, ids=IDS)
def test_the_fixed_component_survives_exploration(program, fixed, error_type, decisions):
    exploration = explore(fixed, max_examples=100)
    assert exploration.error is None, exploration.error
    assert exploration.runs == 100


def test_the_story_of_a_failure():
    exploration = explore(components.rate_limited_requests, max_examples=BOUND)
    notes = exploration.notes
    story = notes[notes.index("How the run went") :]
    lines = story.splitlines()
    # (The total counts the kernel's own steps too, which the story leaves
    # out, so it follows the kernel's internals; the program's steps don't.)
    assert lines[0].startswith("How the run went: ")
    assert "steps, 2 scheduling decisions (1 not the default order, marked *)" in lines[0]
    # One line per step of the program's own tasks, in order, with the time,
    # the task (its arguments tell apart tasks of one function), where it
    # resumed and where it yielded.
    steps = [line for line in lines[1:] if "t=0" in line]
    assert [line.split()[0] for line in steps] == ["2", "3", "4", "*", "6", "7", "8"]
    assert "request('first', 0)   start -> tests/testing/components.py:" in steps[1]
    assert steps[1].endswith("in _record: await lowlevel.checkpoint()")
    assert "*  5  t=0  request('second', 1)  tests/testing/components.py:" in steps[3]
    assert steps[5].endswith("in _record -> exited")
    # The decision that differs from the default order is explained.
    assert (
        "^ decision 2: request('second', 1) ran before request('first', 0), "
        "which the default order runs first"
    ) in story


def test_a_replayed_deadlock_reports_the_task_tree_and_how_the_run_got_there():
    exploration = explore(components.pool_borrowers_without_timeouts, max_examples=BOUND)
    error = failure_of(components.pool_borrowers_without_timeouts, exploration.reported)
    assert isinstance(error, HangError) and error.reason == "deadlock"
    assert "under a schedule this is reported at once" in str(error)
    assert "components.pool_borrowers_without_timeouts.<locals>.patient'" in error.task_tree
    lines = "\n".join(error.__notes__).splitlines()
    [first_step] = [line for line in lines if line.startswith("  * ")]
    assert " impatient " in first_step and "start -> tests/testing/components.py:" in first_step
    [waiting] = [line for line in lines if " patient " in line]
    assert waiting.endswith("in borrow: await self._slots.acquire() (still there)")


# -- cancellations -------------------------------------------------------------------


def test_cancellations_find_a_bug_that_ordering_alone_cannot():
    program = components.cache_with_patient_clients
    # No deadline fires in time (a fetch takes 1 s, clients wait 5 s), so no
    # order of steps shows the bug...
    assert explore(program, max_examples=50).error is None
    # ...but a deadline firing at the wrong step does.
    exploration = explore(program, max_examples=30, cancellations=True)
    assert exploration.first_failure is not None
    assert has_leaf(exploration.error, KeyError)
    assert exploration.replay_text == "cancel@1"
    notes = exploration.notes
    assert "^ the schedule made the deadline (t=5) around client()#1 fire just before" in notes
    replayed = failure_of(program, exploration.reported)
    assert has_leaf(replayed, KeyError)
    fixed = functools.partial(program, fixed=True)
    assert explore(fixed, max_examples=100, cancellations=True).error is None


def test_a_cancellation_lands_where_the_replay_says():
    async def main():
        log = []
        with tether.move_on_after(10) as scope:
            for step in range(5):
                log.append(step)
                await tether.lowlevel.checkpoint()
        return log, scope.cancelled_caught, tether.current_time()

    # The first step is outside the scope: cancellable steps are the 2nd on.
    assert Schedule().run(main) == ([0, 1, 2, 3, 4], False, 0)
    assert Schedule.replay("cancel@1").run(main) == ([0], True, 0)
    assert Schedule.replay("cancel@3").run(main) == ([0, 1, 2], True, 0)
    assert Schedule.replay("cancel@9").run(main) == ([0, 1, 2, 3, 4], False, 0)


# -- asyncio-style code ----------------------------------------------------------------


async def aio_reader_and_writer():
    """asyncio code whose reader assumes the writer, created first, has run."""
    shared = {}

    async def writer():
        await asyncio.sleep(0)
        shared["config"] = "loaded"

    async def reader():
        await asyncio.sleep(0)
        assert "config" in shared, "the reader ran before the writer"

    await asyncio.gather(writer(), reader())


async def aio_task_and_callback():
    """asyncio code that assumes a ready task runs before a callback queued
    after it."""
    loop = asyncio.get_running_loop()
    events = []

    async def step():
        await asyncio.sleep(0)
        events.append("task")

    task = asyncio.create_task(step())
    await asyncio.sleep(0)
    loop.call_soon(events.append, "callback")
    await task
    assert events == ["task", "callback"], events


@pytest.mark.parametrize(
    ("program", "culprit"),
    [
        (aio_reader_and_writer, "(reader) ran before Task-"),
        (aio_task_and_callback, "tether.aio callbacks([<Handle list.append('callback')>]) ran"),
    ],
    ids=["tasks", "task and callback"],
)
def test_asyncio_style_code_is_explored(program, culprit):
    async def hosted():
        await aio.run_hosted(program())

    aio.run(program())  # hidden from the asyncio order
    assert failure_of(hosted, Schedule()) is None
    exploration = explore(hosted, max_examples=BOUND)
    assert exploration.first_failure is not None and exploration.first_failure <= BOUND
    assert has_leaf(exploration.error, AssertionError)
    assert len(exploration.replay_text.split()) == 1
    assert culprit in exploration.notes
    assert has_leaf(failure_of(hosted, exploration.reported), AssertionError)
