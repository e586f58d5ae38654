"""Count the Python bytecode instructions a workload runs per operation.

    python3 benchmarks/bytecode_count.py echo                   # tether.aio and asyncio
    python3 benchmarks/bytecode_count.py spawn_park_wake --top 12
    python3 benchmarks/bytecode_count.py wait_for --libs tether.aio --src /path/to/other/src
    python3 benchmarks/bytecode_count.py --suite aiohttp get_200 --top 20

The workloads are those of ``bench_aio.py`` (``--list`` shows them), or with
``--suite aiohttp`` those of ``bench_aiohttp.py`` (needs aiohttp). Each
library runs the workload's own implementation in a fresh subprocess, twice:
at the workload's quick size and with one size parameter doubled. Every
bytecode instruction executed is counted (``sys.settrace`` with opcode
events), and the difference between the two runs, divided by the difference
in operations, is the count per operation: the setup both runs share (the
loop's start, connecting the sockets) cancels out.

Why count instructions: on a shared machine two timings of the same code
can differ by 10 % or more, while this count is the same in every run. It
measures only the Python-level work. Code written in C counts as nothing
but the instructions that call it: asyncio's tasks and futures are C, so
asyncio's count is lower than its share of the time. Compare a change
against the code before it (``--src``) rather than one library against
another. Tracing makes the run about a hundred times slower; the quick sizes
keep it to seconds.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

#: The parameter doubled to get the second run, in order of preference:
#: the first one of these that the workload has and whose doubling doubles
#: its operation count.
SIZE_PARAMETERS = ("rounds", "messages", "n", "items", "tasks", "each", "requests")
#: The benchmark modules whose workloads can be counted (``--suite``).
SUITES = {"aio": "bench_aio", "aiohttp": "bench_aiohttp"}

_CHILD = "--child"


def _count(
    suite_module: str, lib_module: str, workload: str, params: dict[str, Any]
) -> dict[str, int]:
    """Run `workload`'s implementation (of the suite in `suite_module`) for
    `lib_module` once with `params` under an opcode tracer; the instructions
    executed, by function."""
    import importlib

    bench = importlib.import_module(suite_module)
    wl = bench.suite.workloads[workload]
    impl = wl.impls[lib_module]
    mod = importlib.import_module(bench.suite.libraries[lib_module].module or "")
    counts: collections.Counter[str] = collections.Counter()

    def local(frame: Any, event: str, arg: Any) -> Any:
        if event == "opcode":
            code = frame.f_code
            counts[f"{os.path.basename(code.co_filename)}:{code.co_name}"] += 1
        return local

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        frame.f_trace_opcodes = True
        return local

    sys.settrace(tracer)
    try:
        impl.func(mod, **params)
    finally:
        sys.settrace(None)
    return dict(counts)


def _child(spec: dict[str, Any]) -> None:
    result = {
        str(i): _count(spec["suite"], spec["library"], spec["workload"], params)
        for i, params in enumerate(spec["sizes"])
    }
    print(json.dumps(result))


def _sizes(wl: Any) -> tuple[list[dict[str, Any]], int]:
    """The two parameter sets (the quick size, and one size parameter
    doubled) and the difference in operations between them."""
    small = dict(wl.quick_params)
    for name in SIZE_PARAMETERS:
        if isinstance(small.get(name), int):
            large = {**small, name: small[name] * 2}
            extra = wl.ops(large) - wl.ops(small)
            if extra == wl.ops(small) and extra > 0:
                return [small, large], extra
    raise SystemExit(f"{wl.name}: no size parameter among {SIZE_PARAMETERS} doubles its work")


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == _CHILD:
        _child(json.loads(sys.argv[2]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workload", nargs="?", help="a workload of the suite")
    parser.add_argument(
        "--suite", choices=sorted(SUITES), default="aio", help="whose workloads (default: aio)"
    )
    parser.add_argument("--libs", default="tether.aio,asyncio", help="comma-separated")
    parser.add_argument("--top", type=int, default=0, help="also list the N costliest functions")
    parser.add_argument(
        "--src", help="import tether from this src/ directory (another checkout, or a copy)"
    )
    parser.add_argument("--list", action="store_true", help="list the workloads")
    args = parser.parse_args()

    import importlib

    bench = importlib.import_module(SUITES[args.suite])
    if args.list or not args.workload:
        for name, listed in bench.suite.workloads.items():
            if listed.kind == "time":
                print(f"{name:16} {listed.title}")
        return 0
    wl = bench.suite.workloads.get(args.workload)
    if wl is None or wl.kind != "time":
        raise SystemExit(f"unknown workload {args.workload!r} (see --list)")
    sizes, extra_ops = _sizes(wl)
    env = dict(os.environ)
    if args.src:
        env["PYTHONPATH"] = os.path.abspath(args.src) + os.pathsep + env.get("PYTHONPATH", "")
    print(f"{wl.title}: instructions per {wl.per} ({sizes[0]} and {sizes[1]})")
    for lib in args.libs.split(","):
        spec = {"suite": SUITES[args.suite], "library": lib, "workload": wl.name, "sizes": sizes}
        proc = subprocess.run(
            [sys.executable, os.path.abspath(__file__), _CHILD, json.dumps(spec)],
            capture_output=True,
            text=True,
            env=env,
        )
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            print(f"  {lib}: failed: {tail}")
            continue
        runs = json.loads(proc.stdout.strip().splitlines()[-1])
        small, large = runs["0"], runs["1"]
        per_op = {
            name: (large.get(name, 0) - small.get(name, 0)) / extra_ops
            for name in set(small) | set(large)
        }
        print(f"  {lib:12} {sum(per_op.values()):9,.1f}")
        for name, value in sorted(per_op.items(), key=lambda kv: -kv[1])[: args.top]:
            print(f"      {value:9,.1f}  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
