"""Guest mode (`lowlevel.start_guest_run`) on the smallest host loop: a
queue of callbacks. What works in a guest run, what the host may do to it,
how it starts and ends, and what it refuses. (The asyncio host:
test_guest_asyncio.py.)"""

from __future__ import annotations

import gc
import os
import selectors
import signal
import socket
import threading
import warnings

import pytest

import tether
from tether import lowlevel
from tether.testing import MockClock, wait_all_tasks_blocked

from .guest_hosts import QueueHost, run_as_guest


def autojump() -> MockClock:
    return MockClock(autojump_threshold=0)


# ---- results


def test_returns_what_the_main_task_returns():
    async def main(a, b):
        await lowlevel.checkpoint()
        return a + b

    assert run_as_guest(main, 1, 2) == 3


def test_error_of_the_main_task_reaches_done_callback():
    async def main():
        await lowlevel.checkpoint()
        raise KeyError("from the guest")

    with pytest.raises(KeyError, match="from the guest"):
        run_as_guest(main)


def test_crashed_system_task_is_an_internal_error():
    async def crash():
        raise ValueError("system task")

    async def main():
        lowlevel.spawn_system_task(crash)
        await tether.sleep_forever()

    with pytest.raises(tether.TetherInternalError, match="crashed"):
        run_as_guest(main)


def test_the_run_is_set_up_when_start_returns_and_no_task_has_run():
    host = QueueHost()
    record = []

    async def main():
        record.append("main")
        await lowlevel.checkpoint()
        return lowlevel.current_tether_token()

    host.start(main)
    assert record == []
    assert lowlevel.in_tether_run()
    assert not lowlevel.in_tether_task()
    token = lowlevel.current_tether_token()
    token.run_sync_soon(record.append, "callback")

    async def system_task():
        record.append("system task")

    lowlevel.spawn_system_task(system_task)
    assert host.run_until_done() is token
    assert sorted(record) == ["callback", "main", "system task"]
    assert not lowlevel.in_tether_run()


def test_host_runs_between_turns():
    # A task that never blocks must not starve the host: each batch is one
    # host callback, so the host's own callbacks run in between.
    host = QueueHost()
    seen = []

    async def main():
        for n in range(5):
            host.call_soon(lambda n=n: seen.append(f"host {n}"))
            seen.append(f"guest {n}")
            await lowlevel.checkpoint()

    host.run(main)
    assert seen[:4] == ["guest 0", "host 0", "guest 1", "host 1"]


# ---- everything works inside


def test_nurseries_cancel_scopes_and_deadlines_on_tethers_clock():
    async def child(results, n):
        await tether.sleep(n)
        results.append(n)

    async def main():
        results = []
        start = tether.current_time()
        with tether.move_on_after(2.5) as scope:
            async with tether.open_nursery() as nursery:
                for n in (1, 2, 3):
                    nursery.start_soon(child, results, n)
        return results, scope.cancelled_caught, tether.current_time() - start

    # The deadlines follow tether's (virtual) clock: an hour of tether time
    # would otherwise keep this test busy for an hour.
    results, caught, elapsed = run_as_guest(main, clock=autojump())
    assert results == [1, 2]
    assert caught
    assert elapsed == 2.5

    async def an_hour():
        await tether.sleep(3600)
        return tether.current_time()

    assert run_as_guest(an_hour, clock=autojump()) == 3600


def test_io():
    async def main():
        a, b = tether.socket.socketpair()
        with a, b:
            async with tether.open_nursery() as nursery:
                received = []

                async def receive():
                    received.append(await a.recv(10))

                nursery.start_soon(receive)
                await wait_all_tasks_blocked()
                await b.send(b"ping")
            return received

    assert run_as_guest(main) == [b"ping"]


def test_threads_both_ways():
    host_thread = threading.current_thread()

    async def main():
        def in_worker():
            # from_thread.run reaches back into the guest run.
            return tether.from_thread.run(where_am_i), threading.current_thread()

        async def where_am_i():
            await lowlevel.checkpoint()
            return threading.current_thread()

        came_back_to, worker = await tether.to_thread.run_sync(in_worker)
        return came_back_to, worker

    came_back_to, worker = run_as_guest(main)
    assert came_back_to is host_thread
    assert worker is not host_thread


def test_from_thread_refuses_the_host_thread():
    # Host code runs in the run's thread: a blocking call into the run from
    # there could never return, so it is refused.
    host = QueueHost()
    errors = []

    async def noop():
        pass  # pragma: no cover

    async def main():
        with tether.CancelScope() as scope:

            def from_host():
                try:
                    tether.from_thread.run(noop)
                except RuntimeError as exc:
                    errors.append(str(exc))
                scope.cancel()

            host.call_soon(from_host)
            await tether.sleep_forever()

    host.run(main)
    assert len(errors) == 1
    assert "host loop of a guest run" in errors[0]


def test_signals():
    async def main():
        with tether.open_signal_receiver(signal.SIGUSR1) as signals:
            signal.raise_signal(signal.SIGUSR1)
            async for signum in signals:
                return signum

    assert run_as_guest(main) == signal.SIGUSR1


def test_signal_raised_by_host_code_wakes_the_guest():
    host = QueueHost()

    async def main():
        with tether.open_signal_receiver(signal.SIGUSR1) as signals:
            host.call_soon(lambda: signal.raise_signal(signal.SIGUSR1))
            async for signum in signals:
                return signum

    assert host.run(main) == signal.SIGUSR1


def test_instruments():
    hooks = []

    class Recorder(lowlevel.Instrument):
        def before_run(self):
            hooks.append("before_run")

        def after_run(self):
            hooks.append("after_run")

        def before_io_wait(self, timeout):
            hooks.append("before_io_wait")

        def after_io_wait(self, timeout):
            hooks.append("after_io_wait")

    async def main():
        await tether.sleep(1)

    run_as_guest(main, clock=autojump(), instruments=[Recorder()])
    assert hooks[0] == "before_run"
    assert hooks[-1] == "after_run"
    waits = hooks[1:-1]
    assert waits and waits == ["before_io_wait", "after_io_wait"] * (len(waits) // 2)


def test_wait_all_tasks_blocked():
    async def main():
        record = []

        async def sleeper():
            record.append("asleep")
            await tether.sleep_forever()

        async with tether.open_nursery() as nursery:
            nursery.start_soon(sleeper)
            await wait_all_tasks_blocked()
            record.append("all blocked")
            nursery.cancel_scope.cancel()
        return record

    assert run_as_guest(main) == ["asleep", "all blocked"]


def test_async_generators_are_finalized_in_the_guest_run():
    record = []

    async def ticker():
        try:
            yield 1
            yield 2
        finally:
            # Finalized by the run: a tether checkpoint works here.
            await lowlevel.cancel_shielded_checkpoint()
            record.append("finalized in a task" if lowlevel.in_tether_task() else "outside")

    async def main():
        agen = ticker()
        assert await agen.__anext__() == 1
        del agen
        gc.collect()
        for _ in range(3):
            await lowlevel.checkpoint()

    with pytest.warns(ResourceWarning, match="garbage collected"):
        run_as_guest(main)
    assert record == ["finalized in a task"]


def test_async_generators_left_open_are_closed_at_the_end():
    record = []

    async def ticker():
        try:
            yield 1
        finally:
            record.append("closed")

    keep = []

    async def main():
        agen = ticker()
        keep.append(agen)
        await agen.__anext__()

    run_as_guest(main)
    assert record == ["closed"]


def test_schedule_seed_and_scheduler():
    async def main():
        order = []

        async def worker(n):
            order.append(n)

        async with tether.open_nursery() as nursery:
            for n in range(8):
                nursery.start_soon(worker, n)
        return order

    first = run_as_guest(main, schedule_seed=7)
    assert run_as_guest(main, schedule_seed=7) == first
    assert sorted(first) == list(range(8))
    assert run_as_guest(main, scheduler=lowlevel.SeededScheduler(7)) == first
    with pytest.raises(ValueError, match="not both"):
        run_as_guest(main, schedule_seed=7, scheduler=lowlevel.SeededScheduler(7))
    assert not lowlevel.in_tether_run()


def test_aio_run_hosted_inside_a_guest_run():
    import asyncio

    import tether.aio

    async def asyncio_code():
        loop = asyncio.get_running_loop()
        results = await asyncio.gather(asyncio.sleep(0.5, "a"), asyncio.sleep(0.2, "b"))
        return results, type(loop).__module__.startswith("tether.aio")

    async def main():
        return await tether.aio.run_hosted(asyncio_code())

    assert run_as_guest(main, clock=autojump()) == (["a", "b"], True)
    # Between turns the host's thread has no asyncio loop running again.
    assert asyncio._get_running_loop() is None


# ---- the host wakes the guest


def test_host_sets_an_event():
    host = QueueHost()

    async def main():
        event = tether.Event()
        # Set by the host while the worker thread waits for I/O.
        host.call_soon(event.set)
        await event.wait()
        return "woken"

    assert host.run(main) == "woken"


def test_host_cancels_and_moves_deadlines():
    host = QueueHost()

    def set_deadline(scope, deadline):
        scope.deadline = deadline

    async def main():
        with tether.CancelScope() as scope:
            host.call_soon(scope.cancel)
            await tether.sleep_forever()
        assert scope.cancelled_caught
        with tether.CancelScope() as scope:
            # A later deadline first (nothing to wake for), then a past one.
            host.call_soon(lambda: set_deadline(scope, tether.current_time() + 1e6))
            host.call_soon(lambda: set_deadline(scope, -1))
            await tether.sleep_forever()
        return scope.cancelled_caught

    assert host.run(main) is True


def test_host_starts_a_task():
    host = QueueHost()

    async def main():
        done = tether.Event()

        async def started_by_host():
            done.set()

        async with tether.open_nursery() as nursery:
            host.call_soon(lambda: nursery.start_soon(started_by_host))
            await done.wait()
        return "ran"

    assert host.run(main) == "ran"


def test_host_changes_the_autojump_threshold():
    clock = MockClock()
    host = QueueHost()

    async def main():
        host.call_soon(lambda: setattr(clock, "autojump_threshold", 0))
        await tether.sleep(1000)
        return tether.current_time()

    assert host.run(main, clock=clock) == 1000


def test_host_jumps_the_mock_clock():
    # The guest's loop waits for ever for a deadline on a clock that stands
    # still: a jump from host code must give it a turn to see the new time.
    clock = MockClock()
    host = QueueHost()

    async def main():
        host.call_soon(lambda: clock.jump(1000))
        await tether.sleep(1000)
        return tether.current_time()

    assert host.run(main, clock=clock) == 1000


def test_host_starts_the_mock_clock():
    clock = MockClock()
    host = QueueHost()

    async def main():
        host.call_soon(lambda: setattr(clock, "rate", 1e9))
        await tether.sleep(1000)
        return tether.current_time() >= 1000

    assert host.run(main, clock=clock)


def test_host_wakeup_is_not_idleness():
    # A wakeup from the host that changes nothing the tasks wait for must not
    # count as "every task has been blocked for the cushion".
    host = QueueHost()

    async def main():
        record = []

        async def idle_waiter():
            await wait_all_tasks_blocked(cushion=10_000)
            record.append("idle")  # pragma: no cover

        async with tether.open_nursery() as nursery:
            nursery.start_soon(idle_waiter)
            await wait_all_tasks_blocked()
            with tether.CancelScope() as scope:
                host.call_soon(lambda: setattr(scope, "deadline", 1e12))
                host.call_soon(scope.cancel)
                await tether.sleep_forever()
            nursery.cancel_scope.cancel()
        return record

    assert host.run(main) == []


def test_host_code_sees_the_run_but_is_not_a_task():
    host = QueueHost()
    seen = {}

    def look():
        seen["in run"] = lowlevel.in_tether_run()
        seen["in task"] = lowlevel.in_tether_task()
        try:
            lowlevel.current_task()
        except RuntimeError as exc:
            seen["current_task"] = str(exc)

    async def main():
        event = tether.Event()
        host.call_soon(look)
        host.call_soon(event.set)
        await event.wait()

    host.run(main)
    assert seen["in run"] and not seen["in task"]
    assert "inside a tether task" in seen["current_task"]


# ---- Ctrl-C


def test_ctrl_c_in_host_code_reaches_the_main_task():
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    host = QueueHost()
    record = []

    async def main():
        try:
            host.call_soon(lambda: signal.raise_signal(signal.SIGINT))
            await tether.sleep_forever()
        finally:
            record.append("unwound")

    with pytest.raises(KeyboardInterrupt):
        host.run(main)
    assert record == ["unwound"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_after_the_main_task_finished():
    host = QueueHost()
    error = KeyError("the main task's own error")

    async def main():
        host.call_soon(lambda: signal.raise_signal(signal.SIGINT))
        raise error

    with pytest.raises(KeyboardInterrupt) as info:
        host.run(main)
    assert info.value.__context__ is error


def test_restrict_keyboard_interrupt_to_checkpoints():
    record = []

    async def main():
        signal.raise_signal(signal.SIGINT)
        record.append("still running")
        await lowlevel.checkpoint()
        record.append("not reached")  # pragma: no cover

    with pytest.raises(KeyboardInterrupt):
        run_as_guest(main, restrict_keyboard_interrupt_to_checkpoints=True)
    assert record == ["still running"]


# ---- the signal wakeup fd


def test_wakeup_fd_taken_over_with_a_warning_and_put_back():
    async def main():
        return "ok"

    a, b = socket.socketpair()
    with a, b:
        a.setblocking(False)
        signal.set_wakeup_fd(a.fileno())
        try:
            with pytest.warns(RuntimeWarning, match="collided"):
                assert run_as_guest(main) == "ok"
        finally:
            assert signal.set_wakeup_fd(-1) == a.fileno()


def test_wakeup_fd_left_alone_when_the_host_uses_it():
    async def main():
        fd = signal.set_wakeup_fd(-1)
        signal.set_wakeup_fd(fd)
        return fd

    a, b = socket.socketpair()
    with a, b:
        a.setblocking(False)
        signal.set_wakeup_fd(a.fileno())
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                assert run_as_guest(main, host_uses_signal_set_wakeup_fd=True) == a.fileno()
        finally:
            assert signal.set_wakeup_fd(-1) == a.fileno()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert run_as_guest(main) != -1  # tether's own, when nobody had one
    assert signal.set_wakeup_fd(-1) == -1


# ---- what is refused


def test_one_run_per_thread():
    async def inner():
        pass  # pragma: no cover

    def start_inner():
        lowlevel.start_guest_run(inner, run_sync_soon_threadsafe=print, done_callback=print)

    async def guest_main():
        with pytest.raises(RuntimeError, match="guest run"):
            start_inner()
        with pytest.raises(RuntimeError, match="guest run"):
            tether.run(inner)
        return "refused"

    assert run_as_guest(guest_main) == "refused"

    async def quick():
        await lowlevel.checkpoint()

    host = QueueHost()
    host.start(quick)
    # Host code, between two turns: the thread is in the guest run.
    with pytest.raises(RuntimeError, match="hosts a tether guest run"):
        start_inner()
    with pytest.raises(RuntimeError, match="hosts a tether guest run"):
        tether.run(inner)
    host.run_until_done()

    async def plain_main():
        with pytest.raises(RuntimeError, match="inside a running tether run"):
            start_inner()
        return "refused"

    assert tether.run(plain_main) == "refused"


def test_bad_arguments():
    async def main():
        pass  # pragma: no cover

    coro = main()
    with pytest.raises(TypeError, match="coroutine object"):
        lowlevel.start_guest_run(coro, run_sync_soon_threadsafe=print, done_callback=print)
    with pytest.raises(TypeError, match="done_callback must be callable"):
        lowlevel.start_guest_run(main, run_sync_soon_threadsafe=print, done_callback=None)
    with pytest.raises(TypeError, match="run_sync_soon_threadsafe must be callable"):
        lowlevel.start_guest_run(main, run_sync_soon_threadsafe=1, done_callback=print)
    with pytest.raises(TypeError, match="run_sync_soon_not_threadsafe"):
        lowlevel.start_guest_run(
            main,
            run_sync_soon_threadsafe=print,
            run_sync_soon_not_threadsafe="no",
            done_callback=print,
        )
    assert not lowlevel.in_tether_run()


def test_loose_exception_groups_are_deprecated():
    async def main():
        return "ok"

    with pytest.warns(tether.TetherDeprecationWarning, match="start_guest_run"):
        assert run_as_guest(main, strict_exception_groups=False) == "ok"


def test_a_failing_start_raises_and_leaves_nothing_behind():
    class BrokenClock(tether.abc.Clock):
        def start_clock(self):
            raise ValueError("no time today")

        def current_time(self):
            return 0.0  # pragma: no cover

        def deadline_to_sleep_time(self, deadline):
            return 0.0  # pragma: no cover

    async def main():
        pass  # pragma: no cover

    with pytest.raises(tether.TetherInternalError, match="could not start") as info:
        run_as_guest(main, clock=BrokenClock())
    assert isinstance(info.value.__cause__, ValueError)
    assert not lowlevel.in_tether_run()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert run_as_guest(_checkpoint) is None


# ---- the host's callbacks fail, the host stops first


def test_done_callback_error_goes_to_the_host():
    host = QueueHost()

    async def main():
        return "ok"

    def failing_done(result):
        host.result = result
        raise OSError("the host's own bug")

    lowlevel.start_guest_run(
        main,
        run_sync_soon_threadsafe=host.call_soon_threadsafe,
        run_sync_soon_not_threadsafe=host.call_soon,
        done_callback=failing_done,
    )
    with pytest.raises(OSError, match="the host's own bug"):
        host.run_until_done()
    # The run had ended (and was torn down) before its callback failed.
    assert not lowlevel.in_tether_run()
    assert host.result is not None and host.result.unwrap() == "ok"


def test_host_refusing_a_callback_abandons_the_run():
    host = QueueHost()
    refusing = []
    record = []

    def call_soon(fn):
        if refusing:
            raise RuntimeError("host loop is closed")
        host.call_soon(fn)

    async def main():
        try:
            refusing.append(True)
            await lowlevel.checkpoint()
        finally:
            record.append("finally ran")

    lowlevel.start_guest_run(
        main,
        run_sync_soon_threadsafe=host.call_soon_threadsafe,
        run_sync_soon_not_threadsafe=call_soon,
        done_callback=host.done,
    )
    with (
        pytest.warns(RuntimeWarning, match="abandoned.*refused.*host loop is closed"),
        pytest.raises(RuntimeError, match="host loop is closed"),
    ):
        host.run_until_done()
    assert host.result is None
    # The run is torn down; its task was stopped where it waited.
    assert not lowlevel.in_tether_run()
    assert record == ["finally ran"]


def test_host_dropping_the_run_abandons_it():
    record = []

    async def main():
        try:
            while True:
                await lowlevel.checkpoint()
        finally:
            record.append("finally ran")

    def drop_the_run():
        host = QueueHost()
        host.start(main)
        host.callbacks.get()()  # one turn, then the host forgets the run

    with pytest.warns(RuntimeWarning, match="abandoned.*host dropped it"):
        drop_the_run()
        for _ in range(3):
            gc.collect()
    # Abandoned runs do not linger: the thread is free, the handlers back.
    assert not lowlevel.in_tether_run()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert record == ["finally ran"]
    assert tether.run(_checkpoint) is None


async def _checkpoint():
    await lowlevel.checkpoint()


@pytest.mark.parametrize("name", ["PollSelector", "SelectSelector"])
def test_io_on_the_selectors_backend(name, monkeypatch):
    # The selectors fallback waits in the guest's worker thread too; the
    # bookkeeping of what is registered stays on the run's thread.
    from tether._core import _io_selectors, _run

    selector_class = getattr(selectors, name, None)
    if selector_class is None:
        pytest.skip(f"selectors.{name} is not available here")
    monkeypatch.setattr(selectors, "DefaultSelector", selector_class)
    monkeypatch.setattr(_run, "make_io_manager", _io_selectors.SelectorIOManager)
    log = []

    async def victim(fd):
        try:
            await lowlevel.wait_readable(fd)
        except tether.ClosedResourceError:
            log.append("closed")
        else:
            # poll() reports a closed fd ready (POLLNVAL): woken, no hang.
            log.append("closed" if name == "PollSelector" else "woken without error")

    async def main():
        assert tether.lowlevel.current_statistics().io_statistics.backend == name
        a, b = tether.socket.socketpair()
        fd = os.dup(b.fileno())
        with a, b:
            async with tether.open_nursery() as nursery:

                async def receive():
                    for _ in range(3):
                        log.append(await a.recv(10))

                nursery.start_soon(receive)
                nursery.start_soon(victim, fd)
                await wait_all_tasks_blocked()
                os.close(fd)  # behind the selector's back
                for message in (b"1", b"2", b"3"):
                    await b.send(message)
                    await wait_all_tasks_blocked()
        return sorted(map(str, log))

    assert run_as_guest(main) == sorted(map(str, ["closed", b"1", b"2", b"3"]))


@pytest.mark.parametrize("name", ["PollSelector", "SelectSelector"])
def test_selectors_backend_changes_registrations_on_the_host_thread_only(name, monkeypatch):
    # The worker thread only waits; what is registered is changed on the
    # host thread (where host code may cancel a wait at the same time).
    from tether._core import _io_selectors, _run

    base = getattr(selectors, name, None)
    if base is None:
        pytest.skip(f"selectors.{name} is not available here")
    host_thread = threading.current_thread()
    changed_from = []
    arriving = []

    class Watched(base):
        def register(self, *args, **kwargs):
            changed_from.append(threading.current_thread())
            return super().register(*args, **kwargs)

        def unregister(self, *args, **kwargs):
            changed_from.append(threading.current_thread())
            return super().unregister(*args, **kwargs)

        def select(self, timeout=None):
            if (timeout is None or timeout > 0) and arriving:
                # Data arrives while the worker thread waits (None: with no
                # deadline, the wait has no limit).
                sock, data = arriving.pop()
                sock.send(data)
            return super().select(timeout)

    monkeypatch.setattr(selectors, "DefaultSelector", Watched)
    monkeypatch.setattr(_run, "make_io_manager", _io_selectors.SelectorIOManager)

    async def main():
        a, b = socket.socketpair()
        with a, b:
            a.setblocking(False)
            arriving.append((b, b"during the wait"))
            await lowlevel.wait_readable(a)
            return a.recv(100)

    assert run_as_guest(main) == b"during the wait"
    assert not arriving
    assert set(changed_from) == {host_thread}
