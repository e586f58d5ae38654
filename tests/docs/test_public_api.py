"""The rule the documentation build enforces: every public name of tether
has a docstring (docs/_ext/public_api.py; the Sphinx build reports the same
list as warnings, which fail it)."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "docs" / "_ext"))

import public_api  # found through the path set above


def test_every_public_name_of_tether_has_a_docstring() -> None:
    assert public_api.missing_docstrings() == []


def test_the_public_modules_are_found_from_the_package() -> None:
    modules = public_api.public_modules()
    for expected in ("tether", "tether.lowlevel", "tether.testing", "tether.abc", "tether.aio"):
        assert expected in modules
    assert "tether.aio.subprocess" in modules
    assert not [name for name in modules if "._" in name]


def test_reexports_name_their_origin() -> None:
    entries = {entry.name: entry for entry in public_api.entries("tether.aio")}
    assert entries["Lock"].origin == "asyncio.Lock"
    assert entries["Future"].origin == "asyncio.Future"
    assert entries["TimeoutError"].origin == "TimeoutError"
    assert entries["Task"].origin is None  # tether's own


def test_constants_are_documented_where_they_are_assigned() -> None:
    entries = {entry.name: entry for entry in public_api.entries("tether")}
    ignored = entries["TASK_STATUS_IGNORED"]
    assert ignored.kind == public_api.DATA
    assert ignored.doc is not None and "task_status" in ignored.doc


@pytest.fixture
def fake_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A package with a public module added later (``socket``), a private
    one, and names with and without docstrings."""
    package = tmp_path / "fakepkg"
    package.mkdir()
    (package / "__init__.py").write_text(
        textwrap.dedent(
            '''
            """A package."""
            from asyncio import Lock
            from ._impl import LIMIT, UNDOCUMENTED_LIMIT, Documented, documented, undocumented

            __all__ = [
                "LIMIT", "UNDOCUMENTED_LIMIT", "Documented", "Lock", "documented", "undocumented",
            ]
            '''
        )
    )
    (package / "_impl.py").write_text(
        textwrap.dedent(
            '''
            #: How many at most.
            LIMIT = 3
            UNDOCUMENTED_LIMIT = 4

            def documented():
                """Does something."""

            def undocumented():
                pass

            class Base:
                def inherited(self):
                    """Documented in the base class."""

            class Documented(Base):
                """A class."""

                def inherited(self):
                    pass

                def method(self):
                    pass

                def _private(self):
                    pass
            '''
        )
    )
    (package / "socket.py").write_text(
        textwrap.dedent(
            '''
            """Sockets."""
            import socket as _stdlib_socket

            # Constants copied in a loop, as trio.socket does.
            for _name in ("AF_INET", "SOCK_STREAM"):
                globals()[_name] = getattr(_stdlib_socket, _name)

            def connect():
                pass

            __all__ = ["AF_INET", "SOCK_STREAM", "connect"]
            '''
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(public_api, "ROOT_PACKAGE", "fakepkg")
    yield "fakepkg"
    for name in [name for name in sys.modules if name.startswith("fakepkg")]:
        del sys.modules[name]
    public_api.clear_caches()  # they are keyed by module name


def test_constants_copied_from_the_standard_library_are_reexports(fake_package: str) -> None:
    entries = {entry.name: entry for entry in public_api.entries("fakepkg.socket")}
    assert entries["AF_INET"].origin == "socket.AF_INET"
    assert entries["connect"].origin is None


def test_a_missing_docstring_is_reported_by_name(fake_package: str) -> None:
    assert public_api.public_modules(fake_package) == ["fakepkg", "fakepkg.socket"]
    problems = public_api.missing_docstrings(public_api.public_modules(fake_package))
    reported = sorted(problem.split(" ")[0] for problem in problems)
    assert reported == [
        "fakepkg.Documented.method",
        "fakepkg.UNDOCUMENTED_LIMIT",
        "fakepkg.socket.connect",
        "fakepkg.undocumented",
    ]
