"""open_tcp_listeners and serve_tcp: real loopback listeners, and a fake
socket factory for the failure paths."""

import errno
import functools

import pytest

import tether
from tether import socket as tsocket
from tether.testing import open_stream_to_socket_listener

pytestmark = [pytest.mark.tether, pytest.mark.timeout(20)]


async def test_default_host_listens_on_the_wildcard_of_each_family():
    listeners = await tether.open_tcp_listeners(0)
    try:
        assert listeners
        for listener in listeners:
            assert listener.socket.getsockname()[0] in ("0.0.0.0", "::")
            if listener.socket.family == tsocket.AF_INET6:
                assert listener.socket.getsockopt(tsocket.IPPROTO_IPV6, tsocket.IPV6_V6ONLY)
        client = await open_stream_to_socket_listener(listeners[0])
        async with client, await listeners[0].accept() as server:
            await server.send_all(b"welcome")
            assert await client.receive_some() == b"welcome"
    finally:
        for listener in listeners:
            await listener.aclose()


async def test_a_specific_host_and_port():
    with tsocket.socket() as probe:
        await probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (listener,) = await tether.open_tcp_listeners(port, host="127.0.0.1")
    async with listener:
        assert listener.socket.getsockname() == ("127.0.0.1", port)


async def test_the_port_can_be_reused_at_once_after_closing():
    (first,) = await tether.open_tcp_listeners(0, host="127.0.0.1")
    address = first.socket.getsockname()
    client = await open_stream_to_socket_listener(first)
    server = await first.accept()
    await server.aclose()  # the server side now lingers in TIME_WAIT
    await first.aclose()
    (second,) = await tether.open_tcp_listeners(address[1], host="127.0.0.1")
    async with second, client:
        assert second.socket.getsockname() == address


async def test_arguments_are_checked():
    for port in (None, "80", b"80", 80.0):
        with pytest.raises(TypeError, match="port must be an int"):
            await tether.open_tcp_listeners(port, host="127.0.0.1")
    with pytest.raises(TypeError, match=r"backlog must be an int or None, not 1\.5"):
        await tether.open_tcp_listeners(0, host="127.0.0.1", backlog=1.5)


class FakeListeningSocket(tsocket.SocketType):
    def __init__(self, family, fail_listen):
        self._family = family
        self.fail_listen = fail_listen
        self.backlog = None
        self.closed = False

    family = property(lambda self: self._family)
    type = tsocket.SOCK_STREAM

    def setsockopt(self, level, optname, value, optlen=None):
        pass

    def getsockopt(self, level, optname, buflen=None):
        return 1

    async def bind(self, address):
        await tether.lowlevel.checkpoint()

    def listen(self, backlog=128):
        if self.fail_listen:
            raise OSError(errno.EADDRINUSE, "address in use")
        self.backlog = backlog

    def close(self):
        self.closed = True


class FakeFactory(tether.abc.SocketFactory, tether.abc.HostnameResolver):
    def __init__(self, families, *, unsupported=(), fail_listen_on=None):
        self.families = families
        self.unsupported = unsupported
        self.fail_listen_on = fail_listen_on
        self.sockets = []

    def socket(self, family=tsocket.AF_INET, type=tsocket.SOCK_STREAM, proto=0):
        if family in self.unsupported:
            raise OSError(errno.EAFNOSUPPORT, f"no {family.name} here")
        sock = FakeListeningSocket(family, len(self.sockets) == self.fail_listen_on)
        self.sockets.append(sock)
        return sock

    async def getaddrinfo(self, host, port, family=0, type=0, proto=0, flags=0):
        assert flags & tsocket.AI_PASSIVE
        wildcard = {tsocket.AF_INET: ("0.0.0.0", port), tsocket.AF_INET6: ("::", port, 0, 0)}
        return [(f, tsocket.SOCK_STREAM, 6, "", wildcard[f]) for f in self.families]

    async def getnameinfo(self, sockaddr, flags):
        raise NotImplementedError

    def install(self):
        tsocket.set_custom_socket_factory(self)
        tsocket.set_custom_hostname_resolver(self)
        return self


async def test_backlog_defaults_to_the_maximum_and_is_clamped():
    factory = FakeFactory([tsocket.AF_INET]).install()
    for given, used in [(None, 0xFFFF), (10**9, 0xFFFF), (5, 5)]:
        (listener,) = await tether.open_tcp_listeners(80, host="any.test", backlog=given)
        assert listener.socket.backlog == used
    assert len(factory.sockets) == 3


async def test_a_missing_family_is_skipped_if_another_works():
    FakeFactory([tsocket.AF_INET, tsocket.AF_INET6], unsupported=[tsocket.AF_INET6]).install()
    (listener,) = await tether.open_tcp_listeners(80, host="any.test")
    assert listener.socket.family == tsocket.AF_INET


async def test_no_supported_family_is_an_error_listing_each():
    families = [tsocket.AF_INET, tsocket.AF_INET6]
    FakeFactory(families, unsupported=families).install()
    with pytest.raises(
        OSError, match="This system doesn't support any of the address families"
    ) as info:
        await tether.open_tcp_listeners(80, host="any.test")
    assert info.value.errno == errno.EAFNOSUPPORT
    assert "'any.test' resolves to" in str(info.value)
    assert [str(e) for e in info.value.__cause__.exceptions] == [
        f"[Errno {errno.EAFNOSUPPORT}] no AF_INET here",
        f"[Errno {errno.EAFNOSUPPORT}] no AF_INET6 here",
    ]


async def test_a_failure_closes_every_socket_opened_so_far():
    factory = FakeFactory([tsocket.AF_INET] * 3, fail_listen_on=2).install()
    with pytest.raises(OSError, match="address in use"):
        await tether.open_tcp_listeners(80, host="many.test")
    assert [sock.closed for sock in factory.sockets] == [True, True, True]


async def test_serve_tcp_reports_its_listeners_and_serves_until_cancelled():
    async def handler(stream):
        await stream.send_all(b"hello from the server")

    async with tether.open_nursery() as nursery:
        serve = functools.partial(tether.serve_tcp, host="127.0.0.1")
        listeners = await nursery.start(serve, handler, 0)
        assert all(isinstance(listener, tether.SocketListener) for listener in listeners)
        async with await open_stream_to_socket_listener(listeners[0]) as client:
            assert await client.receive_some() == b"hello from the server"
            # The server closed its end after the handler returned.
            assert await client.receive_some() == b""
        nursery.cancel_scope.cancel()
    # serve_tcp owns its listeners: closed once it ends.
    assert listeners[0].socket.fileno() == -1


async def test_a_host_without_addresses_is_an_error_not_an_empty_list():
    FakeFactory([]).install()
    with pytest.raises(OSError, match=r"no addresses were found for nowhere\.test:80"):
        await tether.open_tcp_listeners(80, host="nowhere.test")
