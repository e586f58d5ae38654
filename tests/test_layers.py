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


#: Private modules at the top of the package that belong to a face rather
#: than to the primitives or the I/O layer (`python -m tether`'s REPL).
FACE_MODULES = {"_repl.py"}


def _inner_layer_modules() -> list[Path]:
    """The primitives and the I/O layer (docs/design.md's table): every
    private module at the top of the package, except the faces'."""
    return [
        path
        for path in _modules(".")
        if path.name.startswith("_")
        and path.name not in {"__init__.py", "__main__.py"} | FACE_MODULES
    ]


def _imports_of_lowlevel(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            names = {alias.name for alias in node.names}
            if (
                (node.level == 1 and module == "lowlevel")
                or module == "tether.lowlevel"
                or (node.level == 1 and not module and "lowlevel" in names)
                or (module == "tether" and "lowlevel" in names)
            ):
                found.append(f"line {node.lineno}: from {'.' * node.level}{module} import ...")
        elif isinstance(node, ast.Import):
            found += [
                f"line {node.lineno}: import {alias.name}"
                for alias in node.names
                if alias.name == "tether.lowlevel"
            ]
    return found


@pytest.mark.parametrize("path", _inner_layer_modules(), ids=lambda p: p.name)
def test_primitives_and_io_use_the_kernels_names_not_the_lowlevel_door(path):
    # `lowlevel` is the door for code outside the package's inner layers;
    # the layers inside import `._core`'s public names.
    assert _imports_of_lowlevel(path) == []


def test_the_check_finds_an_import_of_lowlevel(tmp_path):
    module = tmp_path / "door.py"
    module.write_text(
        "from .lowlevel import checkpoint\nfrom . import lowlevel\n"
        "from tether import lowlevel\nimport tether.lowlevel\nfrom tether.lowlevel import x\n"
    )
    assert len(_imports_of_lowlevel(module)) == 5
    assert SRC / "_socket.py" in _inner_layer_modules()
    assert SRC / "_repl.py" not in _inner_layer_modules()


def test_the_check_finds_a_reach_into_the_kernel(tmp_path):
    # (So that the two tests above can fail.)
    module = tmp_path / "reaching.py"
    module.write_text("from .._core import Cancelled\nimport tether._core\n")
    assert len(_imports_of_the_kernel(module)) == 2
    assert {"_spawn_index", "_code_coroutine"} <= PRIVATE_TASK_FIELDS
