"""tether.testing.open_stream_to_socket_listener."""

import socket as stdlib_socket

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
