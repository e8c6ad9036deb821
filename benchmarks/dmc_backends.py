"""
Do envpool's DM Control ports give the same returns as dm_control's own tasks for the same policy?

For each task: one policy is trained on the envpool backend (SB3 PPO's defaults at the ``dmc`` entry's shape:
8 envs x 256 steps, batch 256, 10 epochs, VecNormalize), its VecNormalize statistics are frozen, and it is evaluated
deterministically for ``--episodes`` episodes on each backend (env seeds 10000 + i on both; the two simulators draw
their initial states differently, so the episodes are not paired). The table gives each backend's mean ± sample std
and the difference in units of its standard error (Welch): |z| < 2 is "the same within seed noise".

    python benchmarks/dmc_backends.py --tasks cartpole-balance cheetah-run --timesteps 200000 --episodes 20 \\
        --out benchmarks/results/dmc_backends
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from mujoco_benchmark import git_commit
from stable_baselines3 import PPO
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecNormalize

from sb3_fpo.envs.dmc import make_dmc_vec_env

ROOT = Path(__file__).resolve().parents[1]


def evaluate(
    model: Any,
    stats: VecNormalize,
    task: str,
    backend: str,
    episodes: int,
    n_envs: int = 1,
    seed: int = 10_000,
    deterministic: bool = True,
) -> tuple[list[float], float]:
    """Per-episode returns of ``model`` on ``n_envs`` envs of ``backend`` seeded ``seed + i``, with ``stats``' frozen
    observation statistics, and the seconds the episodes took."""
    env = VecNormalize(make_dmc_vec_env(task, n_envs, seed=seed, backend=backend), training=False, norm_reward=False)  # type: ignore[arg-type]
    env.obs_rms = stats.obs_rms
    start = time.perf_counter()
    returns, _ = evaluate_policy(
        model, env, n_eval_episodes=episodes, deterministic=deterministic, return_episode_rewards=True
    )
    seconds = time.perf_counter() - start
    env.close()
    return [float(r) for r in returns], seconds  # type: ignore[union-attr]


def welch_z(a: np.ndarray, b: np.ndarray) -> float:
    """The difference of the means of two unpaired samples in units of its standard error (Welch)."""
    return float((a.mean() - b.mean()) / np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b) + 1e-12))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["cartpole-balance", "cheetah-run"])
    parser.add_argument("--timesteps", type=int, default=200_000)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "dmc_backends")
    args = parser.parse_args()
    th.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    commit = git_commit()
    lines = [
        f"Command: `python benchmarks/dmc_backends.py --tasks {' '.join(args.tasks)} --timesteps {args.timesteps} "
        f"--episodes {args.episodes} --seed {args.seed}` (commit {commit})",
        "",
        "| task | policy's training steps (envpool) | dm_control return | envpool return | difference / SE |",
        "|---|---|---|---|---|",
    ]
    for task in args.tasks:
        env = VecNormalize(make_dmc_vec_env(task, 8, seed=args.seed, backend="envpool"))
        model = PPO("MlpPolicy", env, n_steps=256, batch_size=256, n_epochs=10, seed=args.seed, device="cpu")
        model.learn(args.timesteps)
        returns = {backend: evaluate(model, env, task, backend, args.episodes)[0] for backend in ("dm_control", "envpool")}
        a, b = (np.asarray(returns[k]) for k in ("dm_control", "envpool"))
        z = welch_z(a, b)
        record = dict(task=task, timesteps=args.timesteps, seed=args.seed, returns=returns, z=z, commit=commit)
        (args.out / f"{task}.json").write_text(json.dumps(record, indent=1))
        lines.append(
            f"| {task} | {args.timesteps} | {a.mean():.1f} ± {a.std(ddof=1):.1f} | {b.mean():.1f} ± {b.std(ddof=1):.1f} "
            f"| {z:+.2f} |"
        )
        print(lines[-1], flush=True)
    (args.out / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
