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
import sys
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
    return len(lengths) / episodes, float(np.mean(lengths)) if lengths else None  # None (JSON null): no success


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
            steps = {mode: "–" if r[mode] is None else f"{r[mode]:.1f}" for mode in ("steps_sampled", "steps_deterministic")}
            lines.append(
                f"| {row['seed']} | {name} | {r['success_sampled']:.2f} | {steps['steps_sampled']} | "
                f"{r['success_deterministic']:.2f} | {steps['steps_deterministic']} | {r['share_up']:.2f} / "
                f"{r['share_down']:.2f} / {r['share_between']:.2f} | {r['sarle']:.2f} | {r['n_modes']} |"
            )
    (out / "multimodal.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


# ---------------------------------------------------------------------------------------------------- fine-tuning


def expert_demonstrations(args: argparse.Namespace, seed: int) -> tuple[float, Any]:
    """
    The deterministic return of the weak expert of ``seed`` (SB3 PPO, default settings, VecNormalize) and its recorded
    episodes. Saved in ``<out>/experts/`` and reused, so that every fine-tuning variant starts from the same data.
    """
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    from sb3_fpo.demonstrations import Demonstrations, record_demonstrations

    folder = Path(args.out, "experts")
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"{args.env}_{args.expert_timesteps // 1000}k_seed{seed}"
    model_file, stats_file = stem.with_suffix(".zip"), stem.with_suffix(".pkl")
    demos_file = stem.with_name(f"{stem.name}_{args.episodes}{'_sampled' if args.sampled_demonstrations else ''}.npz")
    if model_file.exists() and stats_file.exists():
        expert_env = VecNormalize.load(str(stats_file), make_vec_env(args.env, n_envs=1, seed=seed))
        expert = PPO.load(model_file, env=expert_env, device="cpu")
    else:
        expert_env = VecNormalize(make_vec_env(args.env, n_envs=1, seed=seed))
        expert = PPO("MlpPolicy", expert_env, seed=seed, device="cpu")
        expert.learn(args.expert_timesteps)
        expert.save(model_file)
        expert_env.save(str(stats_file))
    if demos_file.exists():
        arrays = np.load(demos_file)
        demos = Demonstrations(**{name: arrays[name] for name in arrays.files})
    else:
        demos = record_demonstrations(
            expert, args.env, n_episodes=args.episodes, seed=seed, deterministic=not args.sampled_demonstrations
        )
        fields = ("observations", "actions", "rewards", "episode_starts", "terminated")
        np.savez_compressed(demos_file, **{name: getattr(demos, name) for name in fields})
    expert_env.training = False
    return evaluate_return(expert, expert_env, args, seed, deterministic=True), demos


def evaluate_return(model: Any, train_env: Any, args: argparse.Namespace, seed: int, deterministic: bool) -> float:
    """Mean return of ``args.eval_episodes`` episodes on a separate env with ``train_env``'s statistics, frozen."""
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.vec_env import VecNormalize, sync_envs_normalization

    eval_env = VecNormalize(make_vec_env(args.env, n_envs=1, seed=seed + 10_000), training=False, norm_reward=False)
    sync_envs_normalization(train_env, eval_env)
    mean, _ = evaluate_policy(model, eval_env, n_eval_episodes=args.eval_episodes, deterministic=deterministic)
    eval_env.close()
    return float(mean)  # type: ignore[arg-type]


def evaluation_point(model: Any, train_env: Any, args: argparse.Namespace, seed: int) -> dict[str, float]:
    return dict(
        steps=model.num_timesteps,
        det=evaluate_return(model, train_env, args, seed, deterministic=True),
        sto=evaluate_return(model, train_env, args, seed, deterministic=False),
    )


def finetune(args: argparse.Namespace) -> None:
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    from sb3_fpo import FPO
    from sb3_fpo.presets import FINETUNE_HYPERPARAMS_FILE, load_preset, parse_value

    th.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    overrides = {key: parse_value(text) for key, text in (item.split(":", 1) for item in args.hyperparams)}
    preset = load_preset(args.env, args.conf or FINETUNE_HYPERPARAMS_FILE, overrides=overrides)
    result_file = out / f"finetune_{args.tag}.json"
    results = json.loads(result_file.read_text())["runs"] if result_file.exists() else []
    for seed in args.seeds:
        if any(row["seed"] == seed for row in results):
            continue
        env = VecNormalize(make_vec_env(args.env, n_envs=preset.n_envs, seed=seed), **(preset.normalize or {}))
        student = FPO(preset.policy, env, seed=seed, device="cpu", **preset.kwargs)
        if args.from_scratch:  # the same settings without the expert and the clone
            expert_return, demos, pretrain_epochs = None, [], 0
        else:
            expert_return, demos = expert_demonstrations(args, seed)
            pretrain_epochs = len(student.pretrain(demos, n_epochs=args.epochs, seed=seed)["train_cfm_loss"])

        curve = [evaluation_point(student, env, args, seed)]
        while student.num_timesteps < args.timesteps:
            student.learn(args.eval_freq, reset_num_timesteps=False)
            curve.append(evaluation_point(student, env, args, seed))
        row = dict(
            seed=seed,
            expert_return=expert_return,
            demonstrations=len(demos),
            pretrain_epochs=pretrain_epochs,
            bc_return=curve[0]["det"],
            curve=curve,
        )
        results.append(row)
        print(json.dumps(row), flush=True)
        record = dict(
            command=" ".join(["python", *sys.argv]),
            overrides=overrides,
            from_scratch=args.from_scratch,
            expert_timesteps=0 if args.from_scratch else args.expert_timesteps,
            runs=results,
        )
        result_file.write_text(json.dumps(record, indent=1))


def finetune_report(args: argparse.Namespace) -> None:
    """
    Table (``finetune.md``) and curves (``finetune.png``) of every ``finetune_<tag>.json`` in ``--out``. FPO from
    scratch is a ``--from-scratch`` variant when one was run (the fine-tuning settings from a fresh policy), else the
    benchmark's runs of the env's ``hyperparams/fpo.yml`` preset. The steps from scratch to the fine-tuned return are
    compared with the fine-tuning steps after the clone and with all environment steps, the expert's included.
    """
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(args.out)
    records = {
        path.stem.removeprefix("finetune_"): json.loads(path.read_text()) for path in sorted(out.glob("finetune_*.json"))
    }
    variants = {tag: record for tag, record in records.items() if not record.get("from_scratch")}
    scratch_tags = [tag for tag, record in records.items() if record.get("from_scratch")]
    if scratch_tags:
        runs = records[scratch_tags[0]]["runs"]
        scratch_steps = [point["steps"] for point in runs[0]["curve"]]
        scratch_mean = np.mean([[point["det"] for point in run["curve"]] for run in runs], axis=0)
        scratch_label = f"FPO from scratch, fine-tuning settings (`{scratch_tags[0]}`, {len(runs)} seeds)"
    else:
        benchmark = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "mujoco" / "evaluations.csv"
        scratch: dict[int, dict[int, float]] = {}
        with benchmark.open() as handle:
            for row in csv.DictReader(handle):
                if row["algo"] == "fpo" and row["env"] == args.env:
                    scratch.setdefault(int(row["steps"]), {})[int(row["seed"])] = float(row["det_mean"])
        n_seeds = len(next(iter(scratch.values())))
        scratch_steps = sorted(steps for steps, seeds in scratch.items() if len(seeds) == n_seeds)
        scratch_mean = np.array([np.mean(list(scratch[steps].values())) for steps in scratch_steps])
        scratch_label = "FPO from scratch, the env's fpo.yml preset (benchmarks/results/mujoco)"

    def second_half_mean(curve: list[dict[str, Any]]) -> float:
        """Mean deterministic return of the evaluations in the second half of fine-tuning (steps >= half the last)."""
        return float(np.mean([point["det"] for point in curve if point["steps"] >= curve[-1]["steps"] / 2]))

    def steps_to_reach(level: float, finetune_steps: int, expert_steps: int) -> str:
        """From scratch's first evaluation at ``level``, and its ratio to the fine-tuning steps without / with the
        expert's."""
        reached = [steps for steps, value in zip(scratch_steps, scratch_mean) if value >= level]
        if not reached:
            return f"> {scratch_steps[-1] // 1000}k | | "
        return (
            f"{reached[0] // 1000}k | {reached[0] / finetune_steps:.2f} | {reached[0] / (finetune_steps + expert_steps):.2f}"
        )

    lines = [
        f"FPO fine-tuning after behaviour cloning on {args.env}: deterministic return (zero-sampling), "
        f"{args.eval_episodes} episodes per evaluation. From scratch: {scratch_label}, mean over seeds. The last two "
        "columns divide the steps from scratch by the fine-tuning steps after the clone, and by all environment steps "
        "(the expert's training included; its 50 recorded episodes are not counted).",
        "",
        "| variant | seed | expert | BC (÷ expert) | after fine-tuning (÷ BC) | lowest during fine-tuning (÷ BC) "
        "| mean of the second half's evaluations (÷ BC) | from scratch reaches the fine-tuned return at "
        "| ÷ fine-tuning steps | ÷ all steps incl. the expert's |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    figure, axes = plt.subplots(figsize=(8, 5))
    axes.plot(scratch_steps, scratch_mean, color="grey", label=scratch_label.replace("`", ""))
    expert_drawn = False
    for index, (tag, record) in enumerate(variants.items()):
        color = f"C{index % 10}"
        runs = record["runs"]
        expert_steps = record.get("expert_timesteps", args.expert_timesteps)
        for run in runs:
            curve = run["curve"]
            final, lowest = curve[-1]["det"], min(point["det"] for point in curve[1:])
            late = second_half_mean(curve)
            bc, expert = run["bc_return"], run["expert_return"]
            lines.append(
                f"| {tag} | {run['seed']} | {expert:.0f} | {bc:.0f} ({bc / expert:.2f}) | {final:.0f} ({final / bc:.2f}) | "
                f"{lowest:.0f} ({lowest / bc:.2f}) | {late:.0f} ({late / bc:.2f}) | "
                f"{steps_to_reach(final, curve[-1]['steps'], expert_steps)} |"
            )
            axes.plot([p["steps"] for p in curve], [p["det"] for p in curve], color=color, alpha=0.3, linewidth=1)
        if len(runs) > 1:
            mean_curve = np.mean([[p["det"] for p in run["curve"]] for run in runs], axis=0)
            steps = [p["steps"] for p in runs[0]["curve"]]
            axes.plot(steps, mean_curve, color=color, linewidth=2, label=f"BC + fine-tuning: {tag} (mean)")
            if not expert_drawn:  # every variant of a seed clones the same expert
                expert_level = float(np.mean([run["expert_return"] for run in runs]))
                axes.axhline(expert_level, color="black", linestyle=":", linewidth=1, label="expert (mean of seeds)")
                expert_drawn = True
            bc_mean = float(np.mean([run["bc_return"] for run in runs]))
            expert_mean = float(np.mean([run["expert_return"] for run in runs]))
            final_mean = float(mean_curve[-1])
            lowest_mean = float(np.min(mean_curve[1:]))
            late_mean = float(np.mean([second_half_mean(run["curve"]) for run in runs]))
            lines.append(
                f"| {tag} | mean | {expert_mean:.0f} | {bc_mean:.0f} ({bc_mean / expert_mean:.2f}) | {final_mean:.0f} "
                f"({final_mean / bc_mean:.2f}) | {lowest_mean:.0f} ({lowest_mean / bc_mean:.2f}) | {late_mean:.0f} "
                f"({late_mean / bc_mean:.2f}) | {steps_to_reach(final_mean, steps[-1], expert_steps)} |"
            )
        else:
            axes.plot([], [], color=color, alpha=0.3, label=f"BC + fine-tuning: {tag}")
    lines += ["", "Commands:", ""] + [f"- {tag}: `{record['command']}`" for tag, record in records.items()]
    axes.set_xlim(0, 600_000)
    axes.set_xlabel("environment steps (fine-tuning: after behaviour cloning)")
    axes.set_ylabel("deterministic return")
    axes.set_title(f"{args.env}: behaviour cloning + FPO fine-tuning vs FPO from scratch")
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out / "finetune.png", dpi=120)
    (out / "finetune.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["multimodal", "finetune", "finetune-report"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--episodes", type=int, default=None, help="demonstration episodes (multimodal 200, finetune 50)")
    parser.add_argument("--epochs", type=int, default=200, help="maximum pretraining epochs")
    parser.add_argument("--samples", type=int, default=1000, help="raw action samples at the ambiguous state")
    parser.add_argument("--eval-episodes", type=int, default=None, help="evaluation episodes (multimodal 200, finetune 10)")
    parser.add_argument("--env", default="Hopper-v5")
    parser.add_argument("--expert-timesteps", type=int, default=200_000)
    parser.add_argument("--timesteps", type=int, default=200_000, help="fine-tuning steps")
    parser.add_argument("--eval-freq", type=int, default=20_000)
    parser.add_argument("--conf", default=None, help="fine-tuning presets (default hyperparams/fpo_finetune.yml)")
    parser.add_argument("--hyperparams", nargs="*", default=[], metavar="KEY:VALUE", help="override preset entries")
    parser.add_argument(
        "--sampled-demonstrations",
        action="store_true",
        help="record the expert's sampled actions (its Gaussian exploration) instead of its mean actions",
    )
    parser.add_argument(
        "--from-scratch",
        action="store_true",
        help="train with the fine-tuning settings from a fresh policy (no expert, no cloning), for comparison",
    )
    parser.add_argument("--tag", default="preset", help="name of the fine-tuning variant (finetune_<tag>.json)")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    if args.command == "multimodal":
        args.episodes = args.episodes or 200
        args.eval_episodes = args.eval_episodes or 200
        multimodal(args)
    else:
        args.episodes = args.episodes or 50
        args.eval_episodes = args.eval_episodes or 10
        finetune_report(args) if args.command == "finetune-report" else finetune(args)


if __name__ == "__main__":
    main()
