"""
How much of the actor's policy-gradient estimate is signal? FPO against SB3 PPO on Pendulum-v1 at a user's settings
(``VecNormalize``, 4 envs x 256 steps, gamma 0.9, lr 1e-3, as ``benchmarks/defaults_check.py pendulum``).

During training, at chosen rollouts, the rollout is split into K minibatches and the gradient of the policy loss with
respect to the actor's parameters (FPO: the velocity network; PPO: the policy branch, action head and log-std) is
taken on each at the rollout's parameters, where every ratio is 1 and no trust region acts yet. The signal fraction
``(K ||mean g||^2 / mean ||g_k||^2 - 1) / (K - 1)`` estimates ``||E g||^2 / E ||g||^2``: about 0 for pure noise, 1
for a noiseless estimate. FPO's estimator adds the noise of its (tau, eps) pairs to the actions' own; if that noise
made FPO's update directions worse, its fraction would be lower than PPO's::

    python benchmarks/gradient_signal.py --algos ppo fpo fpo_n32 --seeds 0 1 \\
        --json benchmarks/results/gradient_signal/pendulum.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch as th
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize

from sb3_fpo import FPO

ALGOS: dict[str, dict[str, Any]] = {"ppo": {}, "fpo": {}, "fpo_n32": dict(n_samples=32)}
SETTINGS = dict(n_steps=256, batch_size=256, gamma=0.9, learning_rate=1e-3)


def actor_parameters(model: Any) -> list[th.Tensor]:
    if isinstance(model, FPO):
        return [p for name, p in model.policy.named_parameters() if name.startswith("velocity")]
    prefixes = ("mlp_extractor.policy", "action_net", "log_std")
    return [p for name, p in model.policy.named_parameters() if name.startswith(prefixes)]


def signal_fraction(model: Any, k: int) -> float:
    """The signal fraction of the actor gradient over ``k`` minibatches of the current rollout, at its parameters."""
    buffer = model.rollout_buffer
    if isinstance(model, FPO):
        model._store_flow_samples()  # the pairs and old CFM losses train() would draw (train() then keeps them)
    params = actor_parameters(model)
    grads = []
    for data in buffer.get(buffer.buffer_size * buffer.n_envs // k):
        if isinstance(model, FPO):
            _, policy_loss, _, _ = model.fpo_loss(data, 0.2, None)
        else:
            _, log_prob, _ = model.policy.evaluate_actions(data.observations, data.actions)
            advantages = (data.advantages - data.advantages.mean()) / (data.advantages.std() + 1e-8)
            policy_loss = -(advantages * th.exp(log_prob - data.old_log_prob)).mean()
        grads.append(th.cat([g.flatten() for g in th.autograd.grad(policy_loss, params)]))
    stacked = th.stack(grads)
    ratio = (stacked.mean(0).norm() ** 2 / (stacked.norm(dim=1) ** 2).mean()).item()
    return (k * ratio - 1) / (k - 1)


class Probe(BaseCallback):
    def __init__(self, rollouts: list[int], k: int) -> None:
        super().__init__()
        self.rollouts, self.k, self.count = rollouts, k, 0
        self.fractions: dict[int, float] = {}

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        self.count += 1
        if self.count in self.rollouts:
            self.fractions[self.count] = round(signal_fraction(self.model, self.k), 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algos", nargs="+", default=list(ALGOS), choices=list(ALGOS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--rollouts", nargs="+", type=int, default=[2, 10, 20, 30])
    parser.add_argument("--k", type=int, default=16, help="minibatches the rollout is split into (16: 64 transitions)")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    th.set_num_threads(1)
    results = []
    for algo in args.algos:
        for seed in args.seeds:
            env = VecNormalize(make_vec_env("Pendulum-v1", n_envs=4, seed=seed), gamma=SETTINGS["gamma"])
            cls: Any = PPO if algo == "ppo" else FPO
            model = cls("MlpPolicy", env, seed=seed, device="cpu", **SETTINGS, **ALGOS[algo])
            probe = Probe(args.rollouts, args.k)
            model.learn(max(args.rollouts) * 1024, callback=probe)
            results.append(dict(algo=algo, seed=seed, k=args.k, signal_fraction=probe.fractions))
            print(results[-1], flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
