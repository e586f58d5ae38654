"""Run every benchmark script and summarise them in one table and one chart.

    python3 benchmarks/run.py                # full run (several minutes on 2 cores)
    python3 benchmarks/run.py --quick        # smoke run (about a minute)
    python3 benchmarks/run.py --publish      # also refresh docs/benchmarks-latest.*
    python3 benchmarks/run.py --scripts sync,many --processes 3

Each script (`bench_*.py`) runs as it would on its own (every workload and
library in a fresh subprocess; see _harness.py) with ``--json``; this script
only collects their JSON files and writes:

* ``benchmarks/results/latest.md``: one table, every workload, tether's
  number next to asyncio's, uvloop's and trio's, and the ratios;
* ``benchmarks/results/latest.png`` (or ``.svg``): a chart of those ratios,
  drawn with matplotlib (``pip install -e '.[bench]'``; without it the chart
  is skipped with a message);
* ``benchmarks/results/latest.json``: everything the scripts reported.

``--publish`` copies the table and the chart to ``docs/benchmarks-latest.md``
and ``docs/benchmarks-latest.png``, the small copies kept in the repository.
Publish numbers from a quiet machine only: the table records the load
average before and after the run so a reader can tell.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")
DOCS = os.path.join(ROOT, "docs")

#: The scripts, in the order their rows appear.
SCRIPTS = ("core", "sync", "many", "aio", "io")

#: The comparison columns, in order. A suite's subject (tether, or tether.aio
#: for the asyncio face) is the "tether" column.
BASELINES = ("asyncio", "uvloop", "trio")

#: How cells and ratios are taken with --processes K (see benchmarks/_harness.py).
ROUNDS_NOTE = (
    " (in rounds of one process per library; each ratio is the median of the rounds' ratios)"
)

#: A ratio is printed in bold (tether slower) only above 1 + TIE_BAND:
#: smaller differences are within the noise of one run.
TIE_BAND = 0.05


def _run_script(name: str, args: argparse.Namespace) -> dict[str, Any] | None:
    script = os.path.join(HERE, f"bench_{name}.py")
    out = os.path.join(RESULTS, f"{name}.json")
    if os.path.exists(out):
        os.remove(out)
    cmd = [sys.executable, script, "--json", out]
    if args.quick:
        cmd.append("--quick")
    if args.processes != 1:
        cmd += ["--processes", str(args.processes)]
    print(f"\n=== {' '.join(os.path.relpath(c, ROOT) if c == script else c for c in cmd)}")
    sys.stdout.flush()
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT)
    took = time.perf_counter() - started
    if proc.returncode != 0 or not os.path.exists(out):
        print(f"!!! bench_{name}.py failed (exit {proc.returncode}); its rows are left out")
        return None
    print(f"=== bench_{name}.py done in {took:.0f} s")
    with open(out, encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def _load_average() -> str:
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def _busy(*loads: str) -> bool:
    """Whether a 1-minute load average was above the number of CPUs: other
    work competed with the benchmarks."""
    cpus = os.cpu_count() or 1
    for load in loads:
        try:
            if float(load.split(",")[0]) > cpus:
                return True
        except ValueError:
            pass
    return False


# ---------------------------------------------------------------------------
# Rows


def _format_value(kind: str, value: float | None) -> str:
    if value is None:
        return "—"
    if kind == "bytes":
        return f"{value:,.0f} B"
    us = value * 1e6
    if us >= 1000:
        return f"{us / 1000:,.1f} ms"
    if us >= 10:
        return f"{us:,.1f} µs"
    return f"{us:.2f} µs"


def _format_ratio(value: float | None) -> str:
    if value is None:
        return "—"
    text = f"{value:.2f}x"
    return f"**{text}**" if value > 1 + TIE_BAND else text


def _rows(suites: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per workload (and per extra metric), subject first."""
    rows: list[dict[str, Any]] = []
    for suite in suites:
        subject = suite["subject"]
        face = "aio" if subject == "tether.aio" else "trio-style"
        for name, entry in suite["results"].items():
            libs = entry["libraries"]

            def per_op(lib: str, entry: dict[str, Any] = entry) -> float | None:
                cell = entry["libraries"].get(lib)
                return None if cell is None else cell.get("per_op")

            def ratio(
                lib: str, entry: dict[str, Any] = entry, subject: str = subject
            ) -> float | None:
                return entry["ratios"].get(f"{subject}/{lib}")  # type: ignore[no-any-return]

            rows.append(
                {
                    "suite": suite["suite"],
                    "name": name,
                    "title": entry["title"],
                    "face": face,
                    "unit": entry.get("unit", f"per {entry['per']}"),
                    "kind": entry["kind"],
                    "tether": per_op(subject),
                    "values": {lib: per_op(lib) for lib in BASELINES if lib in libs},
                    "ratios": {lib: ratio(lib) for lib in BASELINES if lib in libs},
                    "failed": sorted(
                        lib for lib, cell in libs.items() if cell["status"] not in ("ok",)
                    ),
                }
            )
            for extra, meta in entry.get("extras", {}).items():
                extra_ratios = entry.get("extra_ratios", {}).get(extra, {})

                def extra_value(lib: str, entry: dict[str, Any] = entry, extra: str = extra) -> Any:
                    cell = entry["libraries"].get(lib)
                    return None if cell is None else cell.get("extras", {}).get(extra)

                rows.append(
                    {
                        "suite": suite["suite"],
                        "name": f"{name}.{extra}",
                        "title": f"{entry['title']}: {meta['title']}",
                        "face": face,
                        "unit": f"per {meta['per']} (median)",
                        "kind": meta["kind"],
                        "tether": extra_value(subject),
                        "values": {lib: extra_value(lib) for lib in BASELINES if lib in libs},
                        "ratios": {
                            lib: extra_ratios.get(f"{subject}/{lib}")
                            for lib in BASELINES
                            if lib in libs
                        },
                        "failed": [],
                    }
                )
    return rows


# ---------------------------------------------------------------------------
# Markdown


def _markdown(
    rows: list[dict[str, Any]],
    suites: list[dict[str, Any]],
    args: argparse.Namespace,
    load_before: str,
    load_after: str,
    elapsed: float,
    chart_name: str | None,
) -> str:
    versions: dict[str, str] = {}
    for suite in suites:
        for lib, info in suite["libraries"].items():
            if info.get("version"):
                versions.setdefault(lib, info["version"])
    when = time.strftime("%Y-%m-%d %H:%M %Z")
    lines = [
        "# tether benchmarks: latest run",
        "",
        f"{when}; Python {platform.python_version()} on {platform.system()} "
        f"{platform.machine()}, {os.cpu_count()} CPUs; "
        + ", ".join(f"{lib} {v}" for lib, v in sorted(versions.items()))
        + ".",
        f"Mode: {'--quick (small sizes)' if args.quick else 'full'}"
        f"{f', median of {args.processes} processes per cell' if args.processes > 1 else ''}"
        f"{ROUNDS_NOTE if args.processes > 1 else ''}; "
        f"load average before {load_before}, after {load_after}; "
        f"{elapsed / 60:.0f} min. Made by `python benchmarks/run.py"
        f"{' --quick' if args.quick else ''}"
        f"{f' --processes {args.processes}' if args.processes > 1 else ''}`.",
        "",
    ]
    if _busy(load_before, load_after):
        lines += [
            "**The machine was busy during this run** (load average above the "
            "number of CPUs): other processes competed for the CPUs and caches, "
            "so treat these numbers as rough and rerun on a quiet machine before "
            "drawing conclusions.",
            "",
        ]
    lines += [
        "Per operation, lower is better. tether is the trio-style API, or "
        "`tether.aio` on rows marked *aio*. Ratios are tether / other: below "
        "1.00x tether is faster or smaller, **bold** where it is slower. "
        "(CPU) rows are process CPU time, the others wall time. With several "
        "rounds, a ratio is the median of the rounds' ratios, which need not "
        "equal the quotient of the two cells. What each row does: "
        "`benchmarks/README.md`.",
        "",
    ]
    if chart_name:
        lines += [f"![tether / other, per workload]({chart_name})", ""]
    header = ["workload", "unit", "tether", *BASELINES] + [f"{b} ratio" for b in BASELINES]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---", "---"] + ["---:"] * (len(header) - 2)) + "|")
    for row in rows:
        title = row["title"] + (" *(aio)*" if row["face"] == "aio" else "")
        cells = [title, row["unit"], _format_value(row["kind"], row["tether"])]
        cells += [
            _format_value(row["kind"], row["values"][b]) if b in row["values"] else ""
            for b in BASELINES
        ]
        cells += [_format_ratio(row["ratios"][b]) if b in row["ratios"] else "" for b in BASELINES]
        lines.append("| " + " | ".join(cells) + " |")
    failed = [(row["title"], lib) for row in rows for lib in row["failed"]]
    missing = [name for name in args.scripts if name not in {s["suite"] for s in suites}]
    if failed or missing:
        lines.append("")
        for title, lib in failed:
            lines.append(f"- {title}: {lib} did not produce a number (see the script's output).")
        for name in missing:
            lines.append(f"- bench_{name}.py failed; its rows are missing.")
    lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# Chart


def _chart(rows: list[dict[str, Any]], path: str) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib is not installed, so no chart: pip install -e '.[bench]')")
        return False

    shown = [row for row in rows if any(r is not None for r in row["ratios"].values())]
    if not shown:
        print("(no ratios to chart)")
        return False
    colours = {"asyncio": "#4C72B0", "uvloop": "#8172B2", "trio": "#55A868"}
    height = 0.8 / len(BASELINES)
    fig, ax = plt.subplots(figsize=(8.5, 0.42 * len(shown) + 1.4))
    for i, base in enumerate(BASELINES):
        ys, xs = [], []
        for j, row in enumerate(shown):
            value = row["ratios"].get(base)
            if value is not None:
                ys.append(j + (i - (len(BASELINES) - 1) / 2) * height)
                xs.append(value)
        ax.barh(ys, xs, height=height, color=colours[base], label=f"tether / {base}")
        for y, x in zip(ys, xs, strict=True):
            ax.text(x, y, f" {x:.2f}", va="center", fontsize=6)
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_xscale("log")
    ratios = [r for row in shown for r in row["ratios"].values() if r is not None]
    low, high = min(min(ratios), 0.5) / 1.3, max(max(ratios), 2.0) * 1.5
    ax.set_xlim(low, high)
    ticks = [t for t in (0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20) if low <= t <= high]
    ax.set_xticks(ticks)
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_yticks(range(len(shown)))
    ax.set_yticklabels(
        [row["title"] + (" (aio)" if row["face"] == "aio" else "") for row in shown], fontsize=8
    )
    ax.invert_yaxis()
    ax.set_xlabel("tether's cost / other's (log scale; left of 1 = tether faster or smaller)")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}x"))
    ax.grid(axis="x", which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


# ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="run every benchmark script; write one table and one chart"
    )
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    parser.add_argument(
        "--scripts",
        default=",".join(SCRIPTS),
        help=f"comma-separated subset of: {', '.join(SCRIPTS)}",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="rounds of one fresh process per library for each workload; the median of each "
        "library's bests, and of the rounds' ratios, is reported",
    )
    parser.add_argument("--chart", choices=("png", "svg"), default="png", help="chart format")
    parser.add_argument(
        "--publish",
        action="store_true",
        help="also copy the table and chart to docs/benchmarks-latest.*",
    )
    args = parser.parse_args(argv)
    args.scripts = [s.strip() for s in args.scripts.split(",") if s.strip()]
    unknown = [s for s in args.scripts if s not in SCRIPTS]
    if unknown:
        parser.error(f"unknown script(s) {', '.join(unknown)}; choose from {', '.join(SCRIPTS)}")

    os.makedirs(RESULTS, exist_ok=True)
    load_before = _load_average()
    started = time.perf_counter()
    suites = [s for s in (_run_script(name, args) for name in args.scripts) if s is not None]
    elapsed = time.perf_counter() - started
    load_after = _load_average()
    if not suites:
        print("no script produced results")
        return 1

    rows = _rows(suites)
    chart_name = f"latest.{args.chart}"
    chart_path = os.path.join(RESULTS, chart_name)
    have_chart = _chart(rows, chart_path)
    table = _markdown(
        rows,
        suites,
        args,
        load_before,
        load_after,
        elapsed,
        chart_name if have_chart else None,
    )
    md_path = os.path.join(RESULTS, "latest.md")
    with open(md_path, "w", encoding="utf-8") as fh:
        fh.write(table)
    with open(os.path.join(RESULTS, "latest.json"), "w", encoding="utf-8") as fh:
        json.dump({"suites": suites, "rows": rows}, fh, indent=1)
        fh.write("\n")
    print(f"\nwrote {os.path.relpath(md_path, ROOT)}", end="")
    print(f" and {os.path.relpath(chart_path, ROOT)}" if have_chart else "")

    if args.publish:
        published_chart = f"benchmarks-latest.{args.chart}"
        text = table.replace(f"]({chart_name})", f"]({published_chart})")
        with open(os.path.join(DOCS, "benchmarks-latest.md"), "w", encoding="utf-8") as fh:
            fh.write(text)
        if have_chart:
            shutil.copyfile(chart_path, os.path.join(DOCS, published_chart))
        print(
            "published to docs/benchmarks-latest.md"
            + (f" and {published_chart}" if have_chart else "")
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
