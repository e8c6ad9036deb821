"""
Train FPO from the command line: ``python -m sb3_fpo`` trains on Pendulum-v1 and reports the zero-sampling return.

The settings are the env's preset in ``hyperparams/fpo.yml`` (:func:`sb3_fpo.presets.load_preset`), its
``default`` entry for an env without one. Pendulum-v1's are rl-zoo3's tuned PPO settings (4 envs x 1024 steps,
gamma 0.9, lr 1e-3, 10 epochs, batch 64), with which FPO reached -183 +/- 36 after 110k steps over 5 seeds
(benchmarks/README.md). For evaluation callbacks, other tasks' budgets and Optuna, use the rl-zoo3 entry
``python -m sb3_fpo.zoo``.
"""

from __future__ import annotations

import argparse
import time

from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecNormalize, sync_envs_normalization

from sb3_fpo import FPO
from sb3_fpo.presets import load_preset
from sb3_fpo.zoo import limit_torch_threads


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sb3_fpo", description=__doc__)
    parser.add_argument("--env", default="Pendulum-v1", help="Gymnasium env id with a Box action space")
    parser.add_argument("--timesteps", type=int, default=100_000, help="environment steps to train for")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument(
        "--save", default="fpo_pendulum", help="path of the saved model (.zip; VecNormalize statistics beside it, if any)"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--verbose", type=int, default=0, help="1 prints SB3's training table")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> float:
    args = parse_args(argv)
    limit_torch_threads()
    preset = load_preset(args.env, use_default=True)
    env = make_vec_env(args.env, n_envs=preset.n_envs, seed=args.seed)
    eval_env = make_vec_env(args.env, n_envs=1, seed=args.seed + 1000)
    if preset.normalize is not None:
        env = VecNormalize(env, gamma=preset.kwargs.get("gamma", 0.99), **preset.normalize)
        eval_env = VecNormalize(eval_env, training=False, norm_reward=False, **preset.normalize)
    model = FPO(preset.policy, env, seed=args.seed, device=args.device, verbose=args.verbose, **preset.kwargs)
    start = time.perf_counter()
    model.learn(args.timesteps)
    elapsed = time.perf_counter() - start
    model.save(args.save)

    if isinstance(env, VecNormalize):
        env.save(f"{args.save}_vecnormalize.pkl")
        sync_envs_normalization(env, eval_env)  # a frozen copy: eval_env.training is False
    mean, std = evaluate_policy(model, eval_env, n_eval_episodes=args.eval_episodes, deterministic=True)
    print(
        f"FPO on {args.env}: {model.num_timesteps} steps in {elapsed:.0f} s ({model.num_timesteps / elapsed:.0f} steps/s). "
        f"Zero-sampling return over {args.eval_episodes} episodes: {mean:.1f} +/- {std:.1f}. Saved to {args.save}.zip"
    )
    return float(mean)  # type: ignore[arg-type]  # a float when return_episode_rewards=False


if __name__ == "__main__":
    main()
