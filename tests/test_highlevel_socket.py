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
    with raw_a, raw_b, pytest.raises(TypeError, match="SocketStream requires a tether socket"):
        tether.SocketStream(raw_a)
    with tsocket.socket(type=tsocket.SOCK_DGRAM) as datagram:
        with pytest.raises(ValueError, match="SocketStream requires a SOCK_STREAM socket"):
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
        with pytest.raises(TypeError, match="with a length the value must be None"):
            client.setsockopt(tsocket.IPPROTO_TCP, tsocket.TCP_NODELAY, 1, 4)
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


async def test_a_send_that_fails_at_once_is_still_a_checkpoint():
    a, b = stream_pair()
    await b.aclose()
    async with a:
        with assert_checkpoints(), pytest.raises(tether.BrokenResourceError):
            await a.send_all(b"to nobody")  # a Unix socket knows at once


async def test_aclose_closes_even_when_cancelled():
    a, b = stream_pair()
    async with b:
        with tether.CancelScope() as scope:
            scope.cancel()
            await a.aclose()
        assert a.socket.fileno() == -1


async def test_a_typed_memoryview_larger_than_the_buffers_arrives_intact():
    a, b = stream_pair()
    numbers = memoryview(bytearray(4 * 1024 * 1024)).cast("I")
    for i in range(0, len(numbers), 997):
        numbers[i] = i
    expected = numbers.tobytes()
    received = bytearray()

    async def receive_all():
        while len(received) < len(expected):
            received.extend(await b.receive_some())

    async with a, b, tether.open_nursery() as nursery:
        nursery.start_soon(receive_all)
        # Sent in several pieces, each counted in bytes, not in items.
        await a.send_all(numbers)
    assert received == expected


async def test_a_receive_after_the_socket_ran_dry_still_checkpoints_and_reports_errors(
    autojump_clock,
):
    a, b = stream_pair()
    async with a, b:
        await b.send_all(b"abc")
        assert await a.receive_some(10) == b"ab" + b"c"  # emptied the socket
        await b.send_all(b"d")
        with assert_checkpoints():
            assert await a.receive_some(10) == b"d"
        with tether.move_on_after(1) as scope:
            await a.receive_some(10)
        assert scope.cancelled_caught
        await b.send_all(b"e")
        assert await a.receive_some(10) == b"e"
        await b.aclose()
        assert await a.receive_some(10) == b""
        assert await a.receive_some(10) == b""
        await a.aclose()
        with assert_checkpoints(), pytest.raises(tether.ClosedResourceError):
            await a.receive_some(10)


async def test_a_reset_connection_breaks_a_receive_after_the_socket_ran_dry():
    listener = await tcp_listener()
    client, server = await tcp_stream_pair(listener)
    async with listener, client, server:
        await server.send_all(b"x")
        assert await client.receive_some() == b"x"  # emptied the socket
        # Closing with a zero linger time sends a reset instead of an end.
        server.setsockopt(tsocket.SOL_SOCKET, tsocket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
        await server.aclose()
        with pytest.raises(tether.BrokenResourceError) as info:
            await client.receive_some()
        assert isinstance(info.value.__cause__, ConnectionResetError)


class MemorySocket(tsocket.SocketType):
    """A connected stream socket that is not a real one: what it is sent
    comes back from its own recv."""

    type = tsocket.SOCK_STREAM
    did_shutdown_SHUT_WR = False

    def __init__(self):
        self.buffer = bytearray()
        self.calls = []

    def setsockopt(self, level, optname, value, optlen=None):
        raise OSError(errno.ENOPROTOOPT, "no options here")

    def fileno(self):
        return 1000

    async def send(self, data, flags=0):
        await tether.lowlevel.checkpoint()
        self.calls.append("send")
        sent = bytes(data[:3])  # a few bytes at a time
        self.buffer += sent
        return len(sent)

    async def recv(self, bufsize, flags=0):
        await tether.lowlevel.checkpoint()
        self.calls.append("recv")
        data = bytes(self.buffer[:bufsize])
        del self.buffer[:bufsize]
        return data


async def test_a_stream_over_another_socket_type_uses_its_methods():
    sock = MemorySocket()
    stream = tether.SocketStream(sock)
    await stream.send_all(b"hello")
    await stream.send_all(memoryview(b"!"))
    assert sock.calls == ["send", "send", "send"]
    assert await stream.receive_some(4) == b"hell"
    assert await stream.receive_some() == b"o!"
    assert sock.calls[3:] == ["recv", "recv"]


# ---------------------------------------------------------------- SocketListener


async def test_listener_needs_a_listening_stream_socket():
    with stdlib_socket.socket() as raw:
        with pytest.raises(TypeError, match="SocketListener requires a tether socket"):
            tether.SocketListener(raw)
    with tsocket.socket(type=tsocket.SOCK_DGRAM) as datagram:
        with pytest.raises(ValueError, match="SocketListener requires a SOCK_STREAM socket"):
            tether.SocketListener(datagram)
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


# ------------------------------------------ the fast paths and the general path
#
# send_all and receive_some call the standard library socket directly when the
# stream wraps a tether socket (the fast paths, kept for bench_net.py's TCP
# echo), and go through the socket's own send/recv otherwise. A stream over a
# ForwardingSocket takes the general path over the same real socket, so the
# two must be indistinguishable.


class ForwardingSocket(tsocket.SocketType):
    """A real tether socket behind a test double: SocketStream cannot tell
    it is tether's own, so it uses the socket's methods."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    type = property(lambda self: self.inner.type)
    did_shutdown_SHUT_WR = property(lambda self: self.inner.did_shutdown_SHUT_WR)

    def fileno(self):
        return self.inner.fileno()

    def close(self):
        self.inner.close()

    def shutdown(self, flag):
        self.inner.shutdown(flag)

    def setsockopt(self, *args):
        self.inner.setsockopt(*args)

    def getsockopt(self, *args):
        return self.inner.getsockopt(*args)

    async def wait_writable(self):
        await self.inner.wait_writable()

    async def send(self, data, flags=0, /):
        return await self.inner.send(data, flags)

    async def recv(self, bufsize, flags=0, /):
        return await self.inner.recv(bufsize, flags)


def stream_pair_on(path):
    a, b = stream_pair()
    if path == "general":
        a, b = (tether.SocketStream(ForwardingSocket(end.socket)) for end in (a, b))
    return a, b


async def _outcome(operation, *args):
    """What a call did, as text: its result or its error, and whether it
    was a checkpoint."""
    try:
        with assert_checkpoints():
            result = await operation(*args)
    except AssertionError:
        return "not a checkpoint"
    except (Exception, tether.Cancelled) as exc:
        return type(exc).__name__
    return repr(result)


async def _transcript(path):
    """The same script of sends and receives, what each call did."""
    seen = []
    a, b = stream_pair_on(path)
    async with b:
        # Data both ways, at once and after waiting, in pieces.
        seen.append(await _outcome(a.send_all, b"abc"))
        seen.append(await _outcome(b.receive_some, 10))
        await b.send_all(b"xyz")
        seen.append(await _outcome(a.receive_some, 2))
        seen.append(await _outcome(a.receive_some, 2))  # emptied the socket
        async with tether.open_nursery() as nursery:
            nursery.start_soon(b.send_all, b"later")
            seen.append(await _outcome(a.receive_some, 10))  # waits
        seen.append(await _outcome(a.send_all, bytearray(b"ba")))
        seen.append(await _outcome(a.send_all, memoryview(b"mv")))
        seen.append(await _outcome(a.send_all, b""))
        seen.append(await _outcome(b.receive_some, 10))

        # A cancelled receive takes nothing, before or while waiting.
        with tether.CancelScope() as scope:
            scope.cancel()
            seen.append(await _outcome(a.receive_some, 10))
        with tether.move_on_after(1):
            seen.append(await _outcome(a.receive_some, 10))
        await b.send_all(b"kept")
        seen.append(await _outcome(a.receive_some, 10))

        # More than the buffers hold: sent in several pieces.
        big = bytes(range(256)) * 16384
        received = bytearray()

        async def receive_big():
            while len(received) < len(big):
                received.extend(await b.receive_some())

        async with tether.open_nursery() as nursery:
            nursery.start_soon(receive_big)
            seen.append(await _outcome(a.send_all, big))
        seen.append(f"big transfer intact: {received == big}")

        # The ends of the stream.
        seen.append(await _outcome(a.send_eof))
        seen.append(await _outcome(a.send_all, b"after eof"))
        seen.append(await _outcome(b.receive_some, 10))
        await b.send_all(b"still open this way")
        seen.append(await _outcome(a.receive_some, 100))
        await b.aclose()
        seen.append(await _outcome(a.receive_some, 10))
        await a.aclose()
        seen.append(await _outcome(a.receive_some, 10))
        seen.append(await _outcome(a.send_all, b"x"))
    return seen


async def test_the_fast_paths_and_the_general_path_agree(autojump_clock):
    fast = await _transcript("fast")
    assert fast == await _transcript("general")
    assert fast == [
        "None",
        "b'abc'",
        "b'xy'",
        "b'z'",
        "b'later'",
        "None",
        "None",
        "None",
        "b'bamv'",
        "Cancelled",
        "Cancelled",
        "b'kept'",
        "None",
        "big transfer intact: True",
        "None",
        "ClosedResourceError",
        "b''",
        "b'still open this way'",
        "b''",
        "ClosedResourceError",
        "ClosedResourceError",
    ]


@pytest.mark.parametrize("path", ["fast", "general"])
async def test_both_paths_break_and_close_the_same_way(path, autojump_clock):
    a, b = stream_pair_on(path)
    await b.aclose()
    async with a:
        with assert_checkpoints(), pytest.raises(tether.BrokenResourceError) as info:
            await a.send_all(b"to nobody")
        assert isinstance(info.value.__cause__, OSError)
    a, b = stream_pair_on(path)
    await _fill(a)

    async def expect_closed(operation, *args):
        with pytest.raises(tether.ClosedResourceError):
            await operation(*args)

    async with b, tether.open_nursery() as nursery:
        nursery.start_soon(expect_closed, a.send_all, b"blocked")
        nursery.start_soon(expect_closed, a.receive_some)
        await wait_all_tasks_blocked()
        await a.aclose()


async def test_the_general_path_passes_the_stream_conformance_checks():
    async def make_pair():
        return stream_pair_on("general")

    async def make_clogged_pair():
        left, right = await make_pair()
        await _fill(left)
        await _fill(right)
        return left, right

    await check_half_closeable_stream(make_pair, make_clogged_pair)
