"""Shared machinery for tether's benchmark scripts.

A benchmark script builds a :class:`Suite`, declares workloads on it, gives
each workload one implementation per library, and hands control to
:meth:`Suite.main`::

    from _harness import ASYNCIO, TRIO, Library, Suite

    TETHER = Library("tether", module="tether")
    suite = Suite("sync", libraries=[TETHER, TRIO, ASYNCIO], subject="tether")

    lock = suite.workload(
        "lock", title="Lock acquire/release", per="acquire",
        params={"n": 100_000}, quick_params={"n": 20_000}, ops=lambda p: p["n"],
    )

    @suite.impl(lock, "trio", requires=["run", "Lock"])
    @suite.impl(lock, "tether", requires=["run", "Lock"])
    def lock_trio_style(mod, n):
        ...  # do the work, time the interesting part, return seconds

    if __name__ == "__main__":
        raise SystemExit(suite.main())

How a run works
---------------
* The parent process never imports the libraries under test. It first starts
  one *probe* subprocess per library to learn whether it imports (and its
  version), then one *measurement* subprocess per (workload, library) pair, so
  that one library's garbage, caches and interpreter state never bill another.
  With ``--processes K`` a workload is measured in K rounds, each one such
  process per library, the libraries taking turns in a rotating order; a
  ratio is then the median of the K ratios taken within a round (see
  `paired_ratio`).
* Inside a measurement subprocess, the implementation is called ``warmup``
  times (results discarded), then ``repeat`` times; ``gc.collect()`` runs
  before every call. The reported number is the best (smallest) of the
  repeats. The implementation itself decides what to time (usually with
  ``time.perf_counter`` inside the library's run loop, so that loop start-up
  and interpreter import are not part of the number) and returns seconds for
  ``kind="time"`` workloads or bytes for ``kind="bytes"`` workloads.
* Every implementation receives the imported library module as its first
  argument (``None`` for libraries with ``module=None``, such as the
  pure-Python floor) and the workload's parameters as keyword arguments.
* ``requires`` lists dotted names relative to the module (``"lowlevel.checkpoint"``).
  They are resolved before anything runs; a missing name is reported as
  "missing tether.lowlevel.checkpoint" instead of a traceback, so scripts can be
  run against a library that is only partly written.
* The parent prints a per-operation table, a totals table, the ratios
  ``subject / baseline`` for every baseline (below 1 means the subject is
  faster or smaller), and footnotes for everything that did not run.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ASYNCIO",
    "FLOOR",
    "TETHER",
    "TRIO",
    "UVLOOP",
    "Extra",
    "Library",
    "MissingName",
    "Suite",
    "Workload",
    "asyncio_api",
    "resolve",
    "run_trio_style",
]

_RESULT_MARK = "@@bench-result "
_CHILD_FLAG = "--_child"


# ---------------------------------------------------------------------------
# Libraries


@dataclass(frozen=True)
class Library:
    """One column of the result table.

    ``module`` is what the measurement subprocess imports and passes to the
    implementations; ``None`` means nothing is imported (the implementation is
    self-contained, like the pure-Python floor). ``dist`` is the distribution
    name used for the version lookup when the module has no ``__version__``.
    ``install_hint`` is shown when the import fails.
    """

    name: str
    module: str | None = None
    dist: str | None = None
    install_hint: str = ""
    label: str | None = None
    #: Put this directory first on the measurement subprocess's PYTHONPATH
    #: (a `--variant`: another checkout of the subject's source).
    pythonpath: str | None = None

    @property
    def column(self) -> str:
        return self.label or self.name


TRIO = Library(
    "trio", module="trio", install_hint="pip install trio  (or: pip install -e '.[bench]')"
)
ASYNCIO = Library("asyncio", module="asyncio")
FLOOR = Library("floor", module=None, label="floor")
TETHER = Library(
    "tether", module="tether", install_hint="pip install -e '.[bench]'  (from the repository root)"
)
#: asyncio on uvloop's event loop: implementations written for asyncio run
#: unchanged (see `asyncio_api`). Not available on Windows.
UVLOOP = Library(
    "uvloop", module="uvloop", install_hint="pip install uvloop  (or: pip install -e '.[bench]')"
)


def asyncio_api(mod: Any) -> tuple[Any, Callable[[Any], Any]]:
    """For an implementation shared by asyncio, uvloop and tether.aio: the
    asyncio-like module to write the program against, and the function that
    runs a coroutine to completion on the library's event loop."""
    if mod.__name__ == "uvloop":
        import asyncio  # the program itself is plain asyncio

        return asyncio, mod.run
    return mod, mod.run


def run_trio_style(mod: Any, main: Any) -> Any:
    """Run ``main`` under ``mod.run`` (tether or trio) and return what it
    returned. The result travels through a list rather than ``run``'s return
    value, so that a kernel whose ``run`` does not return values still
    works."""
    box: list[Any] = []

    async def wrapper() -> None:
        box.append(await main())

    mod.run(wrapper)
    if not box:
        raise RuntimeError(f"{mod.__name__}.run returned before the benchmark finished")
    return box[0]


class MissingName(LookupError):
    """A name listed in ``requires`` does not exist in the library."""


def resolve(module: Any, dotted: str) -> Any:
    """Return ``module.<dotted>``, importing submodules on the way if needed.

    ``resolve(trio, "testing.wait_all_tasks_blocked")`` works whether or not
    ``trio.testing`` was imported before. Raises :class:`MissingName` with the
    full dotted name when something is absent.
    """
    obj = module
    path = module.__name__
    wanted = f"{path}.{dotted}"
    for part in dotted.split("."):
        path = f"{path}.{part}"
        try:
            obj = getattr(obj, part)
            continue
        except AttributeError:
            pass
        try:
            obj = importlib.import_module(path)
        except ImportError as exc:
            if exc.name is not None and exc.name != path:
                # The submodule exists but one of its own imports failed.
                raise MissingName(f"{wanted} (importing {path} failed: {exc})") from exc
            raise MissingName(wanted) from None
    return obj


# ---------------------------------------------------------------------------
# Workloads


@dataclass(frozen=True)
class Extra:
    """A second number an implementation reports along with its main one
    (say, the worst wake-up lateness of a timer workload whose main number
    is CPU time). The implementation returns ``(value, {name: number})``;
    the table shows the extra as its own row, ``title``, with the median
    over the timed runs (not divided by the operation count)."""

    title: str
    kind: str = "time"  # "time" (seconds) or "bytes"
    per: str = "run"


@dataclass
class Impl:
    func: Callable[..., Any]
    requires: tuple[str, ...] = ()


@dataclass
class Workload:
    name: str
    title: str
    per: str
    params: dict[str, Any]
    quick_params: dict[str, Any]
    ops: Callable[[dict[str, Any]], int]
    kind: str = "time"  # "time" (seconds) or "bytes"
    #: What a "time" number is: "wall" (perf_counter) or "cpu"
    #: (process_time, which ignores time the process spent waiting for the
    #: CPU, so it is steadier on a shared machine; a workload that sleeps or
    #: waits for threads must use wall time). The implementation takes the
    #: readings; this only labels them.
    clock: str = "wall"
    extras: dict[str, Extra] = field(default_factory=dict)
    description: str = ""
    repeat: int | None = None  # overrides the suite's default when set
    quick_repeat: int | None = None
    warmup: int = 1
    # When set (e.g. "round trips/s"), the report adds a table of operations
    # per second of the best run, in this unit.
    rate: str | None = None
    impls: dict[str, Impl] = field(default_factory=dict)

    def describe_size(self, quick: bool) -> str:
        params = self.quick_params if quick else self.params
        return ", ".join(
            f"{k}={v:,}" if isinstance(v, int) else f"{k}={v}" for k, v in params.items()
        )


# ---------------------------------------------------------------------------
# Formatting helpers


def format_per_op(kind: str, value: float) -> str:
    if kind == "bytes":
        return f"{value:,.0f} B"
    ns = value * 1e9
    if ns >= 1e6:
        return f"{ns / 1e6:,.1f} ms"
    if ns >= 100:
        return f"{ns:,.0f} ns"
    return f"{ns:.1f} ns"


def format_total(kind: str, value: float) -> str:
    if kind == "bytes":
        if value >= 1 << 20:
            return f"{value / (1 << 20):.1f} MiB"
        return f"{value / 1024:.1f} KiB"
    if value >= 1:
        return f"{value:.3f} s"
    return f"{value * 1e3:.1f} ms"


def format_rate(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:.2f} M"
    if value >= 1e4:
        return f"{value / 1e3:,.1f} k"
    return f"{value:,.0f}"


def format_ratio(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}x"


def unit_label(wl: Workload) -> str:
    """The unit column of a workload's row: what one operation is, and
    whether its time is CPU time."""
    cpu = " (CPU)" if wl.kind == "time" and wl.clock == "cpu" else ""
    return f"per {wl.per}{cpu}"


def render_table(header: Sequence[str], rows: Iterable[Sequence[str]], align_left: int = 1) -> str:
    """Plain-text table; the first ``align_left`` columns are left-aligned."""
    rows = [list(r) for r in rows]
    widths = [len(h) for h in header]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: Sequence[str]) -> str:
        out = []
        for i, cell in enumerate(cells):
            out.append(cell.ljust(widths[i]) if i < align_left else cell.rjust(widths[i]))
        return "  ".join(out).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), sep, *(line(r) for r in rows)])


# ---------------------------------------------------------------------------
# Measurement subprocess


def _library_version(lib: Library, mod: Any) -> str | None:
    if mod is None:
        return None
    version = getattr(mod, "__version__", None)
    if version is None and lib.module == "asyncio":
        return platform.python_version()
    if version is None:
        try:
            version = importlib.metadata.version(lib.dist or lib.module or "")
        except importlib.metadata.PackageNotFoundError:
            version = None
    return None if version is None else str(version)


def _emit(payload: dict[str, Any]) -> None:
    sys.stdout.flush()
    sys.stdout.write(_RESULT_MARK + json.dumps(payload) + "\n")
    sys.stdout.flush()


def _short_error(exc: BaseException) -> str:
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return text.splitlines()[-1] if text else type(exc).__name__


def _import_library(lib: Library) -> Any:
    if lib.module is None:
        return None
    return importlib.import_module(lib.module)


# ---------------------------------------------------------------------------
# The suite


@dataclass
class _Cell:
    status: str  # ok | unavailable | missing | error | timeout | skipped
    #: The reported number for one run (seconds or bytes): the best run,
    #: or with several processes the median of each process's best.
    value: float | None = None
    samples: list[float] = field(default_factory=list)
    #: Each measurement process's best run, in round order (see
    #: `Suite._measure_row`).
    process_bests: list[float] = field(default_factory=list)
    #: Extra metrics (see `Extra`): every timed run's value, by name.
    extras: dict[str, list[float]] = field(default_factory=dict)
    reason: str = ""
    detail: str = ""
    #: Wall time spent measuring it, in seconds (all its processes).
    wall: float = 0.0

    def extra(self, name: str) -> float | None:
        values = self.extras.get(name)
        return statistics.median(values) if values else None


def round_ratios(a: _Cell, b: _Cell) -> list[float]:
    """The ratio of `a`'s best to `b`'s in each measurement round (the
    processes of a round run one after the other; see `Suite._measure_row`);
    empty unless both were measured in the same two or more rounds."""
    if len(a.process_bests) < 2 or len(a.process_bests) != len(b.process_bests):
        return []
    if not all(b.process_bests):
        return []
    return [x / y for x, y in zip(a.process_bests, b.process_bests, strict=True)]


def paired_ratio(a: _Cell, b: _Cell) -> float | None:
    """`a` / `b`: the median of the per-round ratios when there are several
    rounds (each taken moments apart, so that a drift of the machine's speed
    over the run does not favour whichever library ran in a quiet minute);
    otherwise the ratio of the reported values."""
    ratios = round_ratios(a, b)
    if ratios:
        return statistics.median(ratios)
    if a.value is None or not b.value:
        return None
    return a.value / b.value


class Suite:
    """A set of workloads measured on several libraries, printed as one table."""

    def __init__(
        self,
        name: str,
        *,
        libraries: Sequence[Library],
        subject: str,
        baselines: Sequence[str] | None = None,
        description: str = "",
        repeat: int = 5,
        quick_repeat: int = 3,
        timeout: float = 150.0,
        quick_timeout: float = 40.0,
    ) -> None:
        self.name = name
        self.description = description
        self.libraries = {lib.name: lib for lib in libraries}
        if subject not in self.libraries:
            raise ValueError(f"subject {subject!r} is not one of the libraries")
        self.subject = subject
        #: Copies of the subject added by --variant (see `_add_variants`).
        self.variants: list[str] = []
        self.baselines = (
            list(baselines)
            if baselines is not None
            else [lib.name for lib in libraries if lib.name != subject]
        )
        self.repeat = repeat
        self.quick_repeat = quick_repeat
        self.timeout = timeout
        self.quick_timeout = quick_timeout
        self.workloads: dict[str, Workload] = {}

    # -- declaration -------------------------------------------------------

    def workload(
        self,
        name: str,
        *,
        title: str,
        per: str,
        params: dict[str, Any],
        quick_params: dict[str, Any] | None = None,
        ops: Callable[[dict[str, Any]], int] | None = None,
        kind: str = "time",
        clock: str = "wall",
        extras: dict[str, Extra] | None = None,
        description: str = "",
        repeat: int | None = None,
        quick_repeat: int | None = None,
        warmup: int = 1,
        rate: str | None = None,
    ) -> Workload:
        if name in self.workloads:
            raise ValueError(f"workload {name!r} declared twice")
        if kind not in ("time", "bytes"):
            raise ValueError("kind must be 'time' or 'bytes'")
        if clock not in ("wall", "cpu"):
            raise ValueError("clock must be 'wall' or 'cpu'")
        wl = Workload(
            name=name,
            title=title,
            per=per,
            params=dict(params),
            quick_params=dict(quick_params if quick_params is not None else params),
            ops=ops or (lambda p: 1),
            kind=kind,
            clock=clock,
            extras=dict(extras or {}),
            description=description,
            repeat=repeat,
            quick_repeat=quick_repeat,
            warmup=warmup,
            rate=rate,
        )
        self.workloads[name] = wl
        return wl

    def impl(
        self, workload: Workload | str, library: str, *, requires: Iterable[str] = ()
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        wl = self.workloads[workload] if isinstance(workload, str) else workload
        if library not in self.libraries:
            raise ValueError(f"unknown library {library!r}")

        def register(func: Callable[..., Any]) -> Callable[..., Any]:
            if library in wl.impls:
                raise ValueError(f"{wl.name}/{library} implemented twice")
            wl.impls[library] = Impl(func, tuple(requires))
            return func

        return register

    # -- child side --------------------------------------------------------

    def _add_variants(self, variants: Sequence[str]) -> list[str]:
        """Add a copy of the subject for each ``LABEL=PATH`` in `variants`:
        the same implementations, run with PATH first on PYTHONPATH (another
        checkout's ``src``, say a prototype of a kernel change), shown as
        ``subject@LABEL`` next to the subject. Returns their names."""
        subject = self.libraries[self.subject]
        names = []
        for variant in variants:
            label, sep, path = variant.partition("=")
            if not sep or not label or not path:
                raise SystemExit(f"--variant wants LABEL=PATH, got {variant!r}")
            name = f"{subject.name}@{label}"
            if name in self.libraries:
                raise SystemExit(f"--variant {label!r} given twice")
            clone = Library(
                name,
                module=subject.module,
                dist=subject.dist,
                install_hint=subject.install_hint,
                label=f"{subject.column}@{label}",
                pythonpath=os.path.abspath(path),
            )
            # Column order: the subject, its variants, then the others.
            libs = list(self.libraries.values())
            at = libs.index(subject) + 1 + len(self.variants)
            libs.insert(at, clone)
            self.libraries = {lib.name: lib for lib in libs}
            self.variants.append(name)
            for wl in self.workloads.values():
                if self.subject in wl.impls:
                    wl.impls[name] = wl.impls[self.subject]
            names.append(name)
        return names

    def _child(self, spec: dict[str, Any]) -> int:
        self._add_variants(spec.get("variants", []))
        lib = self.libraries[spec["library"]]
        try:
            mod = _import_library(lib)
        except BaseException as exc:  # report anything, never crash
            _emit(
                {
                    "status": "unavailable",
                    "reason": _short_error(exc),
                    "detail": traceback.format_exc(),
                }
            )
            return 0

        if "probe" in spec:
            _emit({"status": "ok", "version": _library_version(lib, mod)})
            return 0

        wl = self.workloads[spec["workload"]]
        impl = wl.impls[lib.name]
        missing = []
        for name in impl.requires:
            try:
                resolve(mod, name)
            except MissingName as exc:
                missing.append(str(exc))
        if missing:
            _emit({"status": "missing", "reason": ", ".join(missing)})
            return 0

        params = spec["params"]
        samples: list[float] = []
        extras: dict[str, list[float]] = {name: [] for name in wl.extras}
        try:
            for i in range(spec["warmup"] + spec["repeat"]):
                gc.collect()
                result = impl.func(mod, **params)
                reported: dict[str, float] = {}
                if isinstance(result, tuple):
                    result, reported = result
                missing_extras = set(wl.extras) - set(reported)
                if missing_extras:
                    raise RuntimeError(
                        f"the implementation did not report {', '.join(sorted(missing_extras))}"
                    )
                if i >= spec["warmup"]:
                    samples.append(float(result))
                    for name in wl.extras:
                        extras[name].append(float(reported[name]))
        except BaseException as exc:  # report anything, never crash
            _emit(
                {
                    "status": "error",
                    "reason": _short_error(exc),
                    "detail": traceback.format_exc(),
                    "samples": samples,
                }
            )
            return 0
        _emit({"status": "ok", "samples": samples, "extras": extras})
        return 0

    # -- parent side -------------------------------------------------------

    def _spawn(self, spec: dict[str, Any], timeout: float) -> dict[str, Any]:
        script = os.path.abspath(sys.modules["__main__"].__file__ or sys.argv[0])
        cmd = [sys.executable, script, _CHILD_FLAG, json.dumps(spec)]
        env = dict(os.environ)
        env.setdefault("PYTHONHASHSEED", "0")
        pythonpath = self.libraries[spec["library"]].pythonpath
        if pythonpath is not None:
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (pythonpath, env.get("PYTHONPATH", "")) if p
            )
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            return {"status": "timeout", "reason": f"no result after {timeout:.0f} s"}
        for line in reversed(proc.stdout.splitlines()):
            if line.startswith(_RESULT_MARK):
                result: dict[str, Any] = json.loads(line[len(_RESULT_MARK) :])
                return result
        tail = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        return {"status": "error", "reason": f"subprocess died: {tail}", "detail": proc.stderr}

    def _measure_row(
        self, specs: dict[str, dict[str, Any]], timeout: float, processes: int
    ) -> dict[str, _Cell]:
        """Measure one workload on several libraries (`specs`, by library) in
        `processes` rounds. Each round runs one fresh process per library,
        one after the other, starting with the next library each round, so
        that every round's numbers are taken within moments of each other
        (see `paired_ratio`). A library whose process fails is not measured
        in later rounds."""
        cells = {name: _Cell("ok") for name in specs}
        names = list(specs)
        for round_no in range(processes):
            first = round_no % len(names) if names else 0
            for name in names[first:] + names[:first]:
                cell = cells[name]
                if cell.status != "ok":
                    continue
                t0 = time.perf_counter()
                res = self._spawn(specs[name], timeout)
                took = time.perf_counter() - t0
                if res["status"] != "ok":
                    cells[name] = _Cell(
                        res["status"],
                        reason=res.get("reason", ""),
                        detail=res.get("detail", ""),
                        samples=cell.samples + list(res.get("samples", [])),
                        wall=cell.wall + took,
                    )
                    continue
                cell.wall += took
                samples = list(res.get("samples", []))
                cell.samples.extend(samples)
                cell.process_bests.append(min(samples))
                for extra_name, values in res.get("extras", {}).items():
                    cell.extras.setdefault(extra_name, []).extend(values)
        for cell in cells.values():
            if cell.status == "ok" and cell.process_bests:
                # One process: its best run. Several: the median of their
                # bests, so that one process that ran while the machine was
                # busy (or quiet) does not decide the number.
                cell.value = statistics.median(cell.process_bests)
        return cells

    def _parse_args(self, argv: Sequence[str] | None) -> argparse.Namespace:
        parser = argparse.ArgumentParser(
            description=self.description or f"{self.name} benchmarks",
            formatter_class=argparse.RawDescriptionHelpFormatter,
            epilog="workloads: " + ", ".join(self.workloads),
        )
        parser.add_argument(
            "--quick", action="store_true", help="smaller sizes and fewer repeats (smoke run)"
        )
        parser.add_argument(
            "--only",
            metavar="NAME",
            action="append",
            default=[],
            help="run only this workload (repeatable, or comma-separated)",
        )
        parser.add_argument(
            "--libs", metavar="A,B", default="", help="run only these libraries (default: all)"
        )
        parser.add_argument(
            "--repeat",
            type=int,
            default=None,
            help="override the number of timed repeats (best-of-N)",
        )
        parser.add_argument(
            "--variant",
            metavar="LABEL=PATH",
            action="append",
            default=[],
            help=f"also measure {self.subject} imported from PATH (another checkout's src/, "
            f"e.g. a prototype) as the column {self.subject}@LABEL; repeatable",
        )
        parser.add_argument(
            "--processes",
            type=int,
            default=1,
            metavar="K",
            help="measure each workload in K rounds of one fresh process per library "
            "and report the median of each library's best runs, and of the rounds' "
            "ratios (default 1)",
        )
        parser.add_argument(
            "--timeout",
            type=float,
            default=None,
            help="seconds before one measurement subprocess is abandoned",
        )
        parser.add_argument(
            "--json", metavar="PATH", default=None, help="also write the results as JSON to PATH"
        )
        parser.add_argument("--list", action="store_true", help="list the workloads and exit")
        parser.add_argument(
            "--verbose", "-v", action="store_true", help="print tracebacks of failed runs"
        )
        parser.add_argument(
            "--strict",
            action="store_true",
            help=f"exit with status 1 if any run failed or {self.subject} could not be measured",
        )
        return parser.parse_args(argv)

    def main(self, argv: Sequence[str] | None = None) -> int:
        argv = list(sys.argv[1:] if argv is None else argv)
        if len(argv) == 2 and argv[0] == _CHILD_FLAG:
            return self._child(json.loads(argv[1]))
        args = self._parse_args(argv)

        if args.list:
            for wl in self.workloads.values():
                print(f"{wl.name:14} {wl.title}  [{wl.describe_size(False)}]")
                if wl.description:
                    print(f"{'':14} {wl.description}")
            return 0

        if args.processes < 1:
            raise SystemExit("--processes must be at least 1")
        self._add_variants(args.variant)
        selected = self._select_workloads(args.only)
        libs = self._select_libraries(args.libs)
        quick = args.quick
        default_repeat = self.quick_repeat if quick else self.repeat
        timeout = args.timeout or (self.quick_timeout if quick else self.timeout)
        log = sys.stderr

        started = time.perf_counter()
        print(f"# {self.name} benchmarks{' (--quick)' if quick else ''}")
        print(
            f"# python {platform.python_version()} ({platform.python_implementation()}), "
            f"{platform.system()} {platform.machine()}, {os.cpu_count()} cpu(s)"
        )

        # Probe every library once.
        versions: dict[str, str | None] = {}
        unavailable: dict[str, str] = {}
        for lib in libs:
            if lib.module is None:
                versions[lib.name] = None
                continue
            res = self._spawn(
                {"library": lib.name, "probe": True, "variants": args.variant}, timeout
            )
            if res["status"] == "ok":
                versions[lib.name] = res.get("version")
            else:
                unavailable[lib.name] = res.get("reason", res["status"])
                if args.verbose and res.get("detail"):
                    print(res["detail"], file=log)
        for lib in libs:
            if lib.name in versions:
                v = versions[lib.name]
                print(f"# {lib.column}: {v if v else 'ok'}")
            else:
                print(self._unavailable_message(lib, unavailable[lib.name]))
        sys.stdout.flush()

        cells: dict[str, dict[str, _Cell]] = {}
        name_w = max(len(wl.name) for wl in selected)
        lib_w = max(len(lib.column) for lib in libs)
        for wl in selected:
            params = wl.quick_params if quick else wl.params
            repeat = args.repeat or ((wl.quick_repeat if quick else wl.repeat) or default_repeat)
            row: dict[str, _Cell] = {}
            cells[wl.name] = row
            specs: dict[str, dict[str, Any]] = {}
            for lib in libs:
                if lib.name not in wl.impls:
                    continue
                if lib.name in unavailable:
                    row[lib.name] = _Cell("unavailable", reason=unavailable[lib.name])
                    continue
                specs[lib.name] = {
                    "variants": args.variant,
                    "workload": wl.name,
                    "library": lib.name,
                    "params": params,
                    "warmup": wl.warmup,
                    "repeat": repeat,
                }
            row.update(self._measure_row(specs, timeout, args.processes))
            for lib in libs:
                if lib.name not in specs:
                    continue
                cell = row[lib.name]
                took = cell.wall
                shown = (
                    format_total(wl.kind, cell.value)
                    if cell.value is not None
                    else f"{cell.status}: {cell.reason}"
                )
                procs = f", median of {args.processes} processes" if args.processes > 1 else ""
                print(
                    f"  {wl.name:{name_w}} {lib.column:{lib_w}} {shown}  "
                    f"(best of {repeat}{procs}, {took:.1f} s wall)",
                    file=log,
                    flush=True,
                )
                if args.verbose and cell.detail:
                    print(cell.detail, file=log)

        print()
        print(self._report(selected, libs, cells, quick, args.processes))
        elapsed = time.perf_counter() - started
        print(f"\n# total wall time {elapsed:.1f} s")

        if args.json:
            self._write_json(
                args.json,
                selected,
                libs,
                cells,
                versions,
                unavailable,
                quick,
                elapsed,
                args.processes,
            )
            print(f"# results written to {args.json}")

        if args.strict:
            failed = any(
                c.status in ("error", "timeout", "missing")
                for row in cells.values()
                for c in row.values()
            )
            subject_missing = self.subject in unavailable
            if failed or subject_missing:
                return 1
        return 0

    def _unavailable_message(self, lib: Library, reason: str) -> str:
        if lib.name == self.subject:
            msg = (
                f"# !! {lib.column}: `import {lib.module}` FAILED: {reason}\n"
                f"# !! {lib.column} is NOT measured in this run; the other "
                f"libraries are reported below."
            )
        else:
            msg = f"# {lib.column}: not available ({reason}); skipped"
        if lib.install_hint:
            msg += f"\n#    install with: {lib.install_hint}"
        return msg

    def _select_workloads(self, only: Sequence[str]) -> list[Workload]:
        names = [n.strip() for item in only for n in item.split(",") if n.strip()]
        if not names:
            return list(self.workloads.values())
        unknown = [n for n in names if n not in self.workloads]
        if unknown:
            raise SystemExit(
                f"unknown workload(s): {', '.join(unknown)}; "
                f"choose from {', '.join(self.workloads)}"
            )
        return [self.workloads[n] for n in self.workloads if n in names]

    def _select_libraries(self, libs: str) -> list[Library]:
        names = [n.strip() for n in libs.split(",") if n.strip()]
        if not names:
            return list(self.libraries.values())
        if self.subject in names:
            names += self.variants  # a --variant goes with its subject
        unknown = [n for n in names if n not in self.libraries]
        if unknown:
            raise SystemExit(
                f"unknown library(ies): {', '.join(unknown)}; "
                f"choose from {', '.join(self.libraries)}"
            )
        return [lib for lib in self.libraries.values() if lib.name in names]

    # -- report ------------------------------------------------------------

    def _report(
        self,
        selected: Sequence[Workload],
        libs: Sequence[Library],
        cells: dict[str, dict[str, _Cell]],
        quick: bool,
        processes: int = 1,
    ) -> str:
        lib_names = [lib.name for lib in libs]
        baselines = [b for b in self.baselines if b in lib_names]
        # The subject and its --variant copies each get ratio columns.
        subjects = [name for name in [self.subject, *self.variants] if name in lib_names]
        notes: list[str] = []
        note_index: dict[str, int] = {}

        def mark(cell: _Cell, lib: Library) -> str:
            key = f"{lib.column}: {cell.status}: {cell.reason}"
            if key not in note_index:
                note_index[key] = len(notes) + 1
                notes.append(key)
            label = {
                "unavailable": "n/a",
                "missing": "missing",
                "error": "ERROR",
                "timeout": "TIMEOUT",
            }.get(cell.status, cell.status)
            return f"{label}[{note_index[key]}]"

        def cell_text(wl: Workload, lib: Library, fmt: Callable[[_Cell], str]) -> str:
            cell = cells[wl.name].get(lib.name)
            if cell is None:
                return "-"
            if cell.value is None:
                return mark(cell, lib)
            return fmt(cell)

        def ratio(wl: Workload, subject: str, base: str) -> float | None:
            a = cells[wl.name].get(subject)
            b = cells[wl.name].get(base)
            if a is None or b is None:
                return None
            return paired_ratio(a, b)

        def extra_ratio(wl: Workload, name: str, subject: str, base: str) -> float | None:
            a = cells[wl.name].get(subject)
            b = cells[wl.name].get(base)
            if a is None or b is None:
                return None
            mine, theirs = a.extra(name), b.extra(name)
            if mine is None or not theirs:
                return None
            return mine / theirs

        def total(kind: str, cell: _Cell) -> str:
            assert cell.value is not None
            text = format_total(kind, cell.value)
            best = min(cell.samples) if cell.samples else 0.0
            if len(cell.samples) > 1 and best > 0:
                spread = (statistics.median(cell.samples) - best) / best * 100
                text += f" +{spread:.0f}%"
            return text

        subject_col = self.libraries[self.subject].column
        pairs = [(subj, base) for subj in subjects for base in baselines]
        ratio_cols = [
            f"{self.libraries[subj].column}/{self.libraries[base].column}" for subj, base in pairs
        ]

        per_rows = []
        total_rows = []
        rate_rows = []
        for wl in selected:
            params = wl.quick_params if quick else wl.params
            ops = max(1, int(wl.ops(params)))

            def per_op(cell: _Cell, kind: str = wl.kind, ops: int = ops) -> str:
                assert cell.value is not None
                return format_per_op(kind, cell.value / ops)

            def whole(cell: _Cell, kind: str = wl.kind) -> str:
                return total(kind, cell)

            per_rows.append(
                [wl.title, unit_label(wl)]
                + [cell_text(wl, lib, per_op) for lib in libs]
                + [format_ratio(ratio(wl, subj, base)) for subj, base in pairs]
            )
            for name, extra in wl.extras.items():

                def extra_text(cell: _Cell, name: str = name, kind: str = extra.kind) -> str:
                    value = cell.extra(name)
                    return "-" if value is None else format_per_op(kind, value)

                per_rows.append(
                    [f"{wl.title}: {extra.title}", f"per {extra.per} (median)"]
                    + [cell_text(wl, lib, extra_text) for lib in libs]
                    + [format_ratio(extra_ratio(wl, name, subj, base)) for subj, base in pairs]
                )
            total_rows.append(
                [wl.title, wl.describe_size(quick)] + [cell_text(wl, lib, whole) for lib in libs]
            )
            if wl.rate is not None and wl.kind == "time":

                def rate(cell: _Cell, ops: int = ops) -> str:
                    assert cell.value is not None
                    return format_rate(ops / cell.value) if cell.value > 0 else "-"

                rate_rows.append([wl.title, wl.rate] + [cell_text(wl, lib, rate) for lib in libs])

        cols = [lib.column for lib in libs]
        how = "best of N" if processes == 1 else f"median of {processes} processes' best of N"
        out = [
            f"Per operation ({how}; lower is better; (CPU) = process CPU time, "
            "otherwise wall time):",
            render_table(["workload", "unit", *cols, *ratio_cols], per_rows, align_left=2),
            "",
            f"Whole run ({how}, +x% = median run above best run):",
            render_table(["workload", "size", *cols], total_rows, align_left=2),
        ]
        if rate_rows:
            out += [
                "",
                "Rate (best of N; higher is better; the ratio of two rates is the "
                "inverse of the per-operation ratio):",
                render_table(["workload", "unit", *cols], rate_rows, align_left=2),
            ]
        if pairs:
            out += [
                "",
                f"Ratios are {subject_col} / other: below 1.00x means "
                f"{subject_col} is faster (or smaller).",
            ]
            if processes > 1:
                out += [
                    f"The processes ran in {processes} rounds, one per library in each "
                    "round, in a rotating order; each ratio is the median of the "
                    "rounds' ratios (so it need not equal the quotient of the two "
                    "cells), except on the rows of a second metric, which divide the "
                    "medians over all runs.",
                ]
        if notes:
            out += ["", "Notes:"] + [f"  [{i}] {text}" for i, text in enumerate(notes, 1)]
        return "\n".join(out)

    def _write_json(
        self,
        path: str,
        selected: Sequence[Workload],
        libs: Sequence[Library],
        cells: dict[str, dict[str, _Cell]],
        versions: dict[str, str | None],
        unavailable: dict[str, str],
        quick: bool,
        elapsed: float,
        processes: int = 1,
    ) -> None:
        results: dict[str, Any] = {}
        for wl in selected:
            params = wl.quick_params if quick else wl.params
            ops = max(1, int(wl.ops(params)))
            entry: dict[str, Any] = {
                "title": wl.title,
                "kind": wl.kind,
                "per": wl.per,
                "rate_unit": wl.rate,
                "params": params,
                "ops": ops,
                "libraries": {},
                "ratios": {},
                "round_ratios": {},
            }
            entry["clock"] = wl.clock
            entry["unit"] = unit_label(wl)
            entry["extras"] = {
                name: {"title": extra.title, "kind": extra.kind, "per": extra.per}
                for name, extra in wl.extras.items()
            }
            entry["extra_ratios"] = {}
            for name, cell in cells[wl.name].items():
                entry["libraries"][name] = {
                    "status": cell.status,
                    "best": cell.value,
                    "per_op": None if cell.value is None else cell.value / ops,
                    "rate": ops / cell.value
                    if wl.rate is not None and wl.kind == "time" and cell.value
                    else None,
                    "samples": cell.samples,
                    "process_bests": cell.process_bests,
                    "extras": {key: cell.extra(key) for key in wl.extras},
                    "extra_samples": cell.extras,
                    "reason": cell.reason or None,
                }
            for subject in [self.subject, *self.variants]:
                subj = cells[wl.name].get(subject)
                for base in self.baselines:
                    other = cells[wl.name].get(base)
                    if not (subj and other):
                        continue
                    value = paired_ratio(subj, other)
                    if value is not None:
                        entry["ratios"][f"{subject}/{base}"] = value
                    rounds = round_ratios(subj, other)
                    if rounds:
                        entry["round_ratios"][f"{subject}/{base}"] = rounds
                    for key in wl.extras:
                        mine, theirs = subj.extra(key), other.extra(key)
                        if mine is not None and theirs:
                            entry["extra_ratios"].setdefault(key, {})[f"{subject}/{base}"] = (
                                mine / theirs
                            )
            results[wl.name] = entry
        payload = {
            "suite": self.name,
            "description": self.description,
            "processes": processes,
            "quick": quick,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "subject": self.subject,
            "variants": {
                name: self.libraries[name].pythonpath
                for name in self.variants
                if name in self.libraries
            },
            "libraries": {
                lib.name: {
                    "version": versions.get(lib.name),
                    "available": lib.name not in unavailable,
                    "reason": unavailable.get(lib.name),
                }
                for lib in libs
            },
            "elapsed_s": elapsed,
            "results": results,
        }
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=2)
            fh.write("\n")
