"""Pure parts of the benchmarks: statistics, targets, results, the printed table and the JSON file.

Nothing here touches the network or the stack, so all of it is unit-tested
(``tests/unit/test_benchmarks_core.py``).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

Verdict = Literal["met", "missed", "n/a"]
Status = Literal["ok", "error", "skipped"]


def median(values: Iterable[float]) -> float:
    """The median of the values.

    :param values: at least one number.
    :raises ValueError: when there are none.
    """
    data = [float(v) for v in values]
    if not data:
        raise ValueError("median of no values")
    return float(statistics.median(data))


def percentile(values: Iterable[float], pct: float) -> float:
    """A percentile by linear interpolation between closest ranks (numpy's default method).

    :param values: at least one number.
    :param pct: 0..100.
    :raises ValueError: on no values or a percentage outside 0..100.
    """
    data = sorted(float(v) for v in values)
    if not data:
        raise ValueError("percentile of no values")
    if not 0 <= pct <= 100:
        raise ValueError(f"percentile must be within 0..100, got {pct}")
    rank = (len(data) - 1) * pct / 100
    low = math.floor(rank)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (rank - low)


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator``, or ``None`` when either is missing or the denominator is 0.

    :param numerator: the value compared.
    :param denominator: the value it is compared with.
    """
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def summarize(samples: Sequence[float]) -> dict[str, float | int]:
    """Count, median, min, max and (for 2+ samples) the standard deviation of a series.

    :param samples: the measurements, at least one.
    """
    summary: dict[str, float | int] = {
        "n": len(samples),
        "median": median(samples),
        "min": min(samples),
        "max": max(samples),
    }
    if len(samples) > 1:
        summary["stdev"] = statistics.stdev(samples)
    return summary


@dataclass
class Sample:
    """One timed run of one method.

    :param seconds: the measured time.
    :param phases: where that time went, by phase (seconds).
    :param detail: anything else worth keeping (job id, HTTP calls...).
    """

    seconds: float
    phases: dict[str, float] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)


def rotation(names: Sequence[str], round_index: int) -> list[str]:
    """The order methods run in one round: rotated by one each round, so none always goes first.

    :param names: the methods.
    :param round_index: 0-based round number.
    """
    if not names:
        return []
    shift = round_index % len(names)
    return [*names[shift:], *names[:shift]]


def interleave(
    methods: Mapping[str, Callable[[], Sample]],
    *,
    repeats: int,
    warmup: int = 1,
    max_failures: int = 2,
    between: Callable[[str, Sample | None], None] | None = None,
) -> tuple[dict[str, list[Sample]], dict[str, list[str]]]:
    """Time several methods side by side: ``warmup`` discarded rounds, then ``repeats`` measured rounds.

    Measuring them interleaved (not one method's runs, then the next's) exposes every method to the same
    background load, which is what makes the ratios meaningful on a shared machine.

    :param methods: name -> a callable that runs the method once and returns its :class:`Sample`.
    :param repeats: measured rounds.
    :param warmup: rounds run first and discarded (JIT, caches, the first jar upload).
    :param max_failures: a method that raised this many times is not run again.
    :param between: called after every run (cleanup), with the method name and its sample (``None`` on error).
    :return: samples per method (measured rounds only) and error messages per method.
    """
    samples: dict[str, list[Sample]] = {name: [] for name in methods}
    errors: dict[str, list[str]] = {name: [] for name in methods}
    for round_index in range(warmup + repeats):
        for name in rotation(list(methods), round_index):
            if len(errors[name]) >= max_failures:
                continue
            sample: Sample | None = None
            try:
                sample = methods[name]()
            except Exception as error:
                errors[name].append(f"{type(error).__name__}: {error}"[:2000])
            if sample is not None and round_index >= warmup:
                samples[name].append(sample)
            if between is not None:
                between(name, sample)
    return samples, {name: errs for name, errs in errors.items() if errs}


@dataclass(frozen=True)
class Target:
    """A target of the issue: a figure compared with a threshold.

    :param figure: the key of the figure in :attr:`BenchResult.figures`.
    :param op: ``>=`` (at least) or ``<=`` (at most).
    :param threshold: the bound.
    :param text: how the target reads in the table, e.g. ``>= 5x faster than the CLI``.
    """

    figure: str
    op: Literal[">=", "<="]
    threshold: float
    text: str

    def verdict(self, value: float | None) -> Verdict:
        """``met``/``missed`` for a measured value, ``n/a`` when there is none.

        :param value: the measured figure.
        """
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "n/a"
        ok = value >= self.threshold if self.op == ">=" else value <= self.threshold
        return "met" if ok else "missed"


@dataclass
class BenchResult:
    """What one benchmark measured.

    :param name: short id (``pyflink_submit``), also the ``--only`` name.
    :param title: one line for humans.
    :param status: ``ok`` (measured), ``error`` (could not measure) or ``skipped``.
    :param figures: the headline numbers, by name; the ``units`` dict gives their units.
    :param units: unit of each figure (``s``, ``ms``, ``x``, ``events/s``...).
    :param targets: the targets checked against the figures.
    :param samples: raw measurements behind the figures.
    :param profile: where the time goes (per phase, per HTTP call...), for a missed target.
    :param notes: caveats and gaps, in plain words.
    :param error: what went wrong when the status is ``error``.
    :param seconds: how long the benchmark took.
    """

    name: str
    title: str
    status: Status = "ok"
    figures: dict[str, Any] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)
    samples: dict[str, Any] = field(default_factory=dict)
    profile: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    def figure(self, key: str, value: Any, unit: str = "") -> None:
        """Record a headline figure.

        :param key: its name.
        :param value: the number (or ``None`` when it could not be measured).
        :param unit: its unit.
        """
        self.figures[key] = value
        if unit:
            self.units[key] = unit

    def verdicts(self) -> list[tuple[Target, Verdict]]:
        """Each target with its verdict on the recorded figures."""
        return [(target, target.verdict(_number(self.figures.get(target.figure)))) for target in self.targets]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, verdicts included."""
        data = asdict(self)
        data["targets"] = [
            {**asdict(target), "value": self.figures.get(target.figure), "verdict": verdict}
            for target, verdict in self.verdicts()
        ]
        return data


def record_methods(result: BenchResult, samples: dict[str, list[Sample]], errors: dict[str, list[str]]) -> None:
    """Record each method's median (and the raw samples and per-phase medians) in the result.

    :param result: where to record.
    :param samples: measured samples per method.
    :param errors: error messages per method.
    """
    for method, runs in samples.items():
        times = [s.seconds for s in runs]
        result.figure(f"{method}_median_s", median(times) if times else None, "s")
        result.samples[method] = {
            **(summarize(times) if times else {"n": 0}),
            "seconds": [round(t, 4) for t in times],
            "details": [s.detail for s in runs],
        }
        phases: dict[str, list[float]] = {}
        for sample in runs:
            for phase, seconds in sample.phases.items():
                phases.setdefault(phase, []).append(seconds)
        if phases:
            result.profile[method] = {
                phase: {"median_s": round(median(values), 4), "runs": len(values)} for phase, values in phases.items()
            }
    for method, messages in errors.items():
        result.notes.append(f"{method} failed {len(messages)}x: {messages[0]}")
    if errors:
        result.status = "error"
        result.error = "; ".join(f"{m}: {msgs[0][:200]}" for m, msgs in errors.items())


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def format_value(value: Any, unit: str = "") -> str:
    """A figure as the table shows it: 3 significant digits, with its unit.

    :param value: a number, ``None`` or any other value.
    :param unit: the unit (``x`` is written right after the number).
    """
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    magnitude = abs(value)
    if isinstance(value, int) or (magnitude >= 100 and float(value).is_integer()):
        text = f"{int(value):,}"
    elif magnitude >= 1000:
        text = f"{value:,.0f}"
    elif magnitude >= 100:
        text = f"{value:.0f}"
    elif magnitude >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.3g}"
    if not unit:
        return text
    return f"{text}{unit}" if unit == "x" else f"{text} {unit}"


def render_table(results: Sequence[BenchResult]) -> str:
    """The results as a plain-text table: one row per figure, targets and verdicts beside their figure.

    :param results: the benchmarks' results, in run order.
    """
    rows: list[tuple[str, str, str, str, str]] = [("benchmark", "figure", "value", "target", "verdict")]
    for result in results:
        if result.status != "ok":
            rows.append((result.name, result.status.upper(), (result.error or "")[:100], "", ""))
        targets = {target.figure: (target, verdict) for target, verdict in result.verdicts()}
        first = result.status != "ok"
        for key, value in result.figures.items():
            target, verdict = targets.pop(key, (None, ""))
            rows.append(
                (
                    "" if first else result.name,
                    key,
                    format_value(value, result.units.get(key, "")),
                    target.text if target else "",
                    verdict.upper() if verdict in ("missed",) else verdict,
                )
            )
            first = True
        for target, verdict in targets.values():  # targets whose figure was never recorded
            rows.append(("" if first else result.name, target.figure, "-", target.text, verdict))
            first = True
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def machine_info() -> dict[str, Any]:
    """The machine a run happened on: CPU, cores, memory, load, OS, Python."""
    info: dict[str, Any] = {
        "hostname": platform.node(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "cpu_count": os.cpu_count(),
    }
    with contextlib.suppress(OSError):  # not on Linux/macOS
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text(errors="replace").splitlines():
            if line.startswith("MemTotal:"):
                info["memory_gb"] = round(int(line.split()[1]) / 1024 / 1024, 1)
                break
    return info


def build_report(
    results: Sequence[BenchResult], *, settings: Mapping[str, Any], started: float, machine: Mapping[str, Any]
) -> dict[str, Any]:
    """The JSON document of one run.

    :param results: the benchmarks' results.
    :param settings: the command-line settings used.
    :param started: epoch seconds when the run started.
    :param machine: :func:`machine_info` taken at the start.
    """
    verdicts = [verdict for result in results for _, verdict in result.verdicts()]
    return {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "duration_s": round(time.time() - started, 1),
        "machine": dict(machine),
        "settings": dict(settings),
        "summary": {
            "targets_met": verdicts.count("met"),
            "targets_missed": verdicts.count("missed"),
            "targets_unmeasured": verdicts.count("n/a"),
            "errors": [result.name for result in results if result.status == "error"],
        },
        "results": [result.to_dict() for result in results],
    }


def write_json(path: Path, document: Mapping[str, Any]) -> Path:
    """Write a JSON document atomically (a reader never sees half a file).

    :param path: the file to (over)write; its directory is created.
    :param document: JSON-serialisable data (non-finite floats become ``null``).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_finite(document), indent=2, sort_keys=False, default=str) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _finite(value: Any) -> Any:
    """JSON has no NaN/Infinity: turn them into ``None``, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def combine_repeats(runs: Sequence[BenchResult]) -> BenchResult:
    """One result from several whole runs of a benchmark: each ratio (unit ``x``) is the median of the runs.

    Next to each ratio go its spread (``<ratio>_min``, ``<ratio>_max``) and the runs' values
    (``samples["repeat_runs"]``); targets are judged on the median. Other figures are the last run's.

    :param runs: results of the same benchmark, at least one (runs that errored are left out, and noted).
    :raises ValueError: when there are none.
    """
    if not runs:
        raise ValueError("no runs to combine")
    good = [run for run in runs if run.status == "ok"]
    combined = replace(good[-1] if good else runs[-1])
    combined.figures, combined.units = dict(combined.figures), dict(combined.units)
    combined.notes = [*combined.notes, f"{len(good)} of {len(runs)} run(s) measured; ratios are their medians"]
    combined.samples = {**combined.samples, "repeat_runs": [run.figures for run in runs]}
    combined.seconds = sum(run.seconds for run in runs)
    for key, unit in list(combined.units.items()):
        values = [_number(run.figures.get(key)) for run in good]
        measured = [value for value in values if value is not None]
        if unit != "x" or not measured:
            continue
        combined.figures[key] = median(measured)
        combined.figures[f"{key}_min"], combined.figures[f"{key}_max"] = min(measured), max(measured)
        combined.units[f"{key}_min"] = combined.units[f"{key}_max"] = "x"
    for run in runs:
        if run.status != "ok":
            combined.notes.append(f"a run ended {run.status}: {(run.error or '')[:300]}")
    return combined
