"""Every Python example in README.md and docs/*.md runs, so none can rot.

What a fenced block's info string asks for:

``python``
    A program. It is run as ``__main__`` and must not raise. ``tether.run``,
    ``tether.aio.run``, ``tether.aio.new_event_loop`` and
    ``tether.aio.EventLoopPolicy`` default to
    ``MockClock(autojump_threshold=0)``, so examples that sleep take no real
    time (and print what they would in real time). If the next block is
    ``text output``, the program's standard output must be exactly that.
``python file=NAME.py``
    The same, and the block is also saved as ``NAME.py`` for the page's
    ``python test`` blocks to import.
``python test``
    A pytest test module: it must collect at least one test, and every test
    must pass. All test blocks run in one pytest subprocess.
``python fragment``
    Deliberately incomplete code (names defined elsewhere, ``...`` for the
    rest) or code that shows an error: not run, but compiled, so it is at
    least valid Python (top-level ``await`` allowed).

Any other word after ``python`` is an error here, so a typo cannot make a
block skip silently. The examples in ``docs/examples/*.py`` run too, and
their output must match the "It prints:" section of their docstring. They
run with the arguments of the first ``python docs/examples/NAME.py ...``
command their docstring shows (none if it shows none). Those that say "It
needs a display" (GUI programs) run in test_gui_examples.py instead.
"""

from __future__ import annotations

import ast
import asyncio
import functools
import linecache
import os
import re
import runpy
import shlex
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import tether
import tether.aio
from tether.testing import MockClock

REPOSITORY = Path(__file__).resolve().parents[2]
PAGES = [REPOSITORY / "README.md", *sorted((REPOSITORY / "docs").glob("*.md"))]
#: What the docstring of an example that opens a window says: such examples
#: run in tests/docs/test_gui_examples.py, under a virtual display.
NEEDS_A_DISPLAY = "It needs a display"
EXAMPLE_SCRIPTS = [
    path
    for path in sorted((REPOSITORY / "docs" / "examples").glob("*.py"))
    if NEEDS_A_DISPLAY not in path.read_text(encoding="utf-8")
]

PROGRAM, TEST, FRAGMENT, OUTPUT = "program", "test", "fragment", "output"
#: Real seconds a page's pytest subprocess may take before it counts as hung.
PYTEST_SUBPROCESS_TIMEOUT = 120

FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


@dataclass
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    language: str
    words: list[str]
    code: str
    kind: str = ""
    file_name: str | None = None
    expected_output: str | None = None

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(REPOSITORY)}:{self.line}"


def fenced_blocks(page: Path, text: str | None = None) -> list[Block]:
    """The fenced code blocks of a Markdown page (or of ``text``, as if it
    were the page's), in order."""
    blocks = []
    if text is None:
        text = page.read_text(encoding="utf-8")
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        fence, indent = opening["fence"], opening["indent"]
        words = opening["info"].split()
        body = []
        index += 1
        while index < len(lines):
            closing = FENCE.match(lines[index])
            if closing and closing["fence"].startswith(fence) and not closing["info"].strip():
                break
            line = lines[index]
            body.append(line[len(indent) :] if line.startswith(indent) else line)
            index += 1
        start = index - len(body)  # 1-based line of the opening fence
        language = words[0] if words else ""
        blocks.append(Block(page, start, language, words[1:], "\n".join(body) + "\n"))
        index += 1
    return blocks


def classify(block: Block) -> None:
    words = block.words
    if block.language == "text" and words == ["output"]:
        block.kind = OUTPUT
    elif block.language != "python":
        return
    elif not words:
        block.kind = PROGRAM
    elif words == ["test"]:
        block.kind = TEST
    elif words == ["fragment"]:
        block.kind = FRAGMENT
    elif len(words) == 1 and re.fullmatch(r"file=\w+\.py", words[0]):
        block.kind, block.file_name = PROGRAM, words[0].removeprefix("file=")
    else:
        raise ValueError(
            f"{block.where}: unknown marker {' '.join(words)!r} after python "
            "(use test, fragment or file=NAME.py; see tests/docs/test_examples.py)"
        )


@functools.cache
def page_blocks(page: Path) -> list[Block]:
    """A page's Python blocks, each with its expected output attached."""
    blocks = fenced_blocks(page)
    python_blocks = []
    for position, block in enumerate(blocks):
        classify(block)
        if block.kind == OUTPUT:
            previous = blocks[position - 1] if position else None
            if previous is None or previous.kind != PROGRAM:
                raise ValueError(f"{block.where}: a 'text output' block must follow a program")
            previous.expected_output = block.code
        elif block.kind:
            python_blocks.append(block)
    return python_blocks


def all_blocks() -> list[Any]:
    return [
        pytest.param(block, id=f"{block.where}-{block.kind}")
        for page in PAGES
        for block in page_blocks(page)
    ]


@pytest.fixture
def virtual_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make tether's entry points default to an autojump MockClock."""

    def with_clock(function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("clock", MockClock(autojump_threshold=0))
            return function(*args, **kwargs)

        return wrapper

    new_event_loop = with_clock(tether.aio.new_event_loop)
    monkeypatch.setattr(tether, "run", with_clock(tether.run))
    monkeypatch.setattr(tether.aio, "run", with_clock(tether.aio.run))
    monkeypatch.setattr(tether.aio, "new_event_loop", new_event_loop)
    monkeypatch.setattr(tether.aio.EventLoopPolicy, "new_event_loop", lambda self: new_event_loop())
    try:
        yield
    finally:
        asyncio.set_event_loop_policy(None)  # an example may have set tether's


@pytest.mark.parametrize("block", all_blocks())
def test_example(
    block: Block,
    virtual_time: None,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> None:
    if block.kind == FRAGMENT:
        compile(block.code, block.where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        return
    if block.kind == TEST:
        results = request.getfixturevalue("doc_test_results")  # only run if needed
        problems = results.get(block_module_name(block))
        assert problems is not None, f"{block.where}: pytest collected no test from this block"
        assert not problems, f"{block.where}:\n" + "\n".join(problems)
        return
    # Tracebacks show the block's lines.
    linecache.cache[block.where] = (len(block.code), None, block.code.splitlines(True), block.where)
    code = compile(block.code, block.where, "exec")
    exec(code, {"__name__": "__main__"})
    if block.expected_output is not None:
        assert capsys.readouterr().out == block.expected_output


def test_markers_are_in_use() -> None:
    """The markers this file documents are all used somewhere, and every
    page is searched: a sanity check that the parser sees the blocks."""
    kinds = {block.kind for page in PAGES for block in page_blocks(page)}
    assert {PROGRAM, TEST, FRAGMENT} <= kinds
    assert any(b.expected_output for page in PAGES for b in page_blocks(page))


def test_fence_parser_reads_markers() -> None:
    sample = """\
```python
print(1)
```

```text output
1
```
  ```python fragment
  x = ...
  ```
```python tests
```
"""
    blocks = fenced_blocks(REPOSITORY / "sample.md", sample)
    for block in blocks[:3]:
        classify(block)
    assert [b.kind for b in blocks[:3]] == [PROGRAM, OUTPUT, FRAGMENT]
    assert [b.line for b in blocks] == [1, 5, 8, 11]
    assert blocks[0].code == "print(1)\n"
    assert blocks[2].code == "x = ...\n"
    with pytest.raises(ValueError, match="unknown marker 'tests'"):
        classify(blocks[3])


def block_module_name(block: Block) -> str:
    page = re.sub(r"\W", "_", block.page.stem.lower())
    return f"test_{page}_line_{block.line}"


@pytest.fixture(scope="module")
def doc_test_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """Run every ``python test`` block of every page in one pytest
    subprocess (one start-up instead of one per page), each page's blocks in
    a folder of their own beside its ``file=`` blocks. For each test module
    that reported anything: its failures (an empty list if all passed)."""
    root = tmp_path_factory.mktemp("doc-tests")
    (root / "pytest.ini").write_text("[pytest]\n")
    for page in PAGES:
        folder = root / re.sub(r"\W", "_", page.stem.lower())
        for block in page_blocks(page):
            if block.kind == TEST:
                folder.mkdir(exist_ok=True)
                (folder / f"{block_module_name(block)}.py").write_text(block.code)
            elif block.file_name:
                folder.mkdir(exist_ok=True)
                (folder / block.file_name).write_text(block.code)
    report = root / "report.xml"
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}"],
        cwd=root,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        timeout=PYTEST_SUBPROCESS_TIMEOUT,
        check=False,
    )
    results: dict[str, list[str]] = {}
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        # classname is "folder.module" for a test, "" for a module that
        # failed to import (then name is "folder.module").
        dotted = case.get("classname") or case.get("name") or ""
        module = next((part for part in dotted.split(".") if part.startswith("test_")), dotted)
        outcome = results.setdefault(module, [])
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                detail = textwrap.shorten(child.get("message") or "", 300)
                outcome.append(f"{case.get('name')}: {child.tag}: {detail}\n{child.text or ''}")
    return results


@pytest.mark.parametrize("script", EXAMPLE_SCRIPTS, ids=lambda p: p.name)
def test_example_script(
    script: Path,
    virtual_time: None,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    docstring = script_docstring(script)
    expected = documented_output(script, docstring)
    monkeypatch.setattr(sys, "argv", [str(script), *documented_arguments(script, docstring)])
    runpy.run_path(str(script), run_name="__main__")
    assert capsys.readouterr().out == expected


def script_docstring(script: Path) -> str:
    return ast.get_docstring(ast.parse(script.read_text())) or ""


def documented_output(script: Path, docstring: str) -> str:
    """The indented lines after "It prints:" in ``docstring``."""
    _, marker, after = docstring.partition("It prints:\n\n")
    assert marker, f"{script.name}: its docstring should have an 'It prints:' section"
    printed = re.match(r"(?:(?: {4}.*)?\n)*", after + "\n")
    assert printed is not None
    return textwrap.dedent(printed.group()).strip("\n") + "\n"


def documented_arguments(script: Path, docstring: str) -> list[str]:
    """The arguments of the first command in ``docstring`` that runs
    ``script`` (``python docs/examples/echo_server.py --demo``)."""
    command = re.search(rf"python3? docs/examples/{re.escape(script.name)}(.*)", docstring)
    return shlex.split(command.group(1)) if command else []


def test_example_scripts_run_with_their_first_documented_command() -> None:
    script = REPOSITORY / "docs" / "examples" / "server.py"
    docstring = """Run it:

        python docs/examples/server.py --demo --port 0
            the demo
        python docs/examples/server.py --connect 8000 'hello world'
    """
    assert documented_arguments(script, docstring) == ["--demo", "--port", "0"]
    assert documented_arguments(script, "Run it: python docs/examples/server.py\n") == []
    assert documented_arguments(script, "No command here.") == []
