"""The aio stepper's fast path (a task with nothing pending) is `_step`
written out for speed: programs run through it and through `_step` alone
must behave the same, step for step."""

from __future__ import annotations

import os
import re

import pytest

import tether
from tether import aio
from tether.aio._stepper import _Stepper

from .conftest import run_virtual
from .dual_run import run_program

HERE = os.path.dirname(os.path.abspath(__file__))

#: Programs of tests/aio/programs whose output does not depend on real time.
PROGRAMS = [
    "callbacks_and_tasks.py",
    "cancellation.py",
    "exception_handling.py",
    "futures_and_callbacks.py",
    "gather_iterations.py",
    "gather_semantics.py",
    "iteration_exact_interleavings.py",
    "loop_lifecycle.py",
    "runner_api.py",
    "shield_semantics.py",
    "shutdown_behaviour.py",
    "taskgroup_semantics.py",
]


def _renumbered(output):
    # Task names count up over the whole process: number them from 1 in the
    # order they appear, so that two runs compare.
    numbers = {}

    def renumber(match):
        return "Task-" + str(numbers.setdefault(match.group(1), len(numbers) + 1))

    return {key: re.sub(r"Task-(\d+)", renumber, value) for key, value in output.items()}


def _slow_send(self, value):
    # Every step through `_step`, as if every task had something pending.
    return self._step(value, None)


@pytest.fixture(params=["fast path", "slow path only"])
def stepper(request, monkeypatch):
    if request.param == "slow path only":
        monkeypatch.setattr(_Stepper, "_send", _slow_send)
    return request.param


def _both_ways(monkeypatch, run):
    fast = run()
    with monkeypatch.context() as patch:
        patch.setattr(_Stepper, "_send", _slow_send)
        slow = run()
    return fast, slow


@pytest.mark.parametrize("program", PROGRAMS)
def test_programs_run_the_same_through_the_fast_path_and_the_slow_path(monkeypatch, program):
    path = os.path.join(HERE, "programs", program)
    fast, slow = _both_ways(monkeypatch, lambda: _renumbered(run_program(path, "tether")))
    assert fast["outcome"] == "ok"
    assert slow == fast


def test_trio_style_children_are_adopted_after_either_kind_of_step(monkeypatch):
    # A native child of an aio task awaits a future it did not create (so
    # it is not adopted when it creates one): it needs the handler before
    # its first step, whichever path ran its parent's step.
    async def child(future, log):
        log.append(await future)

    async def main():
        log = []
        loop = aio.get_running_loop()
        future = loop.create_future()
        async with tether.open_nursery() as nursery:
            nursery.start_soon(child, future, log)
            loop.call_soon(future.set_result, "child got the future's result")
            await aio.sleep(0)
        return log

    fast, slow = _both_ways(monkeypatch, lambda: run_virtual(main()))
    assert fast == slow == ["child got the future's result"]


def test_step_order_of_interleaved_tasks_and_callbacks(stepper):
    log = []

    async def worker(name, loop):
        for i in range(3):
            loop.call_soon(log.append, f"callback {name}{i}")
            log.append(f"{name}{i}")
            await aio.sleep(0)

    async def main():
        loop = aio.get_running_loop()
        async with aio.TaskGroup() as group:
            group.create_task(worker("a", loop))
            group.create_task(worker("b", loop))

    run_virtual(main())
    # asyncio's order: each callback runs right after the step that queued
    # it, before the next task step.
    assert log == [
        "a0",
        "b0",
        "callback a0",
        "a1",
        "callback b0",
        "b1",
        "callback a1",
        "a2",
        "callback b1",
        "b2",
        "callback a2",
        "callback b2",
    ]
