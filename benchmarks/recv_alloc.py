"""Why tether.aio's transports read into a buffer: the cost of one small read.

    python3 benchmarks/recv_alloc.py [SIZE]

Sends SIZE bytes (default 64) over a socketpair and reads them back 100,000
times, two ways: ``recv(256 KiB)`` (what asyncio's selector transports do:
a new 256 KiB bytes object per read, shrunk to what arrived) and
``recv_into`` a buffer made once, then a copy of the bytes that came (what
tether.aio's transports do). Each is timed in this fresh process first, then
again after freeing one large block, which raises glibc's mmap threshold:
before that, each 256 KiB allocation is an ``mmap`` (plus ``mremap`` and
``munmap`` and a page fault), so the first way's cost depends on what the
process happened to allocate earlier. Prints nanoseconds per read.
"""

from __future__ import annotations

import socket
import sys
from time import perf_counter

READS = 100_000
MAX_SIZE = 256 * 1024


def main() -> None:
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 64
    sender, receiver = socket.socketpair()
    message = b"x" * size
    view = memoryview(bytearray(MAX_SIZE))

    def by_recv() -> float:
        start = perf_counter()
        for _ in range(READS):
            sender.send(message)
            receiver.recv(MAX_SIZE)
        return (perf_counter() - start) / READS * 1e9

    def by_recv_into() -> float:
        recv_into = receiver.recv_into
        start = perf_counter()
        for _ in range(READS):
            sender.send(message)
            view[: recv_into(view)].tobytes()
        return (perf_counter() - start) / READS * 1e9

    print(f"{size}-byte reads, ns per read")
    row = "  {:<15} recv(256 KiB) {:8.0f}   recv_into + copy {:8.0f}"
    print(row.format("fresh process:", by_recv(), by_recv_into()))
    large = bytes(2 * MAX_SIZE)
    del large  # freeing an mmap'd block raises glibc's mmap threshold
    print(row.format("after one free:", by_recv(), by_recv_into()))
    sender.close()
    receiver.close()


if __name__ == "__main__":
    main()
