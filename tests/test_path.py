"""tether.Path: pure operations stay sync, file-system calls are async."""

import os
import pathlib
import pickle

import pytest

import tether
from tether.testing import assert_checkpoints

pytestmark = [pytest.mark.tether, pytest.mark.timeout(20)]


def test_path_builds_the_platform_class():
    path = tether.Path("a", "b")
    expected = tether.WindowsPath if os.name == "nt" else tether.PosixPath
    assert type(path) is expected
    assert isinstance(path, tether.Path)
    assert isinstance(path, pathlib.PurePath)
    assert repr(tether.Path(".")) == "tether.Path('.')"
    assert str(path) == os.path.join("a", "b")
    assert os.fspath(path) == os.path.join("a", "b")


def test_pure_operations_are_sync_and_keep_the_class():
    path = tether.Path("/srv/data/report.txt")
    for derived in (
        path.parent,
        path.with_name("other.txt"),
        path.with_suffix(".csv"),
        path / "x",
        "prefix" / tether.Path("x"),
        path.joinpath("y"),
        tether.Path("/srv") / pathlib.PurePath("z"),
    ):
        assert isinstance(derived, tether.Path), derived
    assert path.name == "report.txt"
    assert path.suffix == ".txt"
    assert path.relative_to("/srv") == tether.Path("data/report.txt")
    assert path.as_uri() == "file:///srv/data/report.txt"


def test_comparisons_and_hashes_match_pathlib():
    assert tether.Path("a") == pathlib.Path("a")
    assert pathlib.Path("a") == tether.Path("a")
    assert tether.Path("a") < pathlib.Path("b")
    assert hash(tether.Path("a/b")) == hash(pathlib.PurePath("a/b"))
    assert tether.Path("a") != "a"
    assert {tether.Path("a"): 1}[pathlib.Path("a")] == 1


def test_a_path_survives_pickling():
    path = tether.Path("some", "where")
    copy = pickle.loads(pickle.dumps(path))
    assert copy == path
    assert type(copy) is type(path)


def test_a_non_path_argument_is_refused():
    with pytest.raises(TypeError):
        tether.Path(1)


async def test_file_system_methods_are_async(tmp_path):
    folder = tether.Path(tmp_path) / "folder"
    assert not await folder.exists()
    await folder.mkdir()
    assert await folder.is_dir()
    note = folder / "note.txt"
    await note.write_text("hello")
    assert await note.read_text() == "hello"
    await note.write_bytes(b"bytes")
    assert await note.read_bytes() == b"bytes"
    assert (await note.stat()).st_size == 5
    assert await note.is_file()
    assert await note.samefile(pathlib.Path(tmp_path, "folder", "note.txt"))


async def test_methods_returning_paths_return_tether_paths(tmp_path):
    folder = tether.Path(tmp_path)
    await (folder / "a.txt").write_text("")
    await (folder / "sub").mkdir()
    await (folder / "sub" / "b.txt").write_text("")

    moved = await (folder / "a.txt").rename(folder / "c.txt")
    assert isinstance(moved, tether.Path)
    assert moved == folder / "c.txt"

    resolved = await tether.Path(".").resolve()
    assert isinstance(resolved, tether.Path)
    assert resolved == pathlib.Path(".").resolve()
    assert isinstance(await tether.Path("x").absolute(), tether.Path)

    listing = await folder.iterdir()
    assert isinstance(listing, list)
    assert all(isinstance(entry, tether.Path) for entry in listing)
    assert sorted(entry.name for entry in listing) == ["c.txt", "sub"]

    assert sorted(p.name for p in await folder.glob("*.txt")) == ["c.txt"]
    assert sorted(p.name for p in await folder.rglob("*.txt")) == ["b.txt", "c.txt"]


async def test_symlinks_and_removal(tmp_path):
    target = tether.Path(tmp_path) / "target"
    await target.touch()
    link = tether.Path(tmp_path) / "link"
    await link.symlink_to(target)
    assert await link.is_symlink()
    assert await link.readlink() == target
    await link.unlink()
    assert not await link.exists()
    await target.unlink()
    folder = tether.Path(tmp_path) / "empty"
    await folder.mkdir()
    await folder.rmdir()
    assert not await folder.exists()


async def test_open_returns_an_async_file(tmp_path):
    path = tether.Path(tmp_path) / "opened.txt"
    async with await path.open("w") as f:
        await f.write("via Path.open")
    assert f.closed
    async with await tether.open_file(path) as f:
        assert f.name == os.fspath(path)
        assert await f.read() == "via Path.open"


async def test_cwd_and_home_are_async_classmethods():
    assert await tether.Path.cwd() == pathlib.Path.cwd()
    assert isinstance(await tether.Path.cwd(), tether.Path)
    assert await tether.Path.home() == pathlib.Path.home()


async def test_each_file_system_call_is_a_checkpoint(tmp_path):
    with assert_checkpoints():
        await tether.Path(tmp_path).exists()


async def test_a_cancelled_call_does_not_touch_the_file_system(tmp_path):
    folder = tether.Path(tmp_path) / "never"
    with tether.CancelScope() as scope:
        scope.cancel()
        await folder.mkdir()
    assert scope.cancelled_caught
    assert not os.path.exists(folder)


def test_async_methods_say_what_they_wrap():
    method = tether.Path.resolve
    assert method.__name__ == "resolve"
    assert method.__qualname__ == "Path.resolve"
    assert "pathlib.Path.resolve" in method.__doc__
    assert "checkpoint" in method.__doc__
    assert "list" in tether.Path.glob.__doc__


def _pathlib_additions() -> set[str]:
    """The public calls `pathlib.Path` adds to `pathlib.PurePath`."""
    return {
        name
        for name in dir(pathlib.Path)
        if not name.startswith("_")
        and not hasattr(pathlib.PurePath, name)
        and callable(getattr(pathlib.Path, name))
    }


def _names_declared_for_type_checkers() -> set[str]:
    """The names `tether._path` declares for mypy inside ``Path``'s
    ``if TYPE_CHECKING:`` block (every version branch included)."""
    import ast
    import inspect

    import tether._path

    tree = ast.parse(inspect.getsource(tether._path))
    path_class = next(
        node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "Path"
    )
    blocks = [
        node
        for node in path_class.body
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING"
    ]
    assert blocks, "Path has no TYPE_CHECKING block"
    declared = set()
    for block in blocks:
        for node in ast.walk(block):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                declared.add(node.name)
            elif isinstance(node, ast.Assign):
                declared.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return declared


def test_every_pathlib_call_that_needs_the_os_is_async_on_tether_paths():
    import inspect

    needs_os = _pathlib_additions() - {"from_uri", "as_uri"}  # these only parse or format text
    assert {"stat", "exists", "iterdir", "cwd", "home", "open"} <= needs_os
    for name in needs_os:
        assert inspect.iscoroutinefunction(getattr(tether.Path, name)), name


def test_type_checker_declarations_match_the_methods_made_at_import():
    declared = _names_declared_for_type_checkers()
    made = _pathlib_additions() - {"open"}  # written by hand, not declared for mypy
    assert made <= declared, f"not declared for mypy: {sorted(made - declared)}"
    # What is declared but not made must be another Python version's.
    for name in declared - made:
        assert not hasattr(pathlib.Path, name), name


@pytest.mark.skipif(not hasattr(pathlib.Path, "walk"), reason="Path.walk is new in 3.12")
async def test_walk_returns_a_list_of_steps_with_tether_paths(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "f.txt").write_text("x")
    steps = await tether.Path(tmp_path).walk()
    assert isinstance(steps, list)
    top, dirnames, filenames = steps[0]
    assert isinstance(top, tether.Path)
    assert top == tmp_path
    assert dirnames == ["sub"]
    assert filenames == []
    assert steps[1][2] == ["f.txt"]
