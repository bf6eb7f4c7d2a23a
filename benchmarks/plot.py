"""The throughput/latency plot of the rate sweep (matplotlib, the ``bench`` extra)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from benchmarks.throughput import SweepStep


def plot_sweep(steps: Sequence[SweepStep], path: Path, *, title: str) -> Path:
    """Throughput (left axis) and latency p50/p99 (right axis, log) against the achieved input rate.

    The rate from which the pipeline stops keeping up is marked, so a reader sees where back-pressure
    starts.

    :param steps: the sweep's steps.
    :param path: the PNG to write.
    :param title: the plot's title.
    :raises ImportError: when matplotlib is not installed.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    from benchmarks.throughput import backpressure_starts

    ordered = sorted(steps, key=lambda s: s.input_rate)
    x = [s.input_rate for s in ordered]
    fig, left = plt.subplots(figsize=(9, 5.5))
    left.plot(x, x, linestyle=":", color="grey", label="ideal (output = input)")
    left.plot(x, [s.throughput for s in ordered], marker="o", color="tab:blue", label="throughput")
    left.set_xlabel("input rate (events/s)")
    left.set_ylabel("throughput (input events/s processed)", color="tab:blue")
    left.grid(True, alpha=0.3)
    right = left.twinx()
    for attr, style, label in (("latency_p50_ms", "-", "latency p50"), ("latency_p99_ms", "--", "latency p99")):
        points = [(s.input_rate, getattr(s, attr)) for s in ordered if getattr(s, attr) is not None]
        if points:
            right.plot(*zip(*points, strict=True), linestyle=style, marker="s", color="tab:red", label=label)
    right.set_yscale("log")
    right.yaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    right.set_ylabel("end-to-end latency (ms, log)", color="tab:red")
    if x and max(x) >= 10 * min(x) > 0:
        left.set_xscale("log")
        left.set_yscale("log")
        for axis in (left.xaxis, left.yaxis):
            axis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:,.0f}"))
    knee = backpressure_starts(ordered)
    if knee is not None:
        left.axvline(knee, color="tab:orange", linewidth=2, alpha=0.7, label=f"back-pressure from {knee:,.0f}/s")
    handles = left.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    labels = left.get_legend_handles_labels()[1] + right.get_legend_handles_labels()[1]
    left.legend(handles, labels, loc="upper left", fontsize="small")
    left.set_title(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
