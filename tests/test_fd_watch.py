"""lowlevel.FdWatchSet: level-triggered readiness of many fds, in the run's own
poller, side by side with one-shot `wait_readable` / `wait_writable`.

Runs on epoll and on the `selectors` fallback (patched in as in
test_io.py)."""

import errno
import os
import select
import selectors
import socket

import pytest

import tether
from tether import lowlevel
from tether._core import _io_selectors, _run
from tether._core._run_context import current_runner
from tether.testing import MockClock

pytestmark = pytest.mark.timeout(20)

READ = selectors.EVENT_READ
WRITE = selectors.EVENT_WRITE


def run_mock(async_fn, *args):
    return tether.run(async_fn, *args, clock=MockClock(autojump_threshold=0))


@pytest.fixture(params=["epoll", "EpollSelector", "PollSelector"])
def backend(request, monkeypatch):
    if request.param == "epoll":
        if not hasattr(select, "epoll"):
            pytest.skip("no epoll on this platform")
        return request.param
    selector_class = getattr(selectors, request.param, None)
    if selector_class is None:
        pytest.skip(f"selectors.{request.param} is not available here")
    monkeypatch.setattr(selectors, "DefaultSelector", selector_class)
    monkeypatch.setattr(_run, "make_io_manager", _io_selectors.SelectorIOManager)
    return request.param


async def wait_briefly(watch_set):
    """What `wait` reports within one (virtual) second; {} if nothing."""
    with tether.move_on_after(1):
        return await watch_set.wait()
    return {}


def test_reports_ready_fds_level_triggered(backend, pair):
    a, b = pair

    async def main():
        watch_set = lowlevel.FdWatchSet()
        assert watch_set.watch(a, READ) == a.fileno()
        assert await wait_briefly(watch_set) == {}
        b.send(b"xy")
        first = await watch_set.wait()
        # Not read yet: reported again.
        again = await watch_set.wait()
        a.recv(10)
        after_reading = await wait_briefly(watch_set)
        watch_set.close()
        return first, again, after_reading

    fd = a.fileno()
    assert run_mock(main) == ({fd: READ}, {fd: READ}, {})


def test_several_fds_and_both_directions(backend, pair):
    a, b = pair

    async def main():
        watch_set = lowlevel.FdWatchSet()
        watch_set.watch(a, READ | WRITE)
        watch_set.watch(b.fileno(), READ)
        # A fresh socket can be written at once; nothing to read yet.
        writable = await watch_set.wait()
        a.send(b"to b")
        both = await watch_set.wait()
        watch_set.close()
        return writable, both

    writable, both = run_mock(main)
    assert writable == {a.fileno(): WRITE}
    assert both == {a.fileno(): WRITE, b.fileno(): READ}


def test_withdrawn_watch_reports_nothing(backend, pair):
    a, b = pair

    async def main():
        watch_set = lowlevel.FdWatchSet()
        watch_set.watch(a, READ)
        watch_set.watch(a, 0)
        b.send(b"x")
        reported = await wait_briefly(watch_set)
        # And the fd can be waited on the one-shot way.
        await lowlevel.wait_readable(a)
        watch_set.close()
        return reported

    assert run_mock(main) == {}


def test_bad_arguments(backend, pair):
    a = pair[0]

    async def main():
        watch_set = lowlevel.FdWatchSet()
        with pytest.raises(ValueError, match=r"mask of selectors\.EVENT_READ"):
            watch_set.watch(a, 4)
        with pytest.raises(ValueError, match="invalid file descriptor"):
            watch_set.watch(-1, READ)
        with pytest.raises(TypeError):
            watch_set.watch("not a file", READ)
        other = lowlevel.FdWatchSet()
        watch_set.watch(a, READ)
        with pytest.raises(tether.BusyResourceError, match="another FdWatchSet"):
            other.watch(a, READ)
        other.close()
        watch_set.close()
        with pytest.raises(tether.ClosedResourceError):
            watch_set.watch(a, READ)

    run_mock(main)


def test_closed_fd_is_refused_with_the_os_error():
    # (epoll refuses a closed fd at once; poll and select do not.)
    if not hasattr(select, "epoll"):
        pytest.skip("needs epoll")

    async def main():
        r, w = socket.socketpair()
        fd = r.fileno()
        r.close()
        w.close()
        watch_set = lowlevel.FdWatchSet()
        with pytest.raises(OSError) as info:
            watch_set.watch(fd, READ)
        watch_set.close()
        return info.value.errno

    assert run_mock(main) == errno.EBADF


def test_one_task_waits_at_a_time(backend, pair):
    async def main():
        watch_set = lowlevel.FdWatchSet()
        watch_set.watch(pair[0], READ)
        async with tether.open_nursery() as nursery:
            nursery.start_soon(watch_set.wait)
            await tether.testing.wait_all_tasks_blocked()
            with pytest.raises(tether.BusyResourceError, match="another task"):
                await watch_set.wait()
            nursery.cancel_scope.cancel()
        watch_set.close()

    run_mock(main)


def test_close_wakes_the_waiter_with_closed_resource_error(backend, pair):
    async def main():
        watch_set = lowlevel.FdWatchSet()
        watch_set.watch(pair[0], READ)
        errors = []

        async def waiter():
            try:
                await watch_set.wait()
            except tether.ClosedResourceError as exc:
                errors.append(exc)

        async with tether.open_nursery() as nursery:
            nursery.start_soon(waiter)
            await tether.testing.wait_all_tasks_blocked()
            watch_set.close()
            watch_set.close()  # idempotent
        with pytest.raises(tether.ClosedResourceError):
            await watch_set.wait()
        return errors

    errors = run_mock(main)
    assert len(errors) == 1
    assert "closed while a task waited" in str(errors[0])


def test_cancelled_wait_loses_nothing(backend, pair):
    a, b = pair

    async def main():
        watch_set = lowlevel.FdWatchSet()
        watch_set.watch(a, READ)
        with tether.CancelScope() as scope:
            scope.cancel()
            await watch_set.wait()
        b.send(b"x")
        # A report waiting while the scope is cancelled: the wait is still
        # a checkpoint, and the report stays for the next call.
        await tether.sleep(0)
        with tether.CancelScope() as scope:
            scope.cancel()
            await watch_set.wait()
        reported = await watch_set.wait()
        watch_set.close()
        return reported

    assert run_mock(main) == {pair[0].fileno(): READ}


def test_a_task_can_wait_on_a_watched_fd(backend, pair):
    a, b = pair

    async def main():
        watch_set = lowlevel.FdWatchSet()
        watch_set.watch(a, READ)
        woken = []

        async def reader():
            await lowlevel.wait_readable(a)
            woken.append("task")

        async with tether.open_nursery() as nursery:
            nursery.start_soon(reader)
            await tether.testing.wait_all_tasks_blocked()
            b.send(b"x")
            reported = await watch_set.wait()
        # The task's wait is over; the watch still stands.
        again = await watch_set.wait()
        watch_set.close()
        return woken, reported, again

    fd = a.fileno()
    assert run_mock(main) == (["task"], {fd: READ}, {fd: READ})


def test_fd_number_reused_after_a_close_behind_the_watchs_back(backend):
    # The poller forgot the closed file; a task waiting on the new file that
    # got the same number must still be woken.
    async def main():
        old, old_peer = socket.socketpair()
        watch_set = lowlevel.FdWatchSet()
        watch_set.watch(old, READ)
        number = old.fileno()
        old.close()
        old_peer.close()
        new, new_peer = socket.socketpair()
        try:
            if number not in (new.fileno(), new_peer.fileno()):
                pytest.skip("the OS did not reuse the number")
            mine = new if new.fileno() == number else new_peer
            other = new_peer if mine is new else new
            other.send(b"x")
            with tether.fail_after(5):
                await lowlevel.wait_readable(mine)
        finally:
            watch_set.close()
            new.close()
            new_peer.close()

    run_mock(main)


def test_notify_closing_stops_the_watch(backend, pair):
    a, b = pair

    async def main():
        watch_set = lowlevel.FdWatchSet()
        watch_set.watch(a, READ)
        lowlevel.notify_closing(a)
        b.send(b"x")
        reported = await wait_briefly(watch_set)
        watch_set.close()
        return reported

    assert run_mock(main) == {}


def test_watching_needs_a_run():
    with pytest.raises(RuntimeError):
        lowlevel.FdWatchSet()


def test_repr(pair):
    async def main():
        watch_set = lowlevel.FdWatchSet()
        watch_set.watch(pair[0], READ)
        first = repr(watch_set)
        watch_set.close()
        return first, repr(watch_set)

    assert run_mock(main) == (
        "<tether.lowlevel.FdWatchSet, 1 fds>",
        "<tether.lowlevel.FdWatchSet, closed>",
    )


def _epoll_targets(epoll_fd):
    """The fds registered in the epoll `epoll_fd` (Linux's fdinfo)."""
    with open(f"/proc/self/fdinfo/{epoll_fd}") as info:
        return {int(line.split()[1]) for line in info if line.startswith("tfd:")}


def test_withdrawn_and_closed_watches_leave_the_poller_at_once():
    # A level-triggered registration left behind would keep reporting the
    # fd; withdrawing a watch, or closing the set, takes it out at once.
    if not hasattr(select, "epoll") or not os.path.exists("/proc/self/fdinfo"):
        pytest.skip("reads epoll's registrations from Linux's /proc")

    async def main():
        epoll_fd = current_runner().io_manager._epoll.fileno()
        r, w = socket.socketpair()
        with r, w:
            watch_set = lowlevel.FdWatchSet()
            watch_set.watch(r, READ)
            watch_set.watch(w, READ)
            registered = _epoll_targets(epoll_fd) >= {r.fileno(), w.fileno()}
            watch_set.watch(w, 0)
            after_withdrawing = _epoll_targets(epoll_fd)
            watch_set.close()
            after_closing = _epoll_targets(epoll_fd)
            return registered, after_withdrawing, after_closing, r.fileno(), w.fileno()

    registered, after_withdrawing, after_closing, r_fd, w_fd = run_mock(main)
    assert registered
    assert r_fd in after_withdrawing and w_fd not in after_withdrawing
    assert r_fd not in after_closing


# -- the on_ready hook ---------------------------------------------------------


def hook_and_waiter_program(a, b, *, runnable_meanwhile, calls, woken):
    """The program of the hook tests: a task waits on a watch set with a hook
    that reads what arrived; the main task sends one byte, either blocking
    right away (the run is idle when the I/O step sees it) or passing a
    checkpoint (it is runnable then)."""

    def hook(report):
        calls.append((report, current_runner().current_task))
        a.recv(10)

    async def main():
        watch_set = lowlevel.FdWatchSet(on_ready=hook)
        watch_set.watch(a, READ)

        async def waiter():
            report = await watch_set.wait()
            woken.append(report)
            a.recv(10)

        async with tether.open_nursery() as nursery:
            nursery.start_soon(waiter)
            await lowlevel.wait_all_tasks_blocked()
            b.send(b"x")
            if runnable_meanwhile:
                await lowlevel.checkpoint()
            await lowlevel.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
        watch_set.close()

    return main


def test_on_ready_hook_stands_in_for_the_waiter_when_the_run_is_idle(backend, pair):
    a, b = pair
    calls, woken = [], []
    run_mock(hook_and_waiter_program(a, b, runnable_meanwhile=False, calls=calls, woken=woken))
    # Called once, with what wait() would have returned, outside any task;
    # the waiter was never woken (it was cancelled still waiting).
    assert calls == [({a.fileno(): READ}, None)]
    assert woken == []


def test_waiter_is_woken_when_other_tasks_are_runnable(backend, pair):
    a, b = pair
    calls, woken = [], []
    run_mock(hook_and_waiter_program(a, b, runnable_meanwhile=True, calls=calls, woken=woken))
    assert calls == []
    assert woken == [{a.fileno(): READ}]


def test_on_ready_hook_is_never_used_under_a_scheduler(pair):
    a, b = pair
    calls, woken = [], []
    tether.run(
        hook_and_waiter_program(a, b, runnable_meanwhile=False, calls=calls, woken=woken),
        clock=MockClock(autojump_threshold=0),
        scheduler=lowlevel.Scheduler(),
    )
    assert calls == []
    assert woken == [{a.fileno(): READ}]


def test_report_stays_for_the_next_wait_if_the_waiter_left(backend, pair):
    # The I/O step queues the hook, then the deadline step (same turn)
    # cancels the waiter: the hook is skipped, and the next wait gets the
    # report.
    a, b = pair
    calls = []

    async def main():
        watch_set = lowlevel.FdWatchSet(on_ready=lambda report: calls.append(report))
        watch_set.watch(a, READ)
        runner = current_runner()
        real_process_events = runner.io_manager.process_events

        def process_events(events):
            real_process_events(events)
            if runner.ready_watches:
                # As if its deadline had passed during this wait.
                scope.deadline = -1
                runner.io_manager.process_events = real_process_events

        with tether.CancelScope() as scope:
            runner.io_manager.process_events = process_events
            b.send(b"x")
            await watch_set.wait()
        assert scope.cancelled_caught
        report = await wait_briefly(watch_set)
        watch_set.close()
        return report

    assert run_mock(main) == {a.fileno(): READ}
    assert calls == []


def test_on_ready_hook_that_raises_crashes_the_run(pair):
    a, b = pair

    def hook(report):
        raise ValueError("hook failed")

    async def main():
        watch_set = lowlevel.FdWatchSet(on_ready=hook)
        watch_set.watch(a, READ)
        b.send(b"x")
        await watch_set.wait()

    with pytest.raises(tether.TetherInternalError) as info:
        tether.run(main)
    errors = []
    pending = [info.value.__cause__]
    while pending:
        error = pending.pop()
        errors.append(error)
        pending.extend(getattr(error, "exceptions", ()))
    assert any(isinstance(error, ValueError) and "hook failed" in str(error) for error in errors)


def test_on_ready_must_be_callable():
    async def main():
        with pytest.raises(TypeError, match="on_ready must be a callable"):
            lowlevel.FdWatchSet(on_ready=42)

    tether.run(main)
