"""
FPO against two SB3 PPO baselines on Gymnasium MuJoCo v5: rl-zoo3-tuned (``ppo``) and SB3's defaults (``ppo_default``).

For every env × seed × algorithm, one process (``--workers`` at a time):

* ``ppo`` takes rl-zoo3 2.9.2's ``ppo.yml`` entry of the env's v4 id (applied to the v5 id), ``ppo_default`` SB3's
  PPO defaults with VecNormalize (observations and rewards), FPO the entry of ``hyperparams/fpo.yml`` (or another
  file given by ``--fpo-conf``);
* every ``--eval-freq`` steps the policy is evaluated on a separate env whose VecNormalize statistics are
  copied from the training env and frozen: ``--eval-episodes`` episodes deterministic (zero-sampling for FPO,
  the mean for PPO) and as many stochastic, one after another on one env or, with ``--eval-envs N``, side by side
  on N envs (seeded ``seed + 10000 + i``; one batched ``predict`` per step, several times faster for FPO, whose
  ``predict`` integrates the flow; the same estimate of the return from other initial states);
* wall time and steps/s are recorded.

Each finished run is saved as ``runs/<algo>_<env>_seed<seed>.json`` in ``--out``, and a run whose file exists
is not redone (the benchmark resumes). A run in progress keeps its evaluations, model and VecNormalize statistics
in ``progress/`` at every evaluation, and a later call continues it from there (its record says ``resumed_at_steps``;
the continued run is not bit-identical to an uninterrupted one: the environments restart their episodes).
``--stop-after SECONDS`` pauses every run at the first evaluation after which another chunk would not fit in
that budget, so a batch on a lent machine ends cleanly and the runs go on elsewhere. Each evaluation records the
``--machine`` it ran on; a run whose evaluations come from more than one machine keeps its returns but gets no
wall time or steps/s (its seconds would mix processors).
At the end it writes ``evaluations.csv`` (one row per evaluation),
``table.md`` (final returns mean ± std over seeds, FPO/PPO ratio, steps/s ratio) and ``curves_<env>.png``.

    python benchmarks/mujoco_benchmark.py --envs HalfCheetah-v5 Hopper-v5 --seeds 0 1 2 --timesteps 1000000 --workers 16

DeepMind Control Suite tasks go by their dm_control ``domain-task`` names (``finger-turn_hard``; the ``dmc`` extra,
and ``envpool`` for ``--backend envpool``). There every algorithm runs at the rollout and update shape of the FPO
file's ``dmc`` entry (n_envs, n_steps, batch_size, n_epochs, VecNormalize): FPO with that entry, unchanged for every
task, ``ppo_default`` with SB3's PPO defaults and ``ppo_tuned`` with the FPO paper's tuned Gaussian PPO (lr 3e-4,
clip 0.1); each record names its backend::

    python benchmarks/mujoco_benchmark.py --envs cartpole-balance finger-spin --algos fpo ppo_default ppo_tuned \
        --seeds 0 1 2 --backend envpool --out benchmarks/results/dmc
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import importlib.util
import json
import os
import shlex
import subprocess
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ENVS = ["HalfCheetah-v5", "Hopper-v5", "Walker2d-v5", "Ant-v5", "Swimmer-v5", "Humanoid-v5"]
# ppo_default, the "PPO" of most papers and CleanRL: SB3's PPO defaults (1 env x 2048 steps, batch 64, 10 epochs,
# lr 3e-4, clip 0.2, gamma 0.99, lambda 0.95, 64x64 tanh networks), with VecNormalize on observations and rewards
# ppo_tuned, the DM Control baseline of the FPO paper: PPO with lr 3e-4 and clip 0.1, otherwise SB3's defaults
ALGOS = ("fpo", "ppo", "ppo_default", "ppo_tuned")
PPO_ALGOS = ALGOS[1:]
PPO_TUNED = dict(learning_rate=3e-4, clip_range=0.1)
PPO_NAMES = {"ppo": "PPO zoo-tuned", "ppo_default": "PPO default", "ppo_tuned": "PPO tuned (lr 3e-4, clip 0.1)"}
#: The entry of the FPO file used for every DM Control task; its shape keys are every algorithm's there
DMC_ENTRY = "dmc"
DMC_SHAPE_KEYS = ("n_steps", "batch_size", "n_epochs")
#: A ratio's denominator below this (in return units; 1% of a DM Control task's largest return, 1000) makes it "—": a
#: baseline near 0 (an unsolved DM Control task) would give a meaningless ratio in the hundreds or millions
MIN_DENOMINATOR = 10.0


def parse_override(item: str) -> tuple[str, Any]:
    """``KEY:VALUE`` with a YAML value; numbers YAML 1.1 reads as strings (``6e-4``, no dot) are taken as floats."""
    from sb3_fpo.presets import parse_value

    key, sep, text = item.partition(":")
    if not sep or not key:
        raise ValueError(f"--fpo-hyperparams takes KEY:VALUE items, got {item!r}")
    return key, parse_value(text)


def evaluate(model: Any, eval_env: Any, episodes: int, deterministic: bool) -> tuple[float, float]:
    from stable_baselines3.common.evaluation import evaluate_policy

    mean, std = evaluate_policy(model, eval_env, n_eval_episodes=episodes, deterministic=deterministic)
    return float(mean), float(std)  # type: ignore[arg-type]


def run(
    algo: str,
    env_id: str,
    seed: int,
    timesteps: int,
    eval_freq: int,
    episodes: int,
    fpo_conf: str,
    out: str,
    fpo_overrides: dict[str, Any] | None = None,
    deadline: float = float("inf"),
    machine: str = "local",
    train_log: bool = False,
    backend: str = "dm_control",
    eval_envs: int = 1,
) -> str:
    import torch as th
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecNormalize, sync_envs_normalization

    from sb3_fpo import FPO
    from sb3_fpo.presets import Preset, load_preset

    th.set_num_threads(1)
    if is_dmc_name(env_id):
        conf, preset = dmc_preset(algo, env_id, fpo_conf, fpo_overrides)
    elif algo == "ppo_default":
        conf = "SB3 PPO defaults"
        preset = Preset(env_id, "ppo_default", "MlpPolicy", 1, timesteps, {}, {})
    elif algo == "ppo_tuned":
        raise ValueError("ppo_tuned is the DM Control baseline (domain-task names); MuJoCo has ppo and ppo_default.")
    else:
        conf = fpo_conf if algo == "fpo" else str(zoo_hyperparams("ppo"))
        preset = load_preset(env_id, conf, overrides=fpo_overrides if algo == "fpo" else None)
    kwargs, n_envs, normalize = preset.kwargs, preset.n_envs, preset.normalize
    env = training_env(preset, seed, backend)
    eval_env = make_env(env_id, eval_envs, seed + 10_000, backend)
    if normalize is not None:
        eval_env = VecNormalize(eval_env, training=False, norm_reward=False, **normalize)
    algorithm = FPO if algo == "fpo" else PPO
    name = f"{algo}_{env_id}_seed{seed}"
    # A run cut short resumes from its last evaluation: the evaluations so far, the model and its VecNormalize
    # statistics are saved in progress/ at every evaluation. The model and statistics files are named by their
    # step count and progress/<name>.json, replaced atomically after them, names the current pair, so a process
    # killed while saving leaves the previous evaluation's state intact.
    progress = Path(out, "progress", f"{name}.json")
    progress.parent.mkdir(parents=True, exist_ok=True)
    evaluations: list[dict[str, Any]] = []
    train_time, resumed_at = 0.0, None
    saved = load_progress(progress)
    if saved is not None and (normalize is None or saved[2] is not None):
        partial, checkpoint, statistics = saved
        evaluations, train_time = partial["evaluations"], partial["train_time_s"]
        if normalize is not None:
            env = VecNormalize.load(str(statistics), env.venv)  # type: ignore[attr-defined]
        model = algorithm.load(checkpoint, env=env, device="cpu")
        resumed_at = model.num_timesteps
    else:
        model = algorithm("MlpPolicy", env, seed=seed, device="cpu", **kwargs)
    # SB3's logger as CSV, one file per process that worked on the run (a resumed run adds one), made with the first
    # chunk so that a run paused before it leaves no empty log
    log_dir = Path(out, "train_logs", f"{name}_from{model.num_timesteps}") if train_log else None
    chunk_seconds = 0.0  # wall time of the last chunk (training and evaluation), to respect the deadline
    while model.num_timesteps < timesteps:
        if time.time() + chunk_seconds > deadline:
            return f"{name} paused at {model.num_timesteps} steps (--stop-after): progress in {progress.parent}"
        if log_dir is not None:
            from stable_baselines3.common.logger import configure

            model.set_logger(configure(str(log_dir), ["csv"]))
            log_dir = None
        chunk_start = time.time()
        start = time.perf_counter()
        learn_chunk(model, min(eval_freq, timesteps - model.num_timesteps), timesteps)
        train_time += time.perf_counter() - start
        if normalize is not None:
            sync_envs_normalization(env, eval_env)  # frozen copy: eval_env.training is False
        det = evaluate(model, eval_env, episodes, deterministic=True)
        sto = evaluate(model, eval_env, episodes, deterministic=False)
        evaluations.append(
            dict(
                steps=model.num_timesteps,
                det_mean=det[0],
                det_std=det[1],
                sto_mean=sto[0],
                sto_std=sto[1],
                train_time_s=train_time,
                machine=machine,
                eval_envs=eval_envs,
            )
        )
        partial = dict(algo=algo, env=env_id, seed=seed, evaluations=evaluations, train_time_s=train_time)
        save_progress(progress, partial, model, env if isinstance(env, VecNormalize) else None)
        chunk_seconds = time.time() - chunk_start
    result = dict(
        partial,  # algo, env, seed, evaluations, train_time_s
        conf=conf,
        hyperparams=repr(kwargs),
        n_envs=n_envs,
        normalize=repr(normalize),
        commit=git_commit(),
    )
    if is_dmc_name(env_id):
        result["backend"] = backend
    if one_machine(evaluations):
        result["steps_per_s"] = model.num_timesteps / train_time
    if resumed_at is not None:
        result["resumed_at_steps"] = resumed_at  # one process up to there, another after
    path = Path(out, "runs", f"{algo}_{env_id}_seed{seed}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1))
    for leftover in progress.parent.glob(f"{name}[._]*"):
        leftover.unlink()
    return str(path)


def dmc_preset(algo: str, env_id: str, fpo_conf: str, fpo_overrides: dict[str, Any] | None) -> tuple[str, Any]:
    """A DM Control task's settings: FPO's ``dmc`` entry (with the overrides) for every task; the PPO baselines at
    that entry's rollout and update shape, with SB3's defaults (``ppo_default``) or lr 3e-4 and clip 0.1
    (``ppo_tuned``)."""
    from sb3_fpo.presets import Preset, load_preset

    entry = load_preset(DMC_ENTRY, fpo_conf, overrides=fpo_overrides if algo == "fpo" else None)
    fpo = dataclasses.replace(entry, env_id=env_id)
    if algo == "fpo":
        return f"{fpo_conf} ({DMC_ENTRY})", fpo
    if algo not in ("ppo_default", "ppo_tuned"):
        raise ValueError(f"{algo} has no DM Control settings: use ppo_default or ppo_tuned.")
    kwargs = {key: fpo.kwargs[key] for key in DMC_SHAPE_KEYS if key in fpo.kwargs}
    if algo == "ppo_tuned":
        kwargs.update(PPO_TUNED)
    conf = f"SB3 PPO defaults{' + lr 3e-4, clip 0.1' if algo == 'ppo_tuned' else ''} at {DMC_ENTRY}'s shape"
    return conf, Preset(env_id, algo, "MlpPolicy", fpo.n_envs, fpo.n_timesteps, fpo.normalize, kwargs)


def applies(algo: str, env_id: str) -> bool:
    """Whether ``algo`` is a baseline of ``env_id``: rl-zoo3's ``ppo`` has no DM Control entries, ``ppo_tuned`` is
    the DM Control suite's baseline only."""
    if algo == "ppo":
        return not is_dmc_name(env_id)
    if algo == "ppo_tuned":
        return is_dmc_name(env_id)
    return True


def is_dmc_name(env_id: str) -> bool:
    from sb3_fpo.envs.dmc import is_dmc_name as dmc_name

    return dmc_name(env_id)


def make_env(env_id: str, n_envs: int, seed: int, backend: str) -> Any:
    """A Gymnasium id's VecEnv (``make_vec_env``), or a DM Control task's on ``backend``."""
    if is_dmc_name(env_id):
        from sb3_fpo.envs.dmc import make_dmc_vec_env

        return make_dmc_vec_env(env_id, n_envs, seed, backend)  # type: ignore[arg-type]
    from stable_baselines3.common.env_util import make_vec_env

    return make_vec_env(env_id, n_envs=n_envs, seed=seed)


def training_env(preset: Any, seed: int, backend: str = "dm_control") -> Any:
    """The preset's training VecEnv, wrapped in VecNormalize (reward discounted with the preset's gamma) if it asks."""
    from stable_baselines3.common.vec_env import VecNormalize

    env = make_env(preset.env_id, preset.n_envs, seed, backend)
    if preset.normalize is None:
        return env
    return VecNormalize(env, gamma=preset.kwargs.get("gamma", 0.99), **preset.normalize)


def learn_chunk(model: Any, steps: int, run_timesteps: int) -> None:
    """
    ``model.learn(steps)`` as one chunk of a run of ``run_timesteps`` steps: SB3 measures the progress that its
    schedules (``lin_3e-4``, ...) read over the current ``learn()`` call, which would restart a schedule at every
    chunk; here it is measured over the whole run, as one ``learn(run_timesteps)`` call would.
    """
    update = type(model)._update_current_progress_remaining
    model._update_current_progress_remaining = lambda num_timesteps, _chunk_end: update(model, num_timesteps, run_timesteps)
    try:
        model.learn(steps, reset_num_timesteps=False)
    finally:
        del model._update_current_progress_remaining  # back to the class's method (and nothing extra to save)


def zoo_hyperparams(algo: str) -> Path:
    """rl-zoo3's hyperparameter file for ``algo``, found without importing rl_zoo3 (which pulls in its whole stack)."""
    spec = importlib.util.find_spec("rl_zoo3")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("the ppo baseline reads rl-zoo3's ppo.yml: pip install rl-zoo3")
    return Path(spec.origin).parent / "hyperparams" / f"{algo}.yml"


def save_progress(progress: Path, partial: dict[str, Any], model: Any, env: Any | None) -> None:
    """Save the model (and VecNormalize statistics) under names carrying the step count, then point
    ``progress`` at them with an atomic replace, then delete the previous evaluation's files."""
    name, steps = progress.stem, model.num_timesteps
    checkpoint = progress.with_name(f"{name}_steps{steps}.zip")
    statistics = progress.with_name(f"{name}_steps{steps}_vecnormalize.pkl")
    model.save(checkpoint)
    if env is not None:
        env.save(str(statistics))
    partial = dict(partial, checkpoint=checkpoint.name, statistics=statistics.name if env is not None else None)
    temporary = progress.with_name(f"{name}.json.tmp")
    temporary.write_text(json.dumps(partial))
    os.replace(temporary, progress)
    for old in progress.parent.glob(f"{name}_steps*"):
        if old.name not in (checkpoint.name, statistics.name):
            old.unlink()


def load_progress(progress: Path) -> tuple[dict[str, Any], Path, Path | None] | None:
    """The saved evaluations, checkpoint and statistics of a paused run, or None if there is none."""
    if not progress.exists():
        return None
    partial = json.loads(progress.read_text())
    checkpoint = progress.with_name(partial["checkpoint"])
    statistics = progress.with_name(partial["statistics"]) if partial["statistics"] else None
    return (partial, checkpoint, statistics) if checkpoint.exists() else None


def git_commit() -> str:
    """The checkout's commit; a copy without ``.git`` (a lent machine) names it in ``SB3_FPO_COMMIT``."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    except OSError:
        commit = ""
    return commit.strip() or os.environ.get("SB3_FPO_COMMIT", "unknown")


def final(runs: list[dict[str, Any]], algo: str, key: str = "det_mean") -> list[float]:
    return [r["evaluations"][-1][key] for r in runs if r["algo"] == algo]


def last_three(runs: list[dict[str, Any]], algo: str) -> list[float]:
    """Each run's mean deterministic return over its last three evaluations (a less noisy second metric)."""
    return [float(np.mean([e["det_mean"] for e in r["evaluations"][-3:]])) for r in runs if r["algo"] == algo]


def ratio_ci(
    fpo: list[float], ppo: list[float], n_boot: int = 2000, seed: int = 0, confidence: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap CI of mean(FPO) / mean(PPO), resampling the seeds of both algorithms. Draws whose PPO
    mean is below ``MIN_DENOMINATOR`` in absolute value (all resampled seeds at ~0) are left out, as the table's
    point ratio is."""
    rng = np.random.default_rng(seed)
    a, b = np.asarray(fpo, dtype=float), np.asarray(ppo, dtype=float)
    ratios = [
        rng.choice(a, len(a)).mean() / denominator
        for _ in range(n_boot)
        if abs(denominator := rng.choice(b, len(b)).mean()) >= MIN_DENOMINATOR
    ]
    low, high = np.percentile(ratios, [100 * (1 - confidence) / 2, 100 * (1 + confidence) / 2])
    return float(low), float(high)


def iqm_ci_resampling_both(
    tasks: list[tuple[np.ndarray, np.ndarray]], n_boot: int = 2000, seed: int = 0, confidence: float = 0.95
) -> tuple[float, float]:
    """Percentile CI of the IQM of FPO's scores normalised by the best PPO's mean, resampling per task both FPO's
    runs and the best PPO's runs (so the CI also carries the baseline's seed noise). A draw in which some task's
    resampled baseline is below ``MIN_DENOMINATOR`` in absolute value is left out."""
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):
        scores = []
        for fpo, ppo in tasks:
            baseline = ppo[rng.integers(len(ppo), size=len(ppo))].mean()
            if abs(baseline) < MIN_DENOMINATOR:
                break
            scores.append(fpo[rng.integers(len(fpo), size=len(fpo))] / baseline)
        else:
            values.append(iqm(np.concatenate(scores)))
    low, high = np.percentile(values, [100 * (1 - confidence) / 2, 100 * (1 + confidence) / 2])
    return float(low), float(high)


def report(out: Path, command: str, baselines_from: Path | None = None) -> str:
    """Write evaluations.csv, table.md and the curves of every finished run in ``out``; return the table. With
    ``baselines_from``, the PPO runs of that results directory (its ``runs/``) are the table's baselines, on the
    tasks of ``out``'s runs; evaluations.csv keeps ``out``'s own runs."""
    runs = [json.loads(p.read_text()) for p in sorted((out / "runs").glob("*.json"))]
    own = list(runs)
    if baselines_from is not None:
        tasks = {r["env"] for r in runs}
        for path in sorted((baselines_from / "runs").glob("*.json")):
            record = json.loads(path.read_text())
            if record["algo"] in PPO_ALGOS and record["env"] in tasks:
                runs.append(record)
    with open(out / "evaluations.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["algo", "env", "seed", "steps", "det_mean", "det_std", "sto_mean", "sto_std"])
        for r in own:
            for e in r["evaluations"]:
                writer.writerow(
                    [r["algo"], r["env"], r["seed"], e["steps"], e["det_mean"], e["det_std"], e["sto_mean"], e["sto_std"]]
                )
    baselines = [algo for algo in PPO_ALGOS if any(r["algo"] == algo for r in runs)]
    lines = [
        f"Command: `{command}` (runs made at commit {', '.join(sorted({r.get('commit', 'unrecorded') for r in runs}))}"
        + backends_note(runs)
        + eval_envs_note(runs)
        + ")",
        "",
        "Final deterministic return, mean ± sample std (ddof 1) over seeds; best PPO = the baseline with the higher mean "
        "on that task; [95% bootstrap CI of the ratio, resampling the seeds of FPO and of best PPO]; last 3 = each "
        "run's mean over its last three evaluations.",
        "",
        "| env | FPO | "
        + "".join(f"{PPO_NAMES[a]} | " for a in baselines)
        + "".join(f"FPO / {PPO_NAMES[a]} | " for a in baselines)
        + "FPO / best PPO | FPO / best PPO, last 3 | FPO stochastic | steps/s FPO / best PPO | "
        "FPO's training seconds to best PPO's final return "
        "(runs reaching it) / best PPO's | seeds FPO/" + "/".join(PPO_NAMES[a] for a in baselines) + " |",
        "|---|---|" + "---|" * (2 * len(baselines) + 6),
    ]

    def cell(values: list[float]) -> str:
        if len(values) == 1:
            return f"{values[0]:.0f}"
        return f"{np.mean(values):.0f} ± {np.std(values, ddof=1):.0f}" if values else "—"

    def ratio(a: list[float], b: list[float]) -> str:
        return f"{np.mean(a) / np.mean(b):.2f}" if a and b and abs(np.mean(b)) >= MIN_DENOMINATOR else "—"

    def ratio_with_ci(a: list[float], b: list[float]) -> str:
        point = ratio(a, b)
        if point == "—" or (len(a) < 2 and len(b) < 2):
            return point
        low, high = ratio_ci(a, b)
        return f"{point} [{low:.2f}–{high:.2f}]"

    for env_id in sorted({r["env"] for r in runs}):
        chosen = [r for r in runs if r["env"] == env_id]
        fpo = final(chosen, "fpo")
        ppos = {algo: final(chosen, algo) for algo in baselines}
        best_algo = best_baseline(chosen, baselines)
        best = ppos.get(best_algo, []) if best_algo else []
        # records rebuilt from evaluations.csv (see benchmarks/README.md) have no wall time
        sps = {a: [r["steps_per_s"] for r in chosen if r["algo"] == a and "steps_per_s" in r] for a in ALGOS}
        lines.append(
            f"| {env_id} | {cell(fpo)} | "
            + "".join(f"{cell(v)} | " for v in ppos.values())
            + "".join(f"{ratio(fpo, v)} | " for v in ppos.values())
            + f"{ratio_with_ci(fpo, best)} | "
            f"{ratio_with_ci(last_three(chosen, 'fpo'), last_three(chosen, best_algo)) if best_algo else '—'} | "
            f"{cell(final(chosen, 'fpo', 'sto_mean'))} | "
            f"{ratio(sps['fpo'], sps[best_algo]) if best_algo else '—'} | "
            f"{time_to_reach(chosen, best_algo, float(np.mean(best))) if best else '—'} | "
            f"{len(fpo)}/" + "/".join(str(len(v)) for v in ppos.values()) + " |"
        )
        plot_curves(out / f"curves_{env_id}.png", env_id, chosen)
    same = same_ppo_settings(runs)
    if same:
        lines += [
            "",
            f"On {', '.join(same)} rl-zoo3's entry is SB3's PPO defaults with VecNormalize: `ppo` and `ppo_default` "
            "are one configuration there (the same seed gives the same run, up to where a run was resumed).",
        ]
    text = "\n".join(lines) + "\n"
    summary = aggregate(out, runs)
    if summary:
        text += "\n" + summary
    (out / "table.md").write_text(text)
    return text


def backends_note(runs: list[dict[str, Any]]) -> str:
    """``; DM Control backend ...`` for runs that name one (DM Control), else nothing."""
    backends = sorted({r["backend"] for r in runs if "backend" in r})
    return f"; DM Control backend {', '.join(backends)}" if backends else ""


def eval_envs_note(runs: list[dict[str, Any]]) -> str:
    """``; evaluations: ...`` when some evaluations ran side by side on several envs (``--eval-envs``), else nothing."""
    counts = Counter(e.get("eval_envs", 1) for r in runs for e in r["evaluations"])
    if set(counts) <= {1}:
        return ""
    parts = [f"{n} on {k} env{'s side by side' if k > 1 else ''}" for k, n in sorted(counts.items())]
    return f"; evaluations: {', '.join(parts)} (--eval-envs)"


def best_baseline(runs: list[dict[str, Any]], baselines: list[str]) -> str | None:
    """The PPO baseline with the higher mean final deterministic return among ``runs`` (one task)."""
    means = {algo: np.mean(v) for algo in baselines if (v := final(runs, algo))}
    return max(means, key=means.__getitem__) if means else None


def levers_table(root: Path) -> str:
    """One row per FPO run under ``root/<lever>/``: finished (``runs/``), paused (``progress/`` with its checkpoint,
    so the same command continues it) or stopped (``progress/`` whose checkpoint was not kept); steps reached, final
    and best deterministic return (a finished record's ``hyperparams`` holds the settings it ran with)."""
    lines = ["| lever | env | seed | steps | final | best | status |", "|---|---|---|---|---|---|---|"]
    for lever in sorted(p for p in root.iterdir() if p.is_dir()):
        records = [(json.loads(f.read_text()), "finished") for f in sorted((lever / "runs").glob("fpo_*.json"))]
        for f in sorted((lever / "progress").glob("fpo_*.json")):
            saved = load_progress(f)  # None when its checkpoint was not kept
            records.append((saved[0], "paused") if saved else (json.loads(f.read_text()), "stopped"))
        for record, status in records:
            returns = [e["det_mean"] for e in record["evaluations"]]
            if not returns:
                continue
            lines.append(
                f"| {lever.name} | {record['env']} | {record['seed']} | {record['evaluations'][-1]['steps'] // 1000}k "
                f"| {returns[-1]:.0f} | {max(returns):.0f} | {status} |"
            )
    return "\n".join(lines) + "\n"


def same_ppo_settings(runs: list[dict[str, Any]]) -> list[str]:
    """The tasks on which every zoo-tuned PPO run used exactly ``ppo_default``'s settings."""

    def settings(run: dict[str, Any]) -> tuple[Any, Any, Any]:
        return run.get("hyperparams"), run.get("normalize"), run.get("n_envs")

    tasks = []
    for env_id in sorted({r["env"] for r in runs}):
        zoo = {settings(r) for r in runs if r["env"] == env_id and r["algo"] == "ppo"}
        default = {settings(r) for r in runs if r["env"] == env_id and r["algo"] == "ppo_default"}
        if zoo and zoo == default and len(zoo) == 1 and None not in next(iter(zoo)):
            tasks.append(env_id)
    return tasks


def time_to_reach(runs: list[dict[str, Any]], best_algo: str, level: float) -> str:
    """FPO's median training seconds to a first evaluation at or above ``level`` (best PPO's mean final return),
    over the FPO runs that reach it and have wall times, and best PPO's mean training seconds for its whole run."""
    reached, timed = [], 0
    for run in (r for r in runs if r["algo"] == "fpo"):
        times = wall_times(run)
        if times is None:
            continue
        timed += 1
        above = [t for t, e in zip(times, run["evaluations"]) if e["det_mean"] >= level]
        if above:
            reached.append(above[0])
    ppo_times = [t[-1] for t in (wall_times(r) for r in runs if r["algo"] == best_algo) if t is not None]
    if not timed or not ppo_times:
        return "—"
    fpo_part = f"{np.median(reached):.0f} s ({len(reached)}/{timed})" if reached else f"not reached (0/{timed})"
    return f"{fpo_part} / {np.mean(ppo_times):.0f} s"


def iqm(scores: np.ndarray) -> float:
    """Interquartile mean: the mean of the middle 50% of the scores (rliable's ``aggregate_iqm``, scipy's trim_mean)."""
    from scipy import stats

    return float(stats.trim_mean(np.ravel(scores), proportiontocut=0.25))


def stratified_bootstrap_ci(
    scores_by_task: list[np.ndarray], n_boot: int = 2000, seed: int = 0, confidence: float = 0.95
) -> tuple[float, float]:
    """Percentile CI of the IQM, resampling the runs (seeds) of each task with replacement (rliable's stratified
    bootstrap; rliable 1.2 itself pins arch < 8, which fails to import with pandas 3)."""
    rng = np.random.default_rng(seed)
    values = [
        iqm(np.concatenate([task[rng.integers(len(task), size=len(task))] for task in scores_by_task])) for _ in range(n_boot)
    ]
    low, high = np.percentile(values, [100 * (1 - confidence) / 2, 100 * (1 + confidence) / 2])
    return float(low), float(high)


def normalized_scores(runs: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """FPO's final deterministic return of each seed divided by the best PPO's mean final return, per task."""
    return {env_id: fpo / ppo.mean() for env_id, (fpo, ppo) in best_ppo_pairs(runs).items()}


def aggregate(out: Path, runs: list[dict[str, Any]]) -> str:
    """IQM of the best-PPO-normalised scores over tasks and seeds, its stratified-bootstrap 95% CI, a profile."""
    scores = normalized_scores(runs)
    if not scores:
        return ""
    tasks = list(scores.values())
    low, high = stratified_bootstrap_ci(tasks)
    both_low, both_high = iqm_ci_resampling_both(list(best_ppo_pairs(runs).values()))
    plot_profile(out / "performance_profile.png", tasks)
    ahead, compared = tasks_level_or_ahead(runs)
    return (
        f"FPO's mean final return is at or above the best PPO's on {len(ahead)} of {len(compared)} tasks"
        f"{': ' + ', '.join(ahead) if ahead else ''}.\n"
        f"IQM of FPO's best-PPO-normalised score over {len(tasks)} tasks and {sum(map(len, tasks))} runs: "
        f"{iqm(np.concatenate(tasks)):.2f} (95% stratified-bootstrap CI {low:.2f}-{high:.2f} resampling FPO's runs, "
        f"{both_low:.2f}-{both_high:.2f} resampling the best PPO's runs too); performance profile: "
        "`performance_profile.png`.\n"
    )


def fpo_and_best_ppo(runs: list[dict[str, Any]]) -> dict[str, tuple[list[float], list[float]]]:
    """Per task with FPO runs and a PPO baseline: (FPO's final returns, the better baseline's final returns)."""
    pairs = {}
    for env_id in sorted({r["env"] for r in runs}):
        chosen = [r for r in runs if r["env"] == env_id]
        fpo, best_algo = final(chosen, "fpo"), best_baseline(chosen, list(PPO_ALGOS))
        if fpo and best_algo:
            pairs[env_id] = (fpo, final(chosen, best_algo))
    return pairs


def tasks_level_or_ahead(runs: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """(Tasks where FPO's mean final deterministic return is at least the best PPO's mean, tasks with both)."""
    pairs = fpo_and_best_ppo(runs)
    return [env_id for env_id, (fpo, ppo) in pairs.items() if np.mean(fpo) >= np.mean(ppo)], list(pairs)


def best_ppo_pairs(runs: list[dict[str, Any]]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per task with FPO runs and a best PPO whose mean is at least ``MIN_DENOMINATOR``: (FPO's final returns, the
    best PPO's final returns)."""
    return {
        env_id: (np.asarray(fpo), np.asarray(ppo))
        for env_id, (fpo, ppo) in fpo_and_best_ppo(runs).items()
        if np.mean(ppo) >= MIN_DENOMINATOR
    }


def plot_profile(path: Path, tasks: list[np.ndarray]) -> None:
    """Performance profile: the share of FPO runs whose normalised score exceeds each threshold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scores = np.concatenate(tasks)
    thresholds = np.linspace(0, max(2.0, float(scores.max())), 200)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(thresholds, [(scores > t).mean() for t in thresholds], color="tab:blue")
    ax.axvline(1.0, color="grey", ls="--", lw=0.8)
    ax.set_xlabel("FPO score / best PPO's mean score (τ)")
    ax.set_ylabel("fraction of FPO runs > τ")
    ax.set_title("Performance profile")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def one_machine(evaluations: list[dict[str, Any]]) -> bool:
    """Whether all evaluations of a run were made on one machine (records from before the label: this one)."""
    return len({e.get("machine", "local") for e in evaluations}) <= 1


def wall_times(run: dict[str, Any]) -> np.ndarray | None:
    """Training seconds at each evaluation: recorded, else the run's total spread at its mean rate; None if unknown."""
    evaluations = run["evaluations"]
    if not one_machine(evaluations):
        return None  # seconds from different processors do not add up to one run's time
    if all("train_time_s" in e for e in evaluations):
        return np.array([e["train_time_s"] for e in evaluations])
    if "steps_per_s" in run:
        return np.array([e["steps"] for e in evaluations]) / run["steps_per_s"]
    return None


def plot_curves(path: Path, env_id: str, runs: list[dict[str, Any]]) -> None:
    """Mean ± std deterministic return over seeds against environment steps and against training seconds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (by_steps, by_time) = plt.subplots(1, 2, figsize=(10, 3.5))
    for algo, color in zip(ALGOS, ("tab:blue", "tab:orange", "tab:green", "tab:red")):
        chosen = [r for r in runs if r["algo"] == algo]
        if not chosen:
            continue
        length = min(len(r["evaluations"]) for r in chosen)
        steps = np.array([e["steps"] for e in chosen[0]["evaluations"][:length]])
        returns = np.array([[e["det_mean"] for e in r["evaluations"][:length]] for r in chosen])
        mean, std = returns.mean(axis=0), returns.std(axis=0, ddof=1) if len(chosen) > 1 else np.zeros(length)
        label = f"{algo} ({len(chosen)} seeds)"
        by_steps.plot(steps, mean, color=color, label=label)
        by_steps.fill_between(steps, mean - std, mean + std, color=color, alpha=0.2)
        times = [t[:length] for t in map(wall_times, chosen) if t is not None]
        if times:
            by_time.plot(np.mean(times, axis=0), mean, color=color, label=label)
            by_time.fill_between(np.mean(times, axis=0), mean - std, mean + std, color=color, alpha=0.2)
    by_steps.set_title(f"{env_id}: deterministic return")
    by_steps.set_xlabel("environment steps")
    by_time.set_title("against training time (mean over seeds)")
    by_time.set_xlabel("training seconds, one core")
    by_steps.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", nargs="+", default=DEFAULT_ENVS)
    parser.add_argument(
        "--algos",
        nargs="+",
        default=list(ALGOS),
        choices=ALGOS,
        help="algorithms to run; each env gets those that apply (ppo: Gymnasium ids, ppo_tuned: DM Control tasks)",
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--timesteps", type=int, default=1_000_000)
    parser.add_argument("--eval-freq", type=int, default=50_000)
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument(
        "--eval-envs",
        type=int,
        default=1,
        help="run the evaluation episodes side by side on this many envs (1: one after another on one env)",
    )
    parser.add_argument("--fpo-conf", default=str(ROOT / "hyperparams" / "fpo.yml"))
    parser.add_argument(
        "--fpo-hyperparams",
        nargs="*",
        default=[],
        metavar="KEY:VALUE",
        help="override entries of the FPO preset, zoo style (YAML values), e.g. gamma:0.98 'policy_kwargs:\"dict(...)\"'",
    )
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--out", default="benchmarks/results/mujoco")
    parser.add_argument(
        "--backend",
        default="dm_control",
        choices=("dm_control", "envpool"),
        help="DM Control tasks (domain-task names): dm_control through Shimmy (the reference) or envpool's C++ ports",
    )
    parser.add_argument("--report-only", action="store_true", help="only rewrite the table and curves of finished runs")
    parser.add_argument(
        "--baselines-from",
        metavar="DIR",
        help="compare with the PPO runs of another results directory (e.g. FPO on held-out seeds against the PPO runs "
        "of the main table)",
    )
    parser.add_argument(
        "--stop-after",
        type=float,
        default=float("inf"),
        metavar="SECONDS",
        help="pause the runs (progress kept, resumed by a later call) before a chunk that would end after this budget",
    )
    parser.add_argument(
        "--machine",
        default="local",
        help="label recorded with each evaluation (wall times of one run "
        "are only used when all its evaluations share one label)",
    )
    parser.add_argument(
        "--levers",
        metavar="DIR",
        help="only print the table of the FPO runs under DIR/<lever>/ (finished or paused) and exit",
    )
    parser.add_argument(
        "--train-log",
        action="store_true",
        help="write SB3's training log (losses, ratios, clamp fractions, episode lengths) to train_logs/<run>_from<steps>/",
    )
    args = parser.parse_args()
    if args.levers:
        print(levers_table(Path(args.levers)), end="")
        return
    deadline = time.time() + args.stop_after
    out = Path(args.out)
    (out / "runs").mkdir(parents=True, exist_ok=True)

    jobs = (
        []
        if args.report_only
        else [
            (algo, env_id, seed)
            for seed in args.seeds  # seed-major: a run cut short leaves every env with its first seeds
            for env_id in args.envs
            for algo in args.algos
            if applies(algo, env_id)  # ppo (rl-zoo3's entry) on Gymnasium ids, ppo_tuned on DM Control tasks
            and not (out / "runs" / f"{algo}_{env_id}_seed{seed}.json").exists()  # resumable
        ]
    )
    planned = len(args.seeds) * sum(applies(algo, env_id) for env_id in args.envs for algo in args.algos)
    print(f"{len(jobs)} runs to do ({planned - len(jobs)} already done)")
    overrides = dict(parse_override(item) for item in args.fpo_hyperparams)
    settings = (
        args.timesteps,
        args.eval_freq,
        args.eval_episodes,
        args.fpo_conf,
        str(out),
        overrides,
        deadline,
        args.machine,
        args.train_log,
        args.backend,
        args.eval_envs,
    )
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        futures = [pool.submit(run, *job, *settings) for job in jobs]
        for future in as_completed(futures):
            print(future.result(), flush=True)
    command = (
        f"python benchmarks/mujoco_benchmark.py --envs {' '.join(args.envs)} --algos {' '.join(args.algos)} "
        f"--seeds {' '.join(map(str, args.seeds))} --timesteps {args.timesteps} --eval-freq {args.eval_freq} "
        f"--eval-episodes {args.eval_episodes}"
    )
    if any(is_dmc_name(env_id) for env_id in args.envs):
        command += f" --backend {args.backend}"
    if args.eval_envs != 1:
        command += f" --eval-envs {args.eval_envs}"
    if args.fpo_hyperparams:
        command += " --fpo-hyperparams " + " ".join(shlex.quote(item) for item in args.fpo_hyperparams)
    baselines = Path(args.baselines_from) if args.baselines_from else None
    if baselines is not None:
        command += f" --baselines-from {args.baselines_from}"
    print(report(out, command, baselines))


if __name__ == "__main__":
    main()
