"""
Under-conditioned control: FPO (flow policy) against SB3 PPO (Gaussian policy) when the policy sees only part of its
goal, on ``ArmTracking-v0`` (``sb3_fpo.envs.arm_tracking``).

The reward always tracks every joint of a hidden reference; the conditioning level only removes goal inputs from the
observation (``full``: the reference joint angles; ``partial``: the end-effector path and its orientation, so the
elbow sign is left open, 2 right answers; ``minimal``: the end-effector path only, 4 right answers).

The study, as written in README.md before it was run (``study``, the default command)::

    python examples/under_conditioned.py --seeds 0 1 2 3 4 --timesteps 300000 --workers 2

1. PPO's exploration sweep: SB3 PPO with ``log_std_init`` in {0, -1} and ``ent_coef`` in {0, 0.01} (three settings:
   the default, a narrower Gaussian, an entropy bonus) at the ``minimal`` level, ``--sweep-seeds`` seeds; the
   setting with the best mean deterministic success (ties: return) is PPO for the whole study.
2. FPO with its ``ArmTracking-v0`` preset (``hyperparams/fpo.yml``) and PPO with the chosen setting, every level and
   seed. Both use 4 envs x 512 steps, batch 128, 10 epochs, gamma 0.99, lambda 0.95, lr 3e-4 and networks of the
   same sizes (PPO actor and critic ``[64, 64]``; FPO velocity net ``[64, 64]``, critic ``[64, 64]``).
3. Each run is evaluated on 100 episodes with fixed seeds, deterministic (PPO's mean action, FPO's zero-sampling) and
   stochastic. Success: the episode tracked the hidden reference to its end (it fails once the mean absolute joint
   error exceeds 0.3 rad after a 10-step reach). Since nothing observable tells the hidden style, the best possible
   success is 1, 1/2 and 1/4 at ``full``, ``partial``, ``minimal``; ``tracked_some_style`` (the arm followed *some*
   style's reference, whichever) has a ceiling of 1 at every level and tells a committed policy from an averaging one.

Each run is saved as ``runs/<algo>_<level>_seed<seed>.json`` in ``--out`` (a run whose file exists is not redone) and
its model in ``models/``. ``report`` (run at the end of ``study``) writes ``results.csv`` (algo, level, seed, success,
return, tracking_error), ``summary.md`` (the table with 95% confidence intervals over seeds) and the pictures
``success_by_level.png`` and ``action_samples.png`` (raw action samples of both policies at an ambiguous state, with
the four right answers marked). ``scripted`` evaluates analytic-IK controllers that follow one style, the hidden one,
or the average of the styles, which shows the ceilings (``scripted.json``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import sb3_fpo  # noqa: F401  (registers ArmTracking-v0)
from sb3_fpo.envs.arm_tracking import CONDITIONING_LEVELS, STYLES, ArmTrackingEnv, wrap_angle

ENV_ID = "ArmTracking-v0"
EVAL_SEED_OFFSET = 1_000_000
#: best possible success at each level (the hidden style is a uniform draw among 1, 2 and 4 right answers)
CEILING = {"full": 1.0, "partial": 0.5, "minimal": 0.25}
# PPO's settings; the FPO preset has the same rollout and update sizes and network widths
PPO_SETTINGS: dict[str, Any] = dict(
    n_steps=512,
    batch_size=128,
    n_epochs=10,
    gamma=0.99,
    gae_lambda=0.95,
    learning_rate=3e-4,
    policy_kwargs=dict(net_arch=dict(pi=[64, 64], vf=[64, 64])),
)
#: PPO's exploration sweep (name -> overrides of PPO_SETTINGS); "ppo" is SB3's default exploration
PPO_SWEEP: dict[str, dict[str, Any]] = {
    "ppo": {},
    "ppo_std-1": dict(policy_kwargs=dict(net_arch=dict(pi=[64, 64], vf=[64, 64]), log_std_init=-1.0)),
    "ppo_ent0.01": dict(ent_coef=0.01),
}
SWEEP_LEVEL = "minimal"
#: FPO's settings in the study (``--fpo``)
FPO_VARIANTS = {
    "fpo": "the ArmTracking-v0 preset of hyperparams/fpo.yml",
    "fpo_defaults": "the library defaults at the study's rollout and update shape",
}
#: FPO variants tried after the study at ``minimal`` (name -> overrides of the FPO preset): levers, not the result
FPO_LEVERS: dict[str, dict[str, Any]] = {
    "fpo_averaged_ppo": dict(ratio_mode="averaged", trust_region="ppo"),  # FPO's own ratio and PPO's clip
    "fpo_clip0.05": dict(clip_range=0.05),  # the papers' trust region
    "fpo_N32": dict(n_samples=32),
    "fpo_lr1e-4": dict(learning_rate=1e-4),
    "fpo_source0.5": dict(policy_kwargs=dict(source_std=0.5)),  # narrower source noise: less exploration
}


# ---------------------------------------------------------------------------------------------------- evaluation


def style_errors(env: ArmTrackingEnv, q_history: np.ndarray) -> np.ndarray:
    """Mean absolute joint error (rad) of a joint trajectory ``(steps, 3)`` against every style's reference: ``(4, steps)``."""
    steps = q_history.shape[0]
    references = np.stack([env.reference_joint_angles(style)[1 : steps + 1] for style in range(len(STYLES))])
    return np.abs(wrap_angle(q_history[None] - references)).mean(axis=-1)


def evaluate(predict: Any, conditioning: str, episodes: int) -> dict[str, Any]:
    """
    Play ``episodes`` episodes (reset seeds ``EVAL_SEED_OFFSET + i``; the env draws the hidden styles).

    The episodes run to their end (``terminate_on_failure=False``) so that the whole trajectory can be compared with
    every style; ``success`` and ``return`` are what the terminating env gives (the return stops at the first failure).

    :param predict: ``predict(obs, env) -> action``
    :return: ``success`` (tracked the hidden style), ``tracked_some_style`` (stayed within the failure threshold of
        one style's reference after the reach, whichever), ``return``, ``tracking_error`` (mean absolute joint error
        against the hidden reference after the reach, rad), success per hidden style, and ``followed_styles``: how
        many episodes followed each style (the closest reference after the reach)
    """
    env = gym.make(ENV_ID, conditioning=conditioning, terminate_on_failure=False)
    unwrapped: ArmTrackingEnv = env.unwrapped  # type: ignore[assignment]
    successes, tracked_some, returns, errors_hidden, styles, followed = [], [], [], [], [], []
    for episode in range(episodes):
        obs, info = env.reset(seed=EVAL_SEED_OFFSET + episode)
        styles.append(info["style"])
        rewards, failed, q_history = [], [], []
        while True:
            obs, reward, terminated, truncated, info = env.step(predict(obs, unwrapped))
            rewards.append(float(reward))
            failed.append(bool(info["failed"]))
            q_history.append(unwrapped.data.qpos.copy())
            if terminated or truncated:
                break
        end = failed.index(True) + 1 if True in failed else len(rewards)
        successes.append(bool(info["is_success"]))
        returns.append(sum(rewards[:end]))
        errors = style_errors(unwrapped, np.array(q_history))[:, unwrapped.grace_steps :]
        errors_hidden.append(float(errors[styles[-1]].mean()))
        tracked_some.append(bool((errors.max(axis=1) <= unwrapped.fail_threshold).any()))
        followed.append(int(np.argmin(errors.mean(axis=1))))
    env.close()
    return {
        "success": float(np.mean(successes)),
        "tracked_some_style": float(np.mean(tracked_some)),
        "return": float(np.mean(returns)),
        "tracking_error": float(np.mean(errors_hidden)),
        "success_by_style": [
            float(np.mean([s for s, k in zip(successes, styles) if k == style])) if style in styles else None
            for style in range(len(STYLES))
        ],
        "followed_styles": [int(np.sum(np.array(followed) == style)) for style in range(len(STYLES))],
    }


# ---------------------------------------------------------------------------------------------------- training


def algorithm_settings(variant: str) -> tuple[Any, dict[str, Any], int]:
    """The class, keyword arguments and number of envs of ``fpo`` (its preset), ``fpo_defaults``, a lever or a PPO setting."""
    from stable_baselines3 import PPO

    from sb3_fpo import FPO
    from sb3_fpo.presets import load_preset

    if variant == "fpo_defaults":  # the library defaults at the study's rollout and update shape, nothing else
        shape = ("n_steps", "batch_size", "n_epochs", "gamma", "gae_lambda", "learning_rate")
        return FPO, {key: PPO_SETTINGS[key] for key in shape}, 4
    if variant == "fpo" or variant in FPO_LEVERS:
        preset = load_preset(ENV_ID)
        overrides = dict(FPO_LEVERS.get(variant, {}))
        policy_kwargs = {**preset.kwargs.get("policy_kwargs", {}), **overrides.pop("policy_kwargs", {})}
        return FPO, {**preset.kwargs, **overrides, "policy_kwargs": policy_kwargs}, preset.n_envs
    return PPO, {**PPO_SETTINGS, **PPO_SWEEP[variant]}, 4


def run(variant: str, level: str, seed: int, timesteps: int, episodes: int, out: str) -> str:
    """Train one run, evaluate it and save its record and model; return the record's path."""
    import torch as th
    from stable_baselines3.common.env_util import make_vec_env

    th.set_num_threads(1)
    algorithm, kwargs, n_envs = algorithm_settings(variant)
    env = make_vec_env(ENV_ID, n_envs=n_envs, seed=seed, env_kwargs=dict(conditioning=level))
    model = algorithm("MlpPolicy", env, seed=seed, device="cpu", **kwargs)
    start = time.perf_counter()
    model.learn(timesteps)
    elapsed = time.perf_counter() - start
    name = f"{variant}_{level}_seed{seed}"
    model.save(Path(out, "models", f"{name}.zip"))  # explicit suffix: SB3 reads ".01_minimal_seed0" as one
    record: dict[str, Any] = dict(
        algo=variant,
        level=level,
        seed=seed,
        timesteps=int(model.num_timesteps),
        settings=repr(kwargs),
        n_envs=n_envs,
        train_seconds=elapsed,
        steps_per_second=model.num_timesteps / elapsed,
    )
    for mode, deterministic in (("deterministic", True), ("stochastic", False)):

        def predict(obs: np.ndarray, _env: ArmTrackingEnv, deterministic: bool = deterministic) -> np.ndarray:
            return model.predict(obs, deterministic=deterministic)[0]

        record[mode] = evaluate(predict, level, episodes)
    path = Path(out, "runs", f"{name}.json")
    path.write_text(json.dumps(record, indent=1))
    return str(path)


def run_all(jobs: list[tuple[str, str, int]], args: argparse.Namespace) -> None:
    todo = [job for job in jobs if not Path(args.out, "runs", f"{job[0]}_{job[1]}_seed{job[2]}.json").exists()]
    print(f"{len(todo)} runs to do ({len(jobs) - len(todo)} already done)", flush=True)
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        futures = [pool.submit(run, *job, args.timesteps, args.episodes, args.out) for job in todo]
        for future in as_completed(futures):
            print("finished", future.result(), flush=True)


def of(runs: list[dict[str, Any]], variant: str, level: str) -> list[dict[str, Any]]:
    """The runs of one variant at one level."""
    return [r for r in runs if r["algo"] == variant and r["level"] == level]


def load_runs(out: str) -> list[dict[str, Any]]:
    return [json.loads(path.read_text()) for path in sorted(Path(out, "runs").glob("*.json"))]


def best_ppo(runs: list[dict[str, Any]], sweep_seeds: list[int]) -> str:
    """The PPO sweep variant with the best mean deterministic success at SWEEP_LEVEL on the sweep's seeds (ties: return)."""

    def score(variant: str) -> tuple[float, float]:
        chosen = [r["deterministic"] for r in of(runs, variant, SWEEP_LEVEL) if r["seed"] in sweep_seeds]
        if not chosen:
            return (-np.inf, -np.inf)
        return (float(np.mean([c["success"] for c in chosen])), float(np.mean([c["return"] for c in chosen])))

    return max(PPO_SWEEP, key=score)


def chosen_ppo(runs: list[dict[str, Any]], args: argparse.Namespace) -> str:
    """``--ppo-setting`` when given (a setting an earlier sweep chose), else the sweep's choice among ``runs``."""
    return args.ppo_setting if args.ppo_setting is not None else best_ppo(runs, args.sweep_seeds)


def study(args: argparse.Namespace) -> None:
    for folder in ("runs", "models"):
        Path(args.out, folder).mkdir(parents=True, exist_ok=True)
    if args.ppo_setting is None:
        run_all([(variant, SWEEP_LEVEL, seed) for seed in args.sweep_seeds for variant in PPO_SWEEP], args)
    chosen = chosen_ppo(load_runs(args.out), args)  # the sweep first: it decides PPO's setting
    print(f"PPO setting: {chosen}", flush=True)
    # seed-major, FPO and PPO side by side: a study cut short still compares both on its first seeds
    run_all([(algo, level, seed) for seed in args.seeds for level in args.levels for algo in (args.fpo, chosen)], args)
    report(args)


def levers(args: argparse.Namespace) -> None:
    """FPO variants at ``minimal`` (``--lever-seeds``), after the study; written to ``levers.md``, apart from it."""
    Path(args.out, "runs").mkdir(parents=True, exist_ok=True)
    Path(args.out, "models").mkdir(parents=True, exist_ok=True)
    run_all([(variant, "minimal", seed) for seed in args.lever_seeds for variant in FPO_LEVERS], args)
    runs = load_runs(args.out)
    lines = [
        "FPO variants at `minimal` after the study (deterministic; per seed):",
        "",
        "| variant | overrides of the preset | success | tracked some style | return | seeds |",
        "|---|---|---|---|---|---|",
    ]
    for variant in ["fpo", *FPO_LEVERS]:
        chosen = sorted((r for r in of(runs, variant, "minimal") if r["seed"] in args.lever_seeds), key=lambda r: r["seed"])
        if chosen:
            cells = [" / ".join(f"{r['deterministic'][key]:.2f}" for r in chosen) for key in ("success", "tracked_some_style")]
            ret = " / ".join(f"{r['deterministic']['return']:.1f}" for r in chosen)
            seeds = " ".join(str(r["seed"]) for r in chosen)
            lines.append(
                f"| `{variant}` | {FPO_LEVERS.get(variant, 'the preset')} | {cells[0]} | {cells[1]} | {ret} | {seeds} |"
            )
    text = "\n".join(lines) + "\n"
    Path(args.out, "levers.md").write_text(text)
    print(text)


def noise_analysis(args: argparse.Namespace) -> None:
    """
    After the study: the trained FPO models evaluated with one starting noise per episode instead of zero-sampling.

    ``predict(deterministic=True)`` starts the flow from ``x_0 = 0`` at every step. For a policy with several modes
    that point is where the flow separates them, so it can land between them; fresh noise at every step
    (``deterministic=False``) can switch modes from one step to the next. Here each episode draws one noise vector
    (``deterministic_noise="fixed"`` with ``noise_seed`` = the episode index) and keeps it for all its steps: a
    consistent mode per episode. A post-hoc analysis, written to ``noise_analysis.md``, not the study's protocol.
    """
    from sb3_fpo import FPO

    lines = [
        "FPO models of the study, evaluated with one starting noise per episode (deterministic success, "
        f"{args.episodes} episodes; zero-sampling as in the study for comparison):",
        "",
        "| level | seed | success: zero-sampling | success: one noise per episode | tracked some style: zero "
        "| tracked some style: one noise per episode |",
        "|---|---|---|---|---|---|",
    ]
    records = []
    for level in args.levels:
        for seed in args.seeds:
            path = Path(args.out, "models", f"fpo_{level}_seed{seed}.zip")
            if not path.exists():
                continue
            model = FPO.load(path, device="cpu")
            model.policy.deterministic_noise = "fixed"
            episode = {"index": -1}

            def predict(obs: np.ndarray, env: ArmTrackingEnv, model: Any = model, episode: dict = episode) -> np.ndarray:
                if env.t == 0:  # a new episode: a new noise vector
                    episode["index"] += 1
                    model.policy.noise_seed = episode["index"]
                return model.predict(obs, deterministic=True)[0]

            fixed = evaluate(predict, level, args.episodes)
            zero = json.loads(Path(args.out, "runs", f"fpo_{level}_seed{seed}.json").read_text())["deterministic"]
            records.append(dict(level=level, seed=seed, zero=zero, one_noise_per_episode=fixed))
            lines.append(
                f"| {level} | {seed} | {zero['success']:.2f} | {fixed['success']:.2f} | {zero['tracked_some_style']:.2f} | "
                f"{fixed['tracked_some_style']:.2f} |"
            )
    Path(args.out, "noise_analysis.json").write_text(json.dumps(records, indent=1))
    text = "\n".join(lines) + "\n"
    Path(args.out, "noise_analysis.md").write_text(text)
    print(text)


# ---------------------------------------------------------------------------------------------------- report


def interval(values: list[float]) -> tuple[float, float, float]:
    """Mean and its 95% confidence interval over seeds (Student's t)."""
    from scipy import stats

    data = np.asarray(values, dtype=float)
    mean = float(data.mean())
    if len(data) < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.975, len(data) - 1) * data.std(ddof=1) / np.sqrt(len(data)))
    return mean, mean - half, mean + half


def ratio_interval(fpo: list[float], ppo: list[float], n_boot: int = 10_000, seed: int = 0) -> tuple[float, float, float]:
    """FPO/PPO ratio of mean success and its 95% bootstrap interval (seeds resampled within each algorithm)."""
    rng = np.random.default_rng(seed)
    a, b = np.asarray(fpo, dtype=float), np.asarray(ppo, dtype=float)
    boot_a = rng.choice(a, (n_boot, len(a))).mean(axis=1)
    boot_b = rng.choice(b, (n_boot, len(b))).mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = boot_a / boot_b
    point = a.mean() / b.mean() if b.mean() > 0 else float("nan")  # undefined when PPO never succeeds
    low, high = (
        np.nanpercentile(np.where(np.isfinite(ratios), ratios, np.nan), [2.5, 97.5])
        if np.isfinite(ratios).any()
        else (np.nan, np.nan)
    )
    return float(point), float(low), float(high)


def report(args: argparse.Namespace) -> str:
    runs = load_runs(args.out)
    chosen = chosen_ppo(runs, args)
    main = {"fpo": args.fpo, "ppo": chosen}
    levels = [level for level in CONDITIONING_LEVELS if any(r["level"] == level for r in runs)]
    with open(Path(args.out, "results.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["algo", "level", "seed", "success", "return", "tracking_error"])
        for algo, variant in main.items():
            for r in sorted((r for r in runs if r["algo"] == variant), key=lambda r: (levels.index(r["level"]), r["seed"])):
                d = r["deterministic"]
                writer.writerow([algo, r["level"], r["seed"], d["success"], d["return"], d["tracking_error"]])

    def cell(values: list[float], digits: int = 2) -> str:
        mean, low, high = interval(values)
        if len(values) < 2:
            return f"{mean:.{digits}f} (1 seed)"
        return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"

    lines = [
        f"FPO = `{args.fpo}` ({FPO_VARIANTS[args.fpo]}). PPO = SB3 PPO with "
        + ("the setting given by --ppo-setting" if args.ppo_setting else "the sweep's best exploration setting")
        + f": `{chosen}` ({describe(chosen)}). Deterministic "
        f"evaluation (PPO's mean action, FPO's zero-sampling), {args.episodes} episodes per run; mean over seeds "
        "[95% CI, t].",
        "",
        "| level | best possible | FPO success | PPO success | FPO / PPO success [95% bootstrap CI] | FPO tracked some style "
        "| PPO tracked some style | FPO return | PPO return | FPO error (rad) | PPO error (rad) | seeds |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for level in levels:
        by = {algo: [r for r in runs if r["algo"] == v and r["level"] == level] for algo, v in main.items()}
        if not by["fpo"] or not by["ppo"]:
            continue

        def values(algo: str, key: str, mode: str = "deterministic", by: dict = by) -> list[float]:
            return [r[mode][key] for r in by[algo]]

        point, low, high = ratio_interval(values("fpo", "success"), values("ppo", "success"))
        if not np.isfinite(point):
            ratio = "n/a (PPO never succeeds)"
        elif not np.isfinite(low) or min(len(by["fpo"]), len(by["ppo"])) < 2:
            ratio = f"{point:.2f} (no CI)"
        else:
            ratio = f"{point:.2f} [{low:.2f}, {high:.2f}]"
        lines.append(
            f"| {level} | {CEILING[level]:.2f} | {cell(values('fpo', 'success'))} | {cell(values('ppo', 'success'))} | "
            f"{ratio} | {cell(values('fpo', 'tracked_some_style'))} | "
            f"{cell(values('ppo', 'tracked_some_style'))} | {cell(values('fpo', 'return'), 1)} | "
            f"{cell(values('ppo', 'return'), 1)} | {cell(values('fpo', 'tracking_error'))} | "
            f"{cell(values('ppo', 'tracking_error'))} | {len(by['fpo'])}/{len(by['ppo'])} |"
        )
    lines += ["", "Stochastic evaluation (sampled actions), success:", "", "| level | FPO | PPO |", "|---|---|---|"]
    for level in levels:
        stochastic = {
            algo: [r["stochastic"]["success"] for r in runs if r["algo"] == v and r["level"] == level]
            for algo, v in main.items()
        }
        if stochastic["fpo"] and stochastic["ppo"]:
            lines.append(f"| {level} | {cell(stochastic['fpo'])} | {cell(stochastic['ppo'])} |")
    lines += [
        "",
        f"PPO exploration sweep at `{SWEEP_LEVEL}` (deterministic success, return; per seed; chosen on seeds "
        f"{' '.join(map(str, args.sweep_seeds))}, the best mean success, ties broken by the mean return):",
        "",
        "| setting | success | return | seeds |",
        "|---|---|---|---|",
    ]
    for variant in PPO_SWEEP:
        chosen_runs = sorted((r for r in runs if r["algo"] == variant and r["level"] == SWEEP_LEVEL), key=lambda r: r["seed"])
        if chosen_runs:
            success = " / ".join(f"{r['deterministic']['success']:.2f}" for r in chosen_runs)
            ret = " / ".join(f"{r['deterministic']['return']:.1f}" for r in chosen_runs)
            seeds = " ".join(str(r["seed"]) for r in chosen_runs)
            lines.append(f"| `{variant}` ({describe(variant)}) | {success} | {ret} | {seeds} |")
    lines += [
        "",
        "Episodes that followed each style (closest reference after the reach), summed over seeds, deterministic:",
        "",
        "| level | FPO | PPO |",
        "|---|---|---|",
    ]
    for level in levels:
        counts = {
            algo: np.sum(
                [r["deterministic"]["followed_styles"] for r in runs if r["algo"] == v and r["level"] == level], axis=0
            )
            for algo, v in main.items()
        }
        lines.append(
            f"| {level} | {' / '.join(map(str, np.atleast_1d(counts['fpo'])))} | "
            f"{' / '.join(map(str, np.atleast_1d(counts['ppo'])))} |"
        )
    text = "\n".join(lines) + "\n"
    Path(args.out, "summary.md").write_text(text)
    plot_success(runs, main, levels, Path(args.out, "success_by_level.png"))
    plot_samples(args.out, main, Path(args.out, "action_samples.png"), seed=min(args.seeds))
    print(text)
    return text


def describe(variant: str) -> str:
    overrides = PPO_SWEEP.get(variant, {})
    log_std = overrides.get("policy_kwargs", {}).get("log_std_init", 0.0)
    return f"log_std_init {log_std:g}, ent_coef {overrides.get('ent_coef', 0.0):g}"


def plot_success(runs: list[dict[str, Any]], main: dict[str, str], levels: list[str], path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 3.8), layout="constrained")
    ax = fig.subplots()
    x = np.arange(len(levels))
    for offset, (algo, color) in zip((-0.08, 0.08), (("fpo", "tab:blue"), ("ppo", "tab:orange"))):
        stats = [
            interval([r["deterministic"]["success"] for r in runs if r["algo"] == main[algo] and r["level"] == level])
            for level in levels
        ]
        mean = np.array([s[0] for s in stats])
        err = np.array([[s[0] - s[1] for s in stats], [s[2] - s[0] for s in stats]])
        ax.errorbar(
            x + offset, mean, yerr=np.nan_to_num(err), fmt="o-", color=color, capsize=4, label=f"{algo.upper()} ({main[algo]})"
        )
    ax.plot(x, [CEILING[level] for level in levels], "k--", lw=0.8, label="best possible")
    ax.set_xticks(x, levels)
    ax.set_xlabel("conditioning level (goal inputs observed)")
    ax.set_ylabel("success rate (95% CI over seeds)")
    ax.set_ylim(-0.02, 1.05)
    ax.set_title("ArmTracking-v0: deterministic success")
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=100)


def plot_samples(out: str, main: dict[str, str], path: Path, level: str = "minimal", seed: int = 0, k: int = 1000) -> None:
    """Raw action samples (elbow and wrist targets) of seed ``seed``'s models at an ambiguous state, right answers marked."""
    from matplotlib.figure import Figure
    from stable_baselines3 import PPO

    from sb3_fpo import FPO
    from sb3_fpo.diagnostics import count_modes, sample_raw_actions, sarle_bimodality
    from sb3_fpo.envs.arm_tracking import ambiguous_actions, ambiguous_observation

    obs = ambiguous_observation(level, seed=0)[None]
    answers = ambiguous_actions(seed=0)
    fig = Figure(figsize=(9, 4), layout="constrained")
    axes = fig.subplots(1, 2, sharex=True, sharey=True)
    for ax, algo in zip(axes, ("fpo", "ppo")):
        model_path = Path(out, "models", f"{main[algo]}_{level}_seed{seed}.zip")
        if not model_path.exists():
            ax.set_title(f"{algo.upper()}: no model")
            continue
        model = (FPO if algo == "fpo" else PPO).load(model_path, device="cpu")
        samples = sample_raw_actions(model, obs, k=k, seed=0)[0]
        elbow = samples[:, 1]
        ax.scatter(samples[:, 1], samples[:, 2], s=3, alpha=0.3, color="tab:blue" if algo == "fpo" else "tab:orange")
        ax.scatter(answers[:, 1], answers[:, 2], marker="x", s=80, color="black", label="the 4 right answers")
        ax.set_title(
            f"{algo.upper()} at '{level}', seed {seed}\n"
            f"elbow target: Sarle {sarle_bimodality(elbow):.2f}, {count_modes(elbow)} mode(s)",
            fontsize=9,
        )
        ax.set_xlabel("action[1] (elbow target)")
        ax.axhline(-1, color="grey", ls="--", lw=0.6), ax.axhline(1, color="grey", ls="--", lw=0.6)
        ax.axvline(-1, color="grey", ls="--", lw=0.6), ax.axvline(1, color="grey", ls="--", lw=0.6)
    axes[0].set_ylabel("action[2] (wrist target)")
    axes[0].legend(fontsize=8, loc="lower left")
    fig.suptitle(f"Raw actions at the first step of an episode ({k} samples each, before clipping)")
    fig.savefig(path, dpi=100)


# ---------------------------------------------------------------------------------------------------- scripted


def scripted(args: argparse.Namespace) -> dict[str, Any]:
    """Controllers that command one style's reference posture, the hidden style's, or the styles' average."""
    result: dict[str, Any] = {}
    for level in args.levels:
        for style in range(len(STYLES)):

            def follow(_obs: np.ndarray, env: ArmTrackingEnv, style: int = style) -> np.ndarray:
                return env.reference_action(style)

            result[f"{level}/follow_style_{style}"] = evaluate(follow, level, args.episodes)
        result[f"{level}/oracle"] = evaluate(lambda _obs, env: env.reference_action(), level, args.episodes)
        result[f"{level}/average_of_styles"] = evaluate(
            lambda _obs, env: env.style_actions().mean(axis=0), level, args.episodes
        )
    Path(args.out).mkdir(parents=True, exist_ok=True)
    Path(args.out, "scripted.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", default="study", choices=["study", "report", "scripted", "levers", "noise"])
    parser.add_argument("--levels", nargs="+", default=list(CONDITIONING_LEVELS), choices=CONDITIONING_LEVELS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--sweep-seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--lever-seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--fpo", default="fpo", choices=list(FPO_VARIANTS), help="FPO's settings (default: its preset)")
    parser.add_argument(
        "--ppo-setting", choices=list(PPO_SWEEP), help="PPO's setting, skipping the sweep (one an earlier sweep chose)"
    )
    parser.add_argument("--timesteps", type=int, default=300_000)
    parser.add_argument("--episodes", type=int, default=100, help="evaluation episodes per run and mode")
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "under_conditioned"))
    args = parser.parse_args()
    {"study": study, "report": report, "scripted": scripted, "levers": levers, "noise": noise_analysis}[args.command](args)


if __name__ == "__main__":
    main()
