"""tether.run: entry point, errors, contexts, foreign yields, async generators, scheduling."""

import asyncio
import contextvars
import gc
import threading
import time
import types
import weakref

import pytest

import tether
from tether import lowlevel
from tether.testing import MockClock, wait_all_tasks_blocked


def autojump_clock():
    return MockClock(autojump_threshold=0)


# ---- basics


def test_run_returns_value_and_passes_args():
    async def main(a, b, *, c=None):
        await lowlevel.checkpoint()
        return (a, b, c)

    assert tether.run(main, 1, "x") == (1, "x", None)


def test_run_propagates_plain_exception_unwrapped():
    class Boom(Exception):
        pass

    async def main():
        await lowlevel.checkpoint()
        raise Boom("main")

    with pytest.raises(Boom, match="main"):
        tether.run(main)


def test_run_propagates_base_exception_from_main():
    async def main():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tether.run(main)


def test_run_rejects_coroutine_object():
    async def main():
        pass  # pragma: no cover

    coro = main()
    try:
        with pytest.raises(TypeError, match="function"):
            tether.run(coro)
    finally:
        coro.close()


def test_run_rejects_sync_function():
    def not_async():
        return 42

    with pytest.raises(TypeError):
        tether.run(not_async)


def test_nested_run_is_runtime_error():
    seen = []

    async def inner():
        pass  # pragma: no cover

    async def main():
        try:
            tether.run(inner)
        except RuntimeError as exc:
            seen.append(exc)
        await lowlevel.checkpoint()
        return "ok"

    assert tether.run(main) == "ok"
    assert len(seen) == 1
    assert "from inside a running tether run" in str(seen[0])


def test_spawn_accepts_generator_based_coroutine_functions():
    # lowlevel.checkpoint is a @types.coroutine generator function: it can
    # be run as a task like any async function.
    async def main():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(lowlevel.checkpoint)
            nursery.start_soon(lowlevel.cancel_shielded_checkpoint)
        return "ok"

    assert tether.run(main) == "ok"


def test_spawn_errors_say_what_was_passed():
    async def agen():
        yield  # pragma: no cover

    async def fn():
        pass  # pragma: no cover

    def sync():
        return 1

    class FutureLike:
        # What asyncio's futures are recognised by.
        _asyncio_future_blocking = False

    def returns_future():
        return FutureLike()

    async def main():
        async with tether.open_nursery() as nursery:
            with pytest.raises(TypeError, match="expected an async function but got an async gen"):
                nursery.start_soon(agen)
            with pytest.raises(TypeError, match=r"expecting an async function.*coroutine object"):
                nursery.start_soon(fn())
            with pytest.raises(TypeError, match="is it a synchronous function"):
                nursery.start_soon(sync)
            with pytest.raises(TypeError, match="written for asyncio"):
                nursery.start_soon(returns_future)
            # A TypeError raised by the function itself is left alone.
            with pytest.raises(TypeError, match="takes 0 positional arguments"):
                nursery.start_soon(fn, 1)

    tether.run(main)


def test_consecutive_runs_are_independent():
    async def main(n):
        await lowlevel.checkpoint()
        return n * 2

    assert [tether.run(main, i) for i in range(3)] == [0, 2, 4]


def test_current_time_outside_run_is_error():
    with pytest.raises(RuntimeError):
        tether.current_time()


def test_sleeping_outside_run_is_error():
    coro = tether.sleep(1)
    with pytest.raises(RuntimeError):
        coro.send(None)
    coro.close()


def test_exception_hierarchy():
    assert issubclass(tether.Cancelled, BaseException)
    assert not issubclass(tether.Cancelled, Exception)
    for cls in (
        tether.TetherInternalError,
        tether.WouldBlock,
        tether.BusyResourceError,
        tether.ClosedResourceError,
        tether.BrokenResourceError,
        tether.EndOfChannel,
        tether.TooSlowError,
    ):
        assert issubclass(cls, Exception), cls
    assert issubclass(tether.RunFinishedError, RuntimeError)


def test_clock_argument_is_current_clock():
    clock = autojump_clock()

    async def main():
        assert lowlevel.current_clock() is clock
        await tether.sleep(5)
        return tether.current_time()

    assert tether.run(main, clock=clock) == 5.0


def test_default_clock_time_advances_monotonically():
    async def main():
        t0 = tether.current_time()
        await lowlevel.checkpoint()
        t1 = tether.current_time()
        assert t1 >= t0
        assert isinstance(t0, float)
        return lowlevel.current_clock()

    clock = tether.run(main)
    assert callable(clock.current_time)


# ---- contextvars

var = contextvars.ContextVar("var", default="unset")


def test_child_task_gets_copy_of_spawner_context():
    log = {}

    async def child(label):
        log[label] = var.get()
        var.set("child-" + label)
        log[label + "-after"] = var.get()

    async def main():
        var.set("parent-before")
        async with tether.open_nursery() as nursery:
            nursery.start_soon(child, "a")
            var.set("parent-after")
            nursery.start_soon(child, "b")
        log["parent-end"] = var.get()

    tether.run(main)
    assert log == {
        "a": "parent-before",
        "a-after": "child-a",
        "b": "parent-after",
        "b-after": "child-b",
        "parent-end": "parent-after",
    }


def test_run_context_sees_caller_values_but_does_not_leak_back():
    var.set("outside")

    async def main():
        seen = var.get()
        var.set("inside")
        return seen

    try:
        assert tether.run(main) == "outside"
        assert var.get() == "outside"
    finally:
        var.set("unset")


def test_task_context_attribute_holds_task_values():
    async def child(task_status=tether.TASK_STATUS_IGNORED):
        var.set("in-child")
        task_status.started(lowlevel.current_task())
        await tether.sleep_forever()

    async def main():
        async with tether.open_nursery() as nursery:
            task = await nursery.start(child)
            assert isinstance(task.context, contextvars.Context)
            assert task.context[var] == "in-child"
            assert var.get() == "unset"
            nursery.cancel_scope.cancel()

    tether.run(main)


# ---- foreign yields


class AlienToken:
    def __repr__(self):
        return "<AlienToken zork>"


@types.coroutine
def yield_alien(obj):
    return (yield obj)


def _mentions_other_framework(msg):
    msg = msg.lower()
    return "framework" in msg or "asyncio" in msg


def test_foreign_yield_gets_type_error_and_run_continues():
    log = []

    async def main():
        try:
            await yield_alien(AlienToken())
        except TypeError as exc:
            log.append(str(exc))
        await lowlevel.checkpoint()
        log.append("continued")
        return "done"

    assert tether.run(main) == "done"
    assert len(log) == 2
    assert "AlienToken" in log[0] or "zork" in log[0]
    assert _mentions_other_framework(log[0])
    assert log[1] == "continued"


@pytest.mark.parametrize("obj", [None, 42, "alien-string"])
def test_foreign_yield_of_plain_values_names_them(obj):
    messages = []

    async def main():
        try:
            await yield_alien(obj)
        except TypeError as exc:
            messages.append(str(exc))
        return "continued"

    assert tether.run(main) == "continued"
    assert len(messages) == 1
    assert repr(obj) in messages[0]
    assert _mentions_other_framework(messages[0])


def test_foreign_yield_in_child_does_not_break_siblings():
    log = []

    async def bad():
        with pytest.raises(TypeError):
            await yield_alien(AlienToken())
        log.append("bad-recovered")

    async def good():
        for _ in range(3):
            await lowlevel.checkpoint()
        log.append("good")

    async def main():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(bad)
            nursery.start_soon(good)

    tether.run(main)
    assert sorted(log) == ["bad-recovered", "good"]


def test_awaiting_asyncio_future_is_type_error():
    loop = asyncio.new_event_loop()
    try:
        fut = loop.create_future()
        caught = []

        async def main():
            try:
                await fut
            except TypeError as exc:
                caught.append(str(exc))
            return "after"

        assert tether.run(main) == "after"
        assert len(caught) == 1
        assert "Future" in caught[0]
        assert _mentions_other_framework(caught[0])
    finally:
        loop.close()


def test_uncaught_foreign_yield_error_propagates_out_of_run():
    async def main():
        await yield_alien(AlienToken())

    with pytest.raises(TypeError):
        tether.run(main)


# ---- async generators


def test_async_generator_alive_at_end_is_finalized_inside_run():
    log = []
    keep = []

    async def agen():
        try:
            yield 1
            yield 2
        finally:
            log.append(("in_run", lowlevel.in_tether_run()))
            # finalization may happen in a cancelled scope; a shielded
            # schedule point still needs a kernel to drive it
            await lowlevel.cancel_shielded_checkpoint()
            log.append("finalized")

    async def main():
        gen = agen()
        keep.append(gen)
        assert await gen.asend(None) == 1

    tether.run(main)
    assert log == [("in_run", True), "finalized"]


def test_async_generator_dropped_during_run_is_finalized_before_run_ends():
    log = []

    async def agen():
        try:
            yield 1
            yield 2
        finally:
            await lowlevel.cancel_shielded_checkpoint()
            log.append(("finalized", lowlevel.in_tether_run()))

    async def main():
        gen = agen()
        assert await gen.asend(None) == 1
        del gen
        gc.collect()
        await wait_all_tasks_blocked()
        log.append("main-end")

    tether.run(main)
    assert ("finalized", True) in log


# ---- scheduling


def test_busy_checkpoint_loop_cannot_starve_other_task():
    state = {"flag": False, "spins": 0}

    async def spinner():
        while not state["flag"]:
            state["spins"] += 1
            assert state["spins"] < 10_000, "other task starved"
            await lowlevel.checkpoint()

    async def setter():
        await lowlevel.checkpoint()
        await lowlevel.checkpoint()
        state["flag"] = True

    async def main():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(spinner)
            nursery.start_soon(setter)

    tether.run(main)
    assert state["flag"]
    assert state["spins"] < 100


def test_checkpointing_tasks_progress_in_lockstep():
    progress = {"a": 0, "b": 0, "c": 0}
    max_gap = [0]

    async def worker(name):
        for _ in range(50):
            progress[name] += 1
            values = progress.values()
            max_gap[0] = max(max_gap[0], max(values) - min(values))
            await lowlevel.checkpoint()

    async def main():
        async with tether.open_nursery() as nursery:
            for name in progress:
                nursery.start_soon(worker, name)

    tether.run(main)
    assert progress == {"a": 50, "b": 50, "c": 50}
    assert max_gap[0] <= 2


@pytest.mark.parametrize("seed", [0, 1, 2, 99])
def test_busy_loop_cannot_starve_with_schedule_seed(seed):
    state = {"flag": False, "spins": 0}

    async def spinner():
        while not state["flag"]:
            state["spins"] += 1
            assert state["spins"] < 10_000, "other task starved"
            await lowlevel.checkpoint()

    async def setter():
        for _ in range(3):
            await lowlevel.checkpoint()
        state["flag"] = True

    async def main():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(spinner)
            nursery.start_soon(setter)

    tether.run(main, schedule_seed=seed)
    assert state["flag"]
    assert state["spins"] < 100


def _interleaving(seed):
    trace = []

    async def worker(i):
        for step in range(4):
            trace.append((i, step))
            await lowlevel.checkpoint()

    async def main():
        async with tether.open_nursery() as nursery:
            for i in range(6):
                nursery.start_soon(worker, i)

    tether.run(main, schedule_seed=seed)
    return trace


def test_same_schedule_seed_gives_same_interleaving():
    for seed in (0, 1, 12345):
        assert _interleaving(seed) == _interleaving(seed)


def test_different_schedule_seeds_give_different_interleavings():
    traces = {tuple(_interleaving(seed)) for seed in range(12)}
    assert len(traces) > 1
    # every trace is a valid schedule of the same work
    for trace in traces:
        assert sorted(trace) == [(i, s) for i in range(6) for s in range(4)]


def test_schedule_seed_keeps_per_task_order():
    trace = _interleaving(7)
    for i in range(6):
        assert [s for (j, s) in trace if j == i] == [0, 1, 2, 3]


def test_schedule_seed_with_mock_clock_is_deterministic():
    def once(seed):
        trace = []

        async def worker(i):
            await tether.sleep(1)
            trace.append(("woke", i, tether.current_time()))
            await lowlevel.checkpoint()
            trace.append(("done", i))

        async def main():
            async with tether.open_nursery() as nursery:
                for i in range(5):
                    nursery.start_soon(worker, i)

        tether.run(main, clock=autojump_clock(), schedule_seed=seed)
        return trace

    trace = once(3)
    assert trace == once(3)
    assert [entry[2] for entry in trace if entry[0] == "woke"] == [1.0] * 5


# ---- threads / run_sync_soon


def test_run_sync_soon_from_another_thread_wakes_run():
    async def main():
        token = lowlevel.current_tether_token()
        event = tether.Event()
        thread = threading.Thread(target=token.run_sync_soon, args=(event.set,))
        thread.start()
        await event.wait()
        thread.join()
        return "woken"

    assert tether.run(main) == "woken"


def test_an_exception_returned_by_a_task_is_its_value_not_its_error():
    async def returns_an_error():
        return KeyError("returned, not raised")

    async def main():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(returns_an_error)
        return await returns_an_error()

    result = tether.run(main)
    assert isinstance(result, KeyError) and result.args == ("returned, not raised",)


def test_the_run_loop_keeps_nothing_alive_while_it_waits_or_after_a_callback():
    # While the run waits for I/O, the kernel's own frame holds neither the
    # last task it stepped (a task that has ended is freed) nor what that
    # step was sent and yielded; and it drops a run_sync_soon callback once
    # it has run it, with what the callback refers to.
    class Payload:
        pass

    refs = {}
    child_done = threading.Event()

    async def child():
        refs["child"] = weakref.ref(lowlevel.current_task())
        payload = Payload()
        refs["payload"] = weakref.ref(payload)
        # The last call before the run goes idle: a bound method of an
        # object nothing else keeps.
        lowlevel.current_tether_token().run_sync_soon(payload.__init__)
        child_done.set()

    def look_while_the_run_waits():
        # (In a worker thread, while the run is idle: the main task waits
        # for this thread, the child's step was the last, and the callback
        # runs before the run waits.)
        child_done.wait(10)
        deadline = time.monotonic() + 10
        while True:
            gc.collect()
            alive = {name: ref() is not None for name, ref in refs.items()}
            if not any(alive.values()) or time.monotonic() > deadline:
                return alive
            time.sleep(0.01)

    async def main():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(child)
            return await tether.to_thread.run_sync(look_while_the_run_waits)

    assert tether.run(main) == {"child": False, "payload": False}
