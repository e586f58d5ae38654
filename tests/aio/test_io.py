"""File descriptors and sockets: add_reader/add_writer, sock_* methods,
getaddrinfo; signals."""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import socket
import threading

import pytest

from tether import aio

from .conftest import run_on, run_virtual


def test_add_reader_called_until_removed():
    async def main():
        loop = aio.get_running_loop()
        r, w = socket.socketpair()
        r.setblocking(False)
        received = []
        done = loop.create_future()

        def on_readable(tag):
            data = r.recv(100)
            received.append((tag, data))
            if len(received) == 2:
                assert loop.remove_reader(r) is True
                done.set_result(None)

        loop.add_reader(r, on_readable, "tag")
        w.send(b"one")
        await aio.sleep(0.01)
        w.send(b"two")
        await done
        assert loop.remove_reader(r) is False
        r.close()
        w.close()
        return received

    assert aio.run(main()) == [("tag", b"one"), ("tag", b"two")]


def test_add_writer_and_replacing_a_reader():
    async def main():
        loop = aio.get_running_loop()
        r, w = socket.socketpair()
        writable = loop.create_future()
        loop.add_writer(w.fileno(), lambda: writable.done() or writable.set_result("w"))
        assert await writable == "w"
        assert loop.remove_writer(w.fileno())
        log = []
        loop.add_reader(r, log.append, "old")
        loop.add_reader(r, lambda: (log.append("new"), r.recv(10), loop.remove_reader(r)))
        w.send(b"x")
        for _ in range(5):
            await aio.sleep(0.01)
        r.close()
        w.close()
        return log

    assert aio.run(main()) == ["new"]


def test_reader_survives_between_runs():
    loop = aio.new_event_loop()
    r, w = socket.socketpair()
    try:
        got = loop.create_future()
        loop.add_reader(r, lambda: got.done() or got.set_result(r.recv(10)))
        loop.run_until_complete(aio.sleep(0))
        w.send(b"later")
        assert loop.run_until_complete(got) == b"later"
        loop.remove_reader(r)
    finally:
        loop.close()
        r.close()
        w.close()


def test_sock_methods_over_tcp():
    async def serve(listener):
        loop = aio.get_running_loop()
        conn, _ = await loop.sock_accept(listener)
        assert conn.gettimeout() == 0
        data = await loop.sock_recv(conn, 1024)
        await loop.sock_sendall(conn, data.upper() * 1000)
        conn.close()

    async def main():
        loop = aio.get_running_loop()
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        server = aio.create_task(serve(listener))
        client = socket.socket()
        client.setblocking(False)
        await loop.sock_connect(client, listener.getsockname())
        await loop.sock_sendall(client, b"hello")
        chunks = []
        while data := await loop.sock_recv(client, 65536):
            chunks.append(data)
        buf = bytearray(10)
        assert await loop.sock_recv_into(client, buf) == 0
        await server
        client.close()
        listener.close()
        return b"".join(chunks)

    assert aio.run(main()) == b"HELLO" * 1000


def test_sock_recv_is_cancellable():
    async def main():
        loop = aio.get_running_loop()
        r, w = socket.socketpair()
        r.setblocking(False)
        task = aio.create_task(loop.sock_recv(r, 10))
        await aio.sleep(0.01)
        task.cancel()
        with pytest.raises(aio.CancelledError):
            await task
        # The reader was removed: a new receive works.
        w.send(b"ok")
        data = await loop.sock_recv(r, 10)
        r.close()
        w.close()
        return data

    assert aio.run(main()) == b"ok"


def test_sock_connect_refused():
    async def main():
        loop = aio.get_running_loop()
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        address = probe.getsockname()
        probe.close()
        client = socket.socket()
        client.setblocking(False)
        with pytest.raises(ConnectionRefusedError):
            await loop.sock_connect(client, address)
        client.close()

    aio.run(main())


def test_udp_sendto_recvfrom():
    async def main():
        loop = aio.get_running_loop()
        a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for s in (a, b):
            s.bind(("127.0.0.1", 0))
            s.setblocking(False)
        receiving = aio.create_task(loop.sock_recvfrom(b, 100))
        await aio.sleep(0)
        await loop.sock_sendto(a, b"dgram", b.getsockname())
        data, addr = await receiving
        buf = bytearray(100)
        await loop.sock_sendto(a, b"again", b.getsockname())
        n, _ = await loop.sock_recvfrom_into(b, buf)
        from_a = addr == a.getsockname()
        a.close()
        b.close()
        return data, from_a, bytes(buf[:n])

    assert aio.run(main()) == (b"dgram", True, b"again")


def test_sock_debug_mode_requires_non_blocking():
    async def main():
        loop = aio.get_running_loop()
        sock = socket.socket()
        try:
            with pytest.raises(ValueError, match="non-blocking"):
                await loop.sock_recv(sock, 1)
        finally:
            sock.close()

    aio.run(main(), debug=True)


def test_sock_sendfile_fallback(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"0123456789" * 100)

    async def main():
        loop = aio.get_running_loop()
        r, w = socket.socketpair()
        r.setblocking(False)
        w.setblocking(False)
        with open(path, "rb") as f:
            sent = await loop.sock_sendfile(w, f, offset=10, count=500)
            position = f.tell()
        w.close()
        chunks = []
        while data := await loop.sock_recv(r, 4096):
            chunks.append(data)
        r.close()
        return sent, position, b"".join(chunks)

    sent, position, data = aio.run(main())
    assert sent == 500 and position == 510 and data == (b"0123456789" * 100)[10:510]


def test_getaddrinfo_and_getnameinfo():
    async def main():
        loop = aio.get_running_loop()
        infos = await loop.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM)
        name = await loop.getnameinfo(("127.0.0.1", 80), socket.NI_NUMERICHOST)
        return infos[0][4], name

    address, name = aio.run(main())
    assert address == ("127.0.0.1", 80)
    assert name[0] == "127.0.0.1"


@pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="Unix signals")
def test_add_signal_handler():
    async def main():
        loop = aio.get_running_loop()
        got = loop.create_future()
        loop.add_signal_handler(signal.SIGUSR1, lambda tag: got.set_result(tag), "usr1")
        try:
            os.kill(os.getpid(), signal.SIGUSR1)
            result = await aio.wait_for(got, 5)
        finally:
            assert loop.remove_signal_handler(signal.SIGUSR1) is True
        assert loop.remove_signal_handler(signal.SIGUSR1) is False
        assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL
        return result

    assert aio.run(main()) == "usr1"


@pytest.mark.skipif(not hasattr(signal, "SIGUSR2"), reason="Unix signals")
def test_signal_from_a_thread_wakes_a_sleeping_loop():
    async def main():
        loop = aio.get_running_loop()
        got = loop.create_future()
        loop.add_signal_handler(signal.SIGUSR2, got.set_result, "woke")
        timer = threading.Timer(0.02, os.kill, (os.getpid(), signal.SIGUSR2))
        timer.start()
        try:
            return await aio.wait_for(got, 5)
        finally:
            loop.remove_signal_handler(signal.SIGUSR2)

    assert aio.run(main()) == "woke"


def callback_while_handler_replaced(new_loop):
    """What add_signal_handler's callback sees while other code has
    replaced the signal's Python handler (uvicorn does so while it serves)."""

    async def main():
        loop = asyncio.get_running_loop()
        got = loop.create_future()
        loop.add_signal_handler(signal.SIGUSR1, got.set_result, "loop callback")
        seen_by_replacement = []
        previous = signal.signal(
            signal.SIGUSR1, lambda signum, frame: seen_by_replacement.append(signum)
        )
        try:
            os.kill(os.getpid(), signal.SIGUSR1)
            result = await asyncio.wait_for(got, 5)
        finally:
            signal.signal(signal.SIGUSR1, previous)
            loop.remove_signal_handler(signal.SIGUSR1)
        return result, seen_by_replacement

    return run_on(new_loop, main)


@pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="Unix signals")
def test_a_signal_callback_runs_while_its_python_handler_is_replaced():
    # asyncio's loop reads the signal's number from its wakeup fd, so the
    # callback runs whichever Python handler is installed; the replacement
    # runs too.
    expected = callback_while_handler_replaced(asyncio.new_event_loop)
    assert expected == ("loop callback", [signal.SIGUSR1])
    assert callback_while_handler_replaced(aio.new_event_loop) == expected


def handler_swapped_around_a_signal(new_loop, swap):
    """How often add_signal_handler's callback runs for one signal, when
    other code swaps the Python handler around its arrival, before the loop
    reads its wakeup fd: `swap` "after" replaces the loop's handler just
    after the signal came; "around" puts another in just before it and the
    loop's back just after (capture and restore)."""
    calls = []

    async def main():
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, calls.append, "loop callback")

        def poke():
            if swap == "after":
                os.kill(os.getpid(), signal.SIGUSR1)
                signal.signal(signal.SIGUSR1, lambda signum, frame: calls.append("other"))
            else:
                saved = signal.signal(
                    signal.SIGUSR1, lambda signum, frame: calls.append("other")
                )
                os.kill(os.getpid(), signal.SIGUSR1)
                signal.signal(signal.SIGUSR1, saved)

        loop.call_soon(poke)
        for _ in range(20):
            await asyncio.sleep(0.005)
        loop.remove_signal_handler(signal.SIGUSR1)

    run_on(new_loop, main)
    return calls


@pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="Unix signals")
@pytest.mark.parametrize("swap", ["after", "around"])
def test_a_signal_runs_its_callback_once_whichever_handler_saw_it(swap):
    expected = handler_swapped_around_a_signal(asyncio.new_event_loop, swap)
    assert expected.count("loop callback") == 1
    assert handler_swapped_around_a_signal(aio.new_event_loop, swap) == expected


def test_signal_handler_errors():
    async def main():
        loop = aio.get_running_loop()

        async def coro_fn():
            pass

        with pytest.raises(TypeError, match="coroutines cannot be used"):
            loop.add_signal_handler(signal.SIGUSR1, coro_fn)
        with pytest.raises(ValueError, match="invalid signal"):
            loop.add_signal_handler(100000, print)
        with pytest.raises(RuntimeError, match="cannot be caught"):
            loop.add_signal_handler(signal.SIGKILL, print)

        def in_thread():
            try:
                loop.add_signal_handler(signal.SIGUSR1, print)
            except RuntimeError as exc:
                return str(exc)

        return await aio.to_thread(in_thread)

    assert "main thread" in aio.run(main())


class _ListenerOutOfFds(socket.socket):
    """A listening socket whose first accept fails as when the process has
    run out of file descriptors."""

    failures = 1

    def accept(self):
        if _ListenerOutOfFds.failures:
            _ListenerOutOfFds.failures -= 1
            raise OSError(errno.EMFILE, "Too many open files")
        return super().accept()


def test_server_accepts_again_after_running_out_of_fds():
    # The error goes to the exception handler, the server stops accepting
    # for a while (a second, in virtual time here), then accepts again.
    async def main():
        loop = aio.get_running_loop()
        reported = []
        loop.set_exception_handler(lambda loop, context: reported.append(context["message"]))
        listener = _ListenerOutOfFds(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        accepted = []

        async def handle(reader, writer):
            accepted.append(loop.time())
            writer.close()

        server = await aio.start_server(handle, sock=listener)
        started = loop.time()
        async with aio.timeout(10):
            reader, writer = await aio.open_connection(*listener.getsockname())
            await reader.read()
        writer.close()
        server.close()
        await server.wait_closed()
        return reported, [when - started for when in accepted]

    reported, accepted_after = run_virtual(main())
    assert reported == ["socket.accept() out of system resource"]
    assert accepted_after == [1]
