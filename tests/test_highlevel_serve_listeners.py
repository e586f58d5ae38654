"""serve_listeners: handler tasks, closing, accept errors and backing off
when out of file descriptors (a fake listener under virtual time, and a
real process with a lowered RLIMIT_NOFILE), and no fd leak over many
connections."""

import errno
import functools
import logging
import os
import socket as stdlib_socket
import subprocess
import sys
import textwrap

import pytest

import tether
from tether import socket as tsocket
from tether.testing import wait_all_tasks_blocked

pytestmark = [pytest.mark.tether, pytest.mark.timeout(30)]

needs_proc_fd = pytest.mark.skipif(
    not os.path.isdir("/proc/self/fd"), reason="counts open fds in /proc/self/fd"
)


class FakeStream(tether.abc.AsyncResource):
    def __init__(self):
        self.closed_with_deadline = None

    async def aclose(self):
        self.closed_with_deadline = tether.current_effective_deadline()
        await tether.lowlevel.checkpoint()


class ScriptedListener(tether.abc.Listener):
    """accept() plays `script`: streams to return, errors to raise, then
    blocks forever."""

    def __init__(self, script):
        self.script = list(script)
        self.closed = False

    async def accept(self):
        await tether.lowlevel.checkpoint()
        if not self.script:
            await tether.sleep_forever()
        step = self.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        return step

    async def aclose(self):
        self.closed = True
        await tether.lowlevel.checkpoint()


async def test_each_stream_gets_a_handler_and_is_closed_forcefully_after_it(autojump_clock):
    streams = [FakeStream() for _ in range(3)]
    listeners = [ScriptedListener(streams[:2]), ScriptedListener(streams[2:])]
    handled = []

    async def handler(stream):
        handled.append(stream)
        await tether.sleep(1)

    async with tether.open_nursery() as nursery:
        assert await nursery.start(tether.serve_listeners, handler, listeners) is listeners
        await tether.sleep(2)
        nursery.cancel_scope.cancel()
    assert sorted(map(id, handled)) == sorted(map(id, streams))
    assert [stream.closed_with_deadline for stream in streams] == [float("-inf")] * 3
    assert all(listener.closed for listener in listeners)


async def test_out_of_file_descriptors_is_logged_and_retried(autojump_clock, caplog):
    stream = FakeStream()
    listener = ScriptedListener(
        [OSError(errno.EMFILE, "Too many open files")] * 3
        + [OSError(errno.ENOBUFS, "No buffer space")]
        + [stream]
    )
    handled = tether.Event()

    async def handler(received):
        assert received is stream
        handled.set()

    with caplog.at_level(logging.ERROR, logger="tether.serve_listeners"):
        async with tether.open_nursery() as nursery:
            nursery.start_soon(tether.serve_listeners, handler, [listener])
            await handled.wait()
            # One pause of 100 ms after each of the four errors.
            assert tether.current_time() == pytest.approx(0.4)
            nursery.cancel_scope.cancel()
    assert [record.exc_info[1].errno for record in caplog.records] == [errno.EMFILE] * 3 + [
        errno.ENOBUFS
    ]
    assert caplog.records[0].getMessage() == (
        "accept() failed with EMFILE (no file descriptor left in this process);"
        " retrying in 0.1 seconds"
    )
    assert "kernel has no buffer space" in caplog.records[3].getMessage()


async def test_any_other_accept_error_ends_the_server():
    error = OSError(errno.EINVAL, "not listening")
    listener = ScriptedListener([error])
    with pytest.RaisesGroup(pytest.RaisesExc(OSError, check=lambda e: e is error)):
        await tether.serve_listeners(None, [listener])
    assert listener.closed


async def test_handlers_run_in_the_given_nursery(autojump_clock):
    listener = ScriptedListener([FakeStream() for _ in range(4)])

    async def handler(stream):
        await tether.sleep_forever()

    async with tether.open_nursery() as outer:
        handler_nursery = await outer.start(_nursery_holder)
        serve = functools.partial(tether.serve_listeners, handler_nursery=handler_nursery)
        await outer.start(serve, handler, [listener])
        await wait_all_tasks_blocked()
        assert len(handler_nursery.child_tasks) == 4
        outer.cancel_scope.cancel()


async def _nursery_holder(task_status=tether.TASK_STATUS_IGNORED):
    async with tether.open_nursery() as nursery:
        task_status.started(nursery)
        await tether.sleep_forever()


async def test_echo_server_with_100_concurrent_clients():
    async def echo(stream):
        async for chunk in stream:
            await stream.send_all(chunk)

    async def client(port, number, results):
        message = f"client {number} ".encode() * 50
        async with await tether.open_tcp_stream("127.0.0.1", port) as stream:
            await stream.send_all(message)
            await stream.send_eof()
            received = b"".join([chunk async for chunk in stream])
        results[number] = received == message

    results = {}
    async with tether.open_nursery() as nursery:
        serve = functools.partial(tether.serve_tcp, host="127.0.0.1", backlog=128)
        listeners = await nursery.start(serve, echo, 0)
        port = listeners[0].socket.getsockname()[1]
        async with tether.open_nursery() as clients:
            for number in range(100):
                clients.start_soon(client, port, number, results)
        nursery.cancel_scope.cancel()
    assert results == {number: True for number in range(100)}


@needs_proc_fd
@pytest.mark.skipif(not hasattr(stdlib_socket, "AF_UNIX"), reason="no AF_UNIX")
async def test_no_fd_leaks_after_10000_connections_and_cancelled_connects(tmp_path):
    def open_fds():
        return len(os.listdir("/proc/self/fd"))

    before = open_fds()
    path = str(tmp_path / "server.sock")

    async def echo_once(stream):
        await stream.send_all(await stream.receive_some())

    async def client(count):
        for _ in range(count):
            async with await tether.open_unix_socket(path) as stream:
                await stream.send_all(b"x")
                assert await stream.receive_some() == b"x"

    sock = tsocket.socket(tsocket.AF_UNIX)
    await sock.bind(path)
    sock.listen()
    async with tether.open_nursery() as nursery:
        await nursery.start(tether.serve_listeners, echo_once, [tether.SocketListener(sock)])
        async with tether.open_nursery() as clients:
            for _ in range(10):
                clients.start_soon(client, 1000)
        nursery.cancel_scope.cancel()
    assert open_fds() == before

    # A listener whose accept queue (backlog 0: one connection) is full, so
    # that connects to it stay in progress until they are cancelled.
    (full,) = await tether.open_tcp_listeners(0, host="127.0.0.1", backlog=0)
    address = full.socket.getsockname()
    cancelled_sockets = []
    async with full, await tether.open_tcp_stream(*address):
        for _ in range(200):
            async with tether.open_nursery() as nursery:
                nursery.start_soon(tether.open_tcp_stream, *address)
                cancelled_sockets.append(tsocket.socket())
                nursery.start_soon(cancelled_sockets[-1].connect, address)
                await wait_all_tasks_blocked()
                stats = tether.lowlevel.current_statistics().io_statistics
                assert stats.tasks_waiting_write == 2
                nursery.cancel_scope.cancel()
    assert all(sock.fileno() == -1 for sock in cancelled_sockets)
    assert open_fds() == before


EMFILE_SERVER = textwrap.dedent(
    """
    import logging, os, resource, sys
    import tether

    logging.basicConfig(stream=sys.stdout, format="%(name)s: %(message)s")
    CLIENTS = int(sys.argv[1])
    SPARE_FDS = 2

    async def main():
        served = 0
        all_served = tether.Event()

        async def handler(stream):
            nonlocal served
            await stream.send_all(b"ok")
            await stream.receive_some()  # until the client closes
            served += 1
            if served == CLIENTS:
                all_served.set()

        async with tether.open_nursery() as nursery:
            serve = lambda *args, **kw: tether.serve_tcp(*args, host="127.0.0.1", **kw)
            (listener,) = await nursery.start(serve, handler, 0)
            # Room for SPARE_FDS more descriptors, no more.
            highest = max(int(fd) for fd in os.listdir("/proc/self/fd"))
            _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            resource.setrlimit(resource.RLIMIT_NOFILE, (highest + 1 + SPARE_FDS, hard))
            print("port", listener.socket.getsockname()[1], flush=True)
            await all_served.wait()
            nursery.cancel_scope.cancel()
        print("served", served, flush=True)

    tether.run(main)
    """
)


@needs_proc_fd
@pytest.mark.skipif(sys.platform == "win32", reason="needs resource.setrlimit")
def test_a_real_server_survives_running_out_of_file_descriptors():
    clients = 8
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    server = subprocess.Popen(
        [sys.executable, "-c", EMFILE_SERVER, str(clients)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        port = int(server.stdout.readline().split()[1])
        # All connect at once: the kernel queues them, the server can only
        # accept a couple before it runs out of descriptors.
        sockets = [stdlib_socket.create_connection(("127.0.0.1", port)) for _ in range(clients)]
        for sock in sockets:
            sock.settimeout(10)
            assert sock.recv(2) == b"ok"
            sock.close()  # frees a descriptor in the server
        output, _ = server.communicate(timeout=10)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert server.returncode == 0, output
    assert "tether.serve_listeners: accept() failed with EMFILE" in output
    assert output.rstrip().endswith(f"served {clients}")
