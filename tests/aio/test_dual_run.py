"""Small asyncio programs run with asyncio and then on tether: with tether.aio
substituted for asyncio (``from tether import aio as asyncio``), and
unmodified on tether loops (``tether.aio.EventLoopPolicy``, so that the
standard library's own helpers run on the tether loop). The order of events,
results, exception types and messages and ``cancelled()`` flags they print
must be identical."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAMS_DIR = os.path.join(HERE, "programs")
PROGRAMS = sorted(name for name in os.listdir(PROGRAMS_DIR) if name.endswith(".py"))


def _run_all(mode: str) -> dict[str, dict[str, str]]:
    paths = [os.path.join(PROGRAMS_DIR, name) for name in PROGRAMS]
    done = subprocess.run(
        [sys.executable, os.path.join(HERE, "dual_run.py"), mode, *paths],
        capture_output=True,
        text=True,
        timeout=50,
        cwd=HERE,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def outputs() -> dict[str, dict[str, dict[str, str]]]:
    return {mode: _run_all(mode) for mode in ("asyncio", "tether", "policy")}


@pytest.mark.parametrize("mode", ["tether", "policy"])
@pytest.mark.parametrize("program", PROGRAMS)
def test_same_output_as_asyncio(outputs, program, mode):
    expected = outputs["asyncio"][program]
    got = outputs[mode][program]
    assert expected["outcome"] == "ok", f"the program itself fails under asyncio: {expected}"
    assert got["outcome"] == expected["outcome"]
    assert got["stdout"].splitlines() == expected["stdout"].splitlines()
