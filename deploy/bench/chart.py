"""The benchmark's chart: throughput and p99 per scenario and concurrency,
with the pgbench ceilings measured in the same run. Called by bench.py; also
`python3 deploy/bench/chart.py results.json chart.svg` to redraw one."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path


def write(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = report["results"]
    scenarios: list[str] = []
    titles: dict[str, str] = {}
    for r in results:
        if r["scenario"] not in titles:
            scenarios.append(r["scenario"])
            titles[r["scenario"]] = r["title"]
    conns = sorted({r["connections"] for r in results})
    by = {(r["scenario"], r["connections"]): r for r in results}
    colors = ["#9ecae1", "#4292c6", "#08519c", "#3182bd", "#6baed6"]

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(12, 8.5), sharex=True)
    width = 0.8 / len(conns)
    xs = range(len(scenarios))
    for j, c in enumerate(conns):
        offs = [x - 0.4 + width * (j + 0.5) for x in xs]
        rps = [by.get((s, c), {}).get("rps", 0) for s in scenarios]
        p99 = [by.get((s, c), {}).get("p99_ms", 0) for s in scenarios]
        top.bar(offs, rps, width, label=f"{c} conn", color=colors[j % len(colors)])
        bottom.bar(offs, p99, width, label=f"{c} conn", color=colors[j % len(colors)])
        for x, s in zip(offs, scenarios):
            r = by.get((s, c))
            if r and r.get("ceiling_rps"):
                top.plot([x - width / 2, x + width / 2], [r["ceiling_rps"]] * 2, color="#d62728", lw=2.2)
                top.annotate(f"{r['ratio']:.2f}x", (x, r["rps"]), textcoords="offset points",
                             xytext=(0, 3), ha="center", fontsize=7)
    top.plot([], [], color="#d62728", lw=2.2, label="pgbench ceiling (same conns)")
    top.set_yscale("log")
    top.set_ylabel("requests/s (log)")
    top.set_title("Throughput per scenario; red: the PostgreSQL ceiling measured in the same run "
                  "(label: ratio to it)", fontsize=10)
    top.legend(fontsize=8, loc="upper right")
    top.grid(axis="y", which="both", alpha=0.3)
    bottom.set_yscale("log")
    bottom.set_ylabel("p99 latency, ms (log)")
    bottom.set_title("p99 latency per scenario", fontsize=10)
    bottom.grid(axis="y", which="both", alpha=0.3)
    bottom.set_xticks(list(xs))
    bottom.set_xticklabels([textwrap.fill(titles[s], 18) for s in scenarios], fontsize=8)
    machine = report.get("machine", {})
    fig.suptitle(
        f"deploy/bench/run.sh, {report.get('started', '')}, {report.get('duration_s', '?')} s per point, "
        f"{machine.get('cores', '?')} cores ({machine.get('cpu', '')}), commit {report.get('git', '')}",
        fontsize=9,
    )
    fig.tight_layout()
    if path.suffix == ".svg":
        fig.savefig(path, format="svg", metadata={"Date": None})
    else:
        fig.savefig(path, dpi=80)
    plt.close(fig)


if __name__ == "__main__":
    src, dst = Path(sys.argv[1]), Path(sys.argv[2])
    write(json.loads(src.read_text()), dst)
