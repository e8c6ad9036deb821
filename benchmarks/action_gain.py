"""
How far does one update move the policy's deterministic action? FPO against SB3 PPO at the same settings.

Each configuration trains for ``--warmup`` steps, then on a fixed set of observations (the last rollout's) records the
deterministic action (FPO: zero-sampling; PPO: the Gaussian's mean) before and after each of ``--updates`` further
updates (one rollout + ``train()``), and reports, averaged over the updates:

* ``action shift``: the mean absolute change of the deterministic action per update;
* ``per Adam step``: the same divided by the optimizer steps of an update (n_epochs × minibatches);
* ``action spread``: the mean std of the sampled actions at those observations (PPO: the Gaussian's std; FPO: the
  std of 16 samples each), the scale the shift is measured against;
* ``actor |dθ| per step``: the mean absolute change of the actor's parameters per optimizer step.

Adam moves each parameter by about ``lr`` per step whatever the gradient's size, so the action moves by about
``lr`` × (the output layer's scale) × (the size of the last hidden layer) per step: the action gain of the
parametrisation. Configurations are given as ``NAME`` (a built-in) and compared on the same task and seed::

    python benchmarks/action_gain.py --env cartpole-balance --backend envpool --seeds 0 1 2 \\
        --json benchmarks/results/action_gain/cartpole-balance.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch as th
from mujoco_benchmark import git_commit
from mujoco_benchmark import make_env as harness_env
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecNormalize

from sb3_fpo import FPO

SHAPE = dict(n_steps=256, batch_size=256, n_epochs=10)

#: name -> (algorithm, keyword arguments on top of SHAPE)
CONFIGS: dict[str, tuple[type, dict[str, Any]]] = {
    "ppo": (PPO, {}),
    "fpo": (FPO, {}),
    "fpo_averaged_ppo_clip": (FPO, dict(ratio_mode="averaged", trust_region="ppo")),
    "fpo_per_sample_ppo_clip": (FPO, dict(trust_region="ppo")),
    "fpo_averaged_aspo": (FPO, dict(ratio_mode="averaged")),
    "fpo_output_scale_1": (FPO, dict(policy_kwargs=dict(output_scale=1.0))),
    "fpo_lr_1e-3": (FPO, dict(learning_rate=1e-3)),
    "fpo_noise_target": (FPO, dict(policy_kwargs=dict(cfm_target="noise"))),
    # output scale 1 with the output layer initialised as SB3 initialises PPO's action_net (orthogonal, gain 0.01)
    "fpo_output_scale_1_small_init": (FPO, dict(policy_kwargs=dict(output_scale=1.0, output_init_gain=0.01))),
}


def make_env(env_id: str, seed: int, backend: str) -> VecNormalize:
    """8 envs of a Gymnasium id or a DM Control task (the benchmark harness's dispatch), with VecNormalize."""
    return VecNormalize(harness_env(env_id, 8, seed, backend))


def deterministic_and_spread(model: Any, obs: th.Tensor) -> tuple[th.Tensor, float]:
    policy = model.policy
    with th.no_grad():
        if isinstance(model, FPO):
            mean = policy.sample_actions(obs, "zero")
            samples = th.stack([policy.sample_actions(obs, "random") for _ in range(16)])
            return mean, float(samples.std(dim=0).mean())
        distribution = policy.get_distribution(obs).distribution
        return distribution.mean, float(distribution.stddev.mean())


def actor_parameters(model: Any) -> th.Tensor:
    policy = model.policy
    modules = [policy.velocity_net] if isinstance(model, FPO) else [policy.action_net, policy.mlp_extractor.policy_net]
    return th.cat([p.detach().reshape(-1) for m in modules for p in m.parameters()]).clone()


def measure(factory: Callable[[], Any], warmup: int, updates: int) -> dict[str, float]:
    model = factory()
    rollout = model.n_steps * model.n_envs
    model.learn(warmup)
    steps_per_update = model.n_epochs * (rollout // model.batch_size)
    shifts, spreads, param_steps = [], [], []
    for _ in range(updates):
        obs = th.as_tensor(model.rollout_buffer.observations.reshape(rollout, -1)[:512])
        before, spread = deterministic_and_spread(model, obs)
        params = actor_parameters(model)
        model.learn(rollout, reset_num_timesteps=False)
        after, _ = deterministic_and_spread(model, obs)
        shifts.append(float((after - before).abs().mean()))
        spreads.append(spread)
        param_steps.append(float((actor_parameters(model) - params).abs().mean()) / steps_per_update)
    return {
        "action_shift_per_update": statistics.mean(shifts),
        "action_shift_per_adam_step": statistics.mean(shifts) / steps_per_update,
        "action_spread": statistics.mean(spreads),
        "shift_over_spread": statistics.mean(s / max(d, 1e-8) for s, d in zip(shifts, spreads)),
        "actor_param_change_per_adam_step": statistics.mean(param_steps),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="cartpole-balance")
    parser.add_argument("--backend", default="envpool", choices=("dm_control", "envpool"))
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--warmup", type=int, default=20_480, help="training steps before the measured updates")
    parser.add_argument("--updates", type=int, default=5)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    th.set_num_threads(1)
    results: dict[str, list[dict[str, float]]] = {}
    for name in args.configs:
        algorithm, kwargs = CONFIGS[name]
        for seed in args.seeds:
            settings = {**SHAPE, **kwargs}

            def factory(algorithm: type = algorithm, settings: dict = settings, seed: int = seed) -> Any:
                return algorithm("MlpPolicy", make_env(args.env, seed, args.backend), seed=seed, **settings)

            results.setdefault(name, []).append(measure(factory, args.warmup, args.updates))
    keys = list(next(iter(results.values()))[0])
    print(f"| config | {' | '.join(keys)} |\n|---|{'---|' * len(keys)}")
    for name, runs in results.items():
        print(f"| {name} | " + " | ".join(f"{statistics.mean(r[k] for r in runs):.3g}" for k in keys) + " |")
    if args.json:
        record = dict(settings=vars(args), shape=SHAPE, commit=git_commit(), results=results)
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
