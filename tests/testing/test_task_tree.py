"""format_task_tree(): the picture of a run's tasks used in hang reports."""

import re

import pytest

import tether
from tether import lowlevel
from tether.testing import HangError, Schedule, format_task_tree, wait_all_tasks_blocked

pytestmark = pytest.mark.tether


def line(function):
    """The line of the first statement of `function`."""
    return function.__code__.co_firstlineno + 1


async def waits_for(event):
    await event.wait()


async def sleeps():
    await tether.sleep(100)


def without_tether_frames(tree):
    """The drawing's lines, with tether's own frames (whose line numbers
    change) shown as <tether> and addresses as 0x..."""
    lines = [re.sub(r"tether/\S+:\d+ in .*", "<tether>", line) for line in tree.splitlines()]
    return [re.sub(r"0x[0-9a-f]+", "0x...", line) for line in lines]


async def test_tasks_nest_under_their_nurseries_with_their_waits_and_frames(autojump_clock):
    event = tether.Event()
    async with tether.open_nursery() as outer:
        outer.start_soon(sleeps, name="sleeper")
        async with tether.open_nursery() as inner:
            inner.start_soon(waits_for, event, name="waiter")
            await wait_all_tasks_blocked()
            tree = format_task_tree(lowlevel.current_task())
            outer.cancel_scope.cancel()
    me = lowlevel.current_task().name
    here = line(test_tasks_nest_under_their_nurseries_with_their_waits_and_frames) + 6
    assert without_tether_frames(tree) == [
        f"task {me!r} (running)",
        "│   <tether>",  # the plugin's frames that call the test
        f"│   tests/testing/test_task_tree.py:{here} in "
        "test_tasks_nest_under_their_nurseries_with_their_waits_and_frames: "
        "tree = format_task_tree(lowlevel.current_task())",
        "├── nursery",
        "│   └── task 'sleeper'",
        "│           blocked: sleeping until 100.00 (in 100.00 s)",
        f"│           tests/testing/test_task_tree.py:{line(sleeps)} in sleeps: "
        "await tether.sleep(100)",
        "│           <tether>",
        "└── nursery",
        "    └── task 'waiter'",
        "            blocked: waiting for Event at 0x... to be set (1 task waiting)",
        f"            tests/testing/test_task_tree.py:{line(waits_for)} in waits_for: "
        "await event.wait()",
        "            <tether>",
    ]
    assert "(+1 frames in tether)" in tree  # tether.sleep, then the kernel's timed wait


async def test_scopes_that_say_something_are_drawn(autojump_clock):
    async with tether.open_nursery() as nursery:
        with tether.CancelScope(deadline=tether.current_time() + 5, shield=True):
            with tether.CancelScope():  # says nothing: not drawn
                nursery.start_soon(tether.sleep_forever, name="sleeper")
                await wait_all_tasks_blocked()
                nursery.cancel_scope.cancel(reason="done")
                tree = format_task_tree(lowlevel.current_task())
    lines = without_tether_frames(tree)
    assert lines[1] == "│   in cancel scope: deadline 5.00 (in 5.00 s), shielded"
    assert sum(1 for text in lines if "in cancel scope" in text) == 1
    (nursery_line,) = [text for text in lines if "nursery" in text]
    assert nursery_line.startswith("└── nursery (cancelled: explicit: done (by <Task ")
    # Woken by the cancellation, not stepped yet.
    assert "    └── task 'sleeper' (runnable)" in lines


async def test_a_snapshot_taken_earlier_is_drawn_as_it_was(autojump_clock):
    async with tether.open_nursery() as nursery:
        nursery.start_soon(tether.sleep_forever, name="sleeper")
        await wait_all_tasks_blocked()
        snapshot = lowlevel.current_task_tree()
        nursery.cancel_scope.cancel()
    assert "blocked: sleeping forever (until cancelled)" in format_task_tree(snapshot)


async def test_by_default_the_whole_run_is_drawn():
    tree = format_task_tree()
    assert tree.startswith("task '<init>' (system)\n│   blocked: at the end of its nursery's")
    assert f"task {lowlevel.current_task().name!r}" in tree


def test_outside_a_run_is_an_error():
    with pytest.raises(RuntimeError):
        format_task_tree()


def test_a_deadlock_report_says_what_each_task_waits_on():
    async def wait_then_set(wait_for, then_set):
        await wait_for.wait()
        then_set.set()

    async def main():
        first, second = tether.Event(), tether.Event()
        async with tether.open_nursery() as nursery:
            nursery.start_soon(wait_then_set, first, second, name="A")
            nursery.start_soon(wait_then_set, second, first, name="B")

    with pytest.raises(HangError) as excinfo:
        Schedule().run(main)
    tree = without_tether_frames(excinfo.value.task_tree)
    for name in ("A", "B"):
        index = next(i for i, text in enumerate(tree) if text.endswith(f"── task {name!r}"))
        assert tree[index + 1].endswith(
            "blocked: waiting for Event at 0x... to be set (1 task waiting)"
        )
