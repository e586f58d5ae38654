"""File descriptors that close while the loop watches them, blocking sockets
handed to the loop, and processes forked from inside a running loop."""

from __future__ import annotations

import asyncio
import os
import socket
import sys

import pytest

from tether import aio


def test_reader_that_closes_its_own_socket_is_not_called_again():
    # asyncio's epoll selector drops a closed fd: the callback never runs
    # again, and the loop goes on (no busy loop re-reporting the fd).
    async def main():
        loop = aio.get_running_loop()
        r, w = socket.socketpair()
        calls = []

        def on_readable():
            calls.append(r.recv(10))
            r.close()  # without remove_reader

        loop.add_reader(r, on_readable)
        w.send(b"data")
        for _ in range(20):
            await aio.sleep(0.001)
        w.close()
        # The registration is still there, found by the closed socket object.
        assert loop.remove_reader(r) is True
        # Once removed, a closed socket object names no fd (as in asyncio).
        with pytest.raises(ValueError):
            loop.remove_reader(r)
        return calls

    assert aio.run(main()) == [b"data"]


def test_writer_that_closes_its_own_socket_is_not_called_again():
    async def main():
        loop = aio.get_running_loop()
        r, w = socket.socketpair()
        calls = []

        def on_writable():
            calls.append("w")
            w.close()

        loop.add_writer(w, on_writable)
        for _ in range(20):
            await aio.sleep(0.001)
        r.close()
        assert loop.remove_writer(w) is True
        return calls

    assert aio.run(main()) == ["w"]


def test_registration_of_a_socket_closed_between_runs():
    loop = aio.new_event_loop()
    try:
        r, w = socket.socketpair()
        calls = []
        loop.add_reader(r, calls.append, "called")
        w.send(b"x")
        r.close()
        loop.run_until_complete(asyncio.sleep(0.01))
        loop.run_until_complete(asyncio.sleep(0.01))
        assert calls == []
        assert loop.remove_reader(r) is True
        w.close()
    finally:
        loop.close()


def test_closed_registration_is_not_called_for_a_new_file_with_its_number():
    # Between runs the fd was closed and its number went to a new socket:
    # the old callback is not called for the new socket's data (epoll would
    # have dropped the old file).
    loop = aio.new_event_loop()
    try:
        r, w = socket.socketpair()
        number = r.fileno()
        calls = []
        loop.add_reader(number, calls.append, "old callback")
        loop.run_until_complete(asyncio.sleep(0))
        r.close()
        w.close()
        new, peer = socket.socketpair()
        try:
            if number not in (new.fileno(), peer.fileno()):
                pytest.skip("the OS did not reuse the number")
            sender = peer if new.fileno() == number else new
            sender.send(b"for the new socket")
            loop.run_until_complete(asyncio.sleep(0.01))
            assert calls == []
            assert loop.remove_reader(number) is True
        finally:
            new.close()
            peer.close()
    finally:
        loop.close()


def test_registration_survives_between_runs_while_its_file_is_open():
    loop = aio.new_event_loop()
    try:
        r, w = socket.socketpair()
        calls = []
        loop.add_reader(r, lambda: calls.append(r.recv(100)))
        loop.run_until_complete(asyncio.sleep(0))
        w.send(b"between runs")
        loop.run_until_complete(asyncio.sleep(0.01))
        assert calls == [b"between runs"]
        assert loop.remove_reader(r) is True
        r.close()
        w.close()
    finally:
        loop.close()


def test_add_reader_on_a_closed_fd_raises_oserror():
    async def main():
        loop = aio.get_running_loop()
        r, w = socket.socketpair()
        fd = r.fileno()
        r.close()
        w.close()
        with pytest.raises(OSError):
            loop.add_reader(fd, print)
        with pytest.raises(OSError):
            loop.add_writer(fd, print)
        # A closed socket object has no fd at all.
        with pytest.raises(ValueError):
            loop.add_reader(r, print)
        assert loop.remove_reader(fd) is False

    aio.run(main())


def test_remove_reader_and_writer_by_closed_socket_object():
    async def main():
        loop = aio.get_running_loop()
        r, w = socket.socketpair()
        loop.add_reader(r, print)
        loop.add_writer(w, print)
        r.close()
        w.close()
        assert loop.remove_reader(r) is True
        assert loop.remove_writer(w) is True

    aio.run(main())


def test_remove_one_direction_of_a_closed_socket_with_both():
    # (asyncio raises OSError here; the registration is gone either way.)
    async def main():
        loop = aio.get_running_loop()
        r, w = socket.socketpair()
        loop.add_reader(r, print)
        loop.add_writer(r, print)
        r.close()
        assert loop.remove_reader(r) is True
        with pytest.raises(ValueError):
            loop.remove_writer(r)
        w.close()

    aio.run(main())


# -- blocking sockets given to the loop --------------------------------------------


def _blocking_listener():
    listener = socket.create_server(("127.0.0.1", 0))
    assert listener.getblocking()
    return listener


@pytest.mark.parametrize("debug", [False, True])
def test_blocking_sockets_are_made_non_blocking(debug):
    # create_server(sock=), create_connection(sock=) and
    # connect_accepted_socket make the socket non-blocking themselves (only
    # the sock_* methods insist on a non-blocking one in debug mode).
    async def main():
        loop = aio.get_running_loop()
        listener = _blocking_listener()
        port = listener.getsockname()[1]

        async def echo(reader, writer):
            writer.write(await reader.read(100))
            await writer.drain()
            writer.close()

        server = await aio.start_server(echo, sock=listener)
        client = socket.create_connection(("127.0.0.1", port))
        assert client.getblocking()
        reader, writer = await aio.open_connection(sock=client)
        writer.write(b"ping")
        assert await reader.read(100) == b"ping"
        writer.close()
        server.close()
        await server.wait_closed()
        assert not listener.getblocking()
        assert not client.getblocking()

        # connect_accepted_socket with a blocking accepted connection.
        other = _blocking_listener()
        peer = socket.create_connection(other.getsockname())
        accepted, _ = other.accept()
        assert accepted.getblocking()
        got = loop.create_future()

        class Collect(asyncio.Protocol):
            def data_received(self, data):
                got.set_result(data)

        transport, _ = await loop.connect_accepted_socket(Collect, accepted)
        peer.sendall(b"hello")
        assert await got == b"hello"
        assert not accepted.getblocking()
        transport.close()
        peer.close()
        other.close()

    aio.run(main(), debug=debug)


def test_sock_methods_still_refuse_a_blocking_socket_in_debug_mode():
    async def main():
        loop = aio.get_running_loop()
        a, b = socket.socketpair()
        with pytest.raises(ValueError, match="non-blocking"):
            await loop.sock_recv(a, 10)
        a.close()
        b.close()

    aio.run(main(), debug=True)


# -- fork -------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_child_forked_inside_a_running_loop_can_run_its_own():
    async def in_child():
        await aio.sleep(0)
        return "child ran"

    async def main():
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            status = 1
            try:
                # No running loop is inherited from the parent.
                if asyncio.events._get_running_loop() is None:
                    status = 0 if aio.run(in_child()) == "child ran" else 2
            finally:
                os._exit(status)
        loop = aio.get_running_loop()
        _, status = await loop.run_in_executor(None, os.waitpid, pid, 0)
        return os.waitstatus_to_exitcode(status)

    assert aio.run(main()) == 0


def test_replaced_running_loop_hooks_see_the_loop():
    # CPython's own tests swap asyncio.events._get_running_loop for the
    # pure-Python version; tether's loop goes through whatever is installed.
    events = asyncio.events
    saved = events._get_running_loop, events._set_running_loop
    events._get_running_loop = events._py__get_running_loop
    events._set_running_loop = events._py__set_running_loop
    try:

        async def main():
            return events._py__get_running_loop()

        loop = aio.new_event_loop()
        try:
            assert loop.run_until_complete(main()) is loop
            assert events._py__get_running_loop() is None
        finally:
            loop.close()
    finally:
        events._get_running_loop, events._set_running_loop = saved


def test_a_unix_server_removes_its_socket_file_on_close_from_3_13(tmp_path):
    path = str(tmp_path / "server.sock")

    async def main():
        async def serve(reader, writer):
            writer.close()

        server = await aio.start_unix_server(serve, path)
        assert os.path.exists(path)
        server.close()
        await server.wait_closed()
        return os.path.exists(path)

    # (As each version's asyncio: 3.13 added cleanup_socket=True.)
    assert aio.run(main()) is (sys.version_info < (3, 13))
