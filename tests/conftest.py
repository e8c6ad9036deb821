"""Shared fixtures and tiny environments for the sb3_fpo tests."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces


class TargetEnv(gym.Env):
    """
    Continuous bandit: observe a target in [-1, 1]^D, reward ``-||a - target||^2``, episodes of ``ep_length`` steps.

    Random actions score about ``-2 D / 3``; a policy that copies the observation scores 0.
    """

    def __init__(self, dim: int = 2, ep_length: int = 5):
        super().__init__()
        self.observation_space = spaces.Box(-1.0, 1.0, (dim,), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (dim,), dtype=np.float32)
        self.ep_length = ep_length
        self._target = np.zeros(dim, dtype=np.float32)
        self._t = 0

    def _new_target(self) -> np.ndarray:
        self._target = self.np_random.uniform(-1.0, 1.0, self.observation_space.shape).astype(np.float32)
        return self._target.copy()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._t = 0
        return self._new_target(), {}

    def step(self, action: np.ndarray):
        reward = -float(np.sum((np.asarray(action) - self._target) ** 2))
        self._t += 1
        return self._new_target(), reward, False, self._t >= self.ep_length, {}


class CorruptEnv(TargetEnv):
    """Returns a NaN observation or reward after ``bad_step`` steps."""

    def __init__(self, what: str = "obs", bad_step: int = 3):
        super().__init__()
        self.what, self.bad_step, self._n = what, bad_step, 0

    def step(self, action: np.ndarray):
        obs, reward, terminated, truncated, info = super().step(action)
        self._n += 1
        if self._n >= self.bad_step:
            if self.what == "obs":
                obs = np.full_like(obs, np.nan)
            else:
                reward = float("inf")
        return obs, reward, terminated, truncated, info


@pytest.fixture
def target_env() -> TargetEnv:
    return TargetEnv()


# Small, fast settings shared by the tests that only need the machinery to run.
SMALL = dict(n_steps=32, batch_size=16, n_epochs=2, policy_kwargs=dict(velocity_net_arch=[16, 16], flow_steps=3))
