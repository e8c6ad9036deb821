"""
FPO against rl-zoo3-tuned SB3 PPO on Gymnasium MuJoCo v5 (the benchmark protocol of DESIGN.md §4).

For every env × seed × algorithm, one process (``--workers`` at a time):

* PPO takes rl-zoo3 2.9.2's ``ppo.yml`` entry of the env's v4 id (applied to the v5 id), FPO the entry of
  ``hyperparams/fpo.yml`` (or another file given by ``--fpo-conf``);
* every ``--eval-freq`` steps the policy is evaluated on a separate env whose VecNormalize statistics are
  copied from the training env and frozen: ``--eval-episodes`` episodes deterministic (zero-sampling for FPO,
  the mean for PPO) and as many stochastic;
* wall time and steps/s are recorded.

Each finished run is saved as ``runs/<algo>_<env>_seed<seed>.json`` in ``--out``, and a run whose file exists
is not redone (the benchmark resumes); a run in progress keeps its evaluations so far in ``progress/``.
At the end it writes ``evaluations.csv`` (one row per evaluation),
``table.md`` (final returns mean ± std over seeds, FPO/PPO ratio, steps/s ratio) and ``curves_<env>.png``.

    python benchmarks/mujoco_benchmark.py --envs HalfCheetah-v5 Hopper-v5 --seeds 0 1 2 --timesteps 1000000 --workers 16
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import shlex
import subprocess
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ENVS = ["HalfCheetah-v5", "Hopper-v5", "Walker2d-v5", "Ant-v5", "Swimmer-v5", "Humanoid-v5"]
# The "PPO" of most papers and CleanRL: SB3's PPO defaults (1 env x 2048 steps, batch 64, 10 epochs, lr 3e-4, clip 0.2,
# gamma 0.99, lambda 0.95, 64x64 tanh networks), with VecNormalize on observations and rewards
PPO_DEFAULT_ENTRY: dict[str, Any] = {"n_envs": 1, "normalize": True}
ALGOS = ("fpo", "ppo", "ppo_default")
# Keys of a zoo entry that are not constructor arguments of the algorithm
ZOO_ONLY_KEYS = ("n_envs", "n_timesteps", "policy", "normalize", "env_wrapper", "frame_stack", "callback")


class _ZooLoader(yaml.SafeLoader):
    """rl-zoo3's yml files use the ``!!float`` tag and anchors, both plain YAML; nothing else is needed."""


def zoo_entry(path: Path, env_id: str) -> dict[str, Any]:
    """The entry of ``env_id`` in a zoo-format file, else of its v4 then v2 id (the zoo tuned PPO on those)."""
    table = yaml.load(path.read_text(), Loader=_ZooLoader)
    for key in (env_id, env_id.replace("-v5", "-v4"), env_id.replace("-v5", "-v2")):
        if key in table:
            return dict(table[key])
    raise KeyError(f"No entry for {env_id} (or its v4 id) in {path}")


def zoo_to_kwargs(entry: dict[str, Any]) -> tuple[dict[str, Any], int, Any]:
    """Turn a zoo entry into (algorithm kwargs, n_envs, normalize kwargs or None), as rl-zoo3 does."""
    import torch as th
    from rl_zoo3.utils import linear_schedule
    from torch import nn

    kwargs = {k: v for k, v in entry.items() if k not in ZOO_ONLY_KEYS}
    if isinstance(kwargs.get("policy_kwargs"), str):
        kwargs["policy_kwargs"] = eval(kwargs["policy_kwargs"], {"nn": nn, "th": th, "dict": dict})
    for key in ("learning_rate", "clip_range", "clip_range_vf"):
        if isinstance(kwargs.get(key), str) and kwargs[key].startswith("lin_"):
            kwargs[key] = linear_schedule(float(kwargs[key][4:]))
    normalize = entry.get("normalize", False)
    if isinstance(normalize, str):
        normalize = eval(normalize)
    if normalize is True:
        normalize = {}
    return kwargs, int(entry.get("n_envs", 1)), (normalize if normalize is not False else None)


def parse_override(item: str) -> tuple[str, Any]:
    """``KEY:VALUE`` with a YAML value; numbers YAML 1.1 reads as strings (``6e-4``, no dot) are taken as floats."""
    key, sep, text = item.partition(":")
    if not sep or not key:
        raise ValueError(f"--fpo-hyperparams takes KEY:VALUE items, got {item!r}")
    value = yaml.safe_load(text)
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)
    return key, value


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
) -> str:
    import rl_zoo3
    import torch as th
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize, sync_envs_normalization

    from sb3_fpo import FPO

    th.set_num_threads(1)
    if algo == "ppo_default":
        conf, entry = Path("SB3 PPO defaults"), dict(PPO_DEFAULT_ENTRY)
    else:
        conf = Path(fpo_conf) if algo == "fpo" else Path(rl_zoo3.__file__).parent / "hyperparams" / "ppo.yml"
        entry = zoo_entry(conf, env_id)
    if algo == "fpo":
        entry.update(fpo_overrides or {})
    kwargs, n_envs, normalize = zoo_to_kwargs(entry)
    env = make_vec_env(env_id, n_envs=n_envs, seed=seed)
    eval_env = make_vec_env(env_id, n_envs=1, seed=seed + 10_000)
    if normalize is not None:
        env = VecNormalize(env, gamma=kwargs.get("gamma", 0.99), **normalize)
        eval_env = VecNormalize(eval_env, training=False, norm_reward=False, **normalize)
    model = (FPO if algo == "fpo" else PPO)("MlpPolicy", env, seed=seed, device="cpu", **kwargs)

    evaluations, train_time = [], 0.0
    progress = Path(out, "progress", f"{algo}_{env_id}_seed{seed}.json")  # the evaluations so far, for a long run
    progress.parent.mkdir(parents=True, exist_ok=True)
    while model.num_timesteps < timesteps:
        start = time.perf_counter()
        model.learn(min(eval_freq, timesteps - model.num_timesteps), reset_num_timesteps=False)
        train_time += time.perf_counter() - start
        if normalize is not None:
            sync_envs_normalization(env, eval_env)  # frozen copy: eval_env.training is False
        det = evaluate(model, eval_env, episodes, deterministic=True)
        sto = evaluate(model, eval_env, episodes, deterministic=False)
        evaluations.append(dict(steps=model.num_timesteps, det_mean=det[0], det_std=det[1], sto_mean=sto[0], sto_std=sto[1]))
        partial = dict(algo=algo, env=env_id, seed=seed, evaluations=evaluations, train_time_s=train_time)
        progress.write_text(json.dumps(partial))
    result = dict(
        partial,  # algo, env, seed, evaluations, train_time_s
        conf=str(conf),
        hyperparams=repr(kwargs),
        n_envs=n_envs,
        normalize=repr(normalize),
        steps_per_s=model.num_timesteps / train_time,
        commit=git_commit(),
    )
    path = Path(out, "runs", f"{algo}_{env_id}_seed{seed}.json")
    path.write_text(json.dumps(result, indent=1))
    progress.unlink()
    return str(path)


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    except OSError:
        return "unknown"


def report(out: Path, command: str) -> str:
    runs = [json.loads(p.read_text()) for p in sorted((out / "runs").glob("*.json"))]
    with open(out / "evaluations.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["algo", "env", "seed", "steps", "det_mean", "det_std", "sto_mean", "sto_std"])
        for r in runs:
            for e in r["evaluations"]:
                writer.writerow(
                    [r["algo"], r["env"], r["seed"], e["steps"], e["det_mean"], e["det_std"], e["sto_mean"], e["sto_std"]]
                )
    lines = [
        f"Command: `{command}` (runs made at commit {', '.join(sorted({r.get('commit', 'unrecorded') for r in runs}))})",
        "",
        "| env | FPO deterministic | PPO deterministic | FPO/PPO | FPO stochastic | PPO stochastic | steps/s FPO/PPO "
        "| seeds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for env_id in sorted({r["env"] for r in runs}):
        final: dict[str, dict[str, list[float]]] = {}
        for algo in ("fpo", "ppo"):
            chosen = [r for r in runs if r["env"] == env_id and r["algo"] == algo]
            final[algo] = {
                "det": [r["evaluations"][-1]["det_mean"] for r in chosen],
                "sto": [r["evaluations"][-1]["sto_mean"] for r in chosen],
                # records rebuilt from evaluations.csv (see benchmarks/README.md) have no wall time
                "sps": [r["steps_per_s"] for r in chosen if "steps_per_s" in r],
            }

        def cell(values: list[float]) -> str:
            return f"{np.mean(values):.0f} ± {np.std(values):.0f}" if values else "—"

        def ratio(a: list[float], b: list[float]) -> str:
            return f"{np.mean(a) / np.mean(b):.2f}" if a and b and np.mean(b) != 0 else "—"

        fpo, ppo = final["fpo"], final["ppo"]
        seeds = f"{len(fpo['det'])}/{len(ppo['det'])}"
        lines.append(
            f"| {env_id} | {cell(fpo['det'])} | {cell(ppo['det'])} | {ratio(fpo['det'], ppo['det'])} | {cell(fpo['sto'])} | "
            f"{cell(ppo['sto'])} | {ratio(fpo['sps'], ppo['sps'])} | {seeds} |"
        )
        plot_curves(out / f"curves_{env_id}.png", env_id, [r for r in runs if r["env"] == env_id])
    text = "\n".join(lines) + "\n"
    (out / "table.md").write_text(text)
    return text


def plot_curves(path: Path, env_id: str, runs: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for algo, color in (("fpo", "tab:blue"), ("ppo", "tab:orange")):
        chosen = [r for r in runs if r["algo"] == algo]
        if not chosen:
            continue
        length = min(len(r["evaluations"]) for r in chosen)
        steps = np.array([e["steps"] for e in chosen[0]["evaluations"][:length]])
        returns = np.array([[e["det_mean"] for e in r["evaluations"][:length]] for r in chosen])
        mean, std = returns.mean(axis=0), returns.std(axis=0)
        ax.plot(steps, mean, color=color, label=f"{algo.upper()} ({len(chosen)} seeds)")
        ax.fill_between(steps, mean - std, mean + std, color=color, alpha=0.2)
    ax.set_title(f"{env_id}: deterministic return")
    ax.set_xlabel("environment steps")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", nargs="+", default=DEFAULT_ENVS)
    parser.add_argument("--algos", nargs="+", default=list(ALGOS), choices=ALGOS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--timesteps", type=int, default=1_000_000)
    parser.add_argument("--eval-freq", type=int, default=50_000)
    parser.add_argument("--eval-episodes", type=int, default=10)
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
    args = parser.parse_args()
    out = Path(args.out)
    (out / "runs").mkdir(parents=True, exist_ok=True)

    jobs = [
        (algo, env_id, seed)
        for seed in args.seeds  # seed-major: a run cut short leaves every env with its first seeds
        for env_id in args.envs
        for algo in args.algos
        if not (out / "runs" / f"{algo}_{env_id}_seed{seed}.json").exists()  # resumable
    ]
    print(f"{len(jobs)} runs to do ({len(args.envs) * len(args.seeds) * len(args.algos) - len(jobs)} already done)")
    overrides = dict(parse_override(item) for item in args.fpo_hyperparams)
    settings = (args.timesteps, args.eval_freq, args.eval_episodes, args.fpo_conf, str(out), overrides)
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        futures = [pool.submit(run, *job, *settings) for job in jobs]
        for future in as_completed(futures):
            print("finished", future.result(), flush=True)
    command = (
        f"python benchmarks/mujoco_benchmark.py --envs {' '.join(args.envs)} --algos {' '.join(args.algos)} "
        f"--seeds {' '.join(map(str, args.seeds))} --timesteps {args.timesteps} --eval-freq {args.eval_freq} "
        f"--eval-episodes {args.eval_episodes}"
    )
    if args.fpo_hyperparams:
        command += " --fpo-hyperparams " + " ".join(shlex.quote(item) for item in args.fpo_hyperparams)
    print(report(out, command))


if __name__ == "__main__":
    main()
