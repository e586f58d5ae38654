"""current_task_tree(): a snapshot of a run's tasks, nurseries, cancel scopes,
and what each blocked task waits on."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

import pytest

import tether
from tether import lowlevel
from tether.lowlevel import TaskInfo, TaskTree, WaitInfo
from tether.testing import MockClock, wait_all_tasks_blocked


def run(async_fn: Callable[[], Any]) -> Any:
    return tether.run(async_fn, clock=MockClock(autojump_threshold=0))


async def snapshot_when_settled() -> TaskTree:
    """The tree once every other task is blocked (taken inside a shielded
    scope of its own, so the caller's scopes show how they nest)."""
    await wait_all_tasks_blocked()
    return lowlevel.current_task_tree()


def waiting_for(tree: TaskTree, name: str) -> WaitInfo:
    info = tree.find(name)
    assert info.state == "blocked", info
    assert info.waiting_for is not None
    return info.waiting_for


# -- structure -------------------------------------------------------------------


def test_nested_nurseries_hold_their_tasks_in_start_order() -> None:
    async def parent_of_two() -> None:
        async with tether.open_nursery() as inner:
            inner.start_soon(tether.sleep_forever, name="grandchild-1")
            inner.start_soon(tether.sleep_forever, name="grandchild-2")

    async def main() -> TaskTree:
        async with tether.open_nursery() as nursery:
            nursery.start_soon(tether.sleep_forever, name="first")
            nursery.start_soon(parent_of_two, name="parent")
            nursery.start_soon(tether.sleep_forever, name="last")
            tree = await snapshot_when_settled()
            nursery.cancel_scope.cancel()
        return tree

    tree = run(main)
    assert tree.root.name == "<init>" and tree.root.system
    me = next(info for info in tree.tasks() if info.state == "running")
    assert [len(n.children) for n in me.nurseries] == [3]
    assert [child.name for child in me.nurseries[0].children] == ["first", "parent", "last"]
    parent = tree.find("parent")
    assert [c.name for c in parent.nurseries[0].children] == ["grandchild-1", "grandchild-2"]
    assert parent.waiting_for is not None and parent.waiting_for.kind == "nursery"
    assert parent.waiting_for.details["tasks"] == tuple(
        child.task for child in parent.nurseries[0].children
    )
    assert not me.nurseries[0].block_exited and parent.nurseries[0].block_exited
    # Depth first, in start order.
    names = [info.name for info in me.walk()]
    assert names[1:] == ["first", "parent", "grandchild-1", "grandchild-2", "last"]
    with pytest.raises(LookupError):
        tree.find("nobody")


def test_states_running_runnable_and_blocked() -> None:
    async def main() -> TaskTree:
        async with tether.open_nursery() as nursery:
            nursery.start_soon(tether.sleep_forever, name="blocked")
            await wait_all_tasks_blocked()
            nursery.start_soon(tether.sleep_forever, name="new")
            tree = lowlevel.current_task_tree()
            nursery.cancel_scope.cancel()
        return tree

    tree = run(main)
    assert tree.find("blocked").state == "blocked"
    assert tree.find("new").state == "runnable" and tree.find("new").waiting_for is None
    running = [info for info in tree.tasks() if info.state == "running"]
    assert len(running) == 1 and running[0].waiting_for is None


def test_the_running_task_shows_its_stack_down_to_the_call() -> None:
    async def helper() -> TaskTree:
        return lowlevel.current_task_tree()

    async def main() -> TaskTree:
        return await helper()

    tree = run(main)
    running = next(info for info in tree.tasks() if info.state == "running")
    assert [frame.function for frame in running.frames] == ["main", "helper"]
    location = running.location
    assert location is not None and location.filename == __file__
    assert str(location) == f"{__file__}:{helper.__code__.co_firstlineno + 1} in helper"


def test_a_blocked_task_is_located_at_its_innermost_await_frame() -> None:
    async def sleeper() -> None:
        await tether.sleep(10)

    async def main() -> TaskTree:
        async with tether.open_nursery() as nursery:
            nursery.start_soon(sleeper, name="sleeper")
            tree = await snapshot_when_settled()
            nursery.cancel_scope.cancel()
        return tree

    info = run(main).find("sleeper")
    functions = [frame.function for frame in info.frames]
    assert functions[0] == "sleeper"
    assert functions[-1] == "sleep_until"  # the kernel's timed wait
    assert info.frames[0].lineno == sleeper.__code__.co_firstlineno + 1


def stack_depth() -> int:
    depth, frame = 0, sys._getframe()
    while frame is not None:
        depth, frame = depth + 1, frame.f_back  # type: ignore[assignment]
    return depth


def test_taking_and_drawing_a_tree_needs_no_recursion() -> None:
    # Deeper than the recursion limit set around the snapshot below (the
    # kernel itself unwinds nested nurseries recursively, so the tree
    # cannot be deeper than Python's usual limit).
    depth = 150

    async def nest(level: int) -> None:
        if level == depth:
            await tether.sleep_forever()
            return
        async with tether.open_nursery() as nursery:
            nursery.start_soon(nest, level + 1, name=f"level {level + 1}")

    async def main() -> tuple[TaskTree, str]:
        async with tether.open_nursery() as nursery:
            nursery.start_soon(nest, 0, name="level 0")
            await wait_all_tasks_blocked()
            limit = sys.getrecursionlimit()
            sys.setrecursionlimit(stack_depth() + 50)
            try:
                tree = lowlevel.current_task_tree()
                text = tether.testing.format_task_tree(tree)
            finally:
                sys.setrecursionlimit(limit)
            nursery.cancel_scope.cancel()
        return tree, text

    tree, text = run(main)
    assert sum(1 for info in tree.tasks() if info.name.startswith("level ")) == depth + 1
    assert f"task 'level {depth}'" in text


# -- cancel scopes ------------------------------------------------------------------


def test_cancel_scopes_with_deadlines_shields_and_cancellations() -> None:
    async def shielded_sleeper() -> None:
        with tether.CancelScope(deadline=50, shield=True):
            await tether.sleep_forever()

    async def main() -> tuple[TaskTree, tether.CancelScope, tether.CancelScope]:
        with tether.CancelScope(deadline=20) as outer:
            async with tether.open_nursery() as nursery:
                nursery.start_soon(shielded_sleeper, name="shielded")
                nursery.start_soon(tether.sleep_forever, name="plain")
                with tether.CancelScope(shield=True):
                    await wait_all_tasks_blocked()
                    nursery.cancel_scope.cancel(reason="enough of this")
                    tree = lowlevel.current_task_tree()
                nursery.cancel_scope.deadline = math.inf
                # The shielded task is still there; let its deadline end it.
        return tree, outer, nursery.cancel_scope

    tree, outer, nursery_scope = run(main)
    me = next(info for info in tree.tasks() if info.state == "running")
    # Innermost first: the shield, the nursery's scope, the outer scope.
    scopes = me.cancel_scopes
    assert [scope.shield for scope in scopes[:3]] == [True, False, False]
    assert scopes[1].scope is nursery_scope and scopes[1].nursery is me.nurseries[0].nursery
    assert scopes[2].scope is outer and scopes[2].deadline == 20 and scopes[2].nursery is None
    nursery = me.nurseries[0].cancel_scope
    assert nursery.cancel_called and nursery.cancelled
    assert nursery.cancel_reason is not None
    assert nursery.cancel_reason.startswith("explicit: enough of this (by <Task")
    assert not scopes[0].cancelled and scopes[0].cancel_reason is None
    # The shield keeps the nursery's cancellation and the outer deadline out.
    assert me.effective_deadline == math.inf

    shielded = tree.find("shielded")
    assert len(shielded.cancel_scopes) == 1
    (own,) = shielded.cancel_scopes
    assert (own.deadline, own.shield, own.cancel_called, own.cancelled) == (50, True, False, False)
    assert shielded.effective_deadline == 50
    assert shielded.state == "blocked"
    # The unshielded one was woken with Cancelled (not stepped yet).
    plain = tree.find("plain")
    assert plain.state == "runnable" and plain.effective_deadline == -math.inf


def test_a_passed_deadline_is_reported_but_not_acted_on() -> None:
    # The snapshot reads the scope; `cancel_called` (the property) would
    # cancel a scope whose deadline passed.
    clock = MockClock()

    async def main() -> None:
        with tether.CancelScope(deadline=1) as scope:
            clock.jump(2)
            tree = lowlevel.current_task_tree()
            running = next(info for info in tree.tasks() if info.state == "running")
            assert running.cancel_scopes[0].deadline == 1
            assert not running.cancel_scopes[0].cancel_called
            assert tree.now == 2
            # Not a checkpoint either: nothing raised Cancelled. The
            # property does act on the passed deadline:
            assert scope.cancel_called

    tether.run(main, clock=clock)


# -- what a blocked task waits on -----------------------------------------------------


def test_sleeping_until_a_deadline_on_the_runs_clock() -> None:
    async def main() -> TaskTree:
        async with tether.open_nursery() as nursery:
            nursery.start_soon(tether.sleep, 5, name="sleep")
            nursery.start_soon(tether.sleep_until, 7.5, name="sleep_until")
            nursery.start_soon(tether.sleep_forever, name="forever")
            tree = await snapshot_when_settled()
            nursery.cancel_scope.cancel()
        return tree

    tree = run(main)
    sleep = waiting_for(tree, "sleep")
    assert sleep.kind == "sleep" and sleep.details["until"] == 5.0
    assert sleep.description == "sleeping until 5.00 (in 5.00 s)"
    assert waiting_for(tree, "sleep_until").details["until"] == 7.5
    forever = waiting_for(tree, "forever")
    assert forever.kind == "sleep" and forever.details["until"] == math.inf
    assert forever.description == "sleeping forever (until cancelled)"


def test_event_lock_semaphore_condition_and_capacity_limiter() -> None:
    event = tether.Event()
    lock = tether.Lock()
    semaphore = tether.Semaphore(0)
    condition = tether.Condition()
    limiter = tether.CapacityLimiter(1)

    async def hold(primitive: Any) -> None:
        async with primitive:
            await tether.sleep_forever()

    async def wait_on_condition() -> None:
        async with condition:
            await condition.wait()

    async def main() -> TaskTree:
        async with tether.open_nursery() as nursery:
            nursery.start_soon(hold, lock, name="lock holder")
            nursery.start_soon(hold, limiter, name="limiter holder")
            await wait_all_tasks_blocked()
            nursery.start_soon(event.wait, name="event")
            nursery.start_soon(lock.acquire, name="lock")
            nursery.start_soon(semaphore.acquire, name="semaphore")
            nursery.start_soon(wait_on_condition, name="condition")
            nursery.start_soon(limiter.acquire, name="limiter")
            tree = await snapshot_when_settled()
            nursery.cancel_scope.cancel()
        return tree

    tree = run(main)
    wait = waiting_for(tree, "event")
    assert (wait.kind, wait.target) == ("event", event)
    assert f"Event at {id(event):#x}" in wait.description

    wait = waiting_for(tree, "lock")
    assert (wait.kind, wait.target) == ("lock", lock)
    assert wait.details["owner"] is tree.find("lock holder").task
    assert "held by task 'lock holder'" in wait.description

    wait = waiting_for(tree, "semaphore")
    assert (wait.kind, wait.target, wait.details["value"]) == ("semaphore", semaphore, 0)

    wait = waiting_for(tree, "condition")
    assert (wait.kind, wait.target) == ("condition", condition)
    assert "until notified" in wait.description

    wait = waiting_for(tree, "limiter")
    assert (wait.kind, wait.target) == ("capacity_limiter", limiter)
    holder = tree.find("limiter holder").task
    assert wait.details["borrowers"] == (holder,)
    assert wait.details["borrower"] is tree.find("limiter").task
    assert "1/1 tokens borrowed (by 'limiter holder'" in wait.description


def test_a_notified_condition_waiter_waits_for_the_lock() -> None:
    condition = tether.Condition()

    async def waiter() -> None:
        async with condition:
            await condition.wait()

    async def main() -> TaskTree:
        async with tether.open_nursery() as nursery:
            nursery.start_soon(waiter, name="waiter")
            await wait_all_tasks_blocked()
            async with condition:
                condition.notify()
                tree = lowlevel.current_task_tree()
        return tree

    wait = waiting_for(run(main), "waiter")
    assert (wait.kind, wait.target) == ("lock", condition._lock)


def test_memory_channel_send_and_receive() -> None:
    async def main() -> tuple[TaskTree, Any, Any]:
        full_send, _full_receive = tether.open_memory_channel[int](1)
        _empty_send, empty_receive = tether.open_memory_channel[int](0)
        full_send.send_nowait(1)
        async with tether.open_nursery() as nursery:
            nursery.start_soon(full_send.send, 2, name="sender")
            nursery.start_soon(empty_receive.receive, name="receiver")
            tree = await snapshot_when_settled()
            nursery.cancel_scope.cancel()
        return tree, full_send, empty_receive

    tree, full_send, empty_receive = run(main)
    wait = waiting_for(tree, "sender")
    assert (wait.kind, wait.target) == ("channel_send", full_send)
    assert wait.details["current_buffer_used"] == 1 and wait.details["max_buffer_size"] == 1
    assert "the buffer is full (1/1)" in wait.description
    wait = waiting_for(tree, "receiver")
    assert (wait.kind, wait.target) == ("channel_receive", empty_receive)
    assert wait.details["current_buffer_used"] == 0
    assert "buffer empty, 1 send handle open" in wait.description


class Gate:
    """A primitive of the user's own, built on a ParkingLot."""

    def __init__(self) -> None:
        self._waiters = lowlevel.ParkingLot()

    async def wait(self) -> None:
        await self._waiters.park()


def test_parking_lots_with_and_without_a_known_owner() -> None:
    gate = Gate()
    lot = lowlevel.ParkingLot()

    async def main() -> TaskTree:
        async with tether.open_nursery() as nursery:
            nursery.start_soon(gate.wait, name="gate")
            nursery.start_soon(lot.park, name="bare lot")
            tree = await snapshot_when_settled()
            nursery.cancel_scope.cancel()
        return tree

    tree = run(main)
    wait = waiting_for(tree, "gate")
    assert (wait.kind, wait.target, wait.details["owner"]) == ("parking_lot", gate._waiters, gate)
    assert f"parked in the ParkingLot of <{Gate.__module__}.Gate object at" in wait.description
    wait = waiting_for(tree, "bare lot")
    assert (wait.kind, wait.target) == ("parking_lot", lot)


def test_sockets_wait_readable_and_writable_with_their_addresses() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    server, _ = listener.accept()
    listener.close()
    client.setblocking(False)
    # Fill the client's send buffer, so that it waits to be writable.
    try:
        while True:
            client.send(b"x" * 65536)
    except BlockingIOError:
        pass
    left, right = socket.socketpair()

    async def main() -> TaskTree:
        async with tether.open_nursery() as nursery:
            nursery.start_soon(lowlevel.wait_writable, client, name="writer")
            nursery.start_soon(lowlevel.wait_readable, left, name="reader")
            tree = await snapshot_when_settled()
            nursery.cancel_scope.cancel()
        return tree

    try:
        tree = run(main)
        wait = waiting_for(tree, "writer")
        assert (wait.kind, wait.target) == ("wait_writable", client.fileno())
        assert wait.details["peer"] == server.getsockname()
        assert wait.details["local"] == client.getsockname()
        host, port = client.getsockname()
        assert f"socket fd {client.fileno()} (INET stream {host}:{port} -> " in wait.description
        assert wait.description.endswith("is writable")
        wait = waiting_for(tree, "reader")
        assert (wait.kind, wait.target) == ("wait_readable", left.fileno())
        assert "UNIX stream" in wait.description and wait.description.endswith("is readable")
    finally:
        for sock in (client, server, left, right):
            sock.close()


def test_a_pipe_is_named_by_what_it_is() -> None:
    read_end, write_end = os.pipe()

    async def main() -> TaskTree:
        async with tether.open_nursery() as nursery:
            nursery.start_soon(lowlevel.wait_readable, read_end, name="reader")
            tree = await snapshot_when_settled()
            nursery.cancel_scope.cancel()
        return tree

    try:
        wait = waiting_for(run(main), "reader")
    finally:
        os.close(read_end)
        os.close(write_end)
    assert (wait.kind, wait.details["fd"]) == ("wait_readable", read_end)
    if sys.platform == "linux":
        assert wait.details["file"].startswith("pipe:")


def test_a_worker_thread_by_name() -> None:
    release = threading.Event()

    def blocking_job() -> str:
        release.wait()
        return "done"

    async def main() -> TaskTree:
        async with tether.open_nursery() as nursery:

            async def call() -> None:
                assert (
                    await tether.to_thread.run_sync(blocking_job, thread_name="slow job") == "done"
                )

            nursery.start_soon(call, name="caller")
            await wait_all_tasks_blocked()
            tree = lowlevel.current_task_tree()
            release.set()
        return tree

    wait = waiting_for(run(main), "caller")
    assert wait.kind == "thread" and wait.details["thread"] == "slow job"
    assert wait.details["function"] is blocking_job
    assert "thread 'slow job'" in wait.description and "blocking_job" in wait.description


def test_a_worker_thread_waiting_for_from_thread_run() -> None:
    release = tether.Event()

    async def wait_for_release() -> str:
        await release.wait()
        return "released"

    def job() -> str:
        result: str = tether.from_thread.run(wait_for_release)
        return result

    async def main() -> TaskTree:
        async with tether.open_nursery() as nursery:

            async def call() -> None:
                # Abandonable: the thread's call runs in a system task.
                result = await tether.to_thread.run_sync(
                    job, thread_name="asks the run", abandon_on_cancel=True
                )
                assert result == "released"

            nursery.start_soon(call, name="caller")
            # Until the system task running wait_for_release is blocked.
            while not any(
                info.name.endswith("wait_for_release") and info.state == "blocked"
                for info in lowlevel.current_task_tree().tasks()
            ):
                await wait_all_tasks_blocked()
            tree = lowlevel.current_task_tree()
            release.set()
        return tree

    tree = run(main)
    wait = waiting_for(tree, "caller")
    assert wait.kind == "from_thread"
    assert wait.details["thread"] == "asks the run"
    assert wait.details["from_thread"] is not None
    assert "tether.from_thread.run(" in wait.description
    system_task = next(info for info in tree.tasks() if info.name.endswith("wait_for_release"))
    assert system_task.system and waiting_for(tree, system_task.name).kind == "event"


@pytest.mark.skipif(sys.platform == "win32", reason="a POSIX child process")
def test_a_subprocess_wait() -> None:
    async def main() -> tuple[TaskTree, int]:
        process = await tether.lowlevel.open_process(
            [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
        )
        async with tether.open_nursery() as nursery:
            nursery.start_soon(process.wait, name="waiter")
            tree = await snapshot_when_settled()
            assert process.stdin is not None
            await process.stdin.aclose()
        return tree, process.pid

    tree, pid = run(main)
    wait = waiting_for(tree, "waiter")
    if wait.kind == "subprocess":  # a pidfd (Linux 5.3+)
        assert wait.details["pid"] == pid
        assert f"waiting for process {pid} to exit" in wait.description
    else:  # the waitid thread's Event
        assert wait.kind == "event"


def test_wait_all_tasks_blocked_nurseries_and_start() -> None:
    async def starts_late(task_status: Any = tether.TASK_STATUS_IGNORED) -> None:
        await tether.sleep_forever()

    async def main() -> TaskTree:
        async with tether.open_nursery() as nursery:
            nursery.start_soon(wait_all_tasks_blocked, 3, name="idle")

            async def starter() -> None:
                await nursery.start(starts_late, name="late")

            nursery.start_soon(starter, name="starter")
            tree = await snapshot_when_settled()
            nursery.cancel_scope.cancel()
        return tree

    tree = run(main)
    wait = waiting_for(tree, "idle")
    assert wait.kind == "all_tasks_blocked" and wait.details["cushion"] == 3
    wait = waiting_for(tree, "starter")
    assert wait.kind == "start" and wait.details["tasks"] == (tree.find("late").task,)
    assert "until task 'late' calls task_status.started()" in wait.description
    assert tree.find("late").task.eventual_parent_nursery is not None


def test_custom_waits_described_by_the_waiting_code_or_unknown() -> None:
    def never_abort(raise_cancel: lowlevel.RaiseCancelT) -> lowlevel.Abort:
        return lowlevel.Abort.SUCCEEDED

    async def custom(data: object) -> None:
        lowlevel.current_task().custom_sleep_data = data
        await lowlevel.wait_task_rescheduled(never_abort)

    described = WaitInfo("gpu", "waiting for the GPU", details={"device": 0})

    async def main() -> TaskTree:
        async with tether.open_nursery() as nursery:
            nursery.start_soon(custom, described, name="info")
            nursery.start_soon(custom, "polling the sensor", name="text")
            nursery.start_soon(custom, None, name="nothing")
            tree = await snapshot_when_settled()
            nursery.cancel_scope.cancel()
        return tree

    tree = run(main)
    assert waiting_for(tree, "info") is described
    assert described.details["device"] == 0
    with pytest.raises(TypeError):
        described.details["device"] = 1  # type: ignore[index]
    wait = waiting_for(tree, "text")
    assert (wait.kind, wait.description) == ("custom", "polling the sensor")
    wait = waiting_for(tree, "nothing")
    assert wait.kind == "unknown"
    assert wait.description.startswith("unknown (custom wait; abort function ")
    assert "never_abort" in wait.description


# -- where it can be taken ------------------------------------------------------------


def test_outside_a_run_is_an_error() -> None:
    with pytest.raises(RuntimeError, match=r"inside tether\.run"):
        lowlevel.current_task_tree()


def test_taken_from_an_instrument_and_a_callback_without_disturbing_the_run() -> None:
    trees: list[TaskTree] = []

    class Snapshots(lowlevel.Instrument):
        def before_task_step(self, task: lowlevel.Task) -> None:
            if task.name == "sleeper" and not trees:
                trees.append(lowlevel.current_task_tree())

    async def main() -> None:
        lowlevel.add_instrument(Snapshots())
        async with tether.open_nursery() as nursery:
            nursery.start_soon(tether.sleep, 1, name="sleeper")
            await wait_all_tasks_blocked()
            token = lowlevel.current_tether_token()
            token.run_sync_soon(lambda: trees.append(lowlevel.current_task_tree()))
            await tether.sleep(2)

    run(main)
    from_instrument, from_callback = trees
    # In the instrument, the task about to take its first step.
    assert from_instrument.find("sleeper").state == "running"
    assert from_instrument.find("sleeper").frames[0].function == "sleep"
    # Between steps, nothing runs.
    assert all(info.state != "running" for info in from_callback.tasks())
    assert waiting_for(from_callback, "sleeper").kind == "sleep"


def test_taken_from_another_thread_given_the_root() -> None:
    async def main() -> TaskTree:
        root = lowlevel.current_root_task()
        assert root is not None
        async with tether.open_nursery() as nursery:
            nursery.start_soon(tether.sleep_forever, name="sleeper")
            await wait_all_tasks_blocked()
            tree = await tether.to_thread.run_sync(lowlevel.current_task_tree, root)
            nursery.cancel_scope.cancel()
        return tree

    tree = run(main)
    assert waiting_for(tree, "sleeper").kind == "sleep"
    assert tree.root.name == "<init>"


def test_the_snapshot_is_frozen() -> None:
    async def main() -> TaskTree:
        return lowlevel.current_task_tree()

    tree = run(main)
    with pytest.raises(AttributeError):
        tree.now = 3  # type: ignore[misc]
    info: TaskInfo = tree.root
    with pytest.raises(AttributeError):
        info.state = "blocked"  # type: ignore[misc]
