"""
What the training logs of FPO runs say about the flow's fit: one row per run of each results directory's
``train_logs/`` (``mujoco_benchmark.py --train-log``; a resumed run's logs ``<run>_from<steps>`` are joined).

Per run (marked "unfinished" while it has no record in ``runs/``): the updates logged, the median and largest mean
CFM loss of an update, how many updates had a mean CFM loss above ``--cfm-clamp`` (the default clamp, 20: a loss
that large means the flow no longer fits the actions it sampled) and the first step at which one did, the median
fraction of rollout actions outside the bounds (logged only with ``fit_clipped_actions``), and the largest learning
rate and the one after the last update (with the adaptive rate, they move).

    python benchmarks/train_log_summary.py benchmarks/results/dmc benchmarks/results/dmc_levers/dmc_1M \\
        benchmarks/results/dmc_levers/dmc_fit_clipped_1M
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path
from typing import Any

import numpy as np


def load_run_logs(results: Path, prefix: str = "fpo_") -> dict[str, list[dict[str, str]]]:
    """The training updates of each run in ``results/train_logs/`` whose name starts with ``prefix``, in step order
    (rows without train/ entries, such as the first rollout's, are left out)."""
    runs: dict[str, list[dict[str, str]]] = {}
    for path in sorted((results / "train_logs").glob(f"{prefix}*/progress.csv")):
        name = path.parent.name.rsplit("_from", 1)[0]
        with open(path, newline="") as f:
            runs.setdefault(name, []).extend(row for row in csv.DictReader(f) if row.get("train/cfm_loss"))
    for rows in runs.values():
        rows.sort(key=lambda row: float(row["time/total_timesteps"]))
    return runs


def summarize(rows: list[dict[str, str]], cfm_clamp: float = 20.0) -> dict[str, Any]:
    """The per-run figures listed in the module's docstring (``None`` where the log has no such column)."""
    cfm = np.array([float(row["train/cfm_loss"]) for row in rows])
    steps = [int(float(row["time/total_timesteps"])) for row in rows]
    over = cfm > cfm_clamp
    clipped = [float(row["train/clipped_action_fraction"]) for row in rows if row.get("train/clipped_action_fraction")]
    rates = [float(row["train/learning_rate"]) for row in rows if row.get("train/learning_rate")]
    return dict(
        updates=len(rows),
        median_cfm=float(np.median(cfm)),
        max_cfm=float(cfm.max()),
        updates_over_clamp=int(over.sum()),
        first_over_clamp_step=steps[int(np.argmax(over))] if over.any() else None,
        median_clipped_fraction=float(np.median(clipped)) if clipped else None,
        largest_learning_rate=max(rates) if rates else None,
        final_learning_rate=rates[-1] if rates else None,
    )


def table(directories: list[Path], cfm_clamp: float = 20.0) -> str:
    """A markdown table, one row per FPO run of each directory."""
    lines = [
        f"| results | run | updates | median CFM loss | largest | updates > {cfm_clamp:g} (from step) | "
        "median fraction of actions outside the bounds | learning rate: largest, final |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for directory in directories:
        for name, rows in load_run_logs(directory).items():
            s = summarize(rows, cfm_clamp)
            first = f" (from {s['first_over_clamp_step']})" if s["first_over_clamp_step"] is not None else ""
            clipped = "—" if s["median_clipped_fraction"] is None else f"{s['median_clipped_fraction']:.2f}"
            rate = "—"
            if s["final_learning_rate"] is not None:
                rate = f"{s['largest_learning_rate']:.1e}, {s['final_learning_rate']:.1e}"
            unfinished = "" if (directory / "runs" / f"{name}.json").exists() else " (unfinished)"
            lines.append(
                f"| {directory.name} | {name}{unfinished} | {s['updates']} | {s['median_cfm']:.2f} | {s['max_cfm']:.3g} | "
                f"{s['updates_over_clamp']}{first} | {clipped} | {rate} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="+", type=Path, help="results directories holding train_logs/")
    parser.add_argument("--cfm-clamp", type=float, default=20.0, help="count updates whose mean CFM loss exceeds this")
    args = parser.parse_args()
    print(table(args.results, args.cfm_clamp), end="")


if __name__ == "__main__":
    main()
