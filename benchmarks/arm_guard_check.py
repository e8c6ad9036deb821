"""
Does the log-ratio guard change an ArmTracking-v0 run? One run of the under-conditioned study's ``fpo_defaults``
(``examples/under_conditioned.py``) at a level and seed, with the default guard or the former one
(``log_ratio_clamp=(None, 20)``, straight-through), reporting the deterministic success over 100 episodes and in how
many updates each guard acted (``defaults_check.GuardRecorder``)::

    python benchmarks/arm_guard_check.py --seed 102 --guard default
    python benchmarks/arm_guard_check.py --seed 102 --guard former
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--guard", choices=["default", "former"], default="default")
    parser.add_argument("--level", default="full")
    parser.add_argument("--timesteps", type=int, default=300_000)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "examples"))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import torch as th
    from defaults_check import GuardRecorder
    from stable_baselines3.common.env_util import make_vec_env
    from under_conditioned import algorithm_settings, evaluate

    from sb3_fpo import FPO

    th.set_num_threads(1)
    _, kwargs, n_envs = algorithm_settings("fpo_defaults")
    if args.guard == "former":
        kwargs.update(log_ratio_clamp=(None, 20.0), log_ratio_straight_through=True)
    env = make_vec_env("ArmTracking-v0", n_envs=n_envs, seed=args.seed, env_kwargs=dict(conditioning=args.level))
    model = FPO("MlpPolicy", env, seed=args.seed, device="cpu", **kwargs)
    recorder = GuardRecorder()
    model.learn(args.timesteps, callback=recorder)
    result = evaluate(lambda obs, _env: model.predict(obs, deterministic=True)[0], args.level, 100)
    print(json.dumps(dict(vars(args), success=result["success"], guards=recorder.summary())))


if __name__ == "__main__":
    main()
