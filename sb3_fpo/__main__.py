"""
Train FPO from the command line: ``python -m sb3_fpo`` trains on Pendulum-v1 and reports the zero-sampling return.

The settings are rl-zoo3's tuned PPO settings for Pendulum-v1 (4 envs x 1024 steps, gamma 0.9, lr 1e-3,
10 epochs, batch 64), with which FPO reached -183 +/- 36 after 110k steps over 5 seeds (benchmarks/README.md).
For other tasks, presets, evaluation callbacks and Optuna, use the rl-zoo3 entry ``python -m sb3_fpo.zoo``.
"""

from __future__ import annotations

import argparse
import time

from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

from sb3_fpo import FPO


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sb3_fpo", description=__doc__)
    parser.add_argument("--env", default="Pendulum-v1", help="Gymnasium env id with a Box action space")
    parser.add_argument("--timesteps", type=int, default=100_000, help="environment steps to train for")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--save", default="fpo_pendulum", help="path of the saved model (.zip)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--verbose", type=int, default=0, help="1 prints SB3's training table")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> float:
    args = parse_args(argv)
    env = make_vec_env(args.env, n_envs=4, seed=args.seed)
    model = FPO(
        "MlpPolicy",
        env,
        n_steps=1024,
        gae_lambda=0.95,
        gamma=0.9,
        n_epochs=10,
        learning_rate=1e-3,
        seed=args.seed,
        device=args.device,
        verbose=args.verbose,
    )
    start = time.perf_counter()
    model.learn(args.timesteps)
    elapsed = time.perf_counter() - start
    model.save(args.save)

    eval_env = make_vec_env(args.env, n_envs=1, seed=args.seed + 1000)
    mean, std = evaluate_policy(model, eval_env, n_eval_episodes=args.eval_episodes, deterministic=True)
    print(
        f"FPO on {args.env}: {model.num_timesteps} steps in {elapsed:.0f} s ({model.num_timesteps / elapsed:.0f} steps/s). "
        f"Zero-sampling return over {args.eval_episodes} episodes: {mean:.1f} +/- {std:.1f}. Saved to {args.save}.zip"
    )
    return float(mean)  # type: ignore[arg-type]  # a float when return_episode_rewards=False


if __name__ == "__main__":
    main()
