"""docs/examples/echo_server.py runs as documented: the one-command demo,
and a standalone server driven by the example's client, shut down with
Ctrl-C."""

import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "echo_server.py"

pytestmark = [
    pytest.mark.timeout(30),
    pytest.mark.skipif(sys.platform == "win32", reason="sends SIGINT"),
]


def test_demo_runs_server_and_clients_and_exits():
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), "--demo"],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for expected in [
        'carol: got "echo: I\'ll stay a while"',
        "alice: got 'echo: hello'",
        "alice: got 'echo: how are you?'",
        "alice: got 'echo: bye'",
        "bob: got 'idle for 0.5s, bye'",
        "bob: then None (end of stream)",
        "carol: got 'server shutting down'",
        "server: stopped after 3 connections",
    ]:
        assert expected in lines, result.stdout
    assert lines[-1] == "demo: done"
    assert result.stderr == ""


def test_standalone_server_echoes_and_says_goodbye_on_ctrl_c():
    server = subprocess.Popen(
        [sys.executable, str(EXAMPLE), "--port", "0", "--idle-timeout", "20"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        first_line = server.stdout.readline()
        assert first_line.startswith("server: listening on 127.0.0.1:")
        port = first_line.rsplit(":", 1)[1].strip()
        client = subprocess.run(
            [sys.executable, str(EXAMPLE), "--connect", port, "one", "two"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        assert client.stdout.splitlines() == ["echo: one", "echo: two"]
        with socket.create_connection(("127.0.0.1", int(port)), timeout=10) as lingering:
            lingering.sendall(b"still here\n")
            assert lingering.recv(100) == b"echo: still here\n"
            server.send_signal(signal.SIGINT)
            received = b""
            while chunk := lingering.recv(100):
                received += chunk
            assert received == b"server shutting down\n"
        output, _ = server.communicate(timeout=10)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert server.returncode == 0
    assert output.splitlines()[-1] == "server: stopped after 2 connections"
