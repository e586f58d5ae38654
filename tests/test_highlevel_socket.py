"""SocketStream and SocketListener over loopback TCP and socketpairs."""

import errno
import socket as stdlib_socket

import pytest

import tether
from tether import socket as tsocket
from tether.testing import assert_checkpoints, check_half_closeable_stream, wait_all_tasks_blocked

pytestmark = [pytest.mark.tether, pytest.mark.timeout(20)]


def stream_pair():
    a, b = tsocket.socketpair()
    return tether.SocketStream(a), tether.SocketStream(b)


async def clogged_stream_pair():
    """A stream pair whose first end cannot send: its buffers are full."""
    left, right = stream_pair()
    with tether.move_on_after(1):  # autojump: ends once send_all blocks
        while True:
            await left.send_all(b"x" * 65536)
    return left, right


async def tcp_listener():
    sock = tsocket.socket()
    await sock.bind(("127.0.0.1", 0))
    sock.listen()
    return tether.SocketListener(sock)


async def tcp_stream_pair(listener):
    client = tsocket.socket()
    await client.connect(listener.socket.getsockname())
    return tether.SocketStream(client), await listener.accept()


# ---------------------------------------------------------------- SocketStream


async def test_stream_needs_a_tether_stream_socket():
    raw_a, raw_b = stdlib_socket.socketpair()
    with raw_a, raw_b, pytest.raises(TypeError, match="from_stdlib_socket"):
        tether.SocketStream(raw_a)
    with tsocket.socket(type=tsocket.SOCK_DGRAM) as datagram:
        with pytest.raises(ValueError, match="SOCK_STREAM"):
            tether.SocketStream(datagram)


async def test_tcp_streams_get_nodelay_and_forward_socket_options():
    listener = await tcp_listener()
    client, server = await tcp_stream_pair(listener)
    async with listener, client, server:
        assert client.getsockopt(tsocket.IPPROTO_TCP, tsocket.TCP_NODELAY)
        client.setsockopt(tsocket.IPPROTO_TCP, tsocket.TCP_NODELAY, False)
        assert not client.getsockopt(tsocket.IPPROTO_TCP, tsocket.TCP_NODELAY)
        assert isinstance(client.getsockopt(tsocket.IPPROTO_TCP, tsocket.TCP_NODELAY, 4), bytes)
        with pytest.raises(TypeError, match="None needs a length"):
            client.setsockopt(tsocket.IPPROTO_TCP, tsocket.TCP_NODELAY, None)
        assert server.socket.getpeername() == client.socket.getsockname()


async def test_send_all_sends_everything_in_pieces_and_releases_the_buffer():
    a, b = stream_pair()
    size = 4 * 1024 * 1024  # larger than the socket buffers
    data = bytearray(size)

    async def receive_all():
        got = 0
        while got < size:
            got += len(await b.receive_some())
        assert got == size

    async with a, b:
        async with tether.open_nursery() as nursery:
            nursery.start_soon(receive_all)
            await a.send_all(data)
        data += b"resizable"  # fails if a memoryview of it were still alive
        await a.send_eof()
        assert await b.receive_some(10) == b""


async def test_send_eof_then_sending_is_closed_but_receiving_works():
    a, b = stream_pair()
    async with a, b:
        with assert_checkpoints():
            await a.send_eof()
        await a.send_eof()  # idempotent
        with pytest.raises(tether.ClosedResourceError, match="after sending EOF"):
            await a.send_all(b"late")
        assert await b.receive_some() == b""
        await b.send_all(b"reply")
        assert await a.receive_some() == b"reply"


async def test_empty_send_is_a_checkpoint_and_checks_for_closed():
    a, b = stream_pair()
    async with b:
        with assert_checkpoints():
            await a.send_all(b"")
        await a.aclose()
        with pytest.raises(tether.ClosedResourceError):
            await a.send_all(b"")
        with pytest.raises(tether.ClosedResourceError):
            await a.wait_send_all_might_not_block()
        with pytest.raises(tether.ClosedResourceError):
            await a.receive_some()


async def test_receive_some_checks_max_bytes():
    a, b = stream_pair()
    async with a, b:
        with pytest.raises(ValueError, match="max_bytes must be >= 1"):
            await a.receive_some(0)
        await b.send_all(b"abc")
        assert await a.receive_some(2) == b"ab"
        assert await a.receive_some(2) == b"c"


async def test_concurrent_senders_or_receivers_are_busy_errors(autojump_clock):
    a, b = await clogged_stream_pair()
    async with a, b:
        async with tether.open_nursery() as nursery:
            nursery.start_soon(a.send_all, b"blocked")
            nursery.start_soon(a.receive_some)  # b sends nothing
            await wait_all_tasks_blocked()
            with pytest.raises(tether.BusyResourceError, match="sending"):
                await a.send_all(b"second")
            with pytest.raises(tether.BusyResourceError, match="sending"):
                await a.wait_send_all_might_not_block()
            with pytest.raises(tether.BusyResourceError, match="sending"):
                await a.send_eof()
            with pytest.raises(tether.BusyResourceError, match="receiving"):
                await a.receive_some()
            nursery.cancel_scope.cancel()


async def test_cancelling_send_all_midway(autojump_clock):
    a, b = await clogged_stream_pair()
    async with a, b:
        with tether.move_on_after(1) as scope:
            await a.send_all(b"y" * 100_000)
        assert scope.cancelled_caught
        # The stream is in an unknown state; closing it still works.
        await a.aclose()


async def test_cancelling_receive_some_loses_nothing(autojump_clock):
    a, b = stream_pair()
    async with a, b:
        with tether.move_on_after(1) as scope:
            await a.receive_some()
        assert scope.cancelled_caught
        await b.send_all(b"after")
        assert await a.receive_some() == b"after"


async def test_closing_under_waiting_sender_and_receiver(autojump_clock):
    a, b = await clogged_stream_pair()

    async def expect_closed(operation, *args):
        with pytest.raises(tether.ClosedResourceError):
            await operation(*args)

    async with b:
        async with tether.open_nursery() as nursery:
            nursery.start_soon(expect_closed, a.send_all, b"z")
            nursery.start_soon(expect_closed, a.receive_some)
            await wait_all_tasks_blocked()
            await a.aclose()


async def test_peer_going_away_breaks_the_stream():
    a, b = stream_pair()
    await b.aclose()
    async with a:
        with pytest.raises(tether.BrokenResourceError) as info:
            while True:
                await a.send_all(b"x" * 1024)
        assert isinstance(info.value.__cause__, OSError)
        assert await a.receive_some() == b""


async def test_aclose_closes_even_when_cancelled():
    a, b = stream_pair()
    async with b:
        with tether.CancelScope() as scope:
            scope.cancel()
            await a.aclose()
        assert a.socket.fileno() == -1


# ---------------------------------------------------------------- SocketListener


async def test_listener_needs_a_listening_stream_socket():
    with stdlib_socket.socket() as raw, pytest.raises(TypeError):
        tether.SocketListener(raw)
    with tsocket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        with pytest.raises(ValueError, match="listening"):
            tether.SocketListener(sock)


async def test_listener_accepts_streams_and_closes():
    listener = await tcp_listener()
    client, server = await tcp_stream_pair(listener)
    async with client, server:
        assert isinstance(server, tether.SocketStream)
        await client.send_all(b"hi")
        assert await server.receive_some() == b"hi"
    with assert_checkpoints():
        await listener.aclose()
    await listener.aclose()
    with assert_checkpoints(), pytest.raises(tether.ClosedResourceError):
        await listener.accept()


async def test_closing_the_listener_under_a_waiting_accept():
    listener = await tcp_listener()

    async def expect_closed():
        with pytest.raises(tether.ClosedResourceError):
            await listener.accept()

    async with tether.open_nursery() as nursery:
        nursery.start_soon(expect_closed)
        await wait_all_tasks_blocked()
        with pytest.raises(tether.BusyResourceError, match="accepting"):
            await listener.accept()
        await listener.aclose()


async def test_cancelling_accept(autojump_clock):
    listener = await tcp_listener()
    async with listener:
        with tether.move_on_after(1) as scope:
            await listener.accept()
        assert scope.cancelled_caught


class ScriptedListeningSocket(tsocket.SocketType):
    """A listening socket whose accept() plays a script of results."""

    type = tsocket.SOCK_STREAM

    def __init__(self, script):
        self.script = list(script)

    def getsockopt(self, level, optname, buflen=None):
        return 1  # SO_ACCEPTCONN: listening

    def setsockopt(self, level, optname, value, optlen=None):
        pass

    async def accept(self):
        await tether.lowlevel.checkpoint()
        step = self.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        return step, None


async def test_accept_skips_errors_of_one_connection_but_reports_resource_exhaustion():
    good = ScriptedListeningSocket([])
    listener = tether.SocketListener(
        ScriptedListeningSocket(
            [
                OSError(errno.ECONNABORTED, "aborted before accept"),
                OSError(errno.EPERM, "firewall said no"),
                good,
                OSError(errno.EMFILE, "out of file descriptors"),
                good,
            ]
        )
    )
    assert (await listener.accept()).socket is good
    with assert_checkpoints(), pytest.raises(OSError, match="out of file descriptors"):
        await listener.accept()
    assert (await listener.accept()).socket is good


# ---------------------------------------------------------------- conformance


async def _fill(stream):
    """Send until the kernel buffers are full (send_all blocks)."""
    async with tether.open_nursery() as nursery:

        async def stop_when_blocked():
            await wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()

        nursery.start_soon(stop_when_blocked)
        while True:
            await stream.send_all(b"x" * 65536)


@pytest.mark.parametrize("kind", ["socketpair", "tcp"])
async def test_socket_streams_pass_the_stream_conformance_checks(kind):
    listener = await tcp_listener()

    async def make_pair():
        if kind == "socketpair":
            return stream_pair()
        return await tcp_stream_pair(listener)

    async def make_clogged_pair():
        left, right = await make_pair()
        await _fill(left)
        await _fill(right)
        return left, right

    async with listener:
        await check_half_closeable_stream(make_pair, make_clogged_pair)
