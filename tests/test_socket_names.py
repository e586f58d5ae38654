"""tether.socket name resolution: getaddrinfo, getnameinfo, getprotobyname,
custom resolvers. No network: names are numeric, ``localhost`` (from the
hosts file), or answered by a fake resolver."""

import socket as stdlib_socket
import threading

import pytest

import tether
from tether import socket as tsocket
from tether.testing import assert_checkpoints, wait_all_tasks_blocked

pytestmark = [pytest.mark.tether, pytest.mark.timeout(20)]


class RecordingResolver(tether.abc.HostnameResolver):
    def __init__(self):
        self.calls = []

    async def getaddrinfo(self, host, port, family=0, type=0, proto=0, flags=0):
        self.calls.append(("getaddrinfo", host, port, family, type, proto, flags))
        return [(tsocket.AF_INET, tsocket.SOCK_STREAM, 6, "", ("10.0.0.1", port))]

    async def getnameinfo(self, sockaddr, flags):
        self.calls.append(("getnameinfo", sockaddr, flags))
        return ("example.test", "http")


async def test_numeric_hosts_resolve_at_once_without_the_resolver():
    resolver = RecordingResolver()
    tsocket.set_custom_hostname_resolver(resolver)
    with assert_checkpoints():
        answers = await tsocket.getaddrinfo("127.0.0.1", 80, type=tsocket.SOCK_STREAM)
    assert [entry[4] for entry in answers] == [("127.0.0.1", 80)]
    with assert_checkpoints(), pytest.raises(tsocket.gaierror):
        await tsocket.getaddrinfo("127.0.0.1", 80, type=-1)
    assert resolver.calls == []


async def test_names_reach_the_custom_resolver_idna_2008_encoded():
    resolver = RecordingResolver()
    tsocket.set_custom_hostname_resolver(resolver)
    await tsocket.getaddrinfo("faß.de", 80)
    await tsocket.getaddrinfo("Bücher.example", "http", tsocket.AF_INET, 0, 0, tsocket.AI_CANONNAME)
    await tsocket.getaddrinfo(b"plain.example", 80)
    assert resolver.calls == [
        # IDNA 2003 (the stdlib codec) would give b"fass.de".
        ("getaddrinfo", b"xn--fa-hia.de", 80, 0, 0, 0, 0),
        ("getaddrinfo", b"xn--bcher-kva.example", "http", tsocket.AF_INET, 0, 0, 2),
        ("getaddrinfo", b"plain.example", 80, 0, 0, 0, 0),
    ]
    assert await tsocket.getnameinfo(("10.0.0.1", 80), 0) == ("example.test", "http")
    assert tsocket.set_custom_hostname_resolver(None) is resolver


async def test_system_resolver_answers_localhost():
    answers = await tsocket.getaddrinfo("localhost", 80, tsocket.AF_INET, tsocket.SOCK_STREAM)
    assert ("127.0.0.1", 80) in [entry[4] for entry in answers]
    numeric = tsocket.NI_NUMERICHOST | tsocket.NI_NUMERICSERV
    with assert_checkpoints():
        assert await tsocket.getnameinfo(("127.0.0.1", 80), numeric) == ("127.0.0.1", "80")
    with assert_checkpoints():
        assert await tsocket.getprotobyname("tcp") == 6


async def test_a_slow_system_lookup_is_cancellable(monkeypatch):
    release = threading.Event()
    entered = threading.Event()

    def stuck_getaddrinfo(*args):
        entered.set()
        release.wait(10)
        raise stdlib_socket.gaierror(stdlib_socket.EAI_AGAIN, "too late")

    real = stdlib_socket.getaddrinfo

    def fake(host, port, family=0, type=0, proto=0, flags=0):
        if flags & stdlib_socket.AI_NUMERICHOST:
            return real(host, port, family, type, proto, flags)
        return stuck_getaddrinfo()

    monkeypatch.setattr(stdlib_socket, "getaddrinfo", fake)
    try:
        async with tether.open_nursery() as nursery:

            async def lookup():
                await tsocket.getaddrinfo("slow.example", 80)

            nursery.start_soon(lookup)
            await tether.to_thread.run_sync(entered.wait, 10)
            await wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
        assert nursery.cancel_scope.cancelled_caught
    finally:
        release.set()


async def test_resolver_is_per_run():
    tsocket.set_custom_hostname_resolver(RecordingResolver())

    def other_run():
        async def lookup():
            answers = await tsocket.getaddrinfo("localhost", 80, tsocket.AF_INET)
            return answers[0][4][0]

        return tether.run(lookup)

    assert await tether.to_thread.run_sync(other_run) == "127.0.0.1"


def test_resolver_hooks_need_a_run():
    with pytest.raises(RuntimeError):
        tsocket.set_custom_hostname_resolver(None)
