"""Transports read into one buffer per loop and hand protocols copies: each
chunk a protocol receives is its own `bytes`, unchanged by later reads."""

from __future__ import annotations

import os
import socket

from tether import aio


class Collecting(aio.Protocol):
    """Keeps every chunk it is given, and wakes `arrived` after each."""

    def __init__(self) -> None:
        self.chunks: list[object] = []
        self.arrived = aio.Event()
        self.transport: aio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data) -> None:
        self.chunks.append(data)
        self.arrived.set()

    async def next_chunk(self) -> None:
        await self.arrived.wait()
        self.arrived.clear()


async def _receive_each(protocol: Collecting, sender: socket.socket, payloads) -> None:
    for payload in payloads:
        before = len(protocol.chunks)
        sender.send(payload)
        while sum(map(len, protocol.chunks[before:])) < len(payload):  # type: ignore[arg-type]
            await protocol.next_chunk()


def test_socket_chunks_are_separate_bytes():
    payloads = [b"first", b"SECOND-LONGER", b"3" * 70_000]

    async def main():
        loop = aio.get_running_loop()
        ours, theirs = socket.socketpair()
        transport, protocol = await loop.connect_accepted_socket(Collecting, ours)
        await _receive_each(protocol, theirs, payloads)
        transport.close()
        theirs.close()
        return protocol.chunks

    chunks = aio.run(main())
    assert all(type(chunk) is bytes for chunk in chunks)
    # The first read's bytes were not overwritten by the later, longer ones.
    assert chunks[0] == b"first"
    assert b"".join(chunks) == b"".join(payloads)


def test_socket_transport_honours_max_size():
    async def main(max_size):
        loop = aio.get_running_loop()
        ours, theirs = socket.socketpair()
        transport, protocol = await loop.connect_accepted_socket(Collecting, ours)
        transport.max_size = max_size
        await _receive_each(protocol, theirs, [b"0123456789" * 3])
        transport.close()
        theirs.close()
        return protocol.chunks

    small = aio.run(main(4))
    assert max(map(len, small)) <= 4
    assert b"".join(small) == b"0123456789" * 3
    # Larger than the loop's buffer: read directly, still correct.
    large = aio.run(main(1 << 20))
    assert b"".join(large) == b"0123456789" * 3


def test_datagrams_are_separate_bytes():
    class Datagrams(aio.DatagramProtocol):
        def __init__(self) -> None:
            self.received: list[tuple[object, object]] = []
            self.arrived = aio.Event()

        def datagram_received(self, data, addr) -> None:
            self.received.append((data, addr))
            self.arrived.set()

    async def main():
        loop = aio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(
            Datagrams, local_addr=("127.0.0.1", 0)
        )
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sender.bind(("127.0.0.1", 0))
        address = transport.get_extra_info("sockname")
        for payload in (b"one", b"two-longer", b"x" * 9_000):
            sender.sendto(payload, address)
            await protocol.arrived.wait()
            protocol.arrived.clear()
        source = sender.getsockname()
        sender.close()
        transport.close()
        return protocol.received, source

    received, source = aio.run(main())
    assert [data for data, _ in received] == [b"one", b"two-longer", b"x" * 9_000]
    assert all(type(data) is bytes and addr == source for data, addr in received)


def test_pipe_chunks_are_separate_bytes():
    async def main():
        loop = aio.get_running_loop()
        read_fd, write_fd = os.pipe()
        with open(read_fd, "rb", buffering=0) as pipe:
            transport, protocol = await loop.connect_read_pipe(Collecting, pipe)
            for payload in (b"alpha", b"BETA-LONGER"):
                before = len(protocol.chunks)
                os.write(write_fd, payload)
                while len(protocol.chunks) == before:
                    await protocol.next_chunk()
            os.close(write_fd)
            transport.close()
        return protocol.chunks

    chunks = aio.run(main())
    assert chunks == [b"alpha", b"BETA-LONGER"]
    assert all(type(chunk) is bytes for chunk in chunks)
