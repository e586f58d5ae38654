"""tether.abc: the stream, listener, resolver and socket-factory classes."""

import pytest

import tether
from tether.abc import (
    HalfCloseableStream,
    HostnameResolver,
    Listener,
    ReceiveStream,
    SendStream,
    SocketFactory,
    Stream,
)


@pytest.mark.parametrize(
    "cls",
    [
        SendStream,
        ReceiveStream,
        Stream,
        HalfCloseableStream,
        Listener,
        HostnameResolver,
        SocketFactory,
    ],
)
def test_abstract_classes_cannot_be_instantiated(cls: type) -> None:
    with pytest.raises(TypeError, match="abstract"):
        cls()


def test_stream_hierarchy() -> None:
    assert issubclass(Stream, SendStream)
    assert issubclass(Stream, ReceiveStream)
    assert issubclass(HalfCloseableStream, Stream)
    assert issubclass(Stream, tether.abc.AsyncResource)


class _ChunkStream(ReceiveStream):
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.closed = False

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        await tether.lowlevel.checkpoint()
        return self.chunks.pop(0) if self.chunks else b""

    async def aclose(self) -> None:
        self.closed = True


def test_receive_stream_iterates_until_end_of_stream() -> None:
    async def main() -> list[bytes]:
        stream = _ChunkStream([b"ab", b"c"])
        async with stream:
            got = [chunk async for chunk in stream]
        assert stream.closed
        return got

    assert tether.run(main) == [b"ab", b"c"]
