"""I/O readiness (wait_readable, wait_writable, notify_closing), the run
loop's blocking wait, and TetherToken.run_sync_soon.

Real socketpairs and 127.0.0.1 TCP sockets. The readiness tests run on every
backend: epoll, and the `selectors` fallback over the selectors available
here (patched in through ``tether._core._run.make_io_manager``).
"""

import errno
import math
import os
import select
import selectors
import socket
import threading
import time

import pytest

import tether
from tether import lowlevel
from tether._core import _io_selectors, _run
from tether.testing import MockClock, wait_all_tasks_blocked

pytestmark = pytest.mark.timeout(20)


def run_mock(async_fn, *args, **kwargs):
    return tether.run(async_fn, *args, clock=MockClock(autojump_threshold=0), **kwargs)


# ---------------------------------------------------------------- backends

BACKENDS = ["epoll", "EpollSelector", "PollSelector", "SelectSelector"]


def _use_backend(name, monkeypatch):
    if name == "epoll":
        if not hasattr(select, "epoll"):
            pytest.skip("no epoll on this platform")
        return
    selector_class = getattr(selectors, name, None)
    if selector_class is None:
        pytest.skip(f"selectors.{name} is not available here")
    monkeypatch.setattr(selectors, "DefaultSelector", selector_class)
    monkeypatch.setattr(_run, "make_io_manager", _io_selectors.SelectorIOManager)


@pytest.fixture(params=BACKENDS)
def backend(request, monkeypatch):
    _use_backend(request.param, monkeypatch)
    return request.param


# Backends on which registering a closed fd fails at once (select and poll
# accept it; see test_closed_int_fd).
@pytest.fixture(params=["epoll", "EpollSelector"])
def checking_backend(request, monkeypatch):
    _use_backend(request.param, monkeypatch)
    return request.param


def io_stats():
    return lowlevel.current_statistics().io_statistics


def assert_backend(name):
    assert io_stats().backend == name


def fill(sock):
    """Send until the kernel buffer is full; return how many bytes went."""
    total = 0
    chunk = b"x" * 65536
    while True:
        try:
            total += sock.send(chunk)
        except BlockingIOError:
            return total


def drain(sock):
    total = 0
    while True:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return total
        if not data:
            return total
        total += len(data)


# ---------------------------------------------------------------- readiness


def test_wait_readable_blocks_until_data_arrives(backend, pair):
    a, b = pair
    log = []

    async def reader():
        log.append("waiting")
        await lowlevel.wait_readable(a)
        log.append(("woke", a.recv(10)))

    async def main():
        assert_backend(backend)
        async with tether.open_nursery() as nursery:
            nursery.start_soon(reader)
            await wait_all_tasks_blocked()
            assert log == ["waiting"]
            assert io_stats().tasks_waiting_read == 1
            b.send(b"hi")
        assert io_stats().tasks_waiting_read == 0

    tether.run(main)
    assert log == ["waiting", ("woke", b"hi")]


def test_wait_readable_returns_at_once_if_data_is_there(backend, pair):
    a, b = pair

    async def main():
        assert_backend(backend)
        b.send(b"ready")
        # An int fd works as well as an object with fileno().
        await lowlevel.wait_readable(a.fileno())
        return a.recv(10)

    assert tether.run(main) == b"ready"


def test_wait_writable_returns_at_once_when_writable(backend, pair):
    a, _ = pair

    async def main():
        assert_backend(backend)
        await lowlevel.wait_writable(a)
        return a.send(b"x")

    assert tether.run(main) == 1


def test_wait_writable_blocks_while_send_buffer_is_full(backend, pair):
    a, b = pair
    log = []

    async def writer():
        fill(a)
        log.append("full")
        await lowlevel.wait_writable(a)
        log.append("writable")
        a.send(b"more")

    async def main():
        assert_backend(backend)
        async with tether.open_nursery() as nursery:
            nursery.start_soon(writer)
            await wait_all_tasks_blocked()
            assert log == ["full"]
            assert io_stats().tasks_waiting_write == 1
            # Drain until the writer gets room (the kernel wakes writers only
            # once a good part of the buffer is free).
            while log == ["full"]:
                await lowlevel.wait_readable(b)
                drain(b)
                await wait_all_tasks_blocked()
        assert log == ["full", "writable"]

    tether.run(main)


def test_tcp_loopback_connect_accept_echo(backend):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    port = listener.getsockname()[1]

    async def server():
        await lowlevel.wait_readable(listener)
        conn, _ = listener.accept()
        conn.setblocking(False)
        with conn:
            await lowlevel.wait_readable(conn)
            data = conn.recv(100)
            await lowlevel.wait_writable(conn)
            conn.send(data.upper())

    async def client():
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        with sock:
            err = sock.connect_ex(("127.0.0.1", port))
            assert err in (0, errno.EINPROGRESS)
            await lowlevel.wait_writable(sock)
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
            sock.send(b"hello tcp")
            await lowlevel.wait_readable(sock)
            return sock.recv(100)

    async def main():
        assert_backend(backend)
        async with tether.open_nursery() as nursery:
            nursery.start_soon(server)
            return await client()

    try:
        assert tether.run(main) == b"HELLO TCP"
    finally:
        listener.close()


def test_reader_and_writer_can_share_a_socket(backend, pair):
    a, b = pair
    log = []

    async def reader():
        await lowlevel.wait_readable(a)
        log.append(("read", a.recv(10)))

    async def writer():
        await lowlevel.wait_writable(a)
        log.append("writable")

    async def main():
        assert_backend(backend)
        fill(a)
        async with tether.open_nursery() as nursery:
            nursery.start_soon(reader)
            nursery.start_soon(writer)
            await wait_all_tasks_blocked()
            assert io_stats().tasks_waiting_read == 1
            assert io_stats().tasks_waiting_write == 1
            # Make `a` readable only: the writer must stay blocked.
            b.send(b"ping")
            await wait_all_tasks_blocked()
            assert log == [("read", b"ping")]
            assert io_stats().tasks_waiting_write == 1
            while "writable" not in log:
                await lowlevel.wait_readable(b)
                drain(b)
                await wait_all_tasks_blocked()
        assert io_stats().tasks_waiting_write == 0

    tether.run(main)


def test_peer_close_wakes_reader_with_eof(backend, pair):
    a, b = pair

    async def main():
        assert_backend(backend)
        async with tether.open_nursery() as nursery:
            result = []

            async def reader():
                await lowlevel.wait_readable(a)
                result.append(a.recv(10))

            nursery.start_soon(reader)
            await wait_all_tasks_blocked()
            b.close()
        return result

    assert tether.run(main) == [b""]


def test_many_sockets_each_wake_only_their_reader(backend):
    pairs = [socket.socketpair() for _ in range(20)]
    woken = []

    async def reader(i, sock):
        await lowlevel.wait_readable(sock)
        woken.append((i, sock.recv(10)))

    async def main():
        assert_backend(backend)
        async with tether.open_nursery() as nursery:
            for i, (a, _) in enumerate(pairs):
                nursery.start_soon(reader, i, a)
            await wait_all_tasks_blocked()
            assert io_stats().tasks_waiting_read == 20
            for i in (3, 17, 0):
                pairs[i][1].send(bytes([i]))
                await wait_all_tasks_blocked()
                assert woken[-1] == (i, bytes([i]))
            assert io_stats().tasks_waiting_read == 17
            nursery.cancel_scope.cancel()
        assert io_stats().tasks_waiting_read == 0

    try:
        tether.run(main)
    finally:
        for a, b in pairs:
            a.close()
            b.close()
    assert len(woken) == 3


# ---------------------------------------------------------------- busy, closed, bad


def test_second_reader_gets_busy_resource_error(backend, pair):
    a, b = pair

    async def first():
        await lowlevel.wait_readable(a)
        return a.recv(10)

    async def main():
        assert_backend(backend)
        results = []
        async with tether.open_nursery() as nursery:

            async def keep(fn):
                results.append(await fn())

            nursery.start_soon(keep, first)
            await wait_all_tasks_blocked()
            with pytest.raises(tether.BusyResourceError, match="read"):
                await lowlevel.wait_readable(a)
            # The same fd as a plain int is the same resource.
            with pytest.raises(tether.BusyResourceError):
                await lowlevel.wait_readable(a.fileno())
            # The first waiter is unaffected.
            assert io_stats().tasks_waiting_read == 1
            b.send(b"first")
        return results

    assert tether.run(main) == [b"first"]


def test_second_writer_gets_busy_resource_error(backend, pair):
    a, _ = pair

    async def main():
        assert_backend(backend)
        fill(a)
        async with tether.open_nursery() as nursery:
            nursery.start_soon(lowlevel.wait_writable, a)
            await wait_all_tasks_blocked()
            with pytest.raises(tether.BusyResourceError, match="write"):
                await lowlevel.wait_writable(a)
            assert io_stats().tasks_waiting_write == 1
            nursery.cancel_scope.cancel()
        assert io_stats().tasks_waiting_write == 0

    tether.run(main)


def test_notify_closing_wakes_a_reader_with_closed_resource_error(backend, pair):
    a, _ = pair

    async def main():
        assert_backend(backend)
        async with tether.open_nursery() as nursery:
            errors = []

            async def reader():
                with pytest.raises(tether.ClosedResourceError) as info:
                    await lowlevel.wait_readable(a)
                errors.append(str(info.value))

            nursery.start_soon(reader)
            await wait_all_tasks_blocked()
            lowlevel.notify_closing(a)
            a.close()
        assert io_stats().tasks_waiting_read == 0
        return errors

    [message] = tether.run(main)
    assert "closed" in message


def test_notify_closing_wakes_every_waiter_with_closed_resource_error(backend, pair):
    a, _ = pair
    errors = []

    async def wait(fn):
        try:
            await fn(a)
        except tether.ClosedResourceError as exc:
            errors.append((fn.__name__, str(exc)))

    async def main():
        assert_backend(backend)
        fill(a)
        async with tether.open_nursery() as nursery:
            nursery.start_soon(wait, lowlevel.wait_readable)
            nursery.start_soon(wait, lowlevel.wait_writable)
            await wait_all_tasks_blocked()
            assert io_stats().tasks_waiting_read == 1
            assert io_stats().tasks_waiting_write == 1
            lowlevel.notify_closing(a)
            # Not a checkpoint: nobody has run yet.
            assert errors == []
            a.close()
        assert io_stats().tasks_waiting_read == 0
        assert io_stats().tasks_waiting_write == 0

    tether.run(main)
    assert sorted(name for name, _ in errors) == ["wait_readable", "wait_writable"]
    assert all("closed" in message for _, message in errors)


def test_notify_closing_without_waiters_then_waiting_again(backend, pair):
    a, b = pair

    async def main():
        assert_backend(backend)
        lowlevel.notify_closing(a)  # nobody waits: nothing happens
        async with tether.open_nursery() as nursery:
            nursery.start_soon(lowlevel.wait_readable, a)
            await wait_all_tasks_blocked()
            lowlevel.notify_closing(a)
            # A new waiter on the (still open) fd works normally afterwards.
            nursery.start_soon(lowlevel.wait_readable, a)
            await wait_all_tasks_blocked()
            b.send(b"x")
        return a.recv(10)

    with pytest.raises(ExceptionGroup) as info:
        tether.run(main)
    assert info.group_contains(tether.ClosedResourceError)
    assert len(info.value.exceptions) == 1


def test_closed_socket_object_is_a_clear_error(backend):
    a, b = socket.socketpair()
    a.close()
    b.close()

    async def main():
        assert_backend(backend)
        for fn in (lowlevel.wait_readable, lowlevel.wait_writable):
            with pytest.raises(ValueError, match="closed"):
                await fn(a)
        # As trio on Unix: nothing can wait on it, so there is nothing to
        # notify (and a close path that notifies twice keeps working).
        lowlevel.notify_closing(a)
        assert io_stats().tasks_waiting_read == 0

    tether.run(main)


def test_closed_int_fd_is_the_os_bad_file_descriptor_error(checking_backend, pair):
    a, _ = pair

    async def main():
        assert_backend(checking_backend)
        # Closed inside the run, so that the run's own fds cannot reuse it.
        fd = os.dup(a.fileno())
        os.close(fd)
        for fn in (lowlevel.wait_readable, lowlevel.wait_writable):
            # The OS's own error, as trio raises it.
            with pytest.raises(OSError, match=r"^\[Errno 9\] Bad file descriptor$") as info:
                await fn(fd)
            assert info.value.errno == errno.EBADF
        stats = io_stats()
        assert (stats.tasks_waiting_read, stats.tasks_waiting_write) == (0, 0)
        # The failed registrations left nothing behind.
        await lowlevel.wait_writable(a)

    tether.run(main)


@pytest.mark.parametrize(
    "bad, error",
    [
        ("not a socket", TypeError),
        (None, TypeError),
        (3.0, TypeError),
        (-1, ValueError),
    ],
)
def test_bad_objects_are_rejected_clearly(bad, error):
    class WeirdFileno:
        def fileno(self):
            return "seven"

    async def main():
        for fn in (lowlevel.wait_readable, lowlevel.wait_writable):
            with pytest.raises(error):
                await fn(bad)
        if bad == -1:
            lowlevel.notify_closing(bad)  # nothing waits on it: nothing to do
        else:
            with pytest.raises(error):
                lowlevel.notify_closing(bad)
        with pytest.raises(ValueError, match="seven"):
            await lowlevel.wait_readable(WeirdFileno())
        assert io_stats().tasks_waiting_read == 0

    tether.run(main)


@pytest.mark.skipif(not hasattr(select, "epoll"), reason="epoll only")
def test_regular_file_is_rejected_without_leaking_a_waiter(tmp_path):
    path = tmp_path / "file"
    path.write_bytes(b"data")

    async def main():
        with open(path, "rb") as f:
            with pytest.raises(OSError):
                await lowlevel.wait_readable(f)
            assert io_stats().tasks_waiting_read == 0

    tether.run(main)


def test_io_functions_outside_run_raise_runtime_error(pair):
    a, _ = pair
    coro = lowlevel.wait_readable(a)
    with pytest.raises(RuntimeError, match=r"tether\.run"):
        coro.send(None)
    with pytest.raises(RuntimeError, match=r"tether\.run"):
        lowlevel.notify_closing(a)


# ---------------------------------------------------------------- cancellation


@pytest.mark.parametrize("which", ["readable", "writable"])
def test_wait_is_cancelled_by_deadline(backend, pair, which):
    a, b = pair
    wait = lowlevel.wait_readable if which == "readable" else lowlevel.wait_writable

    async def main():
        assert_backend(backend)
        if which == "writable":
            fill(a)
        start = tether.current_time()
        with tether.move_on_after(5) as scope:
            await wait(a)
        assert scope.cancelled_caught
        assert tether.current_time() - start == 5
        stats = io_stats()
        assert (stats.tasks_waiting_read, stats.tasks_waiting_write) == (0, 0)
        # The fd is free again, and its old registration is gone: readiness
        # that arrives now wakes only the new waiter.
        if which == "readable":
            b.send(b"late")
        else:
            drain(b)
        await wait(a)

    run_mock(main)


@pytest.mark.parametrize("which", ["readable", "writable"])
def test_wait_is_cancelled_by_another_task(backend, pair, which):
    a, b = pair
    wait = lowlevel.wait_readable if which == "readable" else lowlevel.wait_writable
    log = []

    async def waiter(scope_box):
        with tether.CancelScope() as scope:
            scope_box.append(scope)
            await wait(a)
            log.append("not cancelled?")  # pragma: no cover
        log.append(("cancelled", scope.cancelled_caught))

    async def main():
        assert_backend(backend)
        if which == "writable":
            fill(a)
        box = []
        async with tether.open_nursery() as nursery:
            nursery.start_soon(waiter, box)
            await wait_all_tasks_blocked()
            box[0].cancel()
        assert log == [("cancelled", True)]
        # Readiness after the cancellation must not touch the finished task.
        if which == "readable":
            b.send(b"late")
        else:
            drain(b)
        await wait_all_tasks_blocked()
        await lowlevel.checkpoint()
        stats = io_stats()
        assert (stats.tasks_waiting_read, stats.tasks_waiting_write) == (0, 0)

    tether.run(main)


def test_wait_in_already_cancelled_scope_raises_without_registering(backend, pair):
    a, b = pair

    async def main():
        assert_backend(backend)
        b.send(b"ready")  # readable right away, and still cancelled
        with tether.CancelScope() as scope:
            scope.cancel()
            await lowlevel.wait_readable(a)
        assert scope.cancelled_caught
        assert io_stats().tasks_waiting_read == 0

    tether.run(main)


# ---------------------------------------------------------------- statistics


def test_io_statistics_count_waiters(backend):
    pairs = [socket.socketpair() for _ in range(3)]
    for a, _ in pairs:
        a.setblocking(False)

    async def main():
        assert_backend(backend)
        assert io_stats() == lowlevel.IOStatistics(0, 0, backend)
        fill(pairs[0][0])
        async with tether.open_nursery() as nursery:
            for a, _ in pairs:
                nursery.start_soon(lowlevel.wait_readable, a)
            nursery.start_soon(lowlevel.wait_writable, pairs[0][0])
            await wait_all_tasks_blocked()
            stats = io_stats()
            assert stats.tasks_waiting_read == 3
            assert stats.tasks_waiting_write == 1
            pairs[1][1].send(b"x")
            await wait_all_tasks_blocked()
            assert io_stats().tasks_waiting_read == 2
            nursery.cancel_scope.cancel()
        assert io_stats() == lowlevel.IOStatistics(0, 0, backend)

    try:
        tether.run(main)
    finally:
        for a, b in pairs:
            a.close()
            b.close()


# ---------------------------------------------------------------- the run loop's wait


class IOWaitRecorder(lowlevel.Instrument):
    def __init__(self):
        self.timeouts = []
        self.blocking = threading.Event()

    def before_io_wait(self, timeout):
        self.timeouts.append(timeout)
        if timeout > 1:
            self.blocking.set()


def test_idle_run_loop_uses_no_cpu(pair):
    # The one real sleep in this file: CPU time must stay far below wall time.
    a, _ = pair

    async def main():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(lowlevel.wait_readable, a)
            await wait_all_tasks_blocked()
            wall0, cpu0 = time.perf_counter(), time.process_time()
            await tether.sleep(0.2)
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
            nursery.cancel_scope.cancel()
        return wall, cpu

    recorder = IOWaitRecorder()
    wall, cpu = tether.run(main, instruments=[recorder])
    assert wall >= 0.2
    assert cpu < wall / 4, (cpu, wall)
    # It slept in one (or a few) waits bounded by the deadline, not a poll
    # loop. (How long the first wait is depends on how late the loop got
    # there on a busy machine: only the bound is checked.)
    sleeps = [t for t in recorder.timeouts if t > 0]
    assert 1 <= len(sleeps) <= 3, recorder.timeouts
    assert all(t <= 0.2 for t in sleeps), recorder.timeouts


def test_loop_blocks_without_deadline_and_wakes_for_another_thread():
    recorder = IOWaitRecorder()
    log = []

    async def main():
        token = lowlevel.current_tether_token()
        event = tether.Event()

        def other_thread():
            # Only once the loop is in its blocking wait with no deadline.
            assert recorder.blocking.wait(10)
            token.run_sync_soon(event.set)

        thread = threading.Thread(target=other_thread)
        thread.start()
        await event.wait()
        log.append("woken")
        thread.join()

    tether.run(main, instruments=[recorder])
    assert log == ["woken"]
    assert max(recorder.timeouts) > 3600  # really blocked: no deadline at all


# ---------------------------------------------------------------- run_sync_soon


def test_run_sync_soon_flood_from_many_threads_loses_nothing_and_keeps_order():
    threads_count, per_thread = 6, 3000
    received = []

    async def main():
        token = lowlevel.current_tether_token()
        done = tether.Event()
        loop_thread = threading.get_ident()
        wrong_thread = []

        def callback(sender, i):
            if threading.get_ident() != loop_thread:
                wrong_thread.append(sender)
            received.append((sender, i))
            if len(received) == threads_count * per_thread:
                done.set()

        def flood(sender):
            for i in range(per_thread):
                token.run_sync_soon(callback, sender, i)

        threads = [threading.Thread(target=flood, args=(n,)) for n in range(threads_count)]
        for thread in threads:
            thread.start()
        await done.wait()
        for thread in threads:
            thread.join()
        assert wrong_thread == []

    tether.run(main)
    assert len(received) == threads_count * per_thread
    for sender in range(threads_count):
        assert [i for s, i in received if s == sender] == list(range(per_thread))


def test_run_sync_soon_idempotent_drops_duplicates_and_keeps_fifo():
    calls = []

    async def main():
        token = lowlevel.current_tether_token()
        for arg in (1, 2, 1, 1, 3, 2):
            token.run_sync_soon(calls.append, arg, idempotent=True)
        assert lowlevel.current_statistics().run_sync_soon_queue_size == 3
        await wait_all_tasks_blocked()
        assert calls == [1, 2, 3]
        # Once a call ran, an equal one is queued again.
        token.run_sync_soon(calls.append, 1, idempotent=True)
        # Plain calls are never dropped.
        for _ in range(3):
            token.run_sync_soon(calls.append, "plain")
        assert lowlevel.current_statistics().run_sync_soon_queue_size == 4
        await wait_all_tasks_blocked()
        assert lowlevel.current_statistics().run_sync_soon_queue_size == 0

    tether.run(main)
    assert calls[:3] == [1, 2, 3]
    assert sorted(calls[3:], key=str) == [1, "plain", "plain", "plain"]


def test_run_sync_soon_after_run_is_run_finished_error_in_any_thread():
    async def main():
        return lowlevel.current_tether_token()

    token = tether.run(main)
    errors = []

    def other_thread():
        try:
            token.run_sync_soon(print, "too late")
        except tether.RunFinishedError as exc:
            errors.append(exc)

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join()
    assert len(errors) == 1
    with pytest.raises(tether.RunFinishedError):
        token.run_sync_soon(print, "too late", idempotent=True)


def test_run_sync_soon_callback_error_crashes_run_after_unwinding_every_task():
    finally_ran = []

    def explode():
        raise ValueError("from the callback")

    async def child(name):
        try:
            await tether.sleep_forever()
        finally:
            finally_ran.append(name)

    async def system_task():
        try:
            await tether.sleep_forever()
        finally:
            finally_ran.append("system")

    async def main():
        lowlevel.spawn_system_task(system_task)
        try:
            async with tether.open_nursery() as nursery:
                nursery.start_soon(child, "child")
                async with tether.open_nursery() as inner:
                    inner.start_soon(child, "grandchild")
                    await wait_all_tasks_blocked()
                    lowlevel.current_tether_token().run_sync_soon(explode)
                    await tether.sleep_forever()
        finally:
            finally_ran.append("main")

    with pytest.raises(tether.TetherInternalError) as info:
        tether.run(main)
    # The error crashed the run as a failing system task would: it comes
    # out of the system nursery, inside the run's outermost one.
    assert pytest.RaisesGroup(
        pytest.RaisesGroup(pytest.RaisesExc(ValueError, match="from the callback"))
    ).matches(info.value.__cause__)
    assert sorted(finally_ran) == ["child", "grandchild", "main", "system"]


def test_run_sync_soon_runs_callbacks_in_the_run_thread_between_steps():
    seen = []

    async def main():
        token = lowlevel.current_tether_token()
        token.run_sync_soon(lambda: seen.append(lowlevel.in_tether_task()))
        # Queued, not run synchronously.
        assert seen == []
        await lowlevel.checkpoint()
        await lowlevel.checkpoint()
        assert seen == [False]
        assert hash(token) == hash(lowlevel.current_tether_token())
        assert token == lowlevel.current_tether_token()

    tether.run(main)
    assert seen == [False]


def test_tokens_of_different_runs_differ():
    async def main():
        return lowlevel.current_tether_token()

    first, second = tether.run(main), tether.run(main)
    assert first != second
    assert math.isfinite(hash(first))


# ------------------------------------------------- regressions (kernel fixes)


@pytest.mark.parametrize("name", ["PollSelector", "SelectSelector"])
def test_fd_closed_behind_the_selectors_back_wakes_its_waiter(name, monkeypatch, pair):
    # select()/poll() cannot register-check a closed fd; closing it while a
    # task waits must give that task ClosedResourceError, not crash the run.
    _use_backend(name, monkeypatch)
    a, b = pair
    log = []

    async def victim(fd):
        # select() fails for everyone and we evict the closed fd; poll()
        # reports it ready (POLLNVAL), so the task wakes and its next read
        # would see EBADF. Either way: woken, never a hang.
        try:
            await lowlevel.wait_readable(fd)
        except tether.ClosedResourceError:
            log.append("closed")
        else:
            log.append("closed" if name == "PollSelector" else "woken without error")

    async def bystander():
        await lowlevel.wait_readable(a)
        log.append(("bystander got", a.recv(1)))

    async def main():
        fd = os.dup(b.fileno())
        async with tether.open_nursery() as nursery:
            nursery.start_soon(victim, fd)
            nursery.start_soon(bystander)
            await wait_all_tasks_blocked()
            os.close(fd)
            b.send(b"x")

    tether.run(main)
    assert sorted(map(str, log)) == sorted(map(str, ["closed", ("bystander got", b"x")]))


async def _wait_and_record(wait, fd, log, label):
    try:
        await wait(fd)
    except OSError as exc:
        log.append((label, exc.errno))
    except tether.Cancelled:
        log.append((label, "cancelled"))
        raise
    else:
        log.append((label, "woken"))


def test_fd_closed_behind_our_back_while_read_and_write_wait_then_cancelled(checking_backend):
    # Closing an fd without notify_closing is a bug in the caller, but must
    # not crash the run: the first cancellation re-arms the fd for the other
    # direction, the poller refuses the closed fd, and the other waiter gets
    # the OS error instead of the run dying in the abort function.
    a, b = socket.socketpair()
    a2 = a.dup()  # keeps the socket itself open, so epoll keeps its entry
    log = []

    async def main():
        assert_backend(checking_backend)
        a.setblocking(False)
        fill(a)
        fd = a.fileno()
        async with tether.open_nursery() as nursery:
            nursery.start_soon(_wait_and_record, lowlevel.wait_readable, fd, log, "reader")
            await wait_all_tasks_blocked()
            nursery.start_soon(_wait_and_record, lowlevel.wait_writable, fd, log, "writer")
            await wait_all_tasks_blocked()
            a.close()
            nursery.cancel_scope.cancel()
        assert io_stats().tasks_waiting_read == io_stats().tasks_waiting_write == 0

    try:
        tether.run(main)
    finally:
        a2.close()
        b.close()
    # Whichever is cancelled first re-arms the fd for the other one.
    assert sorted(map(str, (result for _, result in log))) == sorted(
        map(str, ["cancelled", errno.EBADF])
    )


def test_fd_closed_behind_our_back_then_one_direction_becomes_ready(checking_backend):
    # The same, but the re-arming happens while the loop processes an I/O
    # event: the writer gets the OS error, the run goes on.
    a, b = socket.socketpair()
    a2 = a.dup()
    log = []

    async def main():
        assert_backend(checking_backend)
        for sock in (a, b, a2):
            sock.setblocking(False)
        fill(a)
        fd = a.fileno()
        async with tether.open_nursery() as nursery:
            nursery.start_soon(_wait_and_record, lowlevel.wait_readable, fd, log, "reader")
            nursery.start_soon(_wait_and_record, lowlevel.wait_writable, fd, log, "writer")
            await wait_all_tasks_blocked()
            a.close()
            b.send(b"x")
            # The other handle on the same socket sees the byte too: once it
            # is woken, the event for `fd` has been processed as well.
            await lowlevel.wait_readable(a2)
            await wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()

    try:
        tether.run(main)
    finally:
        a2.close()
        b.close()
    assert sorted(log) == [("reader", "woken"), ("writer", errno.EBADF)]


def test_waiting_on_the_runs_own_wakeup_fd_is_refused():
    async def main():
        fd = lowlevel.current_tether_token()._runner.io_manager.wakeup_send_fileno()
        with pytest.raises(ValueError, match="belongs to the tether run itself"):
            await lowlevel.wait_readable(fd)

    tether.run(main)


def test_callback_accepted_at_the_end_of_the_run_still_runs():
    ran = []

    async def main():
        token = lowlevel.current_tether_token()
        # Queued by the last step of the main task: the loop may already be
        # finishing when it is accepted.
        token.run_sync_soon(ran.append, "late")

    tether.run(main)
    assert ran == ["late"]


def test_signal_delivered_to_another_thread_wakes_a_blocked_run():
    # The main thread blocks SIGUSR1, so the OS hands it to the helper thread;
    # the run must still wake up promptly (through set_wakeup_fd).
    import signal

    def sender():
        time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGUSR1)

    got = []

    async def main():
        helper = threading.Thread(target=sender)
        with tether.open_signal_receiver(signal.SIGUSR1) as signals:
            helper.start()
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
            try:
                # A deadline only so that a failure does not hang the test.
                with tether.move_on_after(40) as scope:
                    async for signum in signals:
                        got.append(signum)
                        break
            finally:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})
        helper.join()
        return scope.cancelled_caught

    timed_out = tether.run(main)
    assert got == [signal.SIGUSR1]
    assert not timed_out  # woke for the signal, not for the deadline
