"""
Do the library defaults learn simple tasks? FPO with its defaults (plus a candidate change) against SB3 PPO at the
same settings, several seeds, one process per run.

Tasks (each fixes what a user would write, and leaves everything else to the library):

* ``pendulum``: ``VecNormalize(make_vec_env("Pendulum-v1", n_envs=4))``, n_steps 256, batch 256, gamma 0.9,
  lr 1e-3, 40k steps; every 10k steps the deterministic return over 10 episodes on a separate env whose
  VecNormalize statistics are copied and frozen (FPO: zero-sampling; PPO: the mean);
* ``arm_full``: ``ArmTracking-v0`` at ``conditioning="full"``, 4 envs x 512 steps, batch 128, 100k steps; at the
  end the deterministic success over 100 episodes (``examples/under_conditioned.py``'s evaluation).

Variants are FPO overrides of the library defaults (``fpo`` is the defaults themselves); ``ppo`` is SB3's PPO with
its own defaults at the task's settings. Each run is saved as ``runs/<task>_<variant>_seed<seed>.json`` in ``--out``
(a run whose file exists is not redone) and ``summary.md`` gives the mean over seeds::

    python benchmarks/defaults_check.py pendulum --variants ppo fpo fpo_gain --seeds 0 1 2 --workers 1 \\
        --out benchmarks/results/defaults_check
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback

ROOT = Path(__file__).resolve().parents[1]

#: FPO overrides of the library defaults (policy_kwargs are merged)
VARIANTS: dict[str, dict[str, Any]] = {
    "fpo": {},
    # the parametrisation's action gain: output scale 1, output layer initialised as PPO's action_net
    "fpo_gain": dict(policy_kwargs=dict(output_scale=1.0, output_init_gain=0.01)),
    "fpo_noise_target": dict(policy_kwargs=dict(cfm_target="noise")),
    "fpo_averaged_ppo_clip": dict(ratio_mode="averaged", trust_region="ppo"),
    "fpo_per_sample_ppo_clip": dict(trust_region="ppo"),
    "fpo_lr_1e-3": dict(learning_rate=1e-3),
    # rsl_rl's KL-adaptive learning rate (FPO++): the rate grows while an update moves the policy too little
    "fpo_adaptive_lr": dict(adaptive_lr_target_kl=0.01),
    "fpo_adaptive_lr_noise_target": dict(adaptive_lr_target_kl=0.01, policy_kwargs=dict(cfm_target="noise")),
    "fpo_per_sample_ppo_clip_noise_target": dict(trust_region="ppo", policy_kwargs=dict(cfm_target="noise")),
    "fpo_gain_noise_target": dict(policy_kwargs=dict(output_scale=1.0, output_init_gain=0.01, cfm_target="noise")),
    "fpo_fit_clipped": dict(fit_clipped_actions=True),
    # the adaptive rate, adapted once per update instead of after every minibatch
    "fpo_adaptive_lr_update": dict(adaptive_lr_target_kl=0.01, adaptive_lr_every="update"),
    # a wider trust region: SPO's penalty |A| (rho - 1)^2 / (2 eps) halves at eps 0.4
    "fpo_clip_0.4": dict(clip_range=0.4),
    "fpo_adaptive_lr_vnet64": dict(adaptive_lr_target_kl=0.01, policy_kwargs=dict(velocity_net_arch=[64, 64])),
    "fpo_vnet64": dict(policy_kwargs=dict(velocity_net_arch=[64, 64])),
    "fpo_vnet64_averaged_ppo_clip": dict(
        ratio_mode="averaged", trust_region="ppo", policy_kwargs=dict(velocity_net_arch=[64, 64])
    ),
    "fpo_vnet64_per_sample_ppo_clip": dict(trust_region="ppo", policy_kwargs=dict(velocity_net_arch=[64, 64])),
    "fpo_vnet64_adaptive_lr_update_0.005": dict(
        adaptive_lr_target_kl=0.005, adaptive_lr_every="update", policy_kwargs=dict(velocity_net_arch=[64, 64])
    ),
    "fpo_vnet64_adaptive_lr_0.005": dict(adaptive_lr_target_kl=0.005, policy_kwargs=dict(velocity_net_arch=[64, 64])),
    "fpo_adaptive_lr_update_vnet64": dict(
        adaptive_lr_target_kl=0.01, adaptive_lr_every="update", policy_kwargs=dict(velocity_net_arch=[64, 64])
    ),
    "fpo_adaptive_lr_0.02": dict(adaptive_lr_target_kl=0.02),
    "fpo_adaptive_lr_0.005": dict(adaptive_lr_target_kl=0.005),
    "fpo_adaptive_lr_fit_clipped": dict(adaptive_lr_target_kl=0.01, fit_clipped_actions=True),
    "fpo_adaptive_lr_ppo_clip": dict(adaptive_lr_target_kl=0.01, trust_region="ppo"),
    # the per-update adaptive rate bounded relative to the task's learning rate (between lr / 30 and 3 lr)
    "fpo_adaptive_update_0.005_x3": dict(adaptive_lr_target_kl=0.005, adaptive_lr_every="update", lr_factors=(1 / 30, 3)),
    "fpo_adaptive_update_0.01_x3": dict(adaptive_lr_target_kl=0.01, adaptive_lr_every="update", lr_factors=(1 / 30, 3)),
    # the epsilon-MSE target with the 2 x 64 velocity net (the default since; "fpo_noise_target" ran with 4 x 32)
    "fpo_vnet64_noise_target": dict(policy_kwargs=dict(cfm_target="noise", velocity_net_arch=[64, 64])),
    # a deeper velocity net: 4 x 64 (the FPO paper's depth, the default's width), with either target
    "fpo_vnet4x64": dict(policy_kwargs=dict(velocity_net_arch=[64, 64, 64, 64])),
    "fpo_vnet4x64_noise_target": dict(policy_kwargs=dict(cfm_target="noise", velocity_net_arch=[64, 64, 64, 64])),
    "fpo_vnet2x128_noise_target": dict(policy_kwargs=dict(cfm_target="noise", velocity_net_arch=[128, 128])),
    "fpo_vnet3x64_noise_target": dict(policy_kwargs=dict(cfm_target="noise", velocity_net_arch=[64, 64, 64])),
    "fpo_vnet64_noise_target_adaptive_update_0.005": dict(
        adaptive_lr_target_kl=0.005,
        adaptive_lr_every="update",
        policy_kwargs=dict(cfm_target="noise", velocity_net_arch=[64, 64]),
    ),
    # narrower source noise: x_0 = source_std * eps, which also shrinks the CFM target's noise term
    "fpo_source_0.5": dict(policy_kwargs=dict(source_std=0.5)),
    "fpo_source_0.3": dict(policy_kwargs=dict(source_std=0.3)),
    # log-ratio guards that can act under the CFM-loss clamp of 20: FPO++'s upper 10 (straight-through gradient),
    # and the official FPO code's +-3 (no gradient beyond the clamp)
    "fpo_log_ratio_10": dict(log_ratio_clamp=(None, 10.0)),
    "fpo_log_ratio_3": dict(log_ratio_clamp=3.0, log_ratio_straight_through=False),
    # fit the flow to the executed (clipped) actions, so that raw samples cannot drift far outside the Box
    "fpo_vnet64_fit_clipped": dict(fit_clipped_actions=True),
    "fpo_vnet64_noise_target_fit_clipped": dict(
        fit_clipped_actions=True, policy_kwargs=dict(cfm_target="noise", velocity_net_arch=[64, 64])
    ),
    "fpo_vnet3x64_noise_target_fit_clipped": dict(
        fit_clipped_actions=True, policy_kwargs=dict(cfm_target="noise", velocity_net_arch=[64, 64, 64])
    ),
    "fpo_vnet64_adaptive_update_0.005_fit_clipped": dict(
        fit_clipped_actions=True, adaptive_lr_target_kl=0.005, adaptive_lr_every="update"
    ),
    # the fast epsilon-MSE 3 x 64 setting with the task's learning rate decayed linearly to 0 (to hold its peak)
    "fpo_vnet3x64_noise_target_lr_linear": dict(
        lr_linear=True, policy_kwargs=dict(cfm_target="noise", velocity_net_arch=[64, 64, 64])
    ),
    "fpo_vnet64_lr_linear": dict(lr_linear=True),
}
TASKS = ("pendulum", "arm_full")


def task_settings(task: str) -> tuple[str, dict[str, Any], dict[str, Any], int, bool]:
    """env id, env kwargs, algorithm kwargs, timesteps, VecNormalize."""
    if task == "pendulum":
        return "Pendulum-v1", {}, dict(n_steps=256, batch_size=256, gamma=0.9, learning_rate=1e-3), 40_000, True
    if task == "arm_full":
        return "ArmTracking-v0", dict(conditioning="full"), dict(n_steps=512, batch_size=128), 100_000, False
    raise ValueError(f"Unknown task {task!r}")


GUARD_KEYS = ("train/log_ratio_clamp_fraction", "train/cfm_clamp_fraction", "train/ratio_max", "train/grad_norm_max")


class GuardRecorder(BaseCallback):
    """
    Reads each FPO update's logged guard statistics (they stay in the logger until the next dump): in how many
    updates the log-ratio clamp and the CFM-loss clamp acted, the largest ratio, the largest gradient norm before
    clipping.
    """

    def __init__(self) -> None:
        super().__init__()
        self.updates: dict[float, dict[str, float]] = {}  # by train/n_updates

    def _read(self) -> None:
        logged = self.logger.name_to_value
        if "train/n_updates" in logged:
            self.updates[logged["train/n_updates"]] = {key: float(logged[key]) for key in GUARD_KEYS if key in logged}

    def _on_rollout_start(self) -> None:
        self._read()

    def _on_training_end(self) -> None:
        self._read()

    def _on_step(self) -> bool:
        return True

    def summary(self) -> dict[str, Any]:
        def column(key: str) -> list[float]:
            return [update[key] for update in self.updates.values() if key in update]

        return dict(
            updates=len(self.updates),
            log_ratio_clamp_acted=sum(v > 0 for v in column("train/log_ratio_clamp_fraction")),
            cfm_clamp_acted=sum(v > 0 for v in column("train/cfm_clamp_fraction")),
            ratio_max=max(column("train/ratio_max"), default=float("nan")),
            grad_norm_max=max(column("train/grad_norm_max"), default=float("nan")),
        )


def fpo_kwargs(task_kwargs: dict[str, Any], variant: str) -> dict[str, Any]:
    """The task's settings with an FPO variant's overrides (``policy_kwargs`` replaced, the relative keys resolved)."""
    overrides = dict(VARIANTS[variant])
    kwargs = {**task_kwargs, **overrides, "policy_kwargs": overrides.get("policy_kwargs", {})}
    rate = kwargs.get("learning_rate", 3e-4)
    if "lr_factors" in kwargs:  # adaptive_lr_range as multiples of the task's learning rate
        low, high = kwargs.pop("lr_factors")
        kwargs["adaptive_lr_range"] = (rate * low, rate * high)
    return kwargs


def decay_linearly(model: Any, timesteps: int) -> None:
    """
    Decay the model's learning rate linearly from its initial value to 0 at ``timesteps`` total steps, whatever
    the number of ``learn`` calls (SB3's own schedules restart their progress at every call).
    """
    rate = model.lr_schedule(1.0)
    model.lr_schedule = lambda _progress: rate * max(0.0, 1.0 - model.num_timesteps / timesteps)


def build_model(task: str, variant: str, seed: int, timesteps: int | None = None) -> tuple[Any, dict[str, Any], int]:
    """
    The task's model for a variant (``ppo`` or an FPO variant) on its 4-env training env: the model, the keyword
    arguments it was built with and the run's total steps (the task's unless ``timesteps`` is given).
    """
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    import sb3_fpo  # noqa: F401  (registers ArmTracking-v0)
    from sb3_fpo import FPO

    env_id, env_kwargs, kwargs, task_timesteps, normalize = task_settings(task)
    timesteps = task_timesteps if timesteps is None else timesteps
    algorithm: Any = PPO if variant == "ppo" else FPO
    if variant != "ppo":
        kwargs = fpo_kwargs(kwargs, variant)
    env = make_vec_env(env_id, n_envs=4, seed=seed, env_kwargs=env_kwargs)
    if normalize:
        env = VecNormalize(env, gamma=kwargs.get("gamma", 0.99))
    linear = kwargs.pop("lr_linear", False)
    model = algorithm("MlpPolicy", env, seed=seed, device="cpu", **kwargs)
    if linear:
        decay_linearly(model, timesteps)
    return model, kwargs, timesteps


def run(task: str, variant: str, seed: int, out: str) -> str:
    import time

    import torch as th
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.vec_env import VecNormalize, sync_envs_normalization

    th.set_num_threads(1)
    env_id = task_settings(task)[0]
    model, kwargs, timesteps = build_model(task, variant, seed)
    env = model.get_env()
    record: dict[str, Any] = dict(task=task, variant=variant, seed=seed, settings=repr(kwargs), evaluations=[])
    guard = GuardRecorder()
    start = time.perf_counter()
    if task == "pendulum":
        eval_env = VecNormalize(make_vec_env(env_id, n_envs=1, seed=seed + 10_000), training=False, norm_reward=False)
        while model.num_timesteps < timesteps:
            model.learn(10_000, reset_num_timesteps=False, callback=guard)
            sync_envs_normalization(env, eval_env)
            mean, _ = evaluate_policy(model, eval_env, n_eval_episodes=10, deterministic=True)
            record["evaluations"].append(dict(steps=model.num_timesteps, det_mean=float(mean)))  # type: ignore[arg-type]
        record["final"] = record["evaluations"][-1]["det_mean"]
    else:
        sys.path.insert(0, str(ROOT / "examples"))
        from under_conditioned import evaluate

        model.learn(timesteps, callback=guard)
        result = evaluate(lambda obs, _env: model.predict(obs, deterministic=True)[0], "full", 100)
        record["evaluations"].append(dict(steps=model.num_timesteps, success=result["success"], det_mean=result["return"]))
        record["final"] = result["success"]
    record["train_and_eval_seconds"] = round(time.perf_counter() - start, 1)
    # the learning rate the last update used (the adaptive one where it is on)
    record["final_learning_rate"] = float(model.policy.optimizer.param_groups[0]["lr"])
    if variant != "ppo":
        record["guards"] = guard.summary()
    path = Path(out, "runs", f"{task}_{variant}_seed{seed}.json")
    path.write_text(json.dumps(record, indent=1))
    return f"{path}: {record['final']:.3f}"


def summary(out: Path) -> str:
    runs = [json.loads(p.read_text()) for p in sorted((out / "runs").glob("*.json"))]
    lines = [
        "| task | variant | final (Pendulum: deterministic return; ArmTracking full: deterministic success) | per seed | "
        "mean of the last three evaluations |",
        "|---|---|---|---|---|",
    ]
    for task in TASKS:
        for variant in ["ppo", *VARIANTS]:
            chosen = sorted((r for r in runs if r["task"] == task and r["variant"] == variant), key=lambda r: r["seed"])
            if not chosen:
                continue
            finals = [r["final"] for r in chosen]
            last3 = [statistics.mean(e["det_mean"] for e in r["evaluations"][-3:]) for r in chosen]
            per_seed = " / ".join(f"{r['seed']}: {r['final']:.2f}" for r in chosen)
            lines.append(f"| {task} | {variant} | {statistics.mean(finals):.2f} | {per_seed} | {statistics.mean(last3):.1f} |")
    text = "\n".join(lines) + "\n"
    (out / "summary.md").write_text(text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task", choices=(*TASKS, "summary"))
    parser.add_argument("--variants", nargs="+", default=["ppo", "fpo"], choices=["ppo", *VARIANTS])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "defaults_check")
    args = parser.parse_args()
    (args.out / "runs").mkdir(parents=True, exist_ok=True)
    if args.task != "summary":
        jobs = [
            (args.task, variant, seed)
            for seed in args.seeds
            for variant in args.variants
            if not (args.out / "runs" / f"{args.task}_{variant}_seed{seed}.json").exists()
        ]
        print(f"{len(jobs)} runs to do", flush=True)
        with ProcessPoolExecutor(max_workers=args.workers) as pool:
            for future in as_completed([pool.submit(run, *job, str(args.out)) for job in jobs]):
                print(future.result(), flush=True)
    print(summary(args.out))


if __name__ == "__main__":
    main()
