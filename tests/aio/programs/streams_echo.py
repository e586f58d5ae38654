"""TCP streams: server, client, readline, readexactly, errors."""

import asyncio


async def handle(reader, writer):
    peer = writer.get_extra_info("peername") is not None
    print("server: connection, peer known", peer)
    while True:
        line = await reader.readline()
        if not line:
            break
        print("server got", line)
        writer.write(line.upper())
        await writer.drain()
    print("server: client closed")
    writer.close()
    await writer.wait_closed()


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for word in (b"alpha\n", b"beta\n"):
            writer.write(word)
            await writer.drain()
            print("client got", await reader.readline())
        writer.write(b"1234567890\n")
        print("exactly", await reader.readexactly(5), await reader.readexactly(6))
        writer.write_eof()
        try:
            await reader.readexactly(10)
        except asyncio.IncompleteReadError as exc:
            print("IncompleteReadError", exc.partial, exc.expected)
        writer.close()
        await writer.wait_closed()
        await asyncio.sleep(0.01)
    print("server serving after close", server.is_serving())


asyncio.run(main())
