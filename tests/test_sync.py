"""Lock, StrictFIFOLock, Semaphore, Condition, CapacityLimiter (Event has its
own tests in tests/core/test_event.py)."""

import math

import pytest

import tether
from tether import lowlevel
from tether.testing import MockClock, wait_all_tasks_blocked


def run_mock(async_fn):
    return tether.run(async_fn, clock=MockClock(autojump_threshold=0))


async def assert_is_checkpoint(make_call, undo=None):
    """`make_call()` returns an awaitable that does not block. Check that
    awaiting it lets another task run (schedule point) and that in a
    cancelled scope it raises Cancelled (cancel point). `undo` is called
    between the two tries to restore the state."""
    ran = []

    async def other():
        ran.append(True)

    async with tether.open_nursery() as nursery:
        nursery.start_soon(other)
        await make_call()
        assert ran == [True], "not a schedule point"
    if undo is not None:
        undo()
    with tether.CancelScope() as scope:
        scope.cancel()
        await make_call()
        raise AssertionError("not a cancel point")  # pragma: no cover
    assert scope.cancelled_caught


LOCKS = [tether.Lock, tether.StrictFIFOLock]


# ---------------------------------------------------------------------------
# Lock / StrictFIFOLock


@pytest.mark.parametrize("lock_cls", LOCKS)
def test_lock_basics(lock_cls):
    async def main():
        lock = lock_cls()
        assert not lock.locked()
        assert lock.statistics() == tether.LockStatistics(locked=False, owner=None, tasks_waiting=0)
        assert "unlocked" in repr(lock)
        await lock.acquire()
        assert lock.locked()
        me = lowlevel.current_task()
        assert lock.statistics().owner is me
        assert "locked" in repr(lock)
        lock.release()
        assert not lock.locked()
        lock.acquire_nowait()
        assert lock.locked()
        lock.release()
        async with lock:
            assert lock.statistics().owner is me
        assert not lock.locked()

    tether.run(main)


@pytest.mark.parametrize("lock_cls", LOCKS)
def test_lock_is_not_reentrant(lock_cls):
    async def main():
        lock = lock_cls()
        async with lock:
            with pytest.raises(RuntimeError, match="re-acquire"):
                lock.acquire_nowait()
            with pytest.raises(RuntimeError, match="re-acquire"):
                await lock.acquire()
            assert lock.statistics().tasks_waiting == 0
        assert not lock.locked()

    tether.run(main)


@pytest.mark.parametrize("lock_cls", LOCKS)
def test_release_requires_ownership(lock_cls):
    async def main():
        lock = lock_cls()
        with pytest.raises(RuntimeError, match="does not hold"):
            lock.release()

        async def holder(task_status=tether.TASK_STATUS_IGNORED):
            async with lock:
                task_status.started()
                await tether.sleep(10)

        async with tether.open_nursery() as nursery:
            await nursery.start(holder)
            assert lock.locked()
            with pytest.raises(RuntimeError, match="does not hold"):
                lock.release()
            with pytest.raises(tether.WouldBlock):
                lock.acquire_nowait()
            assert lock.locked()
        assert not lock.locked()

    run_mock(main)


@pytest.mark.parametrize("lock_cls", LOCKS)
def test_uncontended_acquire_is_a_checkpoint(lock_cls):
    async def main():
        lock = lock_cls()
        await assert_is_checkpoint(lock.acquire, undo=lock.release)
        # The cancelled acquire did not take the lock.
        assert not lock.locked()

    tether.run(main)


@pytest.mark.parametrize("lock_cls", LOCKS)
def test_contended_acquire_is_a_cancel_point(lock_cls):
    async def main():
        lock = lock_cls()
        async with tether.open_nursery() as nursery:
            async with lock:

                async def cancelled_waiter():
                    with tether.CancelScope() as scope:
                        scope.cancel()
                        await lock.acquire()
                    assert scope.cancelled_caught

                nursery.start_soon(cancelled_waiter)
                await wait_all_tasks_blocked()
                assert lock.statistics().tasks_waiting == 0
        assert not lock.locked()

    tether.run(main)


@pytest.mark.parametrize("lock_cls", LOCKS)
def test_lock_is_fifo_without_barging(lock_cls):
    log = []

    async def main():
        lock = lock_cls()

        async def worker(name):
            async with lock:
                log.append(name)
                await lowlevel.checkpoint()

        async with tether.open_nursery() as nursery:
            await lock.acquire()
            tasks = []
            for name in "abc":
                nursery.start_soon(worker, name)
                await wait_all_tasks_blocked()
                tasks.append(next(t for t in nursery.child_tasks if t not in tasks))
            assert lock.statistics().tasks_waiting == 3
            lock.release()
            # Handed over at once: "a" owns it before it runs again.
            assert lock.statistics().owner is tasks[0]
            assert lock.statistics().tasks_waiting == 2
            # Asking again right away queues behind the waiters.
            with pytest.raises(tether.WouldBlock):
                lock.acquire_nowait()
            await lock.acquire()
            log.append("main")
            lock.release()

    tether.run(main)
    assert log == ["a", "b", "c", "main"]


@pytest.mark.parametrize("lock_cls", LOCKS)
@pytest.mark.parametrize("seed", range(20))
def test_lock_goes_in_the_order_asked_even_with_shuffled_schedules(lock_cls, seed):
    # Tasks that call acquire() in some order get the lock in that order,
    # whatever order the scheduler then runs them in: an uncontended acquire
    # takes the lock before its schedule point, not after.
    asked = []
    got = []

    async def main():
        lock = lock_cls()
        go = tether.Event()

        async def worker(name):
            await go.wait()
            asked.append(name)
            async with lock:
                got.append(name)
                await lowlevel.checkpoint()

        async with tether.open_nursery() as nursery:
            for name in range(5):
                nursery.start_soon(worker, name)
            await wait_all_tasks_blocked()
            go.set()

    tether.run(main, schedule_seed=seed)
    assert got == asked


@pytest.mark.parametrize("lock_cls", LOCKS)
def test_cancelled_waiter_leaves_the_queue(lock_cls):
    log = []

    async def main():
        lock = lock_cls()

        async def waiter(name, scope_box):
            with tether.CancelScope() as scope:
                scope_box.append(scope)
                async with lock:
                    log.append(name)
            if scope.cancelled_caught:
                log.append(f"{name} cancelled")

        async with tether.open_nursery() as nursery:
            async with lock:
                scopes = {}
                for name in "ab":
                    box = []
                    nursery.start_soon(waiter, name, box)
                    await wait_all_tasks_blocked()
                    scopes[name] = box[0]
                scopes["a"].cancel()
                await wait_all_tasks_blocked()
                assert lock.statistics().tasks_waiting == 1
        assert not lock.locked()

    tether.run(main)
    assert log == ["a cancelled", "b"]


@pytest.mark.parametrize("lock_cls", LOCKS)
def test_lock_handed_to_task_cancelled_before_it_runs(lock_cls):
    # The hand-over happens in release(); cancelling the new owner's scope
    # right after cannot take it back. The owner runs, sees Cancelled at its
    # next checkpoint, and its `async with` releases the lock.
    log = []

    async def main():
        lock = lock_cls()
        box = []

        async def waiter():
            with tether.CancelScope() as scope:
                box.append(scope)
                async with lock:
                    log.append("got it")
                    await lowlevel.checkpoint()
                    log.append("not reached")  # pragma: no cover
            log.append(("cancelled", scope.cancelled_caught))

        async with tether.open_nursery() as nursery:
            await lock.acquire()
            nursery.start_soon(waiter)
            await wait_all_tasks_blocked()
            lock.release()
            box[0].cancel()
        assert not lock.locked()

    tether.run(main)
    assert log == ["got it", ("cancelled", True)]


@pytest.mark.parametrize("lock_cls", LOCKS)
def test_async_with_releases_on_error(lock_cls):
    async def main():
        lock = lock_cls()
        with pytest.raises(KeyError):
            async with lock:
                raise KeyError("boom")
        assert not lock.locked()

    tether.run(main)


def test_lock_timeout_while_waiting():
    async def main():
        lock = tether.Lock()

        async def hold():
            async with lock:
                await tether.sleep(10)

        async with tether.open_nursery() as nursery:
            nursery.start_soon(hold)
            await wait_all_tasks_blocked()
            with tether.move_on_after(3) as scope:
                await lock.acquire()
            assert scope.cancelled_caught
            assert tether.current_time() == 3
            await lock.acquire()
            assert tether.current_time() == 10
            lock.release()

    run_mock(main)


# ---------------------------------------------------------------------------
# Semaphore


def test_semaphore_constructor_checks():
    with pytest.raises(TypeError):
        tether.Semaphore(1.5)
    with pytest.raises(ValueError, match=r"^initial value must be >= 0$"):
        tether.Semaphore(-1)
    with pytest.raises(TypeError):
        tether.Semaphore(1, max_value=2.0)
    with pytest.raises(ValueError, match=r"^max_values must be >= initial_value$"):
        tether.Semaphore(3, max_value=2)
    sem = tether.Semaphore(2, max_value=5)
    assert sem.value == 2
    assert sem.max_value == 5
    assert "Semaphore(2, max_value=5)" in repr(sem)
    assert tether.Semaphore(0).max_value is None


def test_semaphore_counts():
    async def main():
        sem = tether.Semaphore(2, max_value=2)
        await sem.acquire()
        assert sem.value == 1
        sem.acquire_nowait()
        assert sem.value == 0
        with pytest.raises(tether.WouldBlock):
            sem.acquire_nowait()
        sem.release()
        sem.release()
        assert sem.value == 2
        with pytest.raises(ValueError, match=r"^semaphore released too many times$"):
            sem.release()
        assert sem.value == 2
        async with sem:
            assert sem.value == 1
        assert sem.value == 2

        unbounded = tether.Semaphore(0)
        for _ in range(10):
            unbounded.release()
        assert unbounded.value == 10

    tether.run(main)


def test_semaphore_acquire_is_a_checkpoint():
    async def main():
        sem = tether.Semaphore(1)
        await assert_is_checkpoint(sem.acquire, undo=sem.release)
        assert sem.value == 1

    tether.run(main)


def test_semaphore_fifo_hand_over():
    log = []

    async def main():
        sem = tether.Semaphore(0, max_value=1)

        async def worker(name):
            await sem.acquire()
            log.append(name)

        async with tether.open_nursery() as nursery:
            for name in "abc":
                nursery.start_soon(worker, name)
                await wait_all_tasks_blocked()
            assert sem.statistics().tasks_waiting == 3
            sem.release()
            # The unit went straight to "a": the value stays 0, so a
            # newcomer cannot take it first.
            assert sem.value == 0
            with pytest.raises(tether.WouldBlock):
                sem.acquire_nowait()
            await wait_all_tasks_blocked()
            assert log == ["a"]
            sem.release()
            sem.release()
            # With waiters, release never hits max_value: it hands over.
        assert sem.value == 0
        assert sem.statistics().tasks_waiting == 0

    tether.run(main)
    assert log == ["a", "b", "c"]


def test_semaphore_cancelled_waiter_takes_nothing():
    async def main():
        sem = tether.Semaphore(0)
        with tether.move_on_after(1) as scope:
            await sem.acquire()
        assert scope.cancelled_caught
        assert sem.statistics().tasks_waiting == 0
        sem.release()
        assert sem.value == 1
        with tether.CancelScope() as scope:
            scope.cancel()
            await sem.acquire()
        assert sem.value == 1

    run_mock(main)


# ---------------------------------------------------------------------------
# Condition


def test_condition_requires_a_plain_lock():
    tether.Condition()
    tether.Condition(tether.Lock())
    with pytest.raises(TypeError):
        tether.Condition(tether.StrictFIFOLock())
    with pytest.raises(TypeError):
        tether.Condition(tether.Semaphore(1))


def test_condition_lock_passthrough():
    async def main():
        lock = tether.Lock()
        cond = tether.Condition(lock)
        assert not cond.locked()
        await cond.acquire()
        assert cond.locked()
        assert lock.locked()
        cond.release()
        cond.acquire_nowait()
        assert lock.statistics().owner is lowlevel.current_task()
        cond.release()
        async with cond:
            assert lock.locked()
        assert not lock.locked()
        stats = cond.statistics()
        assert stats.tasks_waiting == 0
        assert stats.lock_statistics == lock.statistics()
        assert "Condition" in repr(cond)

    tether.run(main)


def test_condition_wait_and_notify_need_the_lock():
    async def main():
        cond = tether.Condition()
        with pytest.raises(RuntimeError, match="hold"):
            await cond.wait()
        with pytest.raises(RuntimeError, match="hold"):
            cond.notify()
        with pytest.raises(RuntimeError, match="hold"):
            cond.notify_all()

    tether.run(main)


def test_condition_notify_order_and_lock_hand_over():
    log = []

    async def main():
        cond = tether.Condition()

        async def waiter(name):
            async with cond:
                await cond.wait()
                # Woken holding the lock.
                assert cond.statistics().lock_statistics.owner is lowlevel.current_task()
                log.append(name)

        async with tether.open_nursery() as nursery:
            for name in "abcd":
                nursery.start_soon(waiter, name)
                await wait_all_tasks_blocked()
            assert cond.statistics().tasks_waiting == 4
            assert not cond.locked()
            async with cond:
                cond.notify()
                assert cond.statistics().tasks_waiting == 3
                # Notified tasks queue for the lock, which we still hold.
                assert cond.statistics().lock_statistics.tasks_waiting == 1
            await wait_all_tasks_blocked()
            assert log == ["a"]
            async with cond:
                cond.notify(2)
            await wait_all_tasks_blocked()
            assert log == ["a", "b", "c"]
            async with cond:
                cond.notify_all()
                cond.notify_all()  # nobody left: harmless
        assert log == ["a", "b", "c", "d"]
        assert not cond.locked()

    tether.run(main)


def test_condition_wait_reacquires_lock_when_cancelled():
    log = []

    async def main():
        cond = tether.Condition()
        box = []

        async def waiter():
            with tether.CancelScope() as scope:
                box.append(scope)
                async with cond:
                    try:
                        await cond.wait()
                    finally:
                        log.append(("holds lock", cond.locked(), tether.current_time()))
            log.append(("cancelled", scope.cancelled_caught))

        async with tether.open_nursery() as nursery:
            nursery.start_soon(waiter)
            await wait_all_tasks_blocked()
            async with cond:
                box[0].cancel()
                # The waiter cannot finish until it gets the lock back.
                await tether.sleep(5)
                assert log == []
        assert not cond.locked()

    run_mock(main)
    assert log == [("holds lock", True, 5.0), ("cancelled", True)]


def test_condition_cancelled_after_notify_still_reacquires():
    log = []

    async def main():
        cond = tether.Condition()
        box = []

        async def waiter():
            with tether.CancelScope() as scope:
                box.append(scope)
                async with cond:
                    try:
                        await cond.wait()
                    finally:
                        log.append(
                            cond.statistics().lock_statistics.owner is lowlevel.current_task()
                        )

        async with tether.open_nursery() as nursery:
            nursery.start_soon(waiter)
            await wait_all_tasks_blocked()
            async with cond:
                cond.notify()
                # Now parked in the lock's queue; cancel it there.
                box[0].cancel()
                await wait_all_tasks_blocked()
                assert log == []
                assert cond.statistics().lock_statistics.tasks_waiting == 1
        assert not cond.locked()

    tether.run(main)
    assert log == [True]


def test_condition_wait_is_a_checkpoint_when_already_cancelled():
    async def main():
        cond = tether.Condition()
        async with cond:
            with tether.CancelScope() as scope:
                scope.cancel()
                await cond.wait()
            assert scope.cancelled_caught
            assert cond.locked()
        assert not cond.locked()

    tether.run(main)


# ---------------------------------------------------------------------------
# CapacityLimiter


def test_capacity_limiter_constructor_and_total_tokens():
    with pytest.raises(TypeError):
        tether.CapacityLimiter(1.5)
    with pytest.raises(TypeError):
        tether.CapacityLimiter("2")
    with pytest.raises(ValueError, match=r"^total_tokens must be >= 0$"):
        tether.CapacityLimiter(-1)
    limiter = tether.CapacityLimiter(math.inf)
    assert limiter.total_tokens == math.inf
    limiter = tether.CapacityLimiter(2)
    assert limiter.total_tokens == 2
    assert limiter.borrowed_tokens == 0
    assert limiter.available_tokens == 2
    with pytest.raises(TypeError):
        limiter.total_tokens = 2.5
    with pytest.raises(ValueError, match=r"^total_tokens must be >= 0$"):
        limiter.total_tokens = -3
    assert limiter.total_tokens == 2
    assert "0/2" in repr(limiter)


def test_capacity_limiter_borrowing():
    async def main():
        limiter = tether.CapacityLimiter(2)
        me = lowlevel.current_task()
        await limiter.acquire()
        assert limiter.borrowed_tokens == 1
        assert limiter.available_tokens == 1
        with pytest.raises(RuntimeError, match="already holds"):
            await limiter.acquire()
        with pytest.raises(RuntimeError, match="already holds"):
            limiter.acquire_nowait()
        limiter.acquire_on_behalf_of_nowait("thread")
        assert limiter.available_tokens == 0
        with pytest.raises(tether.WouldBlock):
            limiter.acquire_on_behalf_of_nowait("other")
        stats = limiter.statistics()
        assert stats.borrowed_tokens == 2
        assert stats.total_tokens == 2
        assert set(stats.borrowers) == {me, "thread"}
        assert stats.tasks_waiting == 0
        with pytest.raises(RuntimeError, match="isn't holding"):
            limiter.release_on_behalf_of("other")
        limiter.release_on_behalf_of("thread")
        limiter.release()
        with pytest.raises(RuntimeError, match="isn't holding"):
            limiter.release()
        assert limiter.borrowed_tokens == 0
        async with limiter:
            assert limiter.statistics().borrowers == [me]
        assert limiter.borrowed_tokens == 0
        await limiter.acquire_on_behalf_of("x")
        assert limiter.statistics().borrowers == ["x"]
        limiter.release_on_behalf_of("x")

    tether.run(main)


def test_capacity_limiter_acquire_is_a_checkpoint():
    async def main():
        limiter = tether.CapacityLimiter(1)
        await assert_is_checkpoint(limiter.acquire, undo=limiter.release)
        assert limiter.borrowed_tokens == 0
        await assert_is_checkpoint(
            lambda: limiter.acquire_on_behalf_of("b"),
            undo=lambda: limiter.release_on_behalf_of("b"),
        )
        assert limiter.borrowed_tokens == 0

    tether.run(main)


def test_capacity_limiter_waiters_fifo_and_total_tokens_changes():
    log = []

    async def main():
        limiter = tether.CapacityLimiter(1)

        async def worker(name, release):
            await limiter.acquire_on_behalf_of(name)
            log.append(name)
            await release.wait()
            limiter.release_on_behalf_of(name)

        releases = {name: tether.Event() for name in "abcde"}
        async with tether.open_nursery() as nursery:
            for name in "abcde":
                nursery.start_soon(worker, name, releases[name])
                await wait_all_tasks_blocked()
            assert log == ["a"]
            assert limiter.statistics().tasks_waiting == 4
            # No barging while tasks wait, even with a free token...
            limiter.total_tokens = 3
            # ...because raising the total hands the new tokens over at once.
            assert limiter.borrowed_tokens == 3
            assert limiter.statistics().tasks_waiting == 2
            with pytest.raises(tether.WouldBlock):
                limiter.acquire_on_behalf_of_nowait("newcomer")
            await wait_all_tasks_blocked()
            assert log == ["a", "b", "c"]
            # Lowering it lets current borrowers finish, admits nobody new.
            limiter.total_tokens = 1
            assert limiter.available_tokens == -2
            releases["a"].set()
            releases["b"].set()
            await wait_all_tasks_blocked()
            assert log == ["a", "b", "c"]
            assert limiter.borrowed_tokens == 1
            releases["c"].set()
            await wait_all_tasks_blocked()
            assert log == ["a", "b", "c", "d"]
            releases["d"].set()
            releases["e"].set()
        assert log == ["a", "b", "c", "d", "e"]
        assert limiter.borrowed_tokens == 0

    tether.run(main)


def test_capacity_limiter_cancelled_waiter_borrows_nothing():
    async def main():
        limiter = tether.CapacityLimiter(0)
        with tether.move_on_after(1) as scope:
            await limiter.acquire_on_behalf_of("x")
        assert scope.cancelled_caught
        assert limiter.statistics().tasks_waiting == 0
        limiter.total_tokens = 1
        assert limiter.borrowed_tokens == 0
        with tether.CancelScope() as scope:
            scope.cancel()
            await limiter.acquire()
        assert limiter.borrowed_tokens == 0

    run_mock(main)


def test_capacity_limiter_infinite():
    async def main():
        limiter = tether.CapacityLimiter(math.inf)
        for i in range(100):
            await limiter.acquire_on_behalf_of(i)
        assert limiter.borrowed_tokens == 100
        assert limiter.available_tokens == math.inf

    tether.run(main)


def test_capacity_limiter_total_tokens_to_infinity_wakes_everyone():
    async def main():
        limiter = tether.CapacityLimiter(0)
        async with tether.open_nursery() as nursery:
            for i in range(5):
                nursery.start_soon(limiter.acquire_on_behalf_of, i)
            await wait_all_tasks_blocked()
            assert limiter.statistics().tasks_waiting == 5
            limiter.total_tokens = math.inf
        assert limiter.borrowed_tokens == 5

    tether.run(main)


# ---------------------------------------------------------------------------
# Shared behaviour


@pytest.mark.parametrize(
    "make",
    [
        tether.Lock,
        tether.StrictFIFOLock,
        lambda: tether.Semaphore(1),
        tether.Condition,
        lambda: tether.CapacityLimiter(1),
    ],
)
def test_async_context_managers_wait_and_time_out(make):
    async def main():
        prim = make()

        async def hold():
            async with prim:
                await tether.sleep(10)

        async with tether.open_nursery() as nursery:
            nursery.start_soon(hold)
            await wait_all_tasks_blocked()
            with tether.move_on_after(1) as scope:
                async with prim:
                    raise AssertionError("not reached")  # pragma: no cover
            assert scope.cancelled_caught
            async with prim:
                assert tether.current_time() == 10

    run_mock(main)


def test_capacity_limiter_acquire_started_as_a_task_borrows_for_that_task():
    # start_soon(limiter.acquire) must borrow on behalf of the new task (the
    # borrower is decided when the call is awaited), and cancelling that
    # task must leave no pending borrower behind.
    async def main():
        limiter = tether.CapacityLimiter(1)
        await limiter.acquire()
        async with tether.open_nursery() as nursery:
            nursery.start_soon(limiter.acquire)
            await wait_all_tasks_blocked()
            assert limiter.statistics().tasks_waiting == 1
            nursery.cancel_scope.cancel()
        assert limiter.statistics().tasks_waiting == 0
        assert limiter.borrowed_tokens == 1
        limiter.release()
        assert limiter.available_tokens == 1

    tether.run(main, clock=MockClock(autojump_threshold=0))


@pytest.mark.parametrize(
    "make",
    [
        tether.Event,
        tether.Lock,
        tether.StrictFIFOLock,
        lambda: tether.Semaphore(1),
        tether.Condition,
        lambda: tether.CapacityLimiter(1),
    ],
)
def test_primitives_can_be_weakly_referenced(make):
    import gc
    import weakref

    primitive = make()
    ref = weakref.ref(primitive)
    assert ref() is primitive
    del primitive
    gc.collect()
    assert ref() is None


def test_lock_whose_owner_exits_without_releasing_breaks_for_waiters():
    # Without this, the waiter would wait forever (a silent hang).
    async def owner(lock):
        await lock.acquire()  # and exits holding it

    async def waiter(lock, errors):
        try:
            await lock.acquire()
        except tether.BrokenResourceError as exc:
            errors.append(str(exc))

    async def main():
        lock = tether.Lock()
        errors = []
        async with tether.open_nursery() as nursery:
            nursery.start_soon(owner, lock)
            await wait_all_tasks_blocked()
            nursery.start_soon(waiter, lock, errors)
        assert len(errors) == 1 and "Owner of this lock exited without releasing" in errors[0]
        # Later attempts fail at once too, instead of blocking.
        with pytest.raises(tether.BrokenResourceError):
            await lock.acquire()

    tether.run(main, clock=MockClock(autojump_threshold=0))


@pytest.mark.parametrize("lock_class", [tether.Lock, tether.StrictFIFOLock])
def test_a_lock_handed_to_a_waiter_that_exits_holding_it_breaks_for_the_rest(lock_class):
    # The first owner releases to the first waiter while a second waits:
    # when the new owner exits holding the lock, the second one is told.
    log = []

    async def first_owner(lock, release):
        async with lock:
            await release.wait()

    async def takes_it_and_exits(lock):
        await lock.acquire()
        log.append("took it")

    async def waiter(lock):
        with pytest.raises(tether.BrokenResourceError, match="exited without releasing"):
            await lock.acquire()
        log.append("told")

    async def main():
        lock = lock_class()
        release = tether.Event()
        async with tether.open_nursery() as nursery:
            nursery.start_soon(first_owner, lock, release)
            await wait_all_tasks_blocked()
            nursery.start_soon(takes_it_and_exits, lock)
            await wait_all_tasks_blocked()
            nursery.start_soon(waiter, lock)
            await wait_all_tasks_blocked()
            release.set()
        assert log == ["took it", "told"]

    tether.run(main, clock=MockClock(autojump_threshold=0))


def test_a_task_notified_by_a_condition_is_told_when_the_owner_exits_holding_the_lock():
    async def waits(condition, log):
        await condition.acquire()
        with pytest.raises(tether.BrokenResourceError, match="exited without releasing"):
            await condition.wait()
        log.append("told")

    async def notifies_and_exits(condition):
        await condition.acquire()
        condition.notify()
        # ... and exits holding the lock.

    async def main():
        condition = tether.Condition()
        log = []
        async with tether.open_nursery() as nursery:
            nursery.start_soon(waits, condition, log)
            await wait_all_tasks_blocked()
            nursery.start_soon(notifies_and_exits, condition)
        assert log == ["told"]

    tether.run(main, clock=MockClock(autojump_threshold=0))


def test_lock_released_before_exit_is_not_broken():
    async def user(lock):
        async with lock:
            await lowlevel.checkpoint()

    async def main():
        lock = tether.Lock()
        async with tether.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(user, lock)
        async with lock:
            pass
        assert not lock.locked()

    tether.run(main)


def test_parking_lot_break_lot_and_breaker_registration():
    async def parked(lot, errors):
        try:
            await lot.park()
        except tether.BrokenResourceError:
            errors.append("broken")

    async def main():
        lot = lowlevel.ParkingLot()
        errors = []
        async with tether.open_nursery() as nursery:
            nursery.start_soon(parked, lot, errors)
            nursery.start_soon(parked, lot, errors)
            await wait_all_tasks_blocked()
            lot.break_lot()
        assert errors == ["broken", "broken"]
        assert lot.broken_by == [lowlevel.current_task()]
        with pytest.raises(tether.BrokenResourceError):
            await lot.park()

        other = lowlevel.ParkingLot()
        me = lowlevel.current_task()
        with pytest.raises(RuntimeError, match="not registered"):
            lowlevel.remove_parking_lot_breaker(me, other)
        lowlevel.add_parking_lot_breaker(me, other)
        lowlevel.remove_parking_lot_breaker(me, other)
        assert other.broken_by == []

    tether.run(main)
