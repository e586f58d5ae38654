"""tether.testing.open_stream_to_socket_listener."""

import socket as stdlib_socket
import types

import pytest

import tether
from tether import socket as tsocket
from tether.testing import open_stream_to_socket_listener

pytestmark = [pytest.mark.tether, pytest.mark.timeout(20)]


async def listening(family, address):
    sock = tsocket.socket(family)
    await sock.bind(address)
    sock.listen()
    return tether.SocketListener(sock)


async def check_round_trip(listener):
    async with listener, await open_stream_to_socket_listener(listener) as client:
        async with await listener.accept() as server:
            await client.send_all(b"ping")
            assert await server.receive_some() == b"ping"


async def test_connects_to_a_listener_on_a_chosen_port():
    await check_round_trip(await listening(tsocket.AF_INET, ("127.0.0.1", 0)))


async def test_a_wildcard_listener_is_reached_through_loopback():
    listener = await listening(tsocket.AF_INET, ("0.0.0.0", 0))
    await check_round_trip(listener)


@pytest.mark.skipif(not hasattr(stdlib_socket, "AF_UNIX"), reason="no AF_UNIX")
async def test_connects_to_a_unix_listener(tmp_path):
    await check_round_trip(await listening(tsocket.AF_UNIX, str(tmp_path / "sock")))


@pytest.mark.skipif(not stdlib_socket.has_ipv6, reason="no IPv6")
async def test_an_ipv6_wildcard_listener_is_reached_through_loopback():
    try:
        listener = await listening(tsocket.AF_INET6, ("::", 0))
    except OSError:
        pytest.skip("cannot bind IPv6 here")
    await check_round_trip(listener)


async def test_a_refused_connect_closes_its_socket():
    made = []

    class Factory(tether.abc.SocketFactory):
        def socket(self, family=tsocket.AF_INET, type=tsocket.SOCK_STREAM, proto=0):
            made.append(tsocket.from_stdlib_socket(stdlib_socket.socket(family, type, proto)))
            return made[-1]

    # Bound but not listening, so a connect is refused. (A SocketListener
    # insists on a listening socket; the function reads only `.socket`.)
    with tsocket.socket() as bound:
        await bound.bind(("127.0.0.1", 0))
        tsocket.set_custom_socket_factory(Factory())
        with pytest.raises(ConnectionRefusedError):
            await open_stream_to_socket_listener(types.SimpleNamespace(socket=bound))
    assert [sock.fileno() for sock in made] == [-1]
