"""
Do evaluations side by side on several envs (``mujoco_benchmark.py --eval-envs N``) give the same returns as
evaluations one episode after another on one env?

For each task and algorithm (FPO with the ``dmc`` entry, SB3 PPO's defaults at that entry's shape), one policy is
trained on the envpool backend, its VecNormalize statistics are frozen, and it is evaluated for ``--episodes``
episodes, deterministic and stochastic, in both ways: on one env seeded 10000, and on ``--envs`` envs seeded
20000 + i (other seeds than the one env's, so that no episode is played twice). The episodes are not paired; the
table gives each way's mean ± sample std and the difference in units of its standard error (Welch): |z| < 2 is "the
same within seed noise". The seconds are the wall time of each way's episodes, on the same process.

    python benchmarks/eval_envs_check.py --tasks cartpole-balance cheetah-run --timesteps 200000 --episodes 30 \\
        --envs 10 --out benchmarks/results/eval_envs_check
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch as th
from dmc_backends import evaluate, welch_z
from mujoco_benchmark import dmc_preset, git_commit, training_env
from stable_baselines3 import PPO

from sb3_fpo import FPO

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["cartpole-balance", "cheetah-run"])
    parser.add_argument("--algos", nargs="+", default=["fpo", "ppo_default"], choices=["fpo", "ppo_default"])
    parser.add_argument("--timesteps", type=int, default=200_000)
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--envs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "eval_envs_check")
    args = parser.parse_args()
    th.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    commit = git_commit()
    lines = [
        f"Command: `python benchmarks/eval_envs_check.py --tasks {' '.join(args.tasks)} --algos {' '.join(args.algos)} "
        f"--timesteps {args.timesteps} --episodes {args.episodes} --envs {args.envs} --seed {args.seed}` "
        f"(commit {commit}; DM Control backend envpool)",
        "",
        f"| task | algorithm | evaluation | 1 env | {args.envs} envs side by side | difference / SE | "
        f"seconds, {args.envs} envs ÷ 1 env |",
        "|---|---|---|---|---|---|---|",
    ]
    for task in args.tasks:
        for algo in args.algos:
            _, preset = dmc_preset(algo, task, str(ROOT / "hyperparams" / "fpo.yml"), None)
            env = training_env(preset, args.seed, "envpool")
            model = (FPO if algo == "fpo" else PPO)("MlpPolicy", env, seed=args.seed, device="cpu", **preset.kwargs)
            model.learn(args.timesteps)
            record: dict = dict(task=task, algo=algo, timesteps=args.timesteps, seed=args.seed, commit=commit)
            for deterministic in (True, False):
                mode = "deterministic" if deterministic else "stochastic"
                one, one_s = evaluate(
                    model, env, task, "envpool", args.episodes, n_envs=1, seed=10_000, deterministic=deterministic
                )
                many, many_s = evaluate(
                    model, env, task, "envpool", args.episodes, n_envs=args.envs, seed=20_000, deterministic=deterministic
                )
                z = welch_z(np.asarray(one), np.asarray(many))
                record[mode] = dict(one_env=one, many_envs=many, z=z, seconds=[one_s, many_s])
                lines.append(
                    f"| {task} | {algo} | {mode} | {np.mean(one):.1f} ± {np.std(one, ddof=1):.1f} | "
                    f"{np.mean(many):.1f} ± {np.std(many, ddof=1):.1f} | {z:+.2f} | {many_s / one_s:.2f} |"
                )
                print(lines[-1], flush=True)
            (args.out / f"{task}_{algo}.json").write_text(json.dumps(record, indent=1))
    (args.out / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
