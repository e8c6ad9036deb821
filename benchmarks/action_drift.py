"""
Where the flow's actions sit relative to the action bounds, rollout by rollout, for an FPO preset.

After each rollout it prints one JSON line: the environment steps so far (``t``), the mean absolute raw action
(``abs``, before SB3 clips it for the env), the fraction of raw action components outside the Box bounds
(``oob``), the mean squared norm of the executed (clipped) action (``a2``; Ant-v5's control cost is 0.5 times it
per step), and the mean length and return of the last 100 training episodes (``len``, ``ret``).

    python benchmarks/action_drift.py --env Ant-v5 --timesteps 400000 > drift.jsonl
    python benchmarks/action_drift.py --env Ant-v5 --timesteps 400000 --fpo-hyperparams fit_clipped_actions:true
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np
import torch as th
from mujoco_benchmark import parse_override, training_env
from stable_baselines3.common.callbacks import BaseCallback

from sb3_fpo import FPO
from sb3_fpo.presets import load_preset


class ActionDrift(BaseCallback):
    """Prints the rollout's action statistics (see the module docstring) at the end of each rollout."""

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        actions = self.model.rollout_buffer.actions
        space: Any = self.model.action_space
        low, high = space.low.reshape(-1), space.high.reshape(-1)
        episodes = list(self.model.ep_info_buffer) or [{"l": 0, "r": 0}]
        record = {
            "t": self.num_timesteps,
            "abs": float(np.abs(actions).mean()),
            "oob": float(((actions < low) | (actions > high)).mean()),
            "a2": float((np.clip(actions, low, high) ** 2).sum(-1).mean()),
            "len": float(np.mean([e["l"] for e in episodes])),
            "ret": float(np.mean([e["r"] for e in episodes])),
        }
        print(json.dumps(record), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="Ant-v5")
    parser.add_argument("--timesteps", type=float, default=400_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fpo-hyperparams", nargs="*", default=[], metavar="KEY:VALUE")
    args = parser.parse_args()
    th.set_num_threads(1)
    preset = load_preset(args.env, overrides=dict(parse_override(item) for item in args.fpo_hyperparams))
    model = FPO(preset.policy, training_env(preset, args.seed), seed=args.seed, **preset.kwargs)
    model.learn(int(args.timesteps), callback=ActionDrift())


if __name__ == "__main__":
    main()
