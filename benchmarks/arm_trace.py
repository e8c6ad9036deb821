"""
Where does FPO's ArmTracking ``full`` run stand during training? ``defaults_check.py arm_full``'s run (same env,
settings and seeds), evaluated every ``--every`` steps: deterministic success over ``--episodes`` episodes
(``examples/under_conditioned.py``'s evaluation), the same with sampled actions, and, from the last rollout, the
spread of the raw (unclipped) action samples and their share outside the Box. It tells a configuration that learns
slowly from one that learns and then degrades, and a degraded policy from a degraded zero-sampling evaluation::

    python benchmarks/arm_trace.py --variants ppo fpo_vnet64 fpo_vnet64_averaged_ppo_clip --seed 0 \\
        --out benchmarks/results/arm_trace
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def trace(variant: str, seed: int, every: int, episodes: int, out: str, timesteps: int | None = None) -> str:
    import numpy as np
    import torch as th

    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT.parent / "examples"))
    from defaults_check import build_model
    from under_conditioned import evaluate

    th.set_num_threads(1)
    model, kwargs, timesteps = build_model("arm_full", variant, seed, timesteps)
    points = []
    while model.num_timesteps < timesteps:
        model.learn(every, reset_num_timesteps=False)
        raw = model.rollout_buffer.actions.reshape(-1, model.action_space.shape[0])
        result = evaluate(lambda obs, _env: model.predict(obs, deterministic=True)[0], "full", episodes)
        stochastic = evaluate(lambda obs, _env: model.predict(obs, deterministic=False)[0], "full", episodes)
        points.append(
            dict(
                steps=model.num_timesteps,
                success=result["success"],
                success_stochastic=stochastic["success"],
                raw_action_std=float(raw.std(axis=0).mean()),
                outside_fraction=float((np.abs(raw) > 1.0).mean()),
            )
        )
    record = dict(variant=variant, seed=seed, settings=repr(kwargs), points=points)
    path = Path(out, f"arm_full_{variant}_seed{seed}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1))
    return f"{variant} seed {seed}: " + " ".join(
        f"{p['success']:.2f}/{p['success_stochastic']:.2f}/{p['raw_action_std']:.2f}" for p in points
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--every", type=int, default=20_480)
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "results" / "arm_trace"))
    args = parser.parse_args()
    with ProcessPoolExecutor(args.workers) as pool:
        jobs = [pool.submit(trace, v, args.seed, args.every, args.episodes, args.out) for v in args.variants]
        for job in jobs:
            print(job.result(), flush=True)


if __name__ == "__main__":
    main()
