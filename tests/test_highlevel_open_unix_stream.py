"""open_unix_socket against real Unix domain sockets in a temporary folder."""

import socket as stdlib_socket

import pytest

import tether

pytestmark = [
    pytest.mark.tether,
    pytest.mark.timeout(20),
    pytest.mark.skipif(not hasattr(stdlib_socket, "AF_UNIX"), reason="no AF_UNIX"),
]


@pytest.mark.parametrize("as_type", [str, bytes, "path"])
async def test_connects_by_str_bytes_or_path(tmp_path, as_type):
    path = tmp_path / "server.sock"
    name = {str: str(path), bytes: bytes(path), "path": path}[as_type]
    with stdlib_socket.socket(stdlib_socket.AF_UNIX) as server:
        server.bind(str(path))
        server.listen()
        async with await tether.open_unix_socket(name) as stream:
            peer, _ = server.accept()
            with peer:
                await stream.send_all(b"request")
                assert peer.recv(100) == b"request"
                peer.sendall(b"response")
                assert await stream.receive_some() == b"response"


async def test_missing_socket_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="Error connecting to"):
        await tether.open_unix_socket(tmp_path / "nobody-here")


async def test_socket_file_nobody_listens_on(tmp_path):
    path = str(tmp_path / "bound-only.sock")
    with stdlib_socket.socket(stdlib_socket.AF_UNIX) as bound:
        bound.bind(path)
        with pytest.raises(ConnectionRefusedError):
            await tether.open_unix_socket(path)


@pytest.mark.parametrize("bad", [4, 4.5, None])
async def test_filename_must_be_a_path(bad):
    with pytest.raises(TypeError):
        await tether.open_unix_socket(bad)


class RecordingFactory(tether.abc.SocketFactory):
    def __init__(self):
        self.made = []

    def socket(self, family=stdlib_socket.AF_INET, type=stdlib_socket.SOCK_STREAM, proto=0):
        sock = tether.socket.from_stdlib_socket(stdlib_socket.socket(family, type, proto))
        self.made.append(sock)
        return sock


async def test_a_failed_connect_closes_its_socket_and_a_bad_path_makes_none(tmp_path):
    factory = RecordingFactory()
    tether.socket.set_custom_socket_factory(factory)
    with pytest.raises(FileNotFoundError):
        await tether.open_unix_socket(tmp_path / "nobody-here")
    assert len(factory.made) == 1
    assert factory.made[0].fileno() == -1  # closed
    with pytest.raises(TypeError):
        await tether.open_unix_socket(4)
    assert len(factory.made) == 1
