"""format_task_tree(): the picture of a run's tasks used in hang reports."""

import re

import pytest

import tether
from tether import lowlevel
from tether.testing import format_task_tree, wait_all_tasks_blocked

pytestmark = pytest.mark.tether


def line(function):
    """The line of the first statement of `function`."""
    return function.__code__.co_firstlineno + 1


async def waits_for(event):
    await event.wait()


async def sleeps():
    await tether.sleep(100)


async def test_tasks_nest_under_their_nurseries_with_their_await_frames(autojump_clock):
    event = tether.Event()
    async with tether.open_nursery() as outer:
        outer.start_soon(sleeps, name="sleeper")
        async with tether.open_nursery() as inner:
            inner.start_soon(waits_for, event, name="waiter")
            await wait_all_tasks_blocked()
            tree = format_task_tree(lowlevel.current_task())
            outer.cancel_scope.cancel()
    # tether's own frames (line numbers change) are shown as <tether>.
    lines = [re.sub(r"tether/\S+:\d+ in .*", "<tether>", line) for line in tree.splitlines()]
    me = lowlevel.current_task().name
    assert lines == [
        f"task {me!r} (running)",
        "│   <tether>",
        "├── nursery",
        "│   └── task 'sleeper'",
        f"│           tests/testing/test_task_tree.py:{line(sleeps)} in sleeps: "
        "await tether.sleep(100)",
        "│           <tether>",
        "└── nursery",
        "    └── task 'waiter'",
        f"            tests/testing/test_task_tree.py:{line(waits_for)} in waits_for: "
        "await event.wait()",
        "            <tether>",
    ]
    assert "(+1 frames in tether)" in tree  # tether.sleep, then the kernel's timed wait


async def test_by_default_the_whole_run_is_drawn():
    tree = format_task_tree()
    assert tree.startswith("task '<init>'")
    assert f"task {lowlevel.current_task().name!r}" in tree


def test_outside_a_run_is_an_error():
    with pytest.raises(RuntimeError):
        format_task_tree()
