"""The one door into the kernel (docs/design.md, "The layers"): the asyncio
face and the testing tools come in through `tether.lowlevel` and the public
API, never through `tether._core` or a kernel object's private fields."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tether import lowlevel

SRC = Path(__file__).resolve().parents[1] / "src" / "tether"

#: The kernel's private task fields (`Task` keeps them in these slots) and
#: methods.
PRIVATE_TASK_FIELDS = {name for name in lowlevel.TASK_SLOTS if name.startswith("_")} | {
    name for name in vars(lowlevel.Task) if name.startswith("_") and not name.startswith("__")
}


def _modules(folder: str) -> list[Path]:
    return sorted((SRC / folder).glob("*.py"))


def _imports_of_the_kernel(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if (node.level and module.split(".")[0] == "_core") or module.startswith(
                "tether._core"
            ):
                found.append(f"line {node.lineno}: from {'.' * node.level}{module} import ...")
        elif isinstance(node, ast.Import):
            found += [
                f"line {node.lineno}: import {alias.name}"
                for alias in node.names
                if alias.name.startswith("tether._core")
            ]
    return found


@pytest.mark.parametrize("path", _modules("aio") + _modules("testing"), ids=lambda p: p.name)
def test_faces_and_tools_do_not_import_the_kernel(path):
    assert _imports_of_the_kernel(path) == []


@pytest.mark.parametrize("path", _modules("aio") + _modules("testing"), ids=lambda p: p.name)
def test_faces_and_tools_do_not_touch_the_kernels_private_task_fields(path):
    touched = [
        f"line {node.lineno}: .{node.attr}"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute) and node.attr in PRIVATE_TASK_FIELDS
    ]
    assert touched == []


def test_the_check_finds_a_reach_into_the_kernel(tmp_path):
    # (So that the two tests above can fail.)
    module = tmp_path / "reaching.py"
    module.write_text("from .._core import Cancelled\nimport tether._core\n")
    assert len(_imports_of_the_kernel(module)) == 2
    assert {"_spawn_index", "_code_coroutine"} <= PRIVATE_TASK_FIELDS
