"""aiohttp requests on tether's loop and asyncio's (and uvloop's), taken in
turns inside the same processes, compared round by round.

    python3 benchmarks/bench_aiohttp_paired.py                    # 200 in flight
    python3 benchmarks/bench_aiohttp_paired.py --concurrency 2000 --requests 10000
    python3 benchmarks/bench_aiohttp_paired.py --processes 5 --rounds 10

`bench_aiohttp.py` measures each loop in processes of its own. Its figures
then carry each process's state: whether glibc serves asyncio's 256 KiB
reads with ``mmap`` (it stops once the process has freed a large block),
when the garbage collector runs, the machine's load at that moment. Between
runs its asyncio figure moved by a third. Here every process runs the same
workload (`bench_aiohttp._serve_and_fetch`) with every loop in turn, after
one untimed warm-up run of each, in a rotating order, so the loops share
the process's allocator and the minute's load. Each round gives a ratio
per baseline (tether.aio's time per request over the baseline's, taken
moments apart), and the report is the median of those ratios with their
spread, and how many rounds tether.aio was faster in. Wall time, as in
`bench_aiohttp.py`. Needs aiohttp (``pip install -e '.[compat]'``).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import math
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

SUBJECT = "tether.aio"
DEFAULT_LIBS = ("tether.aio", "asyncio", "uvloop")


def _child(libs: list[str], concurrency: int, requests: int, rounds: int) -> None:
    """One process: a warm-up run per loop, then `rounds` rounds of every
    loop in turn. Prints ``{lib: [seconds per request, ...]}`` as JSON."""
    from bench_aiohttp import _serve_and_fetch

    modules = {name: importlib.import_module(name) for name in libs}
    for name in libs:
        _serve_and_fetch(modules[name], concurrency, requests)
    times: dict[str, list[float]] = {name: [] for name in libs}
    for index in range(rounds):
        shift = index % len(libs)
        for name in libs[shift:] + libs[:shift]:
            times[name].append(_serve_and_fetch(modules[name], concurrency, requests) / requests)
    print(json.dumps(times))


def _median_interval(ratios: list[float]) -> tuple[float, float, float] | None:
    """A distribution-free confidence interval for the median of `ratios`
    (sorted): the order statistics that the sign test puts around it, the
    narrowest pair whose coverage is at least 95 %. Assumes the rounds are
    independent draws, which rounds of one process only approximate. None
    for fewer than 6 rounds (no pair reaches 95 %)."""
    n = len(ratios)
    # P(Binomial(n, 1/2) < k) for k = 0, 1, ...: the pair (k-th, (n-k+1)-th
    # smallest) covers the median with probability 1 - 2 * P(B < k).
    best = None
    below = 0.0
    for k in range(1, n // 2 + 1):
        below += math.comb(n, k - 1) / 2**n
        coverage = 1 - 2 * below
        if coverage < 0.95:
            break
        best = (ratios[k - 1], ratios[n - k], coverage)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--rounds", type=int, default=6, help="rounds per process")
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--libs", default=",".join(DEFAULT_LIBS))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    libs = [name for name in args.libs.split(",") if name]
    if SUBJECT not in libs or len(libs) < 2:
        parser.error(f"--libs must name {SUBJECT} and at least one baseline")
    if args.concurrency < 1 or args.requests < args.concurrency or args.rounds < 1:
        parser.error("need concurrency >= 1, requests >= concurrency and rounds >= 1")
    missing = [name for name in ["aiohttp", *libs] if importlib.util.find_spec(name) is None]
    if missing:
        needs = ", ".join(missing)
        print(f"bench_aiohttp_paired.py needs {needs}: pip install -e '.[compat,bench]'")
        return 0
    if args.child:
        _child(libs, args.concurrency, args.requests, args.rounds)
        return 0

    command = [sys.executable, os.path.abspath(__file__), "--child"]
    command += ["--libs", ",".join(libs), "--concurrency", str(args.concurrency)]
    command += ["--requests", str(args.requests), "--rounds", str(args.rounds)]
    times: dict[str, list[float]] = {name: [] for name in libs}
    for process in range(args.processes):
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(done.stderr, file=sys.stderr)
            print(f"process {process + 1} failed (exit status {done.returncode})")
            return 1
        result: dict[str, list[float]] = json.loads(done.stdout.strip().splitlines()[-1])
        for name in libs:
            times[name].extend(result[name])

    total = args.processes * args.rounds
    print(
        f"aiohttp GET, {args.concurrency} at once, {args.requests} requests per run; "
        f"{args.processes} processes x {args.rounds} rounds = {total} runs per loop, "
        "loops in turn within each process (wall time per request)"
    )
    for name in libs:
        runs = times[name]
        print(
            f"  {name:<11} median {statistics.median(runs) * 1e6:8.1f} µs   "
            f"best {min(runs) * 1e6:8.1f}   worst {max(runs) * 1e6:8.1f}"
        )
    subject = times[SUBJECT]
    for name in libs:
        if name == SUBJECT:
            continue
        ratios = sorted(mine / theirs for mine, theirs in zip(subject, times[name], strict=True))
        faster = sum(ratio < 1.0 for ratio in ratios)
        # The middle half of the rounds: how far the median can be trusted
        # on a machine whose rounds spread this wide.
        quartiles = (
            statistics.quantiles(ratios, n=4, method="inclusive") if len(ratios) > 1 else ratios * 3
        )
        print(
            f"  {SUBJECT} / {name}: median {statistics.median(ratios):.3f}x "
            f"(middle half of the rounds {quartiles[0]:.2f}x to {quartiles[2]:.2f}x, "
            f"all {ratios[0]:.2f}x to {ratios[-1]:.2f}x; "
            f"{SUBJECT} faster in {faster} of {len(ratios)})"
        )
        interval = _median_interval(ratios)
        if interval is not None:
            low, high, level = interval
            verdict = (
                "faster"
                if high < 1.0
                else "slower"
                if low > 1.0
                else "not told apart from 1.00x by these rounds"
            )
            print(
                f"    {level:.0%} confidence interval of the median ratio: "
                f"{low:.3f}x to {high:.3f}x ({verdict})"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
