"""
Behaviour cloning into a flow policy (``FPO.pretrain``), against a Gaussian clone, and FPO fine-tuning.

``multimodal``: two experts solve ``TwoGoal-v0`` differently, one always goes to the top goal, the other to the
bottom one; each demonstration episode starts on the middle line (``y = 0``, ``x`` uniform in [-0.9, 0.9]), where
both goals are equally far, and uses one of them at random. A flow policy
cloned by conditional flow matching (``FPO.pretrain``) against SB3's Gaussian ``ActorCriticPolicy`` cloned by
maximum likelihood on the same data (``-log_prob`` of ``evaluate_actions``, as SB3-era behaviour cloning does).
Reports the success rate (a goal reached within 100 steps, 200 episodes from the middle line, sampled and
deterministic actions), the mean number of steps to a goal (the experts need 16) and the raw action samples at the
ambiguous state (0, 0). A sample counts for an expert's mode when its vertical velocity, clipped to the action box as
the env clips it, is within 0.5 of that expert's (``>= 0.5``: top, ``<= -0.5``: bottom); the rest lie between the two
experts, where neither expert acts::

    python examples/behaviour_cloning.py multimodal --seeds 0 1 2 --epochs 300

``finetune``: a weak expert (SB3 PPO with its default settings and VecNormalize, 200k steps on Hopper-v5) records 50
episodes; FPO clones them and fine-tunes with its ``hyperparams/fpo_finetune.yml`` preset (a critic warm-up, a small learning
rate, PPO's trust region rather than ASPO), and the return is compared with FPO trained from scratch::

    python examples/behaviour_cloning.py finetune --seeds 0 1 2 --timesteps 200000

Results (JSON, a summary table and PNGs) go to ``--out`` (default ``examples/behaviour_cloning``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch as th

import sb3_fpo  # noqa: F401  (registers TwoGoal-v0)

OUT = Path(__file__).resolve().parent / "behaviour_cloning"
AMBIGUOUS_STATE = np.zeros((1, 2), dtype=np.float32)


# ---------------------------------------------------------------------------------------------------- multimodal


def two_expert_demonstrations(n_episodes: int, seed: int) -> Any:
    """Episodes from the middle line, each by the top expert (action (0, 1)) or the bottom one ((0, -1)) at random."""
    import gymnasium as gym

    from sb3_fpo.demonstrations import Demonstrations, record_demonstrations

    rng = np.random.default_rng(seed)
    parts = []
    for _ in range(n_episodes):
        direction = 1.0 if rng.random() < 0.5 else -1.0
        expert = lambda obs, d=direction: np.array([0.0, d], dtype=np.float32)  # noqa: E731
        env = MiddleLineStart(gym.make("TwoGoal-v0"), rng)
        parts.append(record_demonstrations(expert, env, n_episodes=1, seed=None))
        env.close()
    return Demonstrations(
        np.concatenate([p.observations for p in parts]),
        np.concatenate([p.actions for p in parts]),
        np.concatenate([p.rewards for p in parts]),
        np.concatenate([p.episode_starts for p in parts]),
        np.concatenate([p.terminated for p in parts]),
    )


class MiddleLineStart:
    """TwoGoal-v0 whose episodes start at ``(x, 0)``, ``x`` uniform in [-0.9, 0.9] from ``rng``."""

    def __init__(self, env: Any, rng: np.random.Generator) -> None:
        self.env, self.rng = env, rng
        self.action_space, self.observation_space, self.spec = env.action_space, env.observation_space, env.spec

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        return self.env.reset(seed=seed, options={"start": (float(self.rng.uniform(-0.9, 0.9)), 0.0)})

    def step(self, action: Any) -> Any:
        return self.env.step(action)

    def close(self) -> None:
        self.env.close()


def gaussian_clone(demos: Any, seed: int, n_epochs: int, batch_size: int = 256, learning_rate: float = 1e-3) -> Any:
    """SB3's Gaussian ActorCriticPolicy fitted by maximum likelihood (minimising -log_prob), as SB3-era BC does."""
    from stable_baselines3 import PPO

    th.manual_seed(seed)
    policy = PPO("MlpPolicy", "TwoGoal-v0", seed=seed, device="cpu").policy
    optimizer = th.optim.Adam(policy.parameters(), lr=learning_rate)
    obs = th.as_tensor(demos.observations, dtype=th.float32)
    actions = th.as_tensor(demos.actions, dtype=th.float32)
    rng = np.random.default_rng(seed)
    for _ in range(n_epochs):
        order = rng.permutation(len(obs))
        for start in range(0, len(obs), batch_size):
            rows = order[start : start + batch_size]
            _, log_prob, _ = policy.evaluate_actions(obs[rows], actions[rows])
            loss = -log_prob.mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    policy.set_training_mode(False)
    return policy


def success_rate(policy: Any, episodes: int, seed: int, deterministic: bool) -> tuple[float, float]:
    """Share of ``episodes`` from the middle line that reach a goal, and the mean steps of those that do."""
    import gymnasium as gym

    env = MiddleLineStart(gym.make("TwoGoal-v0"), np.random.default_rng(seed + 1_000))
    lengths = []
    th.manual_seed(seed)
    for _ in range(episodes):
        obs, _ = env.reset()
        done, info, steps = False, {}, 0
        while not done:
            action, _ = policy.predict(obs, deterministic=deterministic)
            obs, _, terminated, truncated, info = env.step(action)
            done, steps = terminated or truncated, steps + 1
        if info.get("goal", 0) != 0:
            lengths.append(steps)
    env.close()
    return len(lengths) / episodes, float(np.mean(lengths)) if lengths else float("nan")


def multimodal(args: argparse.Namespace) -> None:
    from sb3_fpo import FPO
    from sb3_fpo.diagnostics import count_modes, plot_action_samples, sample_raw_actions, sarle_bimodality

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for seed in args.seeds:
        demos = two_expert_demonstrations(args.episodes, seed)
        start = time.perf_counter()
        flow = FPO("MlpPolicy", "TwoGoal-v0", seed=seed, device="cpu", policy_kwargs=dict(velocity_net_arch=[64, 64]))
        history = flow.pretrain(demos, n_epochs=args.epochs, seed=seed, validation_fraction=0.1, patience=20)
        flow_seconds = time.perf_counter() - start
        gaussian = gaussian_clone(demos, seed, n_epochs=args.epochs)
        row: dict[str, Any] = dict(seed=seed, transitions=len(demos), flow_epochs=len(history["train_cfm_loss"]))
        row["flow_pretrain_seconds"] = flow_seconds
        samples = {}
        for name, policy in (("flow", flow.policy), ("gaussian", gaussian)):
            y = sample_raw_actions(policy, AMBIGUOUS_STATE, k=args.samples, seed=seed)[0]
            samples[name] = y
            vertical = np.clip(y[:, 1], -1.0, 1.0)  # what the env executes
            sampled, sampled_steps = success_rate(policy, args.eval_episodes, seed, deterministic=False)
            deterministic, deterministic_steps = success_rate(policy, args.eval_episodes, seed, deterministic=True)
            row[name] = dict(
                success_sampled=sampled,
                steps_sampled=sampled_steps,
                success_deterministic=deterministic,
                steps_deterministic=deterministic_steps,
                share_up=float(np.mean(vertical >= 0.5)),
                share_down=float(np.mean(vertical <= -0.5)),
                share_between=float(np.mean(np.abs(vertical) < 0.5)),
                sarle=sarle_bimodality(y[:, 1]),
                n_modes=count_modes(y[:, 1]),
            )
        results.append(row)
        print(json.dumps(row), flush=True)
        if seed == args.seeds[0]:
            for name, y in samples.items():
                plot_action_samples(
                    {"(0, 0)": y}, out / f"{name}_clone_action_samples.png", title=f"{name} clone: raw actions at (0, 0)"
                )
    (out / "multimodal.json").write_text(json.dumps(results, indent=1))
    lines = [
        f"`python examples/behaviour_cloning.py multimodal --seeds {' '.join(map(str, args.seeds))} --episodes "
        f"{args.episodes} --epochs {args.epochs}`",
        "",
        "| seed | clone | success (sampled) | steps (sampled) | success (deterministic) | steps (deterministic) "
        "| samples at (0, 0): top / bottom / between | Sarle | KDE modes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in results:
        for name in ("flow", "gaussian"):
            r = row[name]
            lines.append(
                f"| {row['seed']} | {name} | {r['success_sampled']:.2f} | {r['steps_sampled']:.1f} | "
                f"{r['success_deterministic']:.2f} | {r['steps_deterministic']:.1f} | {r['share_up']:.2f} / "
                f"{r['share_down']:.2f} / {r['share_between']:.2f} | {r['sarle']:.2f} | {r['n_modes']} |"
            )
    (out / "multimodal.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


# ---------------------------------------------------------------------------------------------------- fine-tuning


def finetune(args: argparse.Namespace) -> None:
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.vec_env import VecNormalize, sync_envs_normalization

    from sb3_fpo import FPO
    from sb3_fpo.demonstrations import record_demonstrations
    from sb3_fpo.presets import FINETUNE_HYPERPARAMS_FILE, load_preset

    th.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env_id = args.env

    def evaluate(model: Any, train_env: VecNormalize, seed: int) -> float:
        eval_env = VecNormalize(make_vec_env(env_id, n_envs=1, seed=seed + 10_000), training=False, norm_reward=False)
        sync_envs_normalization(train_env, eval_env)
        mean, _ = evaluate_policy(model, eval_env, n_eval_episodes=args.eval_episodes, deterministic=True)
        return float(mean)  # type: ignore[arg-type]

    results = []
    for seed in args.seeds:
        expert_env = VecNormalize(make_vec_env(env_id, n_envs=1, seed=seed))
        expert = PPO("MlpPolicy", expert_env, seed=seed, device="cpu")
        expert.learn(args.expert_timesteps)
        expert_env.training = False
        expert_return = evaluate(expert, expert_env, seed)
        demos = record_demonstrations(expert, env_id, n_episodes=args.episodes, seed=seed)

        preset = load_preset(env_id, FINETUNE_HYPERPARAMS_FILE)
        env = VecNormalize(make_vec_env(env_id, n_envs=preset.n_envs, seed=seed), **(preset.normalize or {}))
        student = FPO(preset.policy, env, seed=seed, device="cpu", **preset.kwargs)
        history = student.pretrain(demos, n_epochs=args.epochs, seed=seed)
        curve = [(0, evaluate(student, env, seed))]
        while student.num_timesteps < args.timesteps:
            student.learn(args.eval_freq, reset_num_timesteps=False)
            curve.append((student.num_timesteps, evaluate(student, env, seed)))
        row = dict(
            seed=seed,
            expert_return=expert_return,
            demonstrations=len(demos),
            pretrain_epochs=len(history["train_cfm_loss"]),
            bc_return=curve[0][1],
            finetune_curve=curve,
        )
        results.append(row)
        print(json.dumps(row), flush=True)
        (out / "finetune.json").write_text(json.dumps(results, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["multimodal", "finetune"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--episodes", type=int, default=None, help="demonstration episodes (multimodal 200, finetune 50)")
    parser.add_argument("--epochs", type=int, default=200, help="maximum pretraining epochs")
    parser.add_argument("--samples", type=int, default=1000, help="raw action samples at the ambiguous state")
    parser.add_argument("--eval-episodes", type=int, default=None, help="evaluation episodes (multimodal 200, finetune 10)")
    parser.add_argument("--env", default="Hopper-v5")
    parser.add_argument("--expert-timesteps", type=int, default=200_000)
    parser.add_argument("--timesteps", type=int, default=200_000, help="fine-tuning steps")
    parser.add_argument("--eval-freq", type=int, default=20_000)
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    if args.command == "multimodal":
        args.episodes = args.episodes or 200
        args.eval_episodes = args.eval_episodes or 200
        multimodal(args)
    else:
        args.episodes = args.episodes or 50
        args.eval_episodes = args.eval_episodes or 10
        finetune(args)


if __name__ == "__main__":
    main()
