"""Validation of FPO's hyperparameters and env: each raises a ``ValueError`` that names the value, before training starts."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.base_class import maybe_make_env
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.common.vec_env import VecEnv

#: ``log_ratio_clamp``: a number ``c`` (``[-c, c]``), a pair ``(low, high)`` with ``None`` for an open side, or ``None``
LogRatioClamp = float | tuple[float | None, float | None] | None


def check_int(name: str, value: Any, minimum: int = 1) -> int:
    """An integer (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def check_flag(name: str, value: Any) -> bool:
    """``True`` or ``False`` (numpy's too), nothing else."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}.")
    return bool(value)


def check_hyperparameters(
    n_steps: int,
    batch_size: int,
    n_epochs: int,
    clip_range: float | Schedule,
    ent_coef: float,
    n_samples: int,
    tau_min: float,
    tau_max: float,
    cfm_loss_clamp: float | None,
    normalize_advantage: bool,
) -> None:
    """The sizes, the clip range, the (absent) entropy bonus, the flow-time range and the CFM clamp of ``FPO``."""
    check_int("n_samples", n_samples)
    check_int("n_steps", n_steps)
    check_int("n_epochs", n_epochs)
    check_int("batch_size", batch_size, 2 if normalize_advantage else 1)
    if not callable(clip_range) and not clip_range > 0:
        raise ValueError(f"clip_range must be > 0, got {clip_range}.")
    if ent_coef != 0:
        raise ValueError(
            f"ent_coef={ent_coef}: a flow policy has no closed-form entropy, so FPO has no entropy bonus. Set ent_coef=0."
        )
    if not 0.0 <= tau_min < tau_max <= 1.0:
        raise ValueError(f"Need 0 <= tau_min < tau_max <= 1, got tau_min={tau_min}, tau_max={tau_max}.")
    if cfm_loss_clamp is not None and not cfm_loss_clamp > 0:
        raise ValueError(f"cfm_loss_clamp must be > 0 or None, got {cfm_loss_clamp}.")


def parse_log_ratio_clamp(value: LogRatioClamp) -> tuple[float | None, float | None]:
    """``log_ratio_clamp`` as ``(low, high)``; the interval must contain 0 (the ratio of an unchanged policy)."""
    if value is None:
        return (None, None)
    if isinstance(value, (int, float)):
        if not value > 0:
            raise ValueError(f"log_ratio_clamp must be > 0, got {value}.")
        return (-float(value), float(value))
    low, high = value
    if low is not None and high is not None and not low < high:
        raise ValueError(f"log_ratio_clamp needs low < high, got {value}.")
    if (low is not None and low >= 0) or (high is not None and high <= 0):
        raise ValueError(f"log_ratio_clamp must contain 0 (the ratio of an unchanged policy), got {value}.")
    return (low, high)


def check_adaptive_lr(target_kl: float | None, bounds: tuple[float, float]) -> tuple[float, float]:
    """The KL-adaptive learning rate's target (> 0 or ``None``) and its ``(low, high)`` bounds, as floats."""
    if target_kl is not None and not target_kl > 0:
        raise ValueError(f"adaptive_lr_target_kl must be > 0 or None, got {target_kl}.")
    low, high = bounds
    if not 0 < low < high:
        raise ValueError(f"adaptive_lr_range must be (low, high) with 0 < low < high, got {bounds}.")
    return (float(low), float(high))


def check_rollout_finite(buffer: Any) -> None:
    """NaN or inf in a rollout's observations or rewards, found before the update uses them."""
    observations = buffer.observations
    items = observations.items() if isinstance(observations, dict) else [("", observations)]
    for key, array in items:
        if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
            where = f" (key {key!r})" if key else ""
            raise ValueError(
                f"The rollout contains NaN or inf observations{where}. Fix the environment, or wrap it with "
                "stable_baselines3.common.vec_env.VecCheckNan to find the step that produces them."
            )
    if not np.isfinite(buffer.rewards).all():
        raise ValueError(
            "The rollout contains NaN or inf rewards (or a non-finite value bootstrap at a time limit). Fix the "
            "environment, or wrap it with stable_baselines3.common.vec_env.VecCheckNan to find the step."
        )


def check_env(env: Any, verbose: int, n_steps: int, normalize_advantage: bool) -> Any:
    """
    The env, made from its id if given one (as SB3 would later), after checking what FPO needs of it: a ``Box`` action
    space, and more than one transition per rollout when advantages are normalised.
    """
    if env is None:
        return env
    env = maybe_make_env(env, verbose)
    if not isinstance(env.action_space, spaces.Box):
        raise ValueError(
            f"FPO needs a continuous gymnasium.spaces.Box action space, got {env.action_space}. "
            "For discrete or multi-discrete actions use SB3's PPO."
        )
    n_envs = env.num_envs if isinstance(env, VecEnv) else 1
    if normalize_advantage and n_steps * n_envs < 2:
        raise ValueError(f"n_steps * n_envs must be > 1 for advantage normalization, got {n_steps} * {n_envs}.")
    return env
