"""tether.to_thread and tether.from_thread, with real threads.

Threads are coordinated with `threading.Event` gates rather than sleeps:
a job blocks on a gate that the test opens once it has checked what it wants
to see while the thread is still running.
"""

import contextvars
import functools
import threading
import time

import pytest

import tether
from tether import from_thread, lowlevel, testing, to_thread
from tether.testing import MockClock, wait_all_tasks_blocked

pytestmark = pytest.mark.timeout(20)

GATE_TIMEOUT = 10  # seconds; only reached when a test is already failing

var = contextvars.ContextVar("var", default="unset")


def run_mock(async_fn, *args, **kwargs):
    return tether.run(async_fn, *args, clock=MockClock(autojump_threshold=0), **kwargs)


class Gate:
    """A job blocks in `wait` until the test calls `open`."""

    def __init__(self):
        self._event = threading.Event()
        self.entered = threading.Event()

    def wait(self):
        self.entered.set()
        assert self._event.wait(GATE_TIMEOUT), "gate never opened"

    def open(self):
        self._event.set()


async def wait_until(predicate):
    """Poll (with real sleeps) for something a thread does."""
    with tether.fail_after(GATE_TIMEOUT):
        while not predicate():
            await tether.sleep(0.001)


# ---------------------------------------------------------------- to_thread basics


def test_run_sync_returns_result_from_another_thread():
    async def main():
        here = threading.get_ident()

        def job(a, b):
            return a + b, threading.get_ident(), threading.current_thread().name

        total, ident, name = await to_thread.run_sync(job, 2, 3)
        assert total == 5
        assert ident != here
        assert name == f"job from {lowlevel.current_task().name}"
        named = await to_thread.run_sync(
            lambda: threading.current_thread().name, thread_name="my worker"
        )
        assert named == "my worker"
        # The name is the job's only while it runs.
        idle_name = await to_thread.run_sync(lambda: threading.current_thread().name)
        assert idle_name != "my worker"
        return "ok"

    assert tether.run(main) == "ok"


def test_default_thread_name_without_a_function_name_says_none():
    async def main():
        name = await to_thread.run_sync(functools.partial(lambda: threading.current_thread().name))
        assert name == f"None from {lowlevel.current_task().name}"
        # thread_name=None also means the default.
        name = await to_thread.run_sync(lambda: threading.current_thread().name, thread_name=None)
        assert name == f"<lambda> from {lowlevel.current_task().name}"

    tether.run(main)


def test_the_worker_gets_its_own_name_back_after_a_named_call():
    async def main():
        worker = await to_thread.run_sync(threading.current_thread, thread_name="named call")
        assert worker.name.startswith("Tether thread ")

    tether.run(main)


@pytest.mark.parametrize("bad_name", [123, b"bytes", ["list"]])
def test_a_thread_name_that_is_not_a_str_is_a_type_error_at_once(bad_name):
    ran = []

    async def main():
        with pytest.raises(TypeError, match=r"thread_name must be a str or None, got"):
            await to_thread.run_sync(ran.append, "ran", thread_name=bad_name)
        # Raised before the checkpoint: even a cancelled call says so.
        with tether.CancelScope() as scope:
            scope.cancel()
            with pytest.raises(TypeError, match=r"thread_name must be a str"):
                await to_thread.run_sync(ran.append, "ran", thread_name=bad_name)
        # The thread cache is unharmed: the next call runs.
        return await to_thread.run_sync(lambda: "next call ran")

    assert tether.run(main) == "next call ran"
    assert ran == []


def test_lowlevel_start_thread_soon_refuses_a_thread_name_that_is_not_a_str():
    delivered = []
    with pytest.raises(TypeError, match="must be a str or None, got 123"):
        lowlevel.start_thread_soon(lambda: None, delivered.append, 123)
    assert delivered == []


def test_run_sync_propagates_exceptions():
    class Boom(Exception):
        pass

    class BaseBoom(BaseException):
        pass

    def fail(cls):
        raise cls("from thread")

    async def main():
        with pytest.raises(Boom, match="from thread") as info:
            await to_thread.run_sync(fail, Boom)
        assert any(entry.name == "fail" for entry in info.traceback)
        with pytest.raises(BaseBoom):
            await to_thread.run_sync(fail, BaseBoom)
        # The worker survives and is reused.
        return await to_thread.run_sync(lambda: "still fine")

    assert tether.run(main) == "still fine"


def test_run_sync_rejects_async_function():
    async def not_sync():
        pass  # pragma: no cover

    async def main():
        with pytest.raises(TypeError, match=r"expected a sync function.*appears to be async"):
            await to_thread.run_sync(not_sync)

    tether.run(main)


def test_run_sync_copies_the_task_context():
    async def main():
        var.set("task value")

        def job():
            seen = var.get()
            var.set("changed in thread")
            return seen, var.get()

        assert await to_thread.run_sync(job) == ("task value", "changed in thread")
        # The thread worked on a copy.
        assert var.get() == "task value"
        # Nothing leaks into the next job on the (reused) worker thread.
        var.set("second")
        assert await to_thread.run_sync(var.get) == "second"

    tether.run(main)
    assert var.get() == "unset"


def test_sniffio_finds_no_async_library_in_a_worker_thread():
    sniffio = pytest.importorskip("sniffio")

    async def main():
        # Whatever the task's context says about the running library, the
        # worker thread is not in async context.
        sniffio.current_async_library_cvar.set("some library")

        def job():
            with pytest.raises(sniffio.AsyncLibraryNotFoundError):
                sniffio.current_async_library()
            return "checked"

        assert await to_thread.run_sync(job) == "checked"
        # The task's own context is untouched.
        assert sniffio.current_async_library_cvar.get() == "some library"

    tether.run(main)


def test_sniffio_says_tether_for_calls_a_worker_thread_sends_back():
    sniffio = pytest.importorskip("sniffio")

    async def main():
        assert sniffio.current_async_library() == "tether"

        def job():
            in_thread = sniffio.thread_local.name, sniffio.current_async_library_cvar.get()
            # Sent back to the run's thread: inside the run again.
            back_in_run = tether.from_thread.run_sync(sniffio.current_async_library)
            return in_thread, back_in_run

        in_thread, back_in_run = await to_thread.run_sync(job)
        assert in_thread == (None, None)
        assert back_in_run == "tether"

    tether.run(main)


def test_other_tasks_run_while_a_thread_blocks():
    async def main():
        gate = Gate()
        async with tether.open_nursery() as nursery:
            nursery.start_soon(to_thread.run_sync, gate.wait)
            # If the thread blocked the run, this task could never open the gate.
            await to_thread.run_sync(gate.entered.wait, GATE_TIMEOUT)
            for _ in range(10):
                await lowlevel.checkpoint()
            gate.open()
        return "ok"

    assert tether.run(main) == "ok"


# ---------------------------------------------------------------- worker cache


def test_sequential_calls_reuse_one_worker_thread():
    async def main():
        return [await to_thread.run_sync(threading.get_ident) for _ in range(20)]

    idents = tether.run(main)
    assert len(set(idents)) == 1


def test_concurrent_batches_reuse_workers():
    async def batch(size):
        gate = Gate()
        idents = []

        def job():
            idents.append(threading.get_ident())
            gate.wait()

        async with tether.open_nursery() as nursery:
            for _ in range(size):
                nursery.start_soon(to_thread.run_sync, job)
            await wait_until(lambda: len(idents) == size)
            gate.open()
        return set(idents)

    async def main():
        first = await batch(5)
        threads_after_first = threading.active_count()
        second = await batch(5)
        assert len(first) == 5
        assert second == first
        assert threading.active_count() == threads_after_first

    tether.run(main)


# ---------------------------------------------------------------- limiter


def test_default_limiter_is_per_run_with_40_tokens():
    async def main():
        limiter = to_thread.current_default_thread_limiter()
        assert isinstance(limiter, tether.CapacityLimiter)
        assert limiter.total_tokens == 40
        assert to_thread.current_default_thread_limiter() is limiter
        gate = Gate()
        async with tether.open_nursery() as nursery:
            nursery.start_soon(to_thread.run_sync, gate.wait)
            await to_thread.run_sync(gate.entered.wait, GATE_TIMEOUT)
            # One token for the blocked job (the waiting job's is returned).
            assert limiter.borrowed_tokens == 1
            gate.open()
        assert limiter.borrowed_tokens == 0
        return limiter

    assert tether.run(main) is not tether.run(main)


class _LimiterFailingOnRelease:
    async def acquire_on_behalf_of(self, borrower):
        await lowlevel.checkpoint()

    def release_on_behalf_of(self, borrower):
        raise KeyError("release refused")


@pytest.mark.parametrize("job_fails", [False, True])
def test_a_limiter_failing_to_release_replaces_the_result_and_chains_onto_it(job_fails):
    def job():
        if job_fails:
            raise ValueError("from the job")
        return "result"

    async def main():
        with pytest.raises(KeyError, match="release refused") as info:
            await to_thread.run_sync(job, limiter=_LimiterFailingOnRelease())
        return info.value

    error = tether.run(main)
    if job_fails:
        assert isinstance(error.__context__, ValueError)
    else:
        assert error.__context__ is None


@pytest.mark.parametrize("use_default", [False, True])
def test_limiter_bounds_concurrent_threads(use_default):
    running = 0
    most = 0
    lock = threading.Lock()
    gate = Gate()

    def job():
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        gate.wait()
        time.sleep(0.001)
        with lock:
            running -= 1

    async def main():
        if use_default:
            limiter = to_thread.current_default_thread_limiter()
            limiter.total_tokens = 3
            kwargs = {}
        else:
            limiter = tether.CapacityLimiter(3)
            kwargs = {"limiter": limiter}
        async with tether.open_nursery() as nursery:
            for _ in range(10):
                nursery.start_soon(lambda: to_thread.run_sync(job, **kwargs))
            await wait_until(lambda: running == 3)
            await wait_all_tasks_blocked()
            stats = limiter.statistics()
            assert stats.borrowed_tokens == 3
            assert stats.tasks_waiting == 7
            gate.open()
        assert limiter.borrowed_tokens == 0

    tether.run(main)
    assert most == 3


# ---------------------------------------------------------------- cancellation


@pytest.mark.parametrize("abandon", [False, True])
def test_cancelled_before_start_never_runs_the_job(abandon):
    called = []

    async def main():
        with tether.CancelScope() as scope:
            scope.cancel()
            await to_thread.run_sync(called.append, 1, abandon_on_cancel=abandon)
        assert scope.cancelled_caught
        assert to_thread.current_default_thread_limiter().borrowed_tokens == 0

    tether.run(main)
    assert called == []


@pytest.mark.parametrize("abandon", [False, True])
def test_waiting_for_a_limiter_token_is_cancellable(abandon):
    called = []

    async def main():
        limiter = tether.CapacityLimiter(0)
        with tether.move_on_after(3) as scope:
            await to_thread.run_sync(called.append, 1, limiter=limiter, abandon_on_cancel=abandon)
        assert scope.cancelled_caught
        assert limiter.statistics().tasks_waiting == 0
        assert limiter.borrowed_tokens == 0

    run_mock(main)
    assert called == []


def test_without_abandon_cancellation_waits_for_the_thread():
    gate = Gate()
    log = []

    async def caller(scope_box):
        with tether.CancelScope() as scope:
            scope_box.append(scope)
            result = await to_thread.run_sync(lambda: (gate.wait(), "result")[1])
            log.append(("returned", result))
            await lowlevel.checkpoint()
            log.append("not reached")  # pragma: no cover
        log.append(("cancelled_caught", scope.cancelled_caught))

    async def main():
        box = []
        async with tether.open_nursery() as nursery:
            nursery.start_soon(caller, box)
            await to_thread.run_sync(gate.entered.wait, GATE_TIMEOUT)
            box[0].cancel()
            await wait_all_tasks_blocked()
            # Still waiting for the thread.
            assert log == []
            gate.open()
        assert log == [("returned", "result"), ("cancelled_caught", True)]

    tether.run(main)


def test_without_abandon_the_thread_can_check_cancelled():
    gate = Gate()
    seen = []

    def job():
        from_thread.check_cancelled()  # not cancelled yet: no-op
        seen.append("checked once")
        gate.wait()
        try:
            from_thread.check_cancelled()
        except tether.Cancelled:
            seen.append("cancelled")
            raise

    async def caller(scope_box):
        with tether.CancelScope() as scope:
            scope_box.append(scope)
            await to_thread.run_sync(job)
        seen.append(("cancelled_caught", scope.cancelled_caught))

    async def main():
        box = []
        async with tether.open_nursery() as nursery:
            nursery.start_soon(caller, box)
            await to_thread.run_sync(gate.entered.wait, GATE_TIMEOUT)
            box[0].cancel()
            await wait_all_tasks_blocked()
            gate.open()

    tether.run(main)
    assert seen == ["checked once", "cancelled", ("cancelled_caught", True)]


def test_with_abandon_cancellation_returns_at_once_and_discards_the_result():
    gate = Gate()
    finished = threading.Event()
    seen = []

    def job():
        gate.wait()
        try:
            from_thread.check_cancelled()
        except tether.Cancelled:
            seen.append("thread saw cancellation")
        finished.set()
        raise ValueError("discarded, never raised in the run")

    async def main():
        limiter = tether.CapacityLimiter(1)
        with tether.CancelScope() as scope:
            async with tether.open_nursery() as nursery:
                nursery.start_soon(
                    lambda: to_thread.run_sync(job, abandon_on_cancel=True, limiter=limiter)
                )
                await to_thread.run_sync(gate.entered.wait, GATE_TIMEOUT)
                scope.cancel()
        assert scope.cancelled_caught
        # The thread is still running and still holds its token.
        assert not finished.is_set()
        assert limiter.borrowed_tokens == 1
        gate.open()
        await wait_until(lambda: limiter.borrowed_tokens == 0)
        assert finished.is_set()

    tether.run(main)
    assert seen == ["thread saw cancellation"]


def test_abandoned_thread_outliving_the_run_gets_run_finished_error():
    gate = Gate()
    outcome_box = []
    done = threading.Event()

    def job():
        gate.wait()
        try:
            from_thread.run_sync(lambda: None)
        except tether.RunFinishedError as exc:
            outcome_box.append(exc)
        finally:
            done.set()

    async def main():
        with tether.move_on_after(0.01):
            await to_thread.run_sync(job, abandon_on_cancel=True)

    tether.run(main)
    gate.open()
    assert done.wait(GATE_TIMEOUT)
    assert len(outcome_box) == 1


def test_check_cancelled_outside_worker_thread_is_runtime_error():
    with pytest.raises(RuntimeError, match="to_thread"):
        from_thread.check_cancelled()

    async def main():
        with pytest.raises(RuntimeError, match="to_thread"):
            from_thread.check_cancelled()

    tether.run(main)


# ---------------------------------------------------------------- from_thread


def test_from_thread_run_and_run_sync_from_a_worker():
    async def double(x):
        await tether.sleep(0)
        return x * 2, lowlevel.current_task()

    async def main():
        loop_thread = threading.get_ident()
        caller = lowlevel.current_task()

        def job():
            value, task = from_thread.run(double, 21)
            ident, in_task = from_thread.run_sync(
                lambda: (threading.get_ident(), lowlevel.current_task())
            )
            return value, task, ident, in_task

        value, task, ident, in_task = await to_thread.run_sync(job)
        assert value == 42
        # Without abandon_on_cancel, the work runs in the waiting task itself.
        assert task is caller
        assert in_task is caller
        assert ident == loop_thread

    tether.run(main)


def test_from_thread_with_abandon_runs_in_a_system_task():
    async def which_task():
        await lowlevel.checkpoint()
        return lowlevel.current_task()

    async def main():
        caller = lowlevel.current_task()
        task = await to_thread.run_sync(lambda: from_thread.run(which_task), abandon_on_cancel=True)
        assert task is not caller
        assert task.parent_nursery is not None
        # A system task: it lives in the root task's nursery.
        assert task.parent_nursery.parent_task is lowlevel.current_root_task()

    tether.run(main)


def test_from_thread_exceptions_propagate_into_the_thread_and_back():
    class Boom(Exception):
        pass

    async def afail():
        await lowlevel.checkpoint()
        raise Boom("async")

    def sfail():
        raise Boom("sync")

    async def main():
        def job():
            caught = []
            for call, fn in ((from_thread.run, afail), (from_thread.run_sync, sfail)):
                try:
                    call(fn)
                except Boom as exc:
                    caught.append(str(exc))
            from_thread.run(afail)  # this one escapes the thread
            return caught  # pragma: no cover

        with pytest.raises(Boom, match="async"):
            await to_thread.run_sync(job)
        return "ok"

    assert tether.run(main) == "ok"


def test_from_thread_run_is_cancelled_with_the_to_thread_caller():
    seen = []

    async def main():
        async def forever():
            seen.append("started")
            await tether.sleep_forever()

        def job():
            try:
                from_thread.run(forever)
            except tether.Cancelled:
                seen.append("thread got Cancelled")
                raise

        with tether.move_on_after(5) as scope:
            await to_thread.run_sync(job)
        assert scope.cancelled_caught

    run_mock(main)
    assert seen == ["started", "thread got Cancelled"]


def test_from_thread_sees_the_thread_context():
    async def read_var():
        return var.get()

    async def main():
        var.set("task")

        def job():
            var.set("thread")
            return from_thread.run(read_var), from_thread.run_sync(var.get)

        assert await to_thread.run_sync(job) == ("thread", "thread")
        # The caller's own context is back in place.
        assert var.get() == "task"
        await lowlevel.checkpoint()
        assert var.get() == "task"

    tether.run(main)


def test_from_thread_type_errors():
    async def an_async_fn():
        pass  # pragma: no cover

    async def main():
        def job():
            errors = []
            for call, fn in ((from_thread.run, lambda: None), (from_thread.run_sync, an_async_fn)):
                try:
                    call(fn)
                except TypeError as exc:
                    errors.append(str(exc))
            return errors

        errors = await to_thread.run_sync(job)
        assert len(errors) == 2
        assert "appears to be synchronous" in errors[0]
        assert "from_thread.run_sync" in errors[0]
        assert "expected a synchronous function" in errors[1]
        assert "from_thread.run " in errors[1]

    tether.run(main)


def test_from_thread_run_accepts_a_primitive_wait_method():
    # Event.wait returns a generator-based awaitable rather than a coroutine;
    # from_thread.run takes any async callable a task could await.
    async def main():
        event = tether.Event()

        def job():
            from_thread.run_sync(event.set)
            from_thread.run(event.wait)
            return "waited"

        assert await to_thread.run_sync(job) == "waited"

    tether.run(main)


@pytest.mark.parametrize("name", ["run", "run_sync"])
def test_from_thread_in_the_run_thread_is_runtime_error(name):
    call = getattr(from_thread, name)

    async def afn():
        pass  # pragma: no cover

    async def main():
        token = lowlevel.current_tether_token()
        fn = afn if name == "run" else (lambda: None)
        for kwargs in ({}, {"tether_token": token}):
            with pytest.raises(RuntimeError, match="directly"):
                call(fn, **kwargs)
        # Also from a run_sync_soon callback (not in a task, same thread).
        errors = []
        done = tether.Event()

        def callback():
            try:
                call(fn, tether_token=token)
            except RuntimeError as exc:
                errors.append(exc)
            done.set()

        token.run_sync_soon(callback)
        await done.wait()
        assert len(errors) == 1

    tether.run(main)


def test_from_thread_in_a_foreign_thread_needs_a_token():
    async def add(a, b):
        await lowlevel.checkpoint()
        return a + b, lowlevel.current_task()

    async def main():
        token = lowlevel.current_tether_token()
        results = {}

        def foreign():
            try:
                from_thread.run_sync(lambda: None)
            except RuntimeError as exc:
                results["no token"] = str(exc)
            try:
                from_thread.run(add, 1, 2, tether_token="not a token")
            except RuntimeError as exc:
                results["bad token"] = str(exc)
            results["run"] = from_thread.run(add, 1, 2, tether_token=token)
            results["run_sync"] = from_thread.run_sync(threading.get_ident, tether_token=token)

        thread = threading.Thread(target=foreign)
        await to_thread.run_sync(lambda: (thread.start(), thread.join()))
        assert "tether_token" in results["no token"]
        assert "TetherToken" in results["bad token"]
        value, task = results["run"]
        assert value == 3
        assert task is not lowlevel.current_task()
        assert results["run_sync"] == threading.get_ident()
        return token

    token = tether.run(main)
    with pytest.raises(tether.RunFinishedError):
        from_thread.run_sync(lambda: None, tether_token=token)


def test_from_thread_run_in_system_task_is_cancelled_when_the_run_ends():
    seen = []
    started = threading.Event()

    async def forever():
        started.set()
        try:
            await tether.sleep_forever()
        except tether.Cancelled:
            seen.append("system task cancelled")
            raise

    async def main():
        token = lowlevel.current_tether_token()

        def foreign():
            try:
                from_thread.run(forever, tether_token=token)
            except tether.Cancelled:
                seen.append("thread got Cancelled")

        thread = threading.Thread(target=foreign)
        thread.start()
        await to_thread.run_sync(started.wait, GATE_TIMEOUT)
        return thread

    thread = tether.run(main)
    thread.join(GATE_TIMEOUT)
    assert seen == ["system task cancelled", "thread got Cancelled"]


def test_many_workers_calling_back_concurrently():
    async def main():
        counter = [0]

        def bump():
            counter[0] += 1

        def job():
            for _ in range(200):
                from_thread.run_sync(bump)

        async with tether.open_nursery() as nursery:
            for _ in range(8):
                nursery.start_soon(to_thread.run_sync, job)
        return counter[0]

    assert tether.run(main) == 8 * 200


# ---------------------------------------------------------------- testing helpers


def test_active_thread_count_and_wait_all_threads_completed():
    gates = [Gate(), Gate()]
    finished = []

    async def use_thread(gate):
        await to_thread.run_sync(gate.wait)
        finished.append(gate)

    async def main():
        assert testing.active_thread_count() == 0
        await testing.wait_all_threads_completed()  # nothing to wait for
        waited = []

        async def waiter():
            await testing.wait_all_threads_completed()
            waited.append(testing.active_thread_count())

        async with tether.open_nursery() as nursery:
            for gate in gates:
                nursery.start_soon(use_thread, gate)
            await to_thread.run_sync(lambda: all(g.entered.wait(GATE_TIMEOUT) for g in gates))
            assert testing.active_thread_count() == 2
            nursery.start_soon(waiter)
            gates[0].open()
            await wait_until(lambda: len(finished) == 1)
            assert testing.active_thread_count() == 1
            await wait_all_tasks_blocked()
            assert waited == []
            gates[1].open()
        assert waited == [0]
        assert testing.active_thread_count() == 0

    tether.run(main)


def test_wait_all_threads_completed_is_a_checkpoint():
    async def main():
        with tether.CancelScope() as scope:
            scope.cancel()
            await testing.wait_all_threads_completed()
        assert scope.cancelled_caught

    tether.run(main)


def test_an_abandoned_call_stops_counting_as_active():
    gate = Gate()

    async def main():
        with tether.CancelScope() as scope:
            async with tether.open_nursery() as nursery:
                nursery.start_soon(
                    functools.partial(to_thread.run_sync, gate.wait, abandon_on_cancel=True)
                )
                await to_thread.run_sync(gate.entered.wait, GATE_TIMEOUT)
                assert testing.active_thread_count() == 1
                scope.cancel()
        assert testing.active_thread_count() == 0
        gate.open()

    tether.run(main)


def test_a_crashed_run_waits_for_a_worker_thread_before_giving_up():
    # After a crash every task is cancelled; a task whose thread is still
    # working cannot be woken by the kernel, but its thread will report
    # back: the run waits for it instead of declaring the tasks stuck.
    seen = []

    def crash():
        raise RuntimeError("callback failed")

    async def worker():
        try:
            seen.append(await to_thread.run_sync(time.sleep, 0.05))
        finally:
            seen.append("unwound")

    async def main():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(worker)
            await wait_all_tasks_blocked()
            lowlevel.current_tether_token().run_sync_soon(crash)
            await tether.sleep_forever()

    with pytest.raises(tether.TetherInternalError) as info:
        tether.run(main)
    assert "could not be woken" not in str(info.value)
    assert seen == [None, "unwound"]
