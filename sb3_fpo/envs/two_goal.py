"""
``TwoGoal-v0``: a continuous plane with two equally good goals, to show a policy's multimodality.

The agent moves on ``[-1, 1]^2``; two goal bands lie at both ends of the vertical axis (``y >= goal_y`` and
``y <= -goal_y``). From the middle band ``|y| < middle_width`` both goals are equally far, so an optimal
stochastic policy may pick either: a flow policy can keep both options (the FPO paper's GridWorld), a
Gaussian policy has one mode and must commit to one goal (or average them and go nowhere).
"""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

# Arrival tolerance, so that 16 full-speed steps of 0.05 reach y = 0.8 whatever the float rounding
_TOLERANCE = 1e-9

#: ``info["goal"]`` values
TOP_GOAL = 1
BOTTOM_GOAL = -1
NO_GOAL = 0


class TwoGoalEnv(gym.Env[np.ndarray, np.ndarray]):
    """
    Point agent on the plane ``[-1, 1]^2`` with a goal band at the top and one at the bottom.

    * Observation: the position ``(x, y)``, ``float32``, in ``Box(-1, 1, (2,))``.
    * Action: a velocity in ``Box(-1, 1, (2,))`` (clipped to the box), the position moves by
      ``max_speed * action`` and is clipped to the plane (walls). With the default ``max_speed = 0.05``
      a goal is 16 full-speed steps away from ``y = 0``.
    * Reward: ``goal_reward`` on arrival in a goal band (the episode then terminates), ``-step_cost`` on
      every other step.
    * Start: uniform over the non-goal region ``|y| < goal_y`` (``x`` uniform in ``[-1, 1]``), or uniform over
      the middle band ``|y| < middle_width`` with ``middle_start=True`` (constructor or reset option), or the
      position given by the reset option ``start=(x, y)``.
    * ``info["goal"]``: ``+1`` (top band reached), ``-1`` (bottom band reached) or ``0`` (not yet / none).

    The registered id ``TwoGoal-v0`` caps episodes at 100 steps (``TimeLimit``); the class itself has no cap.

    :param goal_y: the goal bands are ``y >= goal_y`` and ``y <= -goal_y`` (``0 < goal_y < 1``)
    :param max_speed: distance moved per step at full action
    :param goal_reward: reward on arrival in either goal band
    :param step_cost: cost (negative reward) of each step that does not reach a goal
    :param middle_start: start in the middle band by default (evaluations)
    :param middle_width: half-width of the middle band
    :param render_mode: ``None`` or ``rgb_array`` (a ``render_size`` x ``render_size`` image: goal bands, agent)
    :param render_size: side of the rendered image, in pixels
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self,
        goal_y: float = 0.8,
        max_speed: float = 0.05,
        goal_reward: float = 1.0,
        step_cost: float = 0.0,
        middle_start: bool = False,
        middle_width: float = 0.1,
        render_mode: str | None = None,
        render_size: int = 128,
    ) -> None:
        super().__init__()
        if not 0.0 < goal_y < 1.0:
            raise ValueError(f"goal_y must be in (0, 1), got {goal_y}.")
        if not 0.0 < middle_width < goal_y:
            raise ValueError(f"middle_width must be in (0, goal_y={goal_y}), got {middle_width}.")
        if not max_speed > 0.0:
            raise ValueError(f"max_speed must be > 0, got {max_speed}.")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}.")
        self.goal_y = float(goal_y)
        self.max_speed = float(max_speed)
        self.goal_reward = float(goal_reward)
        self.step_cost = float(step_cost)
        self.middle_start = bool(middle_start)
        self.middle_width = float(middle_width)
        self.render_mode = render_mode
        self.render_size = int(render_size)
        self.observation_space = spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)
        self._position = np.zeros(2, dtype=np.float64)

    @property
    def position(self) -> np.ndarray:
        """Current position ``(x, y)`` (a copy, float64)."""
        return self._position.copy()

    def goal_of(self, position: np.ndarray) -> int:
        """``+1`` / ``-1`` if ``position`` lies in the top / bottom goal band, else ``0``."""
        if position[1] >= self.goal_y - _TOLERANCE:
            return TOP_GOAL
        if position[1] <= -self.goal_y + _TOLERANCE:
            return BOTTOM_GOAL
        return NO_GOAL

    def _obs(self) -> np.ndarray:
        return self._position.astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """
        Start a new episode.

        :param seed: seed of the start-position generator
        :param options: ``start``: an explicit start ``(x, y)`` in the plane, outside the goal bands;
            ``middle_start``: start uniformly in the middle band (overrides the constructor's choice)
        """
        super().reset(seed=seed)
        options = options or {}
        unknown = set(options) - {"start", "middle_start"}
        if unknown:
            raise ValueError(f"Unknown reset options {sorted(unknown)}; allowed: 'start', 'middle_start'.")
        if options.get("start") is not None:
            start = np.asarray(options["start"], dtype=np.float64)
            if start.shape != (2,) or not np.all(np.abs(start) <= 1.0):
                raise ValueError(f"start must be a position (x, y) in [-1, 1]^2, got {options['start']!r}.")
            if self.goal_of(start) != NO_GOAL:
                raise ValueError(f"start {tuple(start)} lies in a goal band (|y| >= {self.goal_y}).")
            self._position = start.copy()
        else:
            middle = bool(options.get("middle_start", self.middle_start))
            half_height = self.middle_width if middle else self.goal_y
            x = self.np_random.uniform(-1.0, 1.0)
            # Open interval (-half_height, half_height): redraw the (measure-zero) boundary values
            y = self.np_random.uniform(-half_height, half_height)
            while abs(y) >= half_height - _TOLERANCE:
                y = self.np_random.uniform(-half_height, half_height)
            self._position = np.array([x, y], dtype=np.float64)
        return self._obs(), {"goal": NO_GOAL}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        """Move by ``max_speed * action`` (clipped to the box and the plane); a goal band ends the episode."""
        velocity = np.clip(np.asarray(action, dtype=np.float64).reshape(2), -1.0, 1.0)
        self._position = np.clip(self._position + self.max_speed * velocity, -1.0, 1.0)
        goal = self.goal_of(self._position)
        terminated = goal != NO_GOAL
        reward = self.goal_reward if terminated else -self.step_cost
        return self._obs(), float(reward), terminated, False, {"goal": goal}

    def render(self) -> np.ndarray | None:
        """``rgb_array``: the plane seen from above (y up), top band green, bottom band orange, agent black."""
        if self.render_mode != "rgb_array":
            return None
        size = self.render_size
        image = np.full((size, size, 3), 255, dtype=np.uint8)
        # Pixel row r shows y = 1 - 2 (r + 0.5) / size (top row: y close to 1)
        y = 1.0 - 2.0 * (np.arange(size) + 0.5) / size
        image[y >= self.goal_y] = (170, 220, 170)
        image[y <= -self.goal_y] = (250, 200, 150)
        col, row = ((np.array([1.0, -1.0]) * self._position + 1.0) / 2.0 * (size - 1)).round().astype(int)
        radius = max(1, size // 40)
        image[max(row - radius, 0) : row + radius + 1, max(col - radius, 0) : col + radius + 1] = 0
        return image
