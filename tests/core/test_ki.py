"""Ctrl-C (SIGINT) handling: real signals raised in the test process."""

from __future__ import annotations

import gc
import os
import signal
import threading
import types
import weakref

import pytest

import tether
from tether import lowlevel
from tether.testing import MockClock


def run_mock(async_fn):
    return tether.run(async_fn, clock=MockClock(autojump_threshold=0))


def ctrl_c() -> None:
    signal.raise_signal(signal.SIGINT)


@lowlevel.enable_ki_protection
def ctrl_c_protected() -> None:
    signal.raise_signal(signal.SIGINT)


def test_ctrl_c_in_user_code_raises_there_and_unwinds():
    log = []

    async def child():
        try:
            await tether.sleep_forever()
        finally:
            log.append("child finally")

    async def main():
        try:
            async with tether.open_nursery() as nursery:
                nursery.start_soon(child)
                await tether.testing.wait_all_tasks_blocked()
                ctrl_c()
                log.append("not reached")
        finally:
            log.append("main finally")

    with pytest.raises(KeyboardInterrupt) as info:
        tether.run(main)
    assert log == ["child finally", "main finally"]
    # It travelled through the nursery: the group is kept as context.
    assert isinstance(info.value.__context__, BaseExceptionGroup)


def test_ctrl_c_in_protected_code_is_deferred_to_next_checkpoint():
    log = []

    async def main():
        ctrl_c_protected()
        log.append("still running after protected code")
        try:
            await lowlevel.checkpoint()
        finally:
            log.append("interrupted at checkpoint")

    with pytest.raises(KeyboardInterrupt):
        tether.run(main)
    assert log == ["still running after protected code", "interrupted at checkpoint"]


def test_ctrl_c_wakes_a_blocked_main_task_even_in_a_shielded_scope():
    async def main():
        with tether.CancelScope(shield=True):
            ctrl_c_protected()
            await tether.Event().wait()

    with pytest.raises(KeyboardInterrupt):
        tether.run(main)


def test_ctrl_c_from_another_thread_while_loop_sleeps():
    # The run loop is blocked in epoll: the signal interrupts the kernel,
    # so it must be deferred and then delivered to the waiting main task.
    pid = os.getpid()
    timer = threading.Timer(0.05, os.kill, (pid, signal.SIGINT))
    finished = []

    async def main():
        timer.start()
        try:
            await tether.sleep(30)
        finally:
            finished.append(tether.current_time())

    with pytest.raises(KeyboardInterrupt):
        tether.run(main)
    timer.join()
    assert len(finished) == 1


def test_restrict_to_checkpoints_defers_even_in_user_code():
    log = []

    async def main():
        ctrl_c()
        log.append("user code went on")
        await lowlevel.checkpoint()
        log.append("not reached")

    with pytest.raises(KeyboardInterrupt):
        tether.run(main, restrict_keyboard_interrupt_to_checkpoints=True)
    assert log == ["user code went on"]


def test_cancel_shielded_checkpoint_is_not_an_interrupt_point():
    log = []

    async def main():
        ctrl_c_protected()
        await lowlevel.cancel_shielded_checkpoint()
        log.append("passed the shielded checkpoint")
        await lowlevel.checkpoint()

    with pytest.raises(KeyboardInterrupt):
        tether.run(main)
    assert log == ["passed the shielded checkpoint"]


def test_previous_handler_is_restored_and_custom_handler_left_alone():
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

    seen = []

    async def main():
        seen.append(signal.getsignal(signal.SIGINT))

    tether.run(main)
    assert seen[0] is not signal.default_int_handler
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

    def custom(signum, frame):
        pass

    previous = signal.signal(signal.SIGINT, custom)
    try:
        seen.clear()
        tether.run(main)
        assert seen == [custom]
    finally:
        signal.signal(signal.SIGINT, previous)


def test_user_raised_keyboard_interrupt_keeps_trio_group_semantics():
    async def child():
        raise KeyboardInterrupt

    async def main():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(child)

    with pytest.raises(BaseExceptionGroup) as info:
        tether.run(main)
    assert isinstance(info.value.exceptions[0], KeyboardInterrupt)


def test_currently_ki_protected():
    seen = {}

    @lowlevel.enable_ki_protection
    def protected():
        return lowlevel.currently_ki_protected()

    @lowlevel.disable_ki_protection
    def unprotected():
        return lowlevel.currently_ki_protected()

    async def system():
        seen["system task"] = lowlevel.currently_ki_protected()

    async def main():
        seen["user task"] = lowlevel.currently_ki_protected()
        seen["decorated"] = protected()
        seen["disabled"] = unprotected()
        lowlevel.spawn_system_task(system)
        await lowlevel.checkpoint()

    tether.run(main)
    assert seen == {
        "user task": False,
        "decorated": True,
        "disabled": False,
        "system task": True,
    }


class _InterruptAtStep(lowlevel.Instrument):
    """Raises SIGINT from inside the kernel (an instrument hook) at the Nth
    task step: the worst place for it to arrive."""

    def __init__(self, step: int) -> None:
        self.remaining = step

    def before_task_step(self, task):
        self.remaining -= 1
        if self.remaining == 0:
            signal.raise_signal(signal.SIGINT)


@pytest.mark.parametrize("where", ["kernel", "user"])
# The program has 18 user-level sleeps and a few dozen kernel steps in all,
# so every step below is reached (otherwise main would sleep forever).
@pytest.mark.parametrize("step", range(1, 19, 2))
def test_ctrl_c_at_many_points_unwinds_cleanly(where, step):
    entered: list[str] = []
    exited: list[str] = []
    counter = {"n": step}

    async def worker(name, delay):
        entered.append(name)
        try:
            for _ in range(3):
                await tether.sleep(delay)
                if where == "user":
                    counter["n"] -= 1
                    if counter["n"] == 0:
                        ctrl_c()
                await lowlevel.checkpoint()
        finally:
            exited.append(name)

    async def group(prefix):
        entered.append(prefix)
        try:
            async with tether.open_nursery() as nursery:
                for i in range(3):
                    nursery.start_soon(worker, f"{prefix}.{i}", 0.1 * (i + 1))
        finally:
            exited.append(prefix)

    async def main():
        entered.append("main")
        try:
            async with tether.open_nursery() as nursery:
                nursery.start_soon(group, "a")
                nursery.start_soon(group, "b")
                await tether.sleep_forever()
        finally:
            exited.append("main")

    instruments = [_InterruptAtStep(step)] if where == "kernel" else []
    with pytest.raises(KeyboardInterrupt):
        tether.run(main, clock=MockClock(autojump_threshold=0), instruments=instruments)
    # Every task that started also ran its finally block; main last.
    assert sorted(entered) == sorted(exited)
    assert exited[-1] == "main"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# ---- what counts as protected


def test_code_outside_any_run_counts_as_protected():
    # There is no task whose code could be interrupted: only the kernel, or
    # plain Python (where tether's handler is not installed anyway).
    assert lowlevel.currently_ki_protected()


def test_a_del_method_is_protected_and_so_is_what_it_calls():
    # The garbage collector runs __del__ wherever it happens to trigger,
    # kernel code included.
    seen = {}

    def helper():
        return lowlevel.currently_ki_protected()

    class Resource:
        def __del__(self):
            seen["__del__"] = lowlevel.currently_ki_protected()
            seen["called from __del__"] = helper()

    async def main():
        seen["task"] = lowlevel.currently_ki_protected()
        Resource()  # dropped at once: __del__ runs inside this user task
        seen["task afterwards"] = helper()

    tether.run(main)
    assert seen == {
        "task": False,
        "__del__": True,
        "called from __del__": True,
        "task afterwards": False,
    }


def test_marks_hold_for_methods_generators_and_async_generators():
    seen = {}

    class Thing:
        @lowlevel.enable_ki_protection
        def method(self):
            return lowlevel.currently_ki_protected()

        @lowlevel.enable_ki_protection
        async def async_method(self):
            await lowlevel.checkpoint()
            return lowlevel.currently_ki_protected()

        @lowlevel.enable_ki_protection
        @staticmethod
        def static():
            return lowlevel.currently_ki_protected()

        @lowlevel.enable_ki_protection
        def generator(self):
            yield lowlevel.currently_ki_protected()

        @lowlevel.enable_ki_protection
        async def async_generator(self):
            await lowlevel.checkpoint()
            yield lowlevel.currently_ki_protected()

    async def main():
        thing = Thing()
        seen["method"] = thing.method()
        seen["async method"] = await thing.async_method()
        seen["staticmethod"] = Thing.static()
        seen["generator"] = next(thing.generator())
        async for value in thing.async_generator():
            seen["async generator"] = value
            # The loop body is the caller's code, not the generator's.
            seen["async for body"] = lowlevel.currently_ki_protected()

    tether.run(main)
    assert seen == {
        "method": True,
        "async method": True,
        "staticmethod": True,
        "generator": True,
        "async generator": True,
        "async for body": False,
    }


def test_marks_belong_to_one_code_object_not_to_equal_ones():
    # Compiling the same source twice gives code objects that compare
    # equal but are distinct functions; marking one must not mark the other.
    source = "def probe():\n    return currently_ki_protected()\n"
    namespaces = []
    for _ in range(2):
        namespace = {"currently_ki_protected": lowlevel.currently_ki_protected}
        exec(compile(source, "<probe>", "exec"), namespace)
        namespaces.append(namespace)
    marked, unmarked = (ns["probe"] for ns in namespaces)
    assert marked.__code__ == unmarked.__code__ and marked.__code__ is not unmarked.__code__
    lowlevel.enable_ki_protection(marked)

    async def main():
        return marked(), unmarked()

    assert tether.run(main) == (True, False)


def test_a_mark_does_not_keep_the_code_alive():
    namespace = {}
    exec(compile("def temporary():\n    pass\n", "<temporary>", "exec"), namespace)
    lowlevel.disable_ki_protection(namespace["temporary"])
    code_ref = weakref.ref(namespace["temporary"].__code__)
    namespace.clear()
    gc.collect()
    assert code_ref() is None


def test_marking_something_that_is_not_a_function_is_a_clear_type_error():
    class Callable:
        def __call__(self):
            pass

    with pytest.raises(TypeError, match="decorate the method it calls"):
        lowlevel.enable_ki_protection(Callable())


# ---- the handler and the end of the run


def test_a_handler_installed_during_the_run_is_left_in_place():
    def mine(signum, frame):
        pass

    async def main():
        signal.signal(signal.SIGINT, mine)

    try:
        tether.run(main)
        assert signal.getsignal(signal.SIGINT) is mine
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def test_ctrl_c_while_the_run_is_finishing_is_still_raised():
    # The callback keeps requeueing itself until the run refuses it (the
    # run has finished its loop), then Ctrl-C arrives in protected code.
    async def main():
        token = lowlevel.current_tether_token()

        def requeue():
            try:
                token.run_sync_soon(requeue)
            except tether.RunFinishedError:
                ctrl_c()

        token.run_sync_soon(requeue)

    with pytest.raises(KeyboardInterrupt):
        tether.run(main)


def test_a_deferred_ctrl_c_is_delivered_once():
    async def main():
        ctrl_c_protected()
        with pytest.raises(KeyboardInterrupt):
            await lowlevel.checkpoint()
        await tether.sleep(1)
        await lowlevel.checkpoint()
        return "no second KeyboardInterrupt"

    assert run_mock(main) == "no second KeyboardInterrupt"


def test_a_wait_that_refuses_the_interrupt_is_not_asked_again_every_batch():
    # The main task waits on something that cannot be abandoned (its abort
    # function refuses). The Ctrl-C is tried on that wait once, not after
    # every batch the other tasks run; it is raised at the main task's next
    # checkpoint once the wait is over.
    asked = []

    async def main():
        me = lowlevel.current_task()

        def refuse(raise_cancel):
            asked.append("asked")
            return lowlevel.Abort.FAILED

        async def busy_then_wake():
            await tether.testing.wait_all_tasks_blocked()
            ctrl_c_protected()  # (deferred: it goes to the main task)
            for _ in range(50):
                await lowlevel.checkpoint()
            lowlevel.reschedule(me)

        async with tether.open_nursery() as nursery:
            nursery.start_soon(busy_then_wake)
            await lowlevel.wait_task_rescheduled(refuse)
            asked_during_the_wait = len(asked)
            try:
                await lowlevel.checkpoint()
            except KeyboardInterrupt:
                return asked_during_the_wait, "interrupted at the checkpoint"
        return asked_during_the_wait, "not interrupted"  # pragma: no cover

    # (Checked outside the run: a failure inside would meet the pending
    # KeyboardInterrupt, which ends the whole test session.)
    assert run_mock(main) == (1, "interrupted at the checkpoint")
    assert asked == ["asked"]


def test_ctrl_c_reaches_a_main_task_waiting_at_a_foreign_yield():
    # A task that the face's handler parks on a foreign object gets the
    # pending Ctrl-C when it starts waiting, as in any other wait.
    class Foreign:
        pass

    aborted = []

    def handler(task, obj):
        def abort(raise_cancel):
            aborted.append(obj)
            return lowlevel.Abort.SUCCEEDED

        return abort

    @types.coroutine
    def wait_foreign(obj):
        yield obj

    async def main():
        lowlevel.current_task().foreign_yield_handler = handler
        ctrl_c_protected()
        # Not an interrupt point: the task is runnable, not at a checkpoint,
        # when the run first tries to deliver the Ctrl-C; the foreign wait
        # is the next chance.
        await lowlevel.cancel_shielded_checkpoint()
        await wait_foreign(Foreign())

    with pytest.raises(KeyboardInterrupt):
        tether.run(main)
    assert len(aborted) == 1
