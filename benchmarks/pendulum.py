"""
FPO vs SB3 PPO on Pendulum-v1, side by side, several seeds and FPO variants in parallel processes.

PPO uses rl-zoo3 2.9.2's tuned Pendulum-v1 hyperparameters (ppo.yml); FPO uses the same rollout and
optimisation settings (without gSDE, which a flow policy does not have) and varies its own knobs.
Every ``--eval-freq`` steps the policy is evaluated for ``--eval-episodes`` episodes on a separate env,
deterministically (zero-sampling for FPO, the mean action for PPO).

    python benchmarks/pendulum.py --seeds 0 1 2 --timesteps 100000 --out benchmarks/results/pendulum

writes every run (curves, wall time) to ``results.json`` and a markdown summary ``summary.md`` in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

# PPO: rl-zoo3 2.9.2's tuned Pendulum-v1 entry (hyperparams/ppo.yml, with gSDE); FPO: its preset in
# hyperparams/fpo.yml, the same settings without gSDE. Variants override entries of these.
VARIANTS: dict[str, dict[str, Any]] = {
    "ppo_zoo": dict(algo="ppo"),
    "fpo_default": dict(algo="fpo"),
    "fpo_clip0.05": dict(algo="fpo", clip_range=0.05),
    "fpo_per_sample": dict(algo="fpo", ratio_mode="per_sample"),
    "fpo_N16": dict(algo="fpo", n_samples=16),
    "fpo_scale1": dict(algo="fpo", policy_kwargs=dict(output_scale=1.0)),
    "fpo_tau_grid": dict(algo="fpo", tau_sampling="discrete"),
    # the MuJoCo presets' guards (Hopper, Walker2d): candidate library defaults
    "fpo_per_sample_aspo": dict(algo="fpo", ratio_mode="per_sample", trust_region="aspo", cfm_loss_clamp=20.0),
    "fpo_plusplus": dict(
        algo="fpo",
        n_samples=16,
        ratio_mode="per_sample",
        trust_region="aspo",
        tau_min=0.005,
        tau_max=0.995,
        cfm_loss_clamp=20.0,
        log_ratio_clamp=(None, 10.0),
        log_ratio_straight_through=True,
    ),
}


def run(variant: str, seed: int, timesteps: int, eval_freq: int, eval_episodes: int, out: str) -> dict[str, Any]:
    import torch as th

    th.set_num_threads(1)
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    from sb3_fpo import FPO
    from sb3_fpo.presets import load_preset

    is_fpo = VARIANTS[variant]["algo"] == "fpo"
    if is_fpo:
        preset = load_preset("Pendulum-v1")
    else:
        import rl_zoo3

        preset = load_preset("Pendulum-v1", path=Path(rl_zoo3.__file__).parent / "hyperparams" / "ppo.yml")
    settings = {**preset.kwargs, **{k: v for k, v in VARIANTS[variant].items() if k != "algo"}}
    algo = FPO if is_fpo else PPO
    env = make_vec_env("Pendulum-v1", n_envs=preset.n_envs, seed=seed)
    eval_env = make_vec_env("Pendulum-v1", n_envs=1, seed=seed + 10_000)
    model = algo("MlpPolicy", env, seed=seed, device="cpu", **settings)
    curve, train_time = [], 0.0
    while model.num_timesteps < timesteps:
        start = time.perf_counter()
        model.learn(eval_freq, reset_num_timesteps=False)
        train_time += time.perf_counter() - start
        mean, std = evaluate_policy(model, eval_env, n_eval_episodes=eval_episodes, deterministic=True)
        curve.append((model.num_timesteps, float(mean), float(std)))
    result = dict(
        variant=variant,
        seed=seed,
        settings=repr(settings),
        curve=curve,
        train_time=train_time,
        steps_per_s=model.num_timesteps / train_time,
    )
    return result


def summarize(results: list[dict[str, Any]], out: str, command: str) -> str:
    lines = [
        f"Command: `{command}`",
        "",
        "| variant | seeds | final return (mean ± std over seeds) | best return | steps/s | steps/s ÷ PPO |",
        "|---|---|---|---|---|---|",
    ]
    ppo_sps = np.mean([r["steps_per_s"] for r in results if r["variant"] == "ppo_zoo"] or [np.nan])
    for variant in VARIANTS:
        runs = [r for r in results if r["variant"] == variant]
        if not runs:
            continue
        final = [r["curve"][-1][1] for r in runs]
        best = [max(c[1] for c in r["curve"]) for r in runs]
        sps = np.mean([r["steps_per_s"] for r in runs])
        lines.append(
            f"| {variant} | {len(runs)} | {np.mean(final):.0f} ± {np.std(final):.0f} | {np.mean(best):.0f} | "
            f"{sps:.0f} | {sps / ppo_sps:.2f} |"
        )
    lines += ["", "Learning curves (deterministic return, mean over seeds):", ""]
    steps = [c[0] for c in results[0]["curve"]]
    lines.append("| variant | " + " | ".join(f"{s // 1000}k" for s in steps) + " |")
    lines.append("|---|" + "---|" * len(steps))
    for variant in VARIANTS:
        runs = [r for r in results if r["variant"] == variant]
        if runs:
            means = np.mean([[c[1] for c in r["curve"]] for r in runs], axis=0)
            lines.append(f"| {variant} | " + " | ".join(f"{m:.0f}" for m in means) + " |")
    text = "\n".join(lines) + "\n"
    Path(out, "summary.md").write_text(text)
    Path(out, "results.json").write_text(json.dumps(results, indent=1))
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--timesteps", type=int, default=100_000)
    parser.add_argument("--eval-freq", type=int, default=10_000)
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--out", default="benchmarks/results/pendulum")
    args = parser.parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    jobs = [(v, s) for v in args.variants for s in args.seeds]
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        futures = [pool.submit(run, v, s, args.timesteps, args.eval_freq, args.eval_episodes, args.out) for v, s in jobs]
        results = [f.result() for f in futures]
    command = "python benchmarks/pendulum.py " + " ".join(
        f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
        for k, v in vars(args).items()
        if k not in ("workers", "out")
    )
    print(summarize(results, args.out, command))


if __name__ == "__main__":
    main()
