"""tether.socket: socket objects over real loopback, socketpair and Unix
sockets (IPv6 only where this machine has ``::1``)."""

import errno
import inspect
import os
import socket as stdlib_socket
import sys

import pytest

import tether
from tether import lowlevel
from tether import socket as tsocket
from tether.testing import assert_checkpoints, wait_all_tasks_blocked

pytestmark = [pytest.mark.tether, pytest.mark.timeout(20)]


def _has_ipv6_loopback():
    try:
        with stdlib_socket.socket(stdlib_socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


needs_ipv6 = pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback here")
needs_unix = pytest.mark.skipif(not hasattr(stdlib_socket, "AF_UNIX"), reason="no AF_UNIX")
needs_msg_calls = pytest.mark.skipif(
    not hasattr(stdlib_socket.socket, "sendmsg"), reason="no sendmsg/recvmsg (Windows)"
)


async def connected_tcp_pair():
    """(client, server, listener), all tether sockets on 127.0.0.1."""
    listener = tsocket.socket()
    await listener.bind(("127.0.0.1", 0))
    listener.listen()
    client = tsocket.socket()
    await client.connect(listener.getsockname())
    server, _ = await listener.accept()
    return client, server, listener


def stdlib_pair():
    """A non-blocking standard library socketpair, to fill and drain from
    outside tether."""
    a, b = stdlib_socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    return a, b


def fill_send_buffer(sock):
    """Write into the stdlib socket `sock` until the kernel refuses more."""
    with pytest.raises(BlockingIOError):
        while True:
            sock.send(b"x" * 65536)


def drain(sock):
    """Everything the stdlib socket `sock` can read right now."""
    received = bytearray()
    while True:
        try:
            chunk = sock.recv(1 << 20)
        except BlockingIOError:
            return bytes(received)
        if not chunk:
            return bytes(received)
        received += chunk


# ---------------------------------------------------------------- construction


async def test_socket_wraps_a_nonblocking_stdlib_socket():
    with tsocket.socket() as sock:
        assert isinstance(sock, tsocket.SocketType)
        assert sock.family == tsocket.AF_INET
        assert sock.type == tsocket.SOCK_STREAM
        assert sock.fileno() >= 0
        assert "tether.socket.socket" in repr(sock)
    assert sock.fileno() == -1


def test_socket_interface_cannot_be_instantiated():
    with pytest.raises(TypeError, match=r"tether\.socket\.socket"):
        tsocket.SocketType()


def test_sockets_can_be_made_and_closed_outside_a_run():
    sock = tsocket.socket(type=tsocket.SOCK_DGRAM)
    sock.close()
    sock.close()
    assert sock.fileno() == -1


async def test_from_stdlib_socket_takes_exactly_a_socket():
    class MySocket(stdlib_socket.socket):
        pass

    with MySocket() as subclassed, pytest.raises(TypeError, match="MySocket"):
        tsocket.from_stdlib_socket(subclassed)
    with pytest.raises(TypeError):
        tsocket.from_stdlib_socket(3)
    plain = stdlib_socket.socket()
    with tsocket.from_stdlib_socket(plain) as wrapped:
        assert wrapped.fileno() == plain.fileno()
        assert plain.getblocking() is False


async def test_fromfd_dups_and_reads_the_real_kind_of_socket():
    with stdlib_socket.socket(type=stdlib_socket.SOCK_DGRAM) as original:
        # Wrong family and type given on purpose.
        with tsocket.fromfd(original.fileno(), tsocket.AF_INET, tsocket.SOCK_STREAM) as copy:
            assert copy.fileno() != original.fileno()
            if sys.platform == "linux":
                assert copy.type == tsocket.SOCK_DGRAM
        assert original.fileno() != -1


@pytest.mark.skipif(sys.platform != "linux", reason="sniffing is Linux-only")
async def test_socket_with_fileno_reports_what_the_fd_is():
    fd = stdlib_socket.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM).detach()
    with tsocket.socket(fileno=fd) as sock:
        assert sock.type == tsocket.SOCK_DGRAM
        assert sock.fileno() == fd


async def test_setblocking_true_is_refused():
    with tsocket.socket() as sock:
        sock.setblocking(False)
        with pytest.raises(ValueError, match="always non-blocking"):
            sock.setblocking(True)


async def test_setsockopt_takes_a_value_or_none_and_a_length():
    with tsocket.socket() as sock:
        sock.setsockopt(tsocket.IPPROTO_TCP, tsocket.TCP_NODELAY, True)
        assert sock.getsockopt(tsocket.IPPROTO_TCP, tsocket.TCP_NODELAY)
        with pytest.raises(TypeError, match="None needs an optlen"):
            sock.setsockopt(tsocket.IPPROTO_TCP, tsocket.TCP_NODELAY, None)
        with pytest.raises(TypeError, match="must be None"):
            sock.setsockopt(tsocket.IPPROTO_TCP, tsocket.TCP_NODELAY, 1, 4)


async def test_dup_detach_and_inheritable():
    a, b = tsocket.socketpair()
    with a, b:
        copy = a.dup()
        with copy:
            a.close()
            await copy.send(b"x")
            assert await b.recv(1) == b"x"
        assert not b.get_inheritable()
        b.set_inheritable(inheritable=True)
        assert b.get_inheritable()
        fd = b.detach()
        assert b.fileno() == -1
        os.close(fd)


def test_constants_and_helpers_are_the_standard_librarys():
    assert tsocket.SOL_SOCKET == stdlib_socket.SOL_SOCKET
    assert tsocket.MSG_PEEK == stdlib_socket.MSG_PEEK
    assert tsocket.gaierror is stdlib_socket.gaierror
    assert tsocket.ntohs is stdlib_socket.ntohs
    if sys.platform == "linux":
        assert isinstance(tsocket.IP_BIND_ADDRESS_NO_PORT, int)


# ---------------------------------------------------------------- TCP


async def test_tcp_bind_listen_accept_connect_by_name():
    with tsocket.socket() as listener, tsocket.socket() as client:
        await listener.bind(("localhost", 0))
        assert listener.getsockname()[0] == "127.0.0.1"
        listener.listen()
        await client.connect(("localhost", listener.getsockname()[1]))
        server, address = await listener.accept()
        with server:
            assert address == client.getsockname() == server.getpeername()
            assert await client.send(b"hello") == 5
            assert await server.recv(10, tsocket.MSG_PEEK) == b"hello"
            assert await server.recv(10) == b"hello"


@needs_ipv6
async def test_tcp_over_ipv6_loopback():
    with tsocket.socket(tsocket.AF_INET6) as listener, tsocket.socket(tsocket.AF_INET6) as client:
        await listener.bind(("::1", 0))
        listener.listen()
        await client.connect(listener.getsockname())
        server, _ = await listener.accept()
        with server:
            await server.send(b"6")
            assert await client.recv(1) == b"6"


async def test_every_operation_is_a_checkpoint_whether_it_waits_or_not():
    client, server, listener = await connected_tcp_pair()
    with client, server, listener:
        with assert_checkpoints():
            await client.send(b"x")  # completes at once
        with assert_checkpoints():
            assert await server.recv(1) == b"x"  # completes at once
        with assert_checkpoints(), pytest.raises(TypeError):
            await server.recv("not a size")  # fails at once
        with assert_checkpoints(), pytest.raises(OSError):
            await listener.bind(("127.0.0.1", 0))  # already bound


async def test_accept_before_listen_fails_instead_of_waiting_forever():
    with tsocket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        with assert_checkpoints(), pytest.raises(OSError):
            await sock.accept()


async def test_refused_connect_names_the_address():
    with tsocket.socket() as probe:
        await probe.bind(("127.0.0.1", 0))
        address = probe.getsockname()  # bound, not listening: refuses
        with tsocket.socket() as client:
            with pytest.raises(ConnectionRefusedError, match=r"Error connecting to \('127"):
                await client.connect(address)


async def test_connect_checks_the_shape_of_the_address():
    with tsocket.socket() as sock:
        with pytest.raises(ValueError, match=r"\(host, port\) tuple"):
            await sock.connect("127.0.0.1:80")


async def test_shutdown_write_side_is_recorded():
    a, b = tsocket.socketpair()
    with a, b:
        assert not a.did_shutdown_SHUT_WR
        a.shutdown(tsocket.SHUT_RD)
        assert not a.did_shutdown_SHUT_WR
        a.shutdown(tsocket.SHUT_WR)
        assert a.did_shutdown_SHUT_WR
        assert await b.recv(1) == b""


async def test_is_readable():
    a, b = tsocket.socketpair()
    with a, b:
        assert not a.is_readable()
        await b.send(b"x")
        await lowlevel.wait_readable(a)
        assert a.is_readable()
        await a.recv(1)
        assert not a.is_readable()


# ---------------------------------------------------------------- cancellation


async def test_cancelled_before_receiving_takes_no_data():
    a, b = tsocket.socketpair()
    with a, b:
        await b.send(b"kept")
        with tether.CancelScope() as scope:
            scope.cancel()
            with pytest.raises(tether.Cancelled):
                await a.recv(10)
        assert await a.recv(10) == b"kept"


async def test_cancelled_while_waiting_to_receive(autojump_clock):
    a, b = tsocket.socketpair()
    with a, b:
        with tether.move_on_after(1) as scope:
            await a.recv(10)
        assert scope.cancelled_caught
        await b.send(b"later")
        assert await a.recv(10) == b"later"


async def test_cancelled_while_waiting_to_send_sends_nothing(autojump_clock):
    raw_a, raw_b = stdlib_pair()
    with raw_a, raw_b:
        fill_send_buffer(raw_a)
        a = tether.socket.from_stdlib_socket(raw_a)
        with tether.move_on_after(1) as scope:
            await a.send(b"y" * 10)
        assert scope.cancelled_caught
        received = drain(raw_b)
        assert received and b"y" not in received


async def test_cancelled_while_waiting_to_accept_accepts_nothing(autojump_clock):
    with tsocket.socket() as listener:
        await listener.bind(("127.0.0.1", 0))
        listener.listen()
        with tether.move_on_after(1) as scope:
            await listener.accept()
        assert scope.cancelled_caught
        with tsocket.socket() as client:
            await client.connect(listener.getsockname())
            server, _ = await listener.accept()
            server.close()


async def test_connect_cancelled_before_it_starts_closes_the_socket():
    sock = tsocket.socket()
    with tether.CancelScope() as scope:
        scope.cancel()
        await sock.connect(("127.0.0.1", 9))
    assert scope.cancelled_caught
    assert sock.fileno() == -1


@pytest.mark.skipif(sys.platform != "linux", reason="relies on Linux's listen(0) queue")
async def test_connect_cancelled_while_in_progress_closes_the_socket():
    with tsocket.socket() as listener:
        await listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        # The accept queue holds one connection; the next SYN is dropped, so
        # the second connect stays in progress.
        first = tsocket.socket()
        await first.connect(listener.getsockname())
        second = tsocket.socket()
        async with tether.open_nursery() as nursery:
            nursery.start_soon(second.connect, listener.getsockname())
            await wait_all_tasks_blocked()
            assert lowlevel.current_statistics().io_statistics.tasks_waiting_write == 1
            nursery.cancel_scope.cancel()
        assert second.fileno() == -1
        first.close()


# ---------------------------------------------------------------- closing and busy


async def test_closing_wakes_waiting_reader_and_writer_with_closed_resource_error():
    raw_a, raw_b = stdlib_pair()
    with raw_a, raw_b:
        fill_send_buffer(raw_a)
        a = tsocket.from_stdlib_socket(raw_a)

        async def expect_closed(operation, *args):
            with pytest.raises(tether.ClosedResourceError):
                await operation(*args)

        async with tether.open_nursery() as nursery:
            nursery.start_soon(expect_closed, a.recv, 1)
            nursery.start_soon(expect_closed, a.send, b"z")
            await wait_all_tasks_blocked()
            a.close()


async def test_two_readers_on_one_socket_is_an_error():
    a, b = tsocket.socketpair()
    with a, b:
        async with tether.open_nursery() as nursery:
            nursery.start_soon(a.recv, 1)
            await wait_all_tasks_blocked()
            with pytest.raises(tether.BusyResourceError):
                await a.recv(1)
            nursery.cancel_scope.cancel()


# ---------------------------------------------------------------- other calls


async def test_datagram_calls_resolve_names():
    a = tsocket.socket(type=tsocket.SOCK_DGRAM)
    b = tsocket.socket(type=tsocket.SOCK_DGRAM)
    with a, b:
        await a.bind(("127.0.0.1", 0))
        await b.bind(("127.0.0.1", 0))
        port = b.getsockname()[1]
        assert await a.sendto(b"one", ("localhost", port)) == 3
        assert await b.recvfrom(10) == (b"one", a.getsockname())
        await a.sendto(b"two", 0, b.getsockname())
        buffer = bytearray(5)
        assert await b.recvfrom_into(buffer) == (3, a.getsockname())
        assert buffer == b"two\0\0"
        assert await a.sendmsg([b"th", b"ree"], [], 0, ("localhost", port)) == 5
        data, ancillary, flags, sender = await b.recvmsg(10)
        assert (data, ancillary, flags, sender) == (b"three", [], 0, a.getsockname())
        await a.sendto(b"four", b.getsockname())
        first, second = bytearray(2), bytearray(3)
        nbytes, _, _, _ = await b.recvmsg_into([first, second])
        assert (nbytes, first, second) == (4, b"fo", b"ur\0")
        with pytest.raises(TypeError, match="sendto takes"):
            await a.sendto(b"x")


async def _via_recv(sock):
    return await sock.recv(10)


async def _via_recv_into(sock):
    buffer = bytearray(10)
    received = await sock.recv_into(buffer, nbytes=10)  # keywords work here
    return bytes(buffer[:received])


async def _via_recvfrom(sock):
    data, _ = await sock.recvfrom(10)
    return data


async def _via_recvfrom_into(sock):
    buffer = bytearray(10)
    received, _ = await sock.recvfrom_into(buffer, flags=0)
    return bytes(buffer[:received])


async def _via_recvmsg(sock):
    data, _, _, _ = await sock.recvmsg(10)
    return data


async def _via_recvmsg_into(sock):
    buffer = bytearray(10)
    received, _, _, _ = await sock.recvmsg_into([buffer])
    return bytes(buffer[:received])


RECEIVE_CALLS = [
    _via_recv,
    _via_recv_into,
    _via_recvfrom,
    _via_recvfrom_into,
    pytest.param(_via_recvmsg, marks=needs_msg_calls),
    pytest.param(_via_recvmsg_into, marks=needs_msg_calls),
]


@pytest.mark.parametrize("receive", RECEIVE_CALLS)
async def test_every_receive_call_checkpoints_waits_and_cancels_the_same_way(
    receive, autojump_clock
):
    a, b = tsocket.socketpair()
    with a, b:
        await b.send(b"now")
        with assert_checkpoints():
            assert await receive(a) == b"now"  # without waiting

        got = []

        async def receive_into_got():
            got.append(await receive(a))

        async with tether.open_nursery() as nursery:
            nursery.start_soon(receive_into_got)
            await wait_all_tasks_blocked()
            await b.send(b"later")
        assert got == [b"later"]  # after waiting

        with tether.move_on_after(1) as scope:
            await receive(a)
        assert scope.cancelled_caught
        await b.send(b"kept")
        assert await receive(a) == b"kept"  # the cancelled call took nothing

        async def expect_closed():
            with pytest.raises(tether.ClosedResourceError):
                await receive(a)

        async with tether.open_nursery() as nursery:
            nursery.start_soon(expect_closed)
            await wait_all_tasks_blocked()
            a.close()


@pytest.mark.parametrize(
    "send",
    [
        lambda sock, data: sock.send(data),
        pytest.param(lambda sock, data: sock.sendmsg([data]), marks=needs_msg_calls),
    ],
    ids=["send", "sendmsg"],
)
async def test_every_send_call_waits_for_room_and_then_sends(send):
    raw_a, raw_b = stdlib_pair()
    with raw_a, raw_b:
        fill_send_buffer(raw_a)
        a = tether.socket.from_stdlib_socket(raw_a)
        async with tether.open_nursery() as nursery:
            nursery.start_soon(send, a, b"y")
            await wait_all_tasks_blocked()
            received = drain(raw_b)  # makes room: the sender wakes
        assert b"y" not in received
        assert drain(raw_b) == b"y"


async def test_the_into_calls_take_keywords_whether_or_not_they_wait():
    a, b = tsocket.socketpair()
    with a, b:
        buffer = bytearray(10)
        await b.send(b"abcd")
        assert await a.recv_into(buffer, nbytes=2) == 2  # at once
        received, _ = await a.recvfrom_into(buffer, nbytes=1, flags=0)
        assert received == 1
        assert bytes(buffer[:2]) == b"cb"
        async with tether.open_nursery() as nursery:
            nursery.start_soon(a.recv_into, buffer)  # drains "d"
        async with tether.open_nursery() as nursery:
            nursery.start_soon(b.send, b"wxyz")
            assert await a.recv_into(buffer, nbytes=3) == 3  # after waiting
        assert bytes(buffer[:3]) == b"wxy"


def test_the_made_methods_have_the_interfaces_names_docstrings_and_signatures():
    a, b = tsocket.socketpair()
    with a, b:
        for name in ("recv", "recv_into", "recvfrom", "recvfrom_into", "send", "sendto"):
            method = getattr(a, name)
            interface = getattr(tsocket.SocketType, name)
            assert method.__name__ == name
            assert inspect.getdoc(method) == inspect.getdoc(interface)
            assert inspect.signature(method) == inspect.signature(interface.__get__(a))


async def test_recv_into_and_sendmsg_on_a_stream():
    a, b = tsocket.socketpair()
    with a, b:
        assert await a.sendmsg([b"ab", b"c"]) == 3
        buffer = bytearray(4)
        assert await b.recv_into(buffer) == 3
        assert buffer == b"abc\0"


@needs_unix
async def test_unix_sockets_bind_by_str_bytes_and_path(tmp_path):
    for path in (str(tmp_path / "a"), os.fsencode(tmp_path / "b"), tmp_path / "c"):
        with tsocket.socket(tsocket.AF_UNIX) as listener:
            await listener.bind(path)
            listener.listen()
            with tsocket.socket(tsocket.AF_UNIX) as client:
                await client.connect(path)
                server, _ = await listener.accept()
                with server:
                    await client.send(b"u")
                    assert await server.recv(1) == b"u"


@needs_unix
async def test_unix_socket_address_must_be_a_path():
    with tsocket.socket(tsocket.AF_UNIX) as sock:
        with pytest.raises(TypeError, match="AF_UNIX address is a path"):
            await sock.bind(42)


# ---------------------------------------------------------------- custom factory


async def test_custom_socket_factory_makes_new_sockets_for_this_run_only():
    made = []

    class Factory(tether.abc.SocketFactory):
        def socket(self, family=tsocket.AF_INET, type=tsocket.SOCK_STREAM, proto=0):
            made.append((family, type, proto))
            return stdlib_socket.socket(family, type, proto)

    assert tsocket.set_custom_socket_factory(Factory()) is None
    plain = tsocket.socket(tsocket.AF_INET, tsocket.SOCK_DGRAM)
    plain.close()
    assert made == [(tsocket.AF_INET, tsocket.SOCK_DGRAM, 0)]
    # socketpair and fileno= are not the factory's business.
    a, b = tsocket.socketpair()
    a.close()
    b.close()
    assert len(made) == 1

    def another_run():
        async def check():
            with tsocket.socket() as sock:
                assert isinstance(sock, tsocket.SocketType)

        tether.run(check)

    await tether.to_thread.run_sync(another_run)
    assert len(made) == 1
    assert isinstance(tsocket.set_custom_socket_factory(None), Factory)


class _ResolverWithNoAnswers(tether.abc.HostnameResolver):
    """A custom resolver whose every lookup finds nothing (the system
    resolver raises instead, but nothing obliges a custom one to)."""

    async def getaddrinfo(self, host, port, family=0, type=0, proto=0, flags=0):
        return []

    async def getnameinfo(self, sockaddr, flags):
        raise NotImplementedError


async def test_a_name_without_addresses_is_a_clear_os_error():
    tsocket.set_custom_hostname_resolver(_ResolverWithNoAnswers())
    with tsocket.socket() as sock:
        with pytest.raises(OSError, match=r"no addresses were found for nowhere\.test:80"):
            await sock.connect(("nowhere.test", 80))
    with tsocket.socket() as sock:
        with pytest.raises(OSError, match=r"no addresses were found for nowhere\.test:81"):
            await sock.bind(("nowhere.test", 81))
    with tsocket.socket(type=tsocket.SOCK_DGRAM) as sock:
        with pytest.raises(OSError, match=r"no addresses were found for nowhere\.test:82"):
            await sock.sendto(b"x", ("nowhere.test", 82))


async def test_detaching_wakes_waiting_tasks_with_closed_resource_error():
    a, b = tsocket.socketpair()
    listener = tsocket.socket()
    await listener.bind(("127.0.0.1", 0))
    listener.listen()
    with b:

        async def expect_closed(operation, *args):
            with pytest.raises(tether.ClosedResourceError):
                await operation(*args)

        async with tether.open_nursery() as nursery:
            nursery.start_soon(expect_closed, a.recv, 1)
            nursery.start_soon(expect_closed, listener.accept)
            await wait_all_tasks_blocked()
            detached = [a.detach(), listener.detach()]
    assert a.fileno() == listener.fileno() == -1
    # The descriptors are the caller's now: still open.
    for fd in detached:
        with stdlib_socket.socket(fileno=fd) as sock:
            assert sock.type == stdlib_socket.SOCK_STREAM


async def test_a_descriptor_that_is_not_a_socket_is_refused():
    read_end, write_end = os.pipe()
    try:
        with pytest.raises(OSError) as info:
            tsocket.fromfd(read_end)
        assert info.value.errno == errno.ENOTSOCK
        with pytest.raises(OSError) as info:
            tsocket.socket(fileno=read_end)
        assert info.value.errno == errno.ENOTSOCK
    finally:
        os.close(read_end)
        os.close(write_end)


async def test_a_double_missing_a_method_is_told_which():
    class HalfDone(tsocket.SocketType):
        def fileno(self):
            return 7

    sock = HalfDone()
    assert sock.fileno() == 7
    with pytest.raises(NotImplementedError, match=r"HalfDone does not implement SocketType\.recv"):
        await sock.recv(1)
    with pytest.raises(
        NotImplementedError, match=r"HalfDone does not implement SocketType\.family"
    ):
        _ = sock.family
