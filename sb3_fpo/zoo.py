"""
rl-zoo3 entry point for FPO: ``python -m sb3_fpo.zoo <script> [rl-zoo3 arguments]`` (console script ``sb3-fpo-zoo``).

Scripts: ``train``, ``enjoy``, ``record_video``, ``plot_train``, ``plot_from_file``, ``all_plots``; each takes the
arguments of rl-zoo3's script of the same name (``python -m sb3_fpo.zoo train -h``). Examples::

    python -m sb3_fpo.zoo train --algo fpo --env Pendulum-v1
    python -m sb3_fpo.zoo enjoy --algo fpo --env Pendulum-v1 -f logs/ -n 1000
    python -m sb3_fpo.zoo train --algo fpo --env Pendulum-v1 -optimize --n-trials 50 \\
        --storage logs/fpo_pendulum.log --study-name fpo_pendulum

This is rl-zoo3 itself, not a fork: :func:`register` adds ``fpo`` to rl-zoo3's tables (``ALGOS``,
``HYPERPARAMS_SAMPLER``, ``HYPERPARAMS_CONVERTER``) and the zoo's scripts run unchanged, so ``--algo ppo``, ``sac``
... keep working through this entry. Besides the tables, ``train`` uses :class:`FPOExperimentManager`, a subclass
of the zoo's ``ExperimentManager`` that

* reads FPO's presets (``hyperparams/fpo.yml``, shipped in the package) when ``--algo fpo`` is given without
  ``--conf-file`` (the zoo would look for ``fpo.yml`` inside its own package);
* loads Optuna trial 0 with ``--trial-id 0`` (the zoo skips a falsy trial id);
* prunes a trial whose final evaluation is not finite (the zoo already prunes trials that raise ``ValueError``,
  which FPO does on a non-finite loss or rollout) and ends an optimisation in which no trial completed with a
  message instead of a traceback.

The project's environments (``sb3_fpo.envs``, e.g. ``TwoGoal-v0``) are registered by ``import sb3_fpo``;
``--gym-packages`` imports other environment packages, as in the zoo.
"""

from __future__ import annotations

import math
import runpy
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

try:
    import optuna
    import rl_zoo3.train
    import rl_zoo3.utils
    from rl_zoo3.exp_manager import ExperimentManager
    from rl_zoo3.hyperparams_opt import HYPERPARAMS_CONVERTER, HYPERPARAMS_SAMPLER
except ImportError as error:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        f"sb3_fpo.zoo needs rl-zoo3 and Optuna ({error}): pip install 'sb3_fpo[zoo]' (and 'sb3_fpo[plots]' for the "
        "plotting scripts)."
    ) from error

from sb3_fpo.fpo import FPO
from sb3_fpo.presets import HYPERPARAMS_FILE  # the presets this entry point trains with

ALGO = "fpo"

SCRIPTS = ("train", "enjoy", "record_video", "plot_train", "plot_from_file", "all_plots")

# Search space of the Optuna sampler (categorical names -> values, as the zoo's samplers do)
VELOCITY_NET_ARCHS: dict[str, list[int]] = {
    "paper": [32, 32, 32, 32],  # FPO paper
    "wide": [64, 64, 64, 64],
    "large": [256, 256, 256],
}
CRITIC_NET_ARCHS: dict[str, list[int]] = {
    "small": [64, 64],  # SB3 / FlowPolicy default
    "medium": [256, 256],
}


# ---------------------------------------------------------------------------------------------------- Optuna


def convert_fpo_params(sampled_params: dict[str, Any]) -> dict[str, Any]:
    """
    Turn the parameters of an Optuna trial of :func:`sample_fpo_params` into FPO hyperparameters.

    rl-zoo3 calls it (``HYPERPARAMS_CONVERTER["fpo"]``) on ``study.trials[trial_id].params`` for ``--trial-id``;
    :func:`sample_fpo_params` returns its result, so a trial trains the same whether sampled or reloaded.
    ``policy_kwargs`` is complete: like the zoo's samplers, the result replaces the preset's ``policy_kwargs``.
    """
    hyperparams = dict(sampled_params)
    hyperparams["gamma"] = 1 - hyperparams.pop("one_minus_gamma")
    hyperparams["gae_lambda"] = 1 - hyperparams.pop("one_minus_gae_lambda")
    hyperparams["n_steps"] = 2 ** hyperparams.pop("n_steps_pow")
    # Capped at n_steps: a rollout holds n_steps * n_envs >= n_steps transitions, so a minibatch never exceeds it
    hyperparams["batch_size"] = min(2 ** hyperparams.pop("batch_size_pow"), hyperparams["n_steps"])
    hyperparams["policy_kwargs"] = {
        "net_arch": {"pi": [], "vf": list(CRITIC_NET_ARCHS[hyperparams.pop("critic_net_arch")])},
        "velocity_net_arch": list(VELOCITY_NET_ARCHS[hyperparams.pop("velocity_net_arch")]),
        "flow_steps": hyperparams.pop("flow_steps"),
        # Trials of studies from before source_std was sampled have no value for it: they ran with the default
        "source_std": hyperparams.pop("source_std", 1.0),
    }
    return hyperparams


def sample_fpo_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    Optuna sampler for FPO (rl-zoo3's ``HYPERPARAMS_SAMPLER["fpo"]``, used by ``train -optimize``).

    Samples the rollout and minibatch sizes, epochs, learning rate, discount and GAE factors, the trust region
    (``clip_range``, ``trust_region``), the ratio (``n_samples``, ``ratio_mode``), the sampler's ``flow_steps``
    the sizes of the velocity network and the critic, and the flow's ``source_std`` (the spread of its initial
    samples, as ``log_std_init`` is for PPO). ``n_steps`` is per environment, as in the zoo;
    ``batch_size`` is capped at ``n_steps`` (see :func:`convert_fpo_params`).
    """
    sampled_params = {
        "n_steps_pow": trial.suggest_int("n_steps_pow", 5, 12),  # 32 .. 4096 steps per env
        "batch_size_pow": trial.suggest_int("batch_size_pow", 5, 10),  # 32 .. 1024
        "n_epochs": trial.suggest_categorical("n_epochs", [1, 5, 10, 20]),
        "learning_rate": trial.suggest_float("learning_rate", 1e-5, 3e-3, log=True),
        "one_minus_gamma": trial.suggest_float("one_minus_gamma", 1e-4, 0.1, log=True),  # gamma 0.9 .. 0.9999
        "one_minus_gae_lambda": trial.suggest_float("one_minus_gae_lambda", 1e-3, 0.2, log=True),
        "clip_range": trial.suggest_categorical("clip_range", [0.05, 0.1, 0.2, 0.3]),
        "trust_region": trial.suggest_categorical("trust_region", ["ppo", "spo", "aspo"]),
        "ratio_mode": trial.suggest_categorical("ratio_mode", ["averaged", "per_sample"]),
        "n_samples": trial.suggest_categorical("n_samples", [4, 8, 16, 32]),
        "flow_steps": trial.suggest_categorical("flow_steps", [5, 10, 20]),
        "velocity_net_arch": trial.suggest_categorical("velocity_net_arch", list(VELOCITY_NET_ARCHS)),
        "critic_net_arch": trial.suggest_categorical("critic_net_arch", list(CRITIC_NET_ARCHS)),
        "source_std": trial.suggest_categorical("source_std", [0.1, 0.3, 0.5, 1.0]),
    }
    hyperparams = convert_fpo_params(sampled_params)
    # Shown in the zoo's report next to the sampled values, as its own samplers do
    for name in ("gamma", "gae_lambda", "n_steps", "batch_size"):
        trial.set_user_attr(name, hyperparams[name])
    return hyperparams


# ---------------------------------------------------------------------------------------------------- zoo patches


class _TrialNumber(int):
    """A trial number that is truthy even when 0: the zoo tests ``if ... and self.trial_id:`` before loading it."""

    def __bool__(self) -> bool:
        return True


class FPOExperimentManager(ExperimentManager):
    """
    rl-zoo3's ``ExperimentManager`` with FPO's presets as the default config of ``fpo``, ``--trial-id 0``
    honoured, non-finite trial results pruned and an all-pruned optimisation ending cleanly.
    Everything else is the zoo's; it works for every algorithm.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        algo = kwargs["algo"] if "algo" in kwargs else args[1]
        if algo == ALGO and not kwargs.get("config"):
            kwargs["config"] = str(HYPERPARAMS_FILE)
        super().__init__(*args, **kwargs)
        if self.trial_id is not None:
            self.trial_id = _TrialNumber(self.trial_id)

    def objective(self, trial: optuna.Trial) -> float:
        # The zoo turns AssertionError / ValueError during learning (FPO's non-finite loss or rollout) into a
        # pruned trial; a final evaluation that is NaN would otherwise fail the trial.
        value = super().objective(trial)
        if not math.isfinite(value):
            print(f"Trial {trial.number}: non-finite evaluation reward {value}, pruning it")
            raise optuna.TrialPruned(f"non-finite evaluation reward {value}")
        return value

    def hyperparameters_optimization(self) -> None:
        try:
            super().hyperparameters_optimization()
        except ValueError as error:
            # study.best_trial, in the zoo's report, when every trial was pruned or failed
            if "completed yet" not in str(error):
                raise
            print(f"No trial of the study completed ({error}): no best trial and no report to write.")


def register() -> None:
    """
    Register FPO in rl-zoo3 (idempotent): ``fpo`` in ``ALGOS``, ``HYPERPARAMS_SAMPLER`` and ``HYPERPARAMS_CONVERTER``,
    :class:`FPOExperimentManager` for the zoo's ``train``. The project's environments (``sb3_fpo.envs``) are
    registered by ``import sb3_fpo`` itself.

    The zoo's modules import these dictionaries by name (``from rl_zoo3.utils import ALGOS``), so they are
    updated in place. Call it before using the zoo's Python API (``rl_zoo3.train.train()``, ``ExperimentManager``)
    with ``fpo``; :func:`main` calls it.
    """
    rl_zoo3.utils.ALGOS[ALGO] = FPO
    HYPERPARAMS_SAMPLER[ALGO] = sample_fpo_params
    HYPERPARAMS_CONVERTER[ALGO] = convert_fpo_params
    rl_zoo3.train.ExperimentManager = FPOExperimentManager  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------------- CLI


def _script(name: str) -> Callable[[], None]:
    """The zoo's script ``name`` as a function of ``sys.argv`` (imported on use: the plots need the plots extra)."""
    if name == "train":
        return rl_zoo3.train.train
    if name == "enjoy":
        from rl_zoo3.enjoy import enjoy

        return enjoy
    if name == "record_video":

        def record_video() -> None:
            # A script (all its code is under ``if __name__ == "__main__"``), not a function
            runpy.run_module("rl_zoo3.record_video", run_name="__main__")

        return record_video
    try:
        from rl_zoo3 import plots
    except ImportError as error:
        raise ImportError(f"The plotting scripts need the plots extra ({error}): pip install 'sb3_fpo[plots]'") from error
    functions: dict[str, Callable[[], None]] = {
        "plot_train": plots.plot_train,
        "plot_from_file": plots.plot_from_file,
        "all_plots": plots.all_plots,
    }
    return functions[name]


def check_plot_input(args: Sequence[str]) -> None:
    """
    Before ``plot_from_file``: stop with a message when its input (``-i``, written by ``all_plots``) holds fewer than
    two runs of an (algorithm, env). The zoo's ``all_plots`` squeezes one run's results to a scalar, and
    ``plot_from_file`` then skips it and fails on ``min()`` of an empty sequence.
    """
    import pickle

    import numpy as np

    paths = [args[i + 1] for i, arg in enumerate(args[:-1]) if arg in ("-i", "--input")]
    if not paths or not Path(paths[0]).is_file():
        return  # the zoo's own argument error
    with open(paths[0], "rb") as file:
        results = pickle.load(file)
    for env, per_algo in results.items():
        if env == "results_table":
            continue
        for key, result in per_algo.items():
            if isinstance(result, dict) and "last_evals" in result and np.ndim(result["last_evals"]) == 0:
                raise SystemExit(
                    f"plot_from_file needs at least two runs per algorithm and env; {paths[0]} has one of {key} on "
                    f"{env}. Train another (e.g. `train ... --seed 1` into the same log folder) and run all_plots "
                    "again."
                )


def _usage(prog: str) -> str:
    return (
        f"usage: {prog} {{{','.join(SCRIPTS)}}} [arguments of the rl-zoo3 script]\n\n"
        f"rl-zoo3 with FPO registered as --algo {ALGO}. '{prog} SCRIPT -h' lists a script's arguments."
    )


def limit_torch_threads() -> int:
    """
    One torch thread unless ``OMP_NUM_THREADS`` says otherwise; returns the count in use. The networks of SB3-scale
    RL are small: torch's default (one thread per core) spends more time synchronising than computing, and made the
    command-line runs up to 8x slower on a shared 2-core machine. Set ``OMP_NUM_THREADS`` to choose another count.
    """
    import os

    import torch as th

    if "OMP_NUM_THREADS" not in os.environ:
        th.set_num_threads(1)
    return th.get_num_threads()


def main(argv: Sequence[str] | None = None) -> None:
    """
    Run rl-zoo3's script ``argv[0]`` with the arguments ``argv[1:]`` (default: ``sys.argv[1:]``), FPO registered.

    Errors are the zoo's: an unknown ``--algo`` is an argparse error (exit status 2), an unknown ``--env`` a
    ``ValueError`` naming the closest registered id.
    """
    prog = "python -m sb3_fpo.zoo" if sys.argv and Path(sys.argv[0]).name == "zoo.py" else "sb3-fpo-zoo"
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_usage(prog))
        return
    if args[0] not in SCRIPTS:
        print(_usage(prog), file=sys.stderr)
        raise SystemExit(f"{prog}: error: unknown script {args[0]!r}, choose from {', '.join(SCRIPTS)}")
    limit_torch_threads()

    script = _script(args[0])
    if args[0] == "plot_from_file":
        check_plot_input(args[1:])
    register()
    saved_argv = sys.argv
    # The zoo's scripts parse sys.argv; their usage line shows "<prog> <script>"
    sys.argv = [f"{prog} {args[0]}", *args[1:]]
    try:
        script()
    finally:
        sys.argv = saved_argv


if __name__ == "__main__":
    # Run the importable module's main, so that there is one copy of the classes and functions registered
    from sb3_fpo.zoo import main as _main

    _main()
