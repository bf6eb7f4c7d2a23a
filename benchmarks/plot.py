"""The throughput/latency plot of the rate sweep (matplotlib, the ``bench`` extra)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from benchmarks.throughput import SweepStep


def plot_sweep(steps: Sequence[SweepStep], path: Path, *, title: str) -> Path:
    """Achieved input and throughput (left axis), latency p50/p99 (right axis, log) against the offered rate.

    The first offered rate the pipeline does not keep up with is marked, so a reader sees where
    back-pressure starts: throughput flattens under the offered rate and latency climbs.

    :param steps: the sweep's steps, in the order they ran.
    :param path: the PNG to write.
    :param title: the plot's title.
    :raises ImportError: when matplotlib is not installed.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    from benchmarks.throughput import saturation

    ordered = sorted(steps, key=lambda s: s.target_rate)
    x = [s.target_rate for s in ordered]
    fig, left = plt.subplots(figsize=(9, 5.5))
    left.plot(x, x, linestyle=":", color="grey", label="asked (offered) rate")
    left.plot(x, [s.input_rate for s in ordered], marker=".", color="tab:green", label="input achieved")
    left.plot(x, [s.throughput for s in ordered], marker="o", color="tab:blue", label="throughput")
    left.set_xlabel("offered input rate (events/s)")
    left.set_ylabel("events/s", color="tab:blue")
    left.grid(True, alpha=0.3)
    right = left.twinx()
    for attr, style, label in (("latency_p50_ms", "-", "latency p50"), ("latency_p99_ms", "--", "latency p99")):
        points = [(s.target_rate, getattr(s, attr)) for s in ordered if getattr(s, attr) is not None]
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
    kept_up_to, saturated = saturation(ordered)
    if saturated is not None:
        kept = f", kept up to {kept_up_to:,.0f}/s" if kept_up_to else ""
        left.axvline(saturated.target_rate, color="tab:orange", linewidth=2, alpha=0.7,
                     label=f"back-pressure: saturated at {saturated.target_rate:,.0f}/s offered{kept}")  # fmt: skip
    handles = left.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    labels = left.get_legend_handles_labels()[1] + right.get_legend_handles_labels()[1]
    left.legend(handles, labels, loc="upper left", fontsize="small")
    left.set_title(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
