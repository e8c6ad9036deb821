"""
``TwoGoal-v0`` helpers: which goal a policy's rollouts reach, and plots of its trajectories on the plane.

The general multimodality tools (raw action samples, Sarle's coefficient, KDE mode count, density plots, the
TensorBoard callback) are in :mod:`sb3_fpo.diagnostics`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from sb3_fpo.demonstrations import actor
from sb3_fpo.diagnostics import new_figure, torch_seed


def _actor(model: Any, deterministic: bool) -> Callable[[np.ndarray], np.ndarray]:
    """``obs -> action`` of a model (its VecNormalize statistics applied, if any) or of a callable."""
    act, normalize = actor(model, deterministic)
    return act if normalize is None else (lambda obs: act(normalize(obs)))


def _make_env(env: str | gym.Env) -> tuple[gym.Env, bool]:
    if isinstance(env, str):  # TwoGoal-v0 is registered by `import sb3_fpo`
        return gym.make(env), True
    return env, False


def _episode(
    act: Callable[[np.ndarray], np.ndarray],
    env: gym.Env,
    options: dict[str, Any] | None,
    seed: int | None,
    max_steps: int,
) -> tuple[list[np.ndarray], float, int, int]:
    """One episode: the observations, the return, the length and ``info["goal"]`` at its end."""
    obs, info = env.reset(seed=seed, options=options)
    observations = [np.asarray(obs)]
    total, length, goal = 0.0, 0, int(info.get("goal", 0))
    for _ in range(max_steps):
        obs, reward, terminated, truncated, info = env.step(act(obs))
        observations.append(np.asarray(obs))
        total += float(reward)
        length += 1
        goal = int(info.get("goal", 0))
        if terminated or truncated:
            break
    return observations, total, length, goal


def _episode_options(starts: Any, n_episodes: int, reset_options: dict[str, Any] | None) -> list[dict[str, Any] | None]:
    if n_episodes < 1:
        raise ValueError(f"n_episodes must be >= 1, got {n_episodes}.")
    if starts is None:
        return [reset_options] * n_episodes
    starts = np.asarray(starts, dtype=np.float64)
    if starts.ndim == 1:
        starts = starts[None]
    return [{**(reset_options or {}), "start": start} for start in starts for _ in range(n_episodes)]


def goal_split(
    model: Any,
    env: str | gym.Env,
    starts: Any = None,
    n_episodes: int = 1,
    deterministic: bool = False,
    seed: int | None = 0,
    reset_options: dict[str, Any] | None = None,
    max_steps: int = 1000,
) -> dict[str, Any]:
    """
    Which goal the rollouts of ``model`` reach, read from ``info["goal"]`` (``+1``, ``-1``, ``0`` = none).

    With ``starts``, every start position runs ``n_episodes`` episodes (reset option ``start``); without,
    ``n_episodes`` episodes start where the env's reset puts them (``reset_options={"middle_start": True}``:
    the middle band of ``TwoGoal-v0``). A multimodal policy splits its rollouts from the middle band between
    the two goals (with ``deterministic=False``; the deterministic zero-noise action goes one way per state).

    :param model: an SB3 algorithm or policy (``predict``), or a callable ``obs -> action``
    :param env: an env id (made and closed here) or a ``gym.Env`` with ``info["goal"]``
    :param starts: start positions, shape ``(n_starts, 2)``, or ``None``
    :param n_episodes: episodes per start (or in all, without ``starts``)
    :param deterministic: ``predict(deterministic=...)``
    :param seed: seeds the env's first reset and torch's generator during the rollouts (restored afterwards);
        ``None``: unseeded
    :param reset_options: extra reset options of every episode
    :param max_steps: cap on the episode length (for envs without a time limit); a capped episode reaches no goal
    :return: ``top`` / ``bottom`` / ``none``: fractions of episodes ending at goal ``+1`` / ``-1`` / neither;
        ``mean_return``, ``mean_length``, ``n_episodes``; per episode (start-major order) ``goals``,
        ``returns`` and ``lengths`` arrays
    """
    all_options = _episode_options(starts, n_episodes, reset_options)
    act = _actor(model, deterministic)
    gym_env, owned = _make_env(env)
    goals, returns, lengths = [], [], []
    try:
        with torch_seed(seed):
            for i, options in enumerate(all_options):
                _, total, length, goal = _episode(act, gym_env, options, seed if i == 0 else None, max_steps)
                goals.append(goal)
                returns.append(total)
                lengths.append(length)
    finally:
        if owned:
            gym_env.close()
    goal_array = np.asarray(goals, dtype=np.int64)
    return {
        "top": float(np.mean(goal_array == 1)),
        "bottom": float(np.mean(goal_array == -1)),
        "none": float(np.mean(goal_array == 0)),
        "mean_return": float(np.mean(returns)),
        "mean_length": float(np.mean(lengths)),
        "n_episodes": len(goals),
        "goals": goal_array,
        "returns": np.asarray(returns, dtype=np.float64),
        "lengths": np.asarray(lengths, dtype=np.int64),
    }


def plot_trajectories(
    model: Any,
    env: str | gym.Env,
    starts: Any,
    path: str | Path,
    n_per_start: int = 1,
    deterministic: bool = False,
    seed: int | None = 0,
    max_steps: int = 1000,
    title: str | None = None,
) -> Path:
    """
    Rollout trajectories on the plane (the first two observation entries, the position in ``TwoGoal-v0``).

    The goal bands are drawn when the env has a ``goal_y`` attribute (``TwoGoal-v0``); each trajectory is
    coloured by the goal it reached (top: green, bottom: orange, none: grey).

    :param model: an SB3 algorithm or policy (``predict``), or a callable ``obs -> action``
    :param env: an env id or a ``gym.Env`` that accepts the reset option ``start``
    :param starts: start positions, shape ``(n_starts, 2)``
    :param path: PNG file to write
    :param n_per_start: episodes per start
    :param deterministic: ``predict(deterministic=...)``
    :param seed: as in :func:`goal_split`
    :param max_steps: cap on the episode length
    :param title: axes title
    :return: ``path``
    """
    fig = new_figure(1, size=5.0)
    ax = fig.subplots()
    all_options = _episode_options(starts, n_per_start, None)
    act = _actor(model, deterministic)
    gym_env, owned = _make_env(env)
    colours = {1: "tab:green", -1: "tab:orange", 0: "tab:grey"}
    try:
        goal_y = getattr(gym_env.unwrapped, "goal_y", None)
        low, high = -1.0, 1.0
        space = gym_env.observation_space
        if isinstance(space, gym.spaces.Box) and space.shape is not None and space.shape[0] >= 2:
            low, high = float(space.low.flat[1]), float(space.high.flat[1])
        if goal_y is not None:
            ax.axhspan(goal_y, high, color="tab:green", alpha=0.15, label="goal +1")
            ax.axhspan(low, -goal_y, color="tab:orange", alpha=0.15, label="goal -1")
        with torch_seed(seed):
            for i, options in enumerate(all_options):
                observations, _, _, goal = _episode(act, gym_env, options, seed if i == 0 else None, max_steps)
                xy = np.asarray(observations, dtype=np.float64).reshape(len(observations), -1)[:, :2]
                ax.plot(xy[:, 0], xy[:, 1], color=colours.get(goal, "tab:grey"), lw=1.0, alpha=0.7)
                ax.plot(xy[0, 0], xy[0, 1], "o", color="black", ms=3)
    finally:
        if owned:
            gym_env.close()
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    ax.set_aspect("equal")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    if goal_y is not None:
        ax.legend(loc="upper right", fontsize=8)
    if title:
        ax.set_title(title)
    path = Path(path)
    fig.savefig(path, dpi=100)
    return path
