"""tether.socket name resolution: getaddrinfo, getnameinfo, getprotobyname,
custom resolvers. No network: names are numeric, ``localhost`` (from the
hosts file), or answered by a fake resolver."""

import socket as stdlib_socket
import threading

import pytest

import tether
from tether import socket as tsocket
from tether._socket_names import resolve_address
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


# ---- resolve_address: what socket methods do to an address before the call


async def _resolved(address, family=tsocket.AF_INET, *, local=False, v6only=True):
    return await resolve_address(
        address,
        family=family,
        type=tsocket.SOCK_DGRAM,
        proto=0,
        ipv6_v6only=v6only,
        local=local,
    )


async def test_numeric_addresses_come_back_as_given():
    assert await _resolved(("10.1.2.3", 53)) == ("10.1.2.3", 53)
    assert await _resolved(("1::2", 53), tsocket.AF_INET6) == ("1::2", 53)


async def test_the_stdlib_spellings_of_any_loopback_and_broadcast():
    assert await _resolved(("", 7), local=True) == ("0.0.0.0", 7)
    assert await _resolved(("", 7), local=False) == ("127.0.0.1", 7)
    assert await _resolved((None, 7), local=True) == ("0.0.0.0", 7)
    assert await _resolved(("<broadcast>", 7)) == ("255.255.255.255", 7)
    assert await _resolved(("127.0.0.1", "7")) == ("127.0.0.1", 7)


async def test_ipv6_keeps_the_flowinfo_and_scope_id_it_was_given():
    for given, expected in [
        (("1::2", "80"), ("1::2", 80, 0, 0)),
        (("1::2", "80", 3), ("1::2", 80, 3, 0)),
        (("1::2", "80", 3, 4), ("1::2", 80, 3, 4)),
    ]:
        assert await _resolved(given, tsocket.AF_INET6) == expected


async def test_a_dual_stack_socket_reaches_ipv4_hosts_as_mapped_addresses():
    mapped = await _resolved(("1.2.3.4", "80"), tsocket.AF_INET6, v6only=False)
    assert mapped[:2] == ("::ffff:1.2.3.4", 80)


async def test_ip_addresses_of_the_wrong_shape_are_refused():
    for address in ["1.2.3.4", ("1.2.3.4",), ("1.2.3.4", 80, 0)]:
        with pytest.raises(ValueError, match=r"\(host, port\) tuple"):
            await _resolved(address)
    for address in [("1::2",), ("1::2", 80, 0, 0, 0)]:
        with pytest.raises(ValueError, match=r"\(host, port, \[flowinfo, \[scopeid\]\]\) tuple"):
            await _resolved(address, tsocket.AF_INET6)


async def test_other_families_pass_through_and_unix_paths_become_str_or_bytes(tmp_path):
    odd = object()
    assert await _resolved(odd, family=-12345) is odd
    assert await _resolved(tmp_path, tsocket.AF_UNIX) == str(tmp_path)
    assert await _resolved(b"/x", tsocket.AF_UNIX) == b"/x"
    with pytest.raises(TypeError, match="AF_UNIX address is a path"):
        await _resolved(("x", 1), tsocket.AF_UNIX)
