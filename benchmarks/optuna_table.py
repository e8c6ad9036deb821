"""
Ranking of an Optuna study of ``python -m sb3_fpo.zoo train -optimize``: its completed trials, best first, with the
FPO hyperparameters each trained with (``n_steps``, ``batch_size``, ``gamma`` and ``gae_lambda`` from the trial's
user attributes, which the sampler writes, the rest from its parameters).

    python benchmarks/optuna_table.py benchmarks/results/optuna_halfcheetah/study.log fpo_halfcheetah_200k
"""

from __future__ import annotations

import argparse

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

COLUMNS = [
    "n_steps",
    "batch_size",
    "n_epochs",
    "learning_rate",
    "gamma",
    "gae_lambda",
    "clip_range",
    "trust_region",
    "ratio_mode",
    "n_samples",
    "flow_steps",
    "velocity_net_arch",
    "critic_net_arch",
]


def cell(name: str, value: object) -> str:
    if not isinstance(value, float):
        return str(value)
    return f"{value:.2g}" if name == "learning_rate" else f"{value:.4g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().split("\n\n")[0])
    parser.add_argument("journal", help="the study's journal file (the --storage path ending in .log)")
    parser.add_argument("study_name")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=args.study_name, storage=JournalStorage(JournalFileBackend(args.journal)))
    trials = study.trials  # each access copies every trial out of the storage
    done = sorted((t for t in trials if t.state.name == "COMPLETE"), key=lambda t: -t.value)
    print("| trial | value | " + " | ".join(COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 2) + "|")
    for trial in done:
        values = {**trial.params, **trial.user_attrs}
        label = str(trial.number)
        if "reference" in trial.user_attrs:  # a trial enqueued by hand (study.enqueue_trial(..., user_attrs=...))
            label += f" ({trial.user_attrs['reference']})"
        cells = " | ".join(cell(name, values[name]) for name in COLUMNS)
        print(f"| {label} | {trial.value:.0f} | {cells} |")
    states = [t.state.name.lower() for t in trials]
    print(f"\n{len(states)} trials: " + ", ".join(f"{states.count(s)} {s}" for s in sorted(set(states))))


if __name__ == "__main__":
    main()
