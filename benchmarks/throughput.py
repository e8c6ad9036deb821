"""
Throughput of FPO against SB3 PPO at identical settings, as ratios (absolute times on shared machines are noise).

* training steps/s (rollout + update) of FPO ÷ PPO at identical n_envs, n_steps, batch size, epochs and
  network widths (PPO actor ``pi=[64, 64]`` vs FPO velocity net ``[64, 64]``; critic ``[64, 64]`` for both),
  and each ÷ the env-only stepping rate (random actions through the same VecEnv); FPO uses torch's fused Adam
  by default, so FPO ÷ PPO with fused Adam is reported too;
* the share of the training time spent in the update (``train()``; the rest is the rollout);
* ``predict`` latency at batch 1 with zero-sampling (5 and 10 flow steps) ÷ PPO's deterministic ``predict``;
* with ``--profile ROWS``, the top ops of one update of each, by CPU time (torch's profiler).

Measurements alternate A, B, A, B ... and the medians of the per-pair ratios are reported.

    python benchmarks/throughput.py --env Pendulum-v1 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import numpy as np
import torch as th
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env

from sb3_fpo import FPO


def make_models(env_id: str, n_envs: int, n_steps: int, batch_size: int, n_epochs: int, flow_steps: int, device: str):
    common: dict[str, Any] = dict(n_steps=n_steps, batch_size=batch_size, n_epochs=n_epochs, seed=0, device=device)
    fpo = FPO(
        "MlpPolicy",
        make_vec_env(env_id, n_envs=n_envs, seed=0),
        policy_kwargs=dict(net_arch=dict(pi=[], vf=[64, 64]), velocity_net_arch=[64, 64], flow_steps=flow_steps),
        **common,
    )
    ppo = PPO("MlpPolicy", make_vec_env(env_id, n_envs=n_envs, seed=0), policy_kwargs=dict(net_arch=[64, 64]), **common)
    # PPO with FPO's default optimizer implementation (torch's fused Adam), to separate that gain from the rest
    fused = dict(net_arch=[64, 64], optimizer_kwargs=dict(eps=1e-5, fused=True))
    ppo_fused = PPO("MlpPolicy", make_vec_env(env_id, n_envs=n_envs, seed=0), policy_kwargs=fused, **common)
    return fpo, ppo, ppo_fused


def train_rate(model: Any, iterations: int, update_times: list[float] | None = None) -> float:
    """Training steps/s over ``iterations`` rollout + update cycles; the update's share goes to ``update_times``."""
    steps = iterations * model.n_steps * model.n_envs
    update = 0.0
    train = model.train

    def timed_train() -> None:
        nonlocal update
        start = time.perf_counter()
        train()
        update += time.perf_counter() - start

    model.train = timed_train
    start = time.perf_counter()
    try:
        model.learn(steps, reset_num_timesteps=False)
    finally:
        del model.train  # back to the class's method
    total = time.perf_counter() - start
    if update_times is not None:
        update_times.append(update / total)
    return steps / total


def profile_update(model: Any, rows: int) -> None:
    """The ops of one update (``model.train()``) by self CPU time, with torch's profiler."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        model.train()
    averages = prof.key_averages()
    total = sum(event.self_cpu_time_total for event in averages)
    matmul = sum(event.self_cpu_time_total for event in averages if event.key in ("aten::mm", "aten::addmm"))
    print(f"{type(model).__name__}: one update, {total / 1e3:.0f} ms of CPU, matrix products {matmul / total:.0%}")
    print(averages.table(sort_by="self_cpu_time_total", row_limit=rows))


def env_rate(env_id: str, n_envs: int, steps: int) -> float:
    env = make_vec_env(env_id, n_envs=n_envs, seed=0)
    env.reset()
    actions = np.stack([env.action_space.sample() for _ in range(n_envs)])
    start = time.perf_counter()
    for _ in range(steps // n_envs):
        env.step(actions)
    return steps / (time.perf_counter() - start)


def predict_latency(model: Any, obs: np.ndarray, calls: int) -> float:
    model.predict(obs, deterministic=True)
    start = time.perf_counter()
    for _ in range(calls):
        model.predict(obs, deterministic=True)
    return (time.perf_counter() - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="Pendulum-v1")
    parser.add_argument("--n-envs", type=int, default=4)
    parser.add_argument("--n-steps", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--n-epochs", type=int, default=10)
    parser.add_argument("--flow-steps", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=2, help="rollout+update iterations per measurement")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    parser.add_argument("--profile", type=int, default=0, metavar="ROWS", help="print the top ROWS ops of one update")
    args = parser.parse_args()
    th.set_num_threads(args.threads)

    fpo, ppo, ppo_fused = make_models(
        args.env, args.n_envs, args.n_steps, args.batch_size, args.n_epochs, args.flow_steps, args.device
    )
    train_rate(fpo, 1), train_rate(ppo, 1), train_rate(ppo_fused, 1)  # warm-up
    if args.profile:
        profile_update(fpo, args.profile)
        profile_update(ppo, args.profile)
    fpo_rates, ppo_rates, ppo_fused_rates, env_rates = [], [], [], []
    fpo_update_shares: list[float] = []
    ppo_update_shares: list[float] = []
    for _ in range(args.repeats):
        fpo_rates.append(train_rate(fpo, args.iterations, fpo_update_shares))
        ppo_rates.append(train_rate(ppo, args.iterations, ppo_update_shares))
        ppo_fused_rates.append(train_rate(ppo_fused, args.iterations))
        env_rates.append(env_rate(args.env, args.n_envs, args.iterations * args.n_steps * args.n_envs))

    obs = fpo.get_env().reset()[:1]  # type: ignore[union-attr,index]
    latency: dict[str, list[float]] = {"ppo": [], "fpo_5": [], "fpo_10": []}
    for _ in range(args.repeats):
        latency["ppo"].append(predict_latency(ppo, obs, 200))
        for k in (5, 10):
            fpo.policy.eval_flow_steps = k
            latency[f"fpo_{k}"].append(predict_latency(fpo, obs, 200))

    def median_ratio(a: list[float], b: list[float]) -> float:
        return statistics.median(x / y for x, y in zip(a, b))

    figures = {
        "settings": vars(args),
        "fpo_steps_per_s_over_ppo": median_ratio(fpo_rates, ppo_rates),
        "fpo_steps_per_s_over_ppo_fused_adam": median_ratio(fpo_rates, ppo_fused_rates),
        "fpo_update_share_of_training_time": statistics.median(fpo_update_shares),
        "ppo_update_share_of_training_time": statistics.median(ppo_update_shares),
        "fpo_steps_per_s_over_env_only": median_ratio(fpo_rates, env_rates),
        "ppo_steps_per_s_over_env_only": median_ratio(ppo_rates, env_rates),
        "fpo_predict_latency_over_ppo_5_steps": median_ratio(latency["fpo_5"], latency["ppo"]),
        "fpo_predict_latency_over_ppo_10_steps": median_ratio(latency["fpo_10"], latency["ppo"]),
    }
    for key, value in figures.items():
        if key != "settings":
            print(f"{key:40s} {value:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=1)


if __name__ == "__main__":
    main()
