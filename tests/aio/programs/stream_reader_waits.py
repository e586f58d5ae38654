"""StreamReader waits: woken by data, by EOF and by an error (also an
exception class, a StopIteration and a non-exception), cancelled while
waiting (nothing read is lost), two readers at once, and a reader fed over
a real connection."""

import asyncio


async def fed_by_callbacks():
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    loop.call_soon(reader.feed_data, b"hello ")
    loop.call_later(0.01, reader.feed_data, b"world\n")
    print("line", await reader.readline())
    loop.call_soon(reader.feed_data, b"abc")
    loop.call_soon(reader.feed_eof)
    try:
        await reader.readexactly(5)
    except asyncio.IncompleteReadError as exc:
        print("incomplete", exc.partial, exc.expected)
    print("at eof", reader.at_eof(), await reader.read())


async def woken_by_an_error():
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    loop.call_soon(reader.set_exception, ConnectionResetError("peer reset"))
    try:
        await reader.read(10)
    except ConnectionResetError as exc:
        print("read raised", repr(exc))
    print("exception", repr(reader.exception()))


async def odd_errors():
    # What a waiting read gets for errors a future treats specially (the
    # output differs between Python versions: 3.13 turns a StopIteration
    # into a RuntimeError where 3.11 refuses it).
    for error in (ConnectionResetError, StopIteration(), "not an exception"):
        reader = asyncio.StreamReader()
        task = asyncio.create_task(reader.read(1))
        await asyncio.sleep(0)
        try:
            reader.set_exception(error)
            print("set_exception accepted", repr(error))
        except TypeError as exc:
            print("set_exception refused", repr(error), "-", exc)
        await asyncio.sleep(0)
        if task.done():
            print("  the read raised", repr(task.exception()))
        else:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                print("  the read still waited; cancelled")


async def cancelled_while_waiting():
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    task = asyncio.create_task(reader.readexactly(4))
    await asyncio.sleep(0)
    reader.feed_data(b"ab")
    await asyncio.sleep(0)
    print("cancel", task.cancel("no more"))
    try:
        await task
    except asyncio.CancelledError as exc:
        print("cancelled", exc.args, task.cancelled())
    reader.feed_data(b"cd")
    print("kept", await reader.readexactly(4))

    task = asyncio.create_task(reader.read(3))
    await asyncio.sleep(0)
    reader.feed_data(b"xyz")
    print("cancel after data arrived", task.cancel())
    try:
        await task
    except asyncio.CancelledError:
        print("cancelled anyway", task.cancelled())
    print("the data stays", await reader.read(3))
    del loop


async def two_readers():
    reader = asyncio.StreamReader()
    first = asyncio.create_task(reader.read(1))
    await asyncio.sleep(0)
    try:
        await reader.read(1)
    except RuntimeError as exc:
        print("second reader:", exc)
    reader.feed_data(b"!")
    print("first got", await first)


async def over_a_connection():
    async def handle(reader, writer):
        data = await reader.readuntil(b".")
        writer.write(data.upper())
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    print("reader class is a StreamReader", isinstance(reader, asyncio.StreamReader))
    writer.write(b"ping.")
    print("reply", await reader.read(), "eof", reader.at_eof())
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()


async def main():
    for case in (
        fed_by_callbacks,
        woken_by_an_error,
        odd_errors,
        cancelled_while_waiting,
        two_readers,
        over_a_connection,
    ):
        print("--", case.__name__)
        await case()


asyncio.run(main())
