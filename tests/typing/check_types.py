"""Check tether's public API as a type checker sees it.

The other files in this folder are typed usage examples. Each line may end
with an expectation, which this script checks against ``mypy --strict``:

    reveal_type(value)  # reveal: builtins.int
        mypy must reveal exactly this type on this line;
    with tether.open_nursery():  # error: attr-defined
        mypy must report an error with this code on this line.

Any other error or note fails the check, and so does an expectation that
mypy did not meet. Run by .ci/run (mypy comes with the ``lint`` extra):

    python tests/typing/check_types.py
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from mypy import api

HERE = Path(__file__).resolve().parent
EXPECTATION = re.compile(r"#\s*(reveal|error):\s*(.+?)\s*$")
MYPY_LINE = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+): (?P<kind>error|note): (?P<text>.*)$")
REVEALED = re.compile(r'^Revealed type is "(?P<type>.*)"$')
ERROR_CODE = re.compile(r"\[(?P<code>[a-z-]+)\]$")


def expectations(files: list[Path]) -> dict[tuple[str, int], tuple[str, str]]:
    expected = {}
    for path in files:
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            match = EXPECTATION.search(line)
            if match:
                expected[(path.name, number)] = (match.group(1), match.group(2))
    return expected


def main() -> int:
    files = sorted(p for p in HERE.glob("*.py") if p.name != Path(__file__).name)
    if not files:
        print("no typed examples found", file=sys.stderr)
        return 1
    stdout, stderr, _ = api.run(
        ["--strict", "--no-incremental", "--show-error-codes", "--hide-error-context"]
        + [str(p) for p in files]
    )
    if stderr.strip():
        print(stderr, file=sys.stderr)
        return 1
    expected = expectations(files)
    met: set[tuple[str, int]] = set()
    problems = []
    for raw in stdout.splitlines():
        match = MYPY_LINE.match(raw)
        if match is None:
            continue
        key = (Path(match["path"]).name, int(match["line"]))
        want = expected.get(key)
        revealed = REVEALED.match(match["text"])
        code = ERROR_CODE.search(match["text"])
        if revealed and want == ("reveal", revealed["type"]):
            met.add(key)
        elif match["kind"] == "error" and code and want == ("error", code["code"]):
            met.add(key)
        elif match["kind"] == "note" and not revealed and key in met:
            continue  # a note that explains an expected error
        else:
            problems.append(
                f"unexpected: {raw}" + (f"  (expected {want[0]}: {want[1]})" if want else "")
            )
    for key, (kind, what) in sorted(expected.items()):
        if key not in met:
            problems.append(f"{key[0]}:{key[1]}: expected {kind} {what!r}, mypy did not report it")
    for problem in problems:
        print(problem)
    print(
        f"typing examples: {len(met)} of {len(expected)} expectations met, "
        f"{len(problems)} problem(s)"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
