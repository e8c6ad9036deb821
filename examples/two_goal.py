"""
Multimodality on TwoGoal-v0: FPO (flow policy) against SB3 PPO (Gaussian policy), side by side.

From the middle of the plane both goals are equally good. The claim is about the action distribution
itself: at middle states, FPO's raw sampled actions (random initial noise, before clipping) can be bimodal
along the goal axis y, PPO's Gaussian cannot. For each algorithm, variant and seed this script trains, and at
each checkpoint measures

* Sarle's bimodality coefficient (> 5/9 suggests two modes), the KDE mode count and the share of samples
  going up / down, from k raw samples of the y action at middle states (x in {-0.5, 0, 0.5}, y = 0);
* the goal split of stochastic rollouts started at (0, 0) and in the middle band;
* success rate, mean return and episode length from the env's random starts.

It writes ``results.json``, ``summary.md`` and PNG figures (action samples and trajectories at the last
checkpoint of the first seed and the first FPO variant) to ``--out``, the trained models to ``--out``/models
(``--replot`` redraws the figures from them)::

    python examples/two_goal.py --seeds 0 1 2 --timesteps 100000 --out examples/two_goal

Runs are independent processes (``--workers``); the FPO settings are the shipped ``TwoGoal-v0`` preset
(``hyperparams/fpo.yml``) updated by ``--variants``.
"""

from __future__ import annotations

import argparse
import json
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

MIDDLE_STATES = np.array([[-0.5, 0.0], [0.0, 0.0], [0.5, 0.0]], dtype=np.float32)
SETTING_KEYS = ("n_steps", "batch_size", "n_epochs", "gamma", "gae_lambda", "learning_rate", "clip_range")

# The library defaults' guards: CFM-loss clamp 20, log-ratio guard 3 without straight-through gradient
LIBRARY_GUARDS: dict[str, Any] = dict(cfm_loss_clamp=20.0, log_ratio_clamp=3.0, log_ratio_straight_through=False)

# FPO variants tried on top of the preset (name -> FPO keyword overrides)
VARIANTS: dict[str, dict[str, Any]] = {
    "preset": {},
    "clip0.05": dict(clip_range=0.05),
    "per_sample_aspo": dict(ratio_mode="per_sample", trust_region="aspo"),
    "lr1e-4": dict(learning_rate=1e-4),
    "N32": dict(n_samples=32),
    "noise_target": dict(policy_kwargs=dict(cfm_target="noise")),
    # the KL-adaptive learning rate adapted once per update, with the library's CFM-loss clamp
    "adaptive_lr_update": dict(adaptive_lr_target_kl=0.01, adaptive_lr_every="update", cfm_loss_clamp=20.0),
    # the library defaults before the 2 x 64 velocity network (the preset's 4 x 32 with the CFM-loss clamp 20)
    "clamp20": dict(cfm_loss_clamp=20.0),
    # the library defaults' CFM-loss clamp with a 2 x 64 velocity network
    "vnet64": dict(cfm_loss_clamp=20.0, policy_kwargs=dict(velocity_net_arch=[64, 64])),
    # the same with the CFM-loss clamp off, as the preset (and the TwoGoal study) has it
    "vnet64_no_clamp": dict(policy_kwargs=dict(velocity_net_arch=[64, 64])),
    # the library defaults (the preset keeps the guards it was measured with) with the epsilon-MSE target and a 3 x 64
    # velocity net
    "library_defaults_vnet3x64_noise_target": dict(
        **LIBRARY_GUARDS, policy_kwargs=dict(velocity_net_arch=[64, 64, 64], cfm_target="noise")
    ),
    # the library defaults fitting the flow to the executed (clipped) actions
    "library_defaults_fit_clipped": dict(
        **LIBRARY_GUARDS, fit_clipped_actions=True, policy_kwargs=dict(velocity_net_arch=[64, 64])
    ),
    "vnet64_adaptive_lr_update_0.005": dict(
        cfm_loss_clamp=20.0,
        adaptive_lr_target_kl=0.005,
        adaptive_lr_every="update",
        policy_kwargs=dict(velocity_net_arch=[64, 64]),
    ),
}


def preset(env_id: str = "TwoGoal-v0") -> dict[str, Any]:
    """The shipped FPO preset, as FPO keyword arguments plus ``n_envs``."""
    from sb3_fpo.presets import load_preset

    loaded = load_preset(env_id)
    return {**loaded.kwargs, "n_envs": loaded.n_envs}


def diagnose(model: Any, seed: int, k: int, episodes: int) -> dict[str, Any]:
    from sb3_fpo.diagnostics import action_mode_report
    from sb3_fpo.envs.two_goal_diagnostics import goal_split

    report = action_mode_report(model, MIDDLE_STATES, k=k, dim=1, seed=seed)
    origin = goal_split(model, "TwoGoal-v0", starts=[[0.0, 0.0]], n_episodes=episodes, seed=seed)
    band = goal_split(model, "TwoGoal-v0", n_episodes=episodes, seed=seed, reset_options={"middle_start": True})
    anywhere = goal_split(model, "TwoGoal-v0", n_episodes=episodes, seed=seed + 1)
    anywhere_det = goal_split(model, "TwoGoal-v0", n_episodes=episodes, seed=seed + 1, deterministic=True)
    return dict(
        steps=int(model.num_timesteps),
        states=MIDDLE_STATES.tolist(),
        sarle=[r["sarle"] for r in report],
        n_modes=[r["n_modes"] for r in report],
        frac_up=[r["frac_pos"] for r in report],
        origin_split=dict(top=origin["top"], bottom=origin["bottom"], none=origin["none"]),
        band_split=dict(top=band["top"], bottom=band["bottom"], none=band["none"]),
        success=1.0 - anywhere["none"],
        mean_return=anywhere["mean_return"],
        mean_length=anywhere["mean_length"],
        success_deterministic=1.0 - anywhere_det["none"],
    )


def run(
    out: Path, algo: str, variant: str, seed: int, timesteps: int, n_checkpoints: int, k: int, episodes: int
) -> dict[str, Any]:
    import torch as th

    th.set_num_threads(1)
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    from sb3_fpo import FPO  # also registers TwoGoal-v0

    settings = preset()
    n_envs = settings.pop("n_envs")
    if algo == "fpo":
        settings.update(VARIANTS[variant])
        model: Any = FPO("MlpPolicy", make_vec_env("TwoGoal-v0", n_envs=n_envs, seed=seed), seed=seed, **settings)
    else:  # SB3 PPO with the same rollout / optimisation settings, its own defaults otherwise
        ppo_settings = {key: settings[key] for key in SETTING_KEYS if key in settings}
        model = PPO("MlpPolicy", make_vec_env("TwoGoal-v0", n_envs=n_envs, seed=seed), seed=seed, **ppo_settings)
    checkpoints = []
    for i in range(1, n_checkpoints + 1):
        model.learn(timesteps * i // n_checkpoints - model.num_timesteps, reset_num_timesteps=False)
        checkpoints.append(diagnose(model, seed, k, episodes))
    model.save(_model_path(out, algo, variant, seed))
    return dict(algo=algo, variant=variant, seed=seed, settings=repr(settings), checkpoints=checkpoints)


def _model_path(out: Path, algo: str, variant: str, seed: int) -> Path:
    return out / "models" / f"{algo}_{variant}_seed{seed}.zip"


def load(out: Path, run_result: dict[str, Any]) -> Any:
    from stable_baselines3 import PPO

    from sb3_fpo import FPO

    algo = FPO if run_result["algo"] == "fpo" else PPO
    return algo.load(_model_path(out, run_result["algo"], run_result["variant"], run_result["seed"]))


def summarize(results: list[dict[str, Any]], command: str) -> str:
    lines = [
        f"Command: `{command}`",
        "",
        "Last checkpoint, mean over seeds (per-seed values in brackets). Sarle and 'up' share: raw y-action samples at",
        "(0, 0); split: stochastic rollouts from (0, 0); success / return / length: random starts, stochastic.",
        "",
        "| algo | variant | steps | Sarle at (0,0) | modes | up share | split top/bottom from (0,0) | success | return | "
        "length | Sarle over checkpoints |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault((r["algo"], r["variant"]), []).append(r)
    for (algo, variant), runs in groups.items():
        last = [r["checkpoints"][-1] for r in runs]
        sarle = [c["sarle"][1] for c in last]
        modes = [c["n_modes"][1] for c in last]
        up = [c["frac_up"][1] for c in last]
        top = [c["origin_split"]["top"] for c in last]
        bottom = [c["origin_split"]["bottom"] for c in last]
        n_checkpoints = len(runs[0]["checkpoints"])
        trend = " → ".join(f"{np.mean([r['checkpoints'][i]['sarle'][1] for r in runs]):.2f}" for i in range(n_checkpoints))
        lines.append(
            f"| {algo} | {variant} | {last[0]['steps']} | {np.mean(sarle):.2f} [{', '.join(f'{s:.2f}' for s in sarle)}] | "
            f"{' '.join(str(int(m)) for m in modes)} | {np.mean(up):.2f} [{', '.join(f'{u:.2f}' for u in up)}] | "
            f"{np.mean(top):.2f} / {np.mean(bottom):.2f} | {np.mean([c['success'] for c in last]):.2f} | "
            f"{np.mean([c['mean_return'] for c in last]):.3f} | {np.mean([c['mean_length'] for c in last]):.1f} | {trend} |"
        )
    return "\n".join(lines) + "\n"


def pictures(results: list[dict[str, Any]], out: Path, k: int) -> None:
    from sb3_fpo.diagnostics import plot_action_samples, sample_raw_actions
    from sb3_fpo.envs.two_goal_diagnostics import plot_trajectories

    first_seed = min(r["seed"] for r in results)
    first_fpo_variant = next((r["variant"] for r in results if r["algo"] == "fpo"), None)
    for r in results:
        if r["seed"] != first_seed or r["variant"] not in (first_fpo_variant, "gaussian"):
            continue
        model = load(out, r)
        samples = sample_raw_actions(model, MIDDLE_STATES, k, seed=0)
        by_state = {f"({x:.1f}, {y:.1f})": s for (x, y), s in zip(MIDDLE_STATES, samples)}
        name = "FPO (flow policy)" if r["algo"] == "fpo" else "SB3 PPO (Gaussian policy)"
        title = f"{name}: raw y-action samples"
        plot_action_samples(by_state, out / f"{r['algo']}_action_samples.png", dim=1, title=title)
        trajectories = out / f"{r['algo']}_trajectories.png"
        plot_trajectories(model, "TwoGoal-v0", [[0.0, 0.0]], trajectories, n_per_start=20, title=f"{name}: from (0, 0)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", default=["preset"], choices=list(VARIANTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--timesteps", type=int, default=100_000)
    parser.add_argument("--checkpoints", type=int, default=4, help="diagnostics at this many evenly spaced points")
    parser.add_argument("--samples", type=int, default=1000, help="raw action samples per state")
    parser.add_argument("--episodes", type=int, default=100, help="rollouts per goal-split measurement")
    parser.add_argument("--no-ppo", action="store_true", help="skip the PPO baseline")
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--out", default="examples/two_goal")
    parser.add_argument("--replot", action="store_true", help="only redraw the figures of the runs in --out")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.replot:
        results = json.loads((out / "results.json").read_text())
        missing = [r for r in results if not _model_path(out, r["algo"], r["variant"], r["seed"]).exists()]
        if missing:  # the models are git-ignored: a fresh clone has results.json but not them
            raise SystemExit(
                f"--replot draws from the models the runs saved in {out}/models, and {len(missing)} are missing (they "
                "are not in the repository). Run the study first, e.g. python examples/two_goal.py --seeds 0."
            )
        pictures(results, out, args.samples)
        return

    jobs = [("fpo", v, s) for v in args.variants for s in args.seeds]
    if not args.no_ppo:
        jobs += [("ppo", "gaussian", s) for s in args.seeds]
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        settings = (args.timesteps, args.checkpoints, args.samples, args.episodes)
        futures = [pool.submit(run, out, algo, variant, seed, *settings) for algo, variant, seed in jobs]
        results = []
        for future in as_completed(futures):  # saved as they finish, so an interrupted sweep keeps its runs
            results.append(future.result())
            (out / "results.json").write_text(json.dumps(results, indent=1))
    command = (
        f"python examples/two_goal.py --variants {' '.join(args.variants)} --seeds {' '.join(map(str, args.seeds))} "
        f"--timesteps {args.timesteps} --checkpoints {args.checkpoints} --samples {args.samples} --episodes {args.episodes}"
        + (" --no-ppo" if args.no_ppo else "")
    )
    results.sort(key=lambda r: (r["algo"], r["variant"], r["seed"]))
    (out / "results.json").write_text(json.dumps(results, indent=1))
    text = summarize(results, command)
    (out / "summary.md").write_text(text)
    pictures(results, out, args.samples)
    print(text)


if __name__ == "__main__":
    main()
