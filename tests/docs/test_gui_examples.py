"""The examples that open a window (docs/examples/*.py whose docstring says
"It needs a display") run here, under a virtual X display (``xvfb-run``,
from Debian's ``xvfb`` package), with the arguments of their first
documented command, and must print what their docstring says. Without
tkinter or ``xvfb-run`` they are skipped, with the reason."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .test_examples import (
    NEEDS_A_DISPLAY,
    REPOSITORY,
    documented_arguments,
    documented_output,
    script_docstring,
)

GUI_SCRIPTS = [
    path
    for path in sorted((REPOSITORY / "docs" / "examples").glob("*.py"))
    if NEEDS_A_DISPLAY in path.read_text(encoding="utf-8")
]
#: Real seconds an example may take, X server start-up included.
GUI_EXAMPLE_TIMEOUT = 60


def test_there_is_a_gui_example() -> None:
    assert any(path.name == "guest_tk.py" for path in GUI_SCRIPTS)


@pytest.mark.parametrize("script", GUI_SCRIPTS, ids=lambda p: p.name)
def test_gui_example_under_a_virtual_display(script: Path) -> None:
    if importlib.util.find_spec("tkinter") is None:
        pytest.skip("tkinter is not installed for this Python")
    xvfb_run = shutil.which("xvfb-run")
    if xvfb_run is None:
        pytest.skip("xvfb-run not found (Debian: apt-get install xvfb), so no virtual display")
    docstring = script_docstring(script)
    completed = subprocess.run(
        [xvfb_run, "-a", sys.executable, str(script), *documented_arguments(script, docstring)],
        capture_output=True,
        text=True,
        timeout=GUI_EXAMPLE_TIMEOUT,
        check=False,
        cwd=REPOSITORY,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == documented_output(script, docstring)
