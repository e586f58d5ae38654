"""The task tree of a tether.aio program: its tasks are aio tasks, shown by
their asyncio names with what they await."""

from __future__ import annotations

import asyncio
from typing import Any

import tether
from tether import aio, lowlevel
from tether.lowlevel import TaskTree, WaitInfo
from tether.testing import format_task_tree

from .conftest import run_virtual


def waiting_for(tree: TaskTree, name: str) -> WaitInfo:
    info = tree.find(name)
    assert info.state == "blocked", info
    assert info.waiting_for is not None
    return info.waiting_for


def test_aio_tasks_by_name_with_what_they_await() -> None:
    async def await_it(awaitable: Any) -> None:
        await awaitable

    async def main() -> tuple[TaskTree, dict[str, Any], str]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[int] = asyncio.Queue()
        lock = asyncio.Lock()
        await lock.acquire()
        future = loop.create_future()
        event = tether.Event()
        aio_event = aio.Event()
        reader = aio.StreamReader()
        objects = {
            "queue": queue,
            "lock": lock,
            "future": future,
            "event": event,
            "aio event": aio_event,
            "reader": reader,
        }
        tasks = [
            aio.create_task(queue.get(), name="queue"),
            aio.create_task(lock.acquire(), name="lock"),
            aio.create_task(aio.sleep(100), name="aio sleep"),
            aio.create_task(asyncio.sleep(30), name="asyncio sleep"),
            aio.create_task(await_it(future), name="future"),
            aio.create_task(await_it(event.wait()), name="tether event"),
            # (These two park: they await no future.)
            aio.create_task(aio_event.wait(), name="aio event"),
            aio.create_task(reader.read(1), name="aio read"),
        ]
        tasks.append(aio.create_task(await_it(tasks[4]), name="awaits a task"))
        await aio.sleep(1)
        tree = lowlevel.current_task_tree()
        text = format_task_tree(tree)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return tree, objects, text

    tree, objects, text = run_virtual(main())
    main_task = next(info for info in tree.tasks() if info.state == "running")
    assert main_task.name.startswith("Task-")  # asyncio's default name
    assert isinstance(main_task.task, asyncio.Future)  # an aio task is the kernel task
    assert [frame.function for frame in main_task.frames] == ["main"]

    wait = waiting_for(tree, "queue")
    assert wait.kind == "asyncio_future" and wait.details["primitive"] is objects["queue"]
    assert wait.description.startswith("in asyncio Queue.get() on <Queue at 0x")

    wait = waiting_for(tree, "lock")
    assert wait.kind == "asyncio_future" and wait.details["primitive"] is objects["lock"]
    assert "Lock.acquire()" in wait.description and "[locked, waiters:1]" in wait.description

    wait = waiting_for(tree, "aio event")
    assert (wait.kind, wait.target) == ("asyncio_future", objects["aio event"])
    assert wait.description.startswith("in asyncio Event.wait() on <tether.aio._event.Event object")
    assert wait.description.endswith("[unset, waiters:1]>")

    wait = waiting_for(tree, "aio read")
    assert (wait.kind, wait.target) == ("asyncio_future", objects["reader"])
    assert wait.description.startswith("in asyncio StreamReader._wait_for_data() on <StreamReader")

    wait = waiting_for(tree, "aio sleep")
    assert (wait.kind, wait.details["until"]) == ("sleep", 100.0)
    assert wait.description == "sleeping until 100.00 (in 99.00 s), in sleep()"
    wait = waiting_for(tree, "asyncio sleep")
    assert (wait.kind, wait.details["until"]) == ("sleep", 30.0)

    wait = waiting_for(tree, "future")
    assert (wait.kind, wait.target) == ("asyncio_future", objects["future"])
    assert "awaiting an asyncio future (pending, at 0x" in wait.description
    assert wait.description.endswith(
        "in test_aio_tasks_by_name_with_what_they_await.<locals>.await_it()"
    )

    wait = waiting_for(tree, "awaits a task")
    assert wait.kind == "asyncio_future" and "awaiting asyncio task 'future'" in wait.description

    # tether-native code in an aio task waits as in any task.
    wait = waiting_for(tree, "tether event")
    assert (wait.kind, wait.target) == ("event", objects["event"])

    assert "└── task 'awaits a task'\n" in text or "├── task 'awaits a task'\n" in text
    assert "blocked: sleeping until 100.00 (in 99.00 s), in sleep()" in text


def test_aio_tasks_live_in_the_loop_segments_nursery() -> None:
    async def child() -> None:
        await asyncio.sleep(10)

    async def main() -> TaskTree:
        task = aio.create_task(child(), name="child")
        await aio.sleep(0)
        tree = lowlevel.current_task_tree()
        task.cancel()
        return tree

    tree = run_virtual(main())
    child_info = tree.find("child")
    holder = next(
        info
        for info in tree.tasks()
        if any(child_info in nursery.children for nursery in info.nurseries)
    )
    siblings = {c.name for nursery in holder.nurseries for c in nursery.children}
    main_task = next(info for info in tree.tasks() if info.state == "running")
    assert {main_task.name, "child"} <= siblings
    assert main_task.name.startswith("Task-")  # asyncio's default name
