"""
``ArmTracking-v0``: under-conditioned joint tracking with a planar MuJoCo arm, a small analogue of the FPO paper's
humanoid tracking with goal inputs removed (arXiv 2507.21053, Table 2).

Task
----
A planar 3-link arm (``assets/arm_tracking.xml``: hinge joints about the vertical axis on a fixed base, links of
0.5, 0.4 and 0.2 m, no gravity in the plane of motion, one position servo per joint) must track a reference joint
trajectory ``q_ref(t)``. Each episode draws

* a smooth end-effector (EE) path: an arc of a circle with random centre, radius, start phase, direction and sweep,
  inside the workspace; it is the same for every style;
* a hidden *style* ``k`` in ``{0, 1, 2, 3}`` (uniform), a pair (orientation sign, elbow sign). The orientation of the
  last link is ``phi(t) = polar angle of the EE + o * ORIENTATION_OFFSET`` with ``o = +1 / -1``, and the elbow sign
  picks the elbow-up or elbow-down solution of the 2-link sub-chain that places the wrist. ``q_ref(t)`` is the
  analytic inverse kinematics of (EE path, phi, elbow sign): four joint trajectories with the same EE path.

The path is redrawn until all four styles stay inside the joint limits, keep the elbow away from its singularities
(``ELBOW_RANGE``), and every two styles are at least ``min_style_distance`` (0.6 rad, twice the default
``fail_threshold``) apart, as mean absolute joint distance at every step after the reach: any posture halfway
between two styles fails the success test. Which paths are accepted never depends on the style drawn.

The arm starts from a fixed neutral pose (the straight arm, ``q = 0``, plus uniform noise of ``start_noise`` rad
and rad/s) that does not depend on the style; the reference starts elsewhere, so the first steps are a reach to the
style's posture (``grace_steps`` steps during which no failure is counted).

Observation (``float32``, angles in units of pi):

* arm state, at every level: ``q / pi`` (3), ``qdot / 10`` (3, clipped to ``[-10, 10]``), the EE position (2), the
  progress ``t / T`` (1);
* goal inputs, for the reference ``lookahead`` steps ahead (default the next step and 5 steps ahead):

  * ``minimal``: the EE reference (2 per step): four styles fit it (4 right answers);
  * ``partial``: the EE reference and the orientation ``phi / pi`` (3 per step): only the elbow sign is left
    (2 right answers);
  * ``full``: the EE reference, ``phi / pi`` and the reference joint angles ``q_ref / pi`` (6 per step): one right
    answer.

  With the default ``lookahead = (1, 5)`` the sizes are 13 (minimal), 15 (partial) and 21 (full): see
  :func:`observation_size`. Nothing observable at the minimal level depends on the style: the EE path, the start
  pose and the random stream are the same (the style is drawn first, as one integer, even when
  ``reset(options={"style": k})`` fixes it), so the minimal-level observation at reset is identical for all styles
  for the same seed.

Action: three joint position targets in ``[-1, 1]``, scaled to the servo range ``[-2.7, 2.7]`` rad.

Reward, at every level computed against the FULL hidden reference:
``r_t = exp(-reward_scale * mean_j wrap(q_j - q_ref_j(t))^2) - ctrl_cost_weight * |a|^2``, in ``(0, 1]`` without
control cost. Its shape is what makes the test meaningful. Under a quadratic reward ``-e_t`` the best answer to an
ambiguous observation is the average posture of the styles that fit it (the mean minimises the expected squared
error), which a Gaussian policy represents as well as any other: no policy class would have an advantage. With
``exp(-k e)`` a posture between styles is far from all of them and earns almost nothing, while committing to one style
earns about 1 whenever it is the right one; the success test (below) likewise pays only for tracking one whole style.
So a policy must pick one of the right answers (consistently, over the episode) instead of averaging them. The path
sampler guarantees it: two styles are at least ``min_style_distance = 0.6`` rad apart (mean absolute joint distance),
so their midpoint has ``k * e >= k * 0.3^2 = 0.9`` with the defaults (measured: about 2, a reward of at most
``exp(-2) = 0.14``, for the closest pair, the two orientations), against the ``ln 2`` above which committing to one of
two styles (expected reward 1/2) beats their midpoint.

Success: ``info["tracking_error"]`` is the mean absolute (wrapped) joint error in radians at every step. After the
first ``grace_steps`` steps, a step with ``tracking_error > fail_threshold`` is a failure; by default it terminates
the episode (as the paper's tracking terminates on large deviations; ``terminate_on_failure=False`` runs the episode
to its end and only records it). ``info["success"]`` and ``info["is_success"]`` (read by SB3's ``EvalCallback`` and
``evaluate_policy``) are given at the last step: ``True`` when the arm tracked for all ``episode_steps`` steps
without failing. ``info["style"]`` is the hidden style, ``reset(options={"style": k})`` chooses it.

Chance levels: the style cannot be inferred from the observation, so a policy that commits to one style succeeds in
about 1/4 of the episodes at ``minimal`` and 1/2 at ``partial`` (whether it always picks the same style or samples
one per episode); a policy that averages the styles fails nearly always. ``full`` has one right answer: a calibrated
policy succeeds in nearly all episodes.

Timing: MuJoCo step 0.01 s, ``frame_skip`` 5, so one control step is 0.05 s; the default episode has 60 steps (3 s)
and the registered id caps it (``max_episode_steps=60``). The env ends its episodes itself (``truncated`` at
``episode_steps``), so pass a matching ``max_episode_steps`` to ``gym.make`` with another ``episode_steps``.
"""

from __future__ import annotations

import os
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

try:
    import mujoco
    from gymnasium.envs.mujoco import MujocoEnv
except ImportError as error:  # a clear message instead of a bare ModuleNotFoundError from gym.make
    raise ImportError('ArmTracking-v0 needs MuJoCo: pip install "sb3_fpo[mujoco]"') from error
from gymnasium.utils import EzPickle

#: allowed values of the ``conditioning`` argument, from most to least informed
CONDITIONING_LEVELS = ("full", "partial", "minimal")
#: link lengths in metres (they must match ``assets/arm_tracking.xml``)
LINK_LENGTHS = (0.5, 0.4, 0.2)
#: the styles: (orientation sign, elbow sign) for style index 0..3
STYLES = ((1, 1), (1, -1), (-1, 1), (-1, -1))
#: offset in radians of the last link's orientation from the EE polar angle (the two orientations differ by twice it)
ORIENTATION_OFFSET = 0.6
#: allowed absolute elbow angle of the references (away from the straight and the folded singularities)
ELBOW_RANGE = (0.5, 2.4)
#: joint range and servo range in radians (symmetric); references stay within REFERENCE_LIMIT
JOINT_LIMIT = 2.7
REFERENCE_LIMIT = 2.4
#: goal-input size per lookahead step and level
GOAL_SIZE_PER_STEP = {"minimal": 2, "partial": 3, "full": 6}
#: size of the arm-state part of the observation (q, qdot, EE position, progress)
STATE_SIZE = 9

_XML_PATH = os.path.join(os.path.dirname(__file__), "assets", "arm_tracking.xml")
_FRAME_SKIP = 5
_QVEL_SCALE = 0.1
# Observation bound: every entry is within about 1.2 except the scaled joint velocities, clipped at 100 rad/s
_OBS_BOUND = 10.0
_MAX_PATH_DRAWS = 1000
_DEFAULT_CAMERA: dict[str, Any] = {"distance": 2.2, "elevation": -90.0, "azimuth": 90.0, "lookat": np.array([0.5, 0.0, 0.0])}


def wrap_angle(angle: np.ndarray) -> np.ndarray:
    """Angles wrapped to ``[-pi, pi)``."""
    return (np.asarray(angle) + np.pi) % (2.0 * np.pi) - np.pi


def forward_kinematics(q: np.ndarray) -> np.ndarray:
    """
    End-effector position of the arm.

    :param q: joint angles, shape ``(..., 3)``
    :return: EE positions ``(x, y)``, shape ``(..., 2)``
    """
    q = np.asarray(q, dtype=np.float64)
    angles = np.cumsum(q, axis=-1)
    lengths = np.asarray(LINK_LENGTHS)
    return np.stack([(lengths * np.cos(angles)).sum(-1), (lengths * np.sin(angles)).sum(-1)], axis=-1)


def inverse_kinematics(ee: np.ndarray, phi: np.ndarray, elbow: int) -> np.ndarray:
    """
    Joint angles that put the EE at ``ee`` with the last link at absolute angle ``phi``.

    Points out of reach of the wrist are clipped to the reachable annulus (callers check the elbow range).

    :param ee: EE positions, shape ``(..., 2)``
    :param phi: absolute orientation of the last link, shape ``(...)``
    :param elbow: sign of the elbow angle (``+1`` or ``-1``)
    :return: joint angles wrapped to ``[-pi, pi)``, shape ``(..., 3)``
    """
    l1, l2, l3 = LINK_LENGTHS
    ee = np.asarray(ee, dtype=np.float64)
    phi = np.asarray(phi, dtype=np.float64)
    wrist_x = ee[..., 0] - l3 * np.cos(phi)
    wrist_y = ee[..., 1] - l3 * np.sin(phi)
    cos_q2 = (wrist_x**2 + wrist_y**2 - l1**2 - l2**2) / (2.0 * l1 * l2)
    q2 = float(np.sign(elbow)) * np.arccos(np.clip(cos_q2, -1.0, 1.0))
    q1 = np.arctan2(wrist_y, wrist_x) - np.arctan2(l2 * np.sin(q2), l1 + l2 * np.cos(q2))
    q3 = phi - q1 - q2
    return wrap_angle(np.stack([q1, q2, q3], axis=-1))


def check_conditioning(conditioning: str) -> str:
    """Return ``conditioning`` if it is a known level, else raise a ``ValueError`` listing the allowed ones."""
    if conditioning not in CONDITIONING_LEVELS:
        raise ValueError(f"conditioning must be one of {list(CONDITIONING_LEVELS)}, got {conditioning!r}.")
    return conditioning


def observation_size(conditioning: str, lookahead: tuple[int, ...] = (1, 5)) -> int:
    """
    Size of the observation at a conditioning level.

    :param conditioning: ``full``, ``partial`` or ``minimal``
    :param lookahead: reference steps ahead given as goal inputs
    """
    return STATE_SIZE + GOAL_SIZE_PER_STEP[check_conditioning(conditioning)] * len(lookahead)


class ArmTrackingEnv(MujocoEnv, EzPickle):
    """
    Planar 3-link MuJoCo arm tracking a hidden-style joint reference; see the module docstring for the whole design.

    :param conditioning: goal inputs in the observation: ``full`` (EE, orientation and joint references),
        ``partial`` (EE and orientation references) or ``minimal`` (EE reference only)
    :param episode_steps: control steps per episode (0.05 s each); the env truncates its episodes there
    :param grace_steps: first steps (the reach from the neutral pose) during which no failure is counted
    :param reward_scale: ``k`` in ``exp(-k * mean squared joint error)``
    :param fail_threshold: a step after the grace period with a mean absolute joint error above it (radians) fails
    :param min_style_distance: smallest mean absolute joint distance (radians) between two styles' references at any
        step after the reach (at most 0.7); paths closer than it are redrawn. Keep it >= ``2 * fail_threshold``.
    :param terminate_on_failure: end the episode at the first failure (default) or only record it
    :param ctrl_cost_weight: weight of the control cost ``|a|^2`` subtracted from the reward
    :param lookahead: reference steps ahead (each >= 1) given as goal inputs
    :param start_noise: half-width of the uniform noise on the neutral start pose (rad) and velocity (rad/s)
    :param render_mode: ``None``, ``human``, ``rgb_array`` or ``depth_array`` (MuJoCo rendering, seen from above)
    :param width: width of the rendered images
    :param height: height of the rendered images
    """

    metadata = {"render_modes": ["human", "rgb_array", "depth_array"], "render_fps": 20}

    def __init__(
        self,
        conditioning: str = "full",
        episode_steps: int = 60,
        grace_steps: int = 10,
        reward_scale: float = 10.0,
        fail_threshold: float = 0.3,
        min_style_distance: float = 0.6,
        terminate_on_failure: bool = True,
        ctrl_cost_weight: float = 0.0,
        lookahead: tuple[int, ...] = (1, 5),
        start_noise: float = 0.05,
        render_mode: str | None = None,
        width: int = 480,
        height: int = 480,
    ) -> None:
        EzPickle.__init__(
            self,
            conditioning,
            episode_steps,
            grace_steps,
            reward_scale,
            fail_threshold,
            min_style_distance,
            terminate_on_failure,
            ctrl_cost_weight,
            lookahead,
            start_noise,
            render_mode,
            width,
            height,
        )
        self.conditioning = check_conditioning(conditioning)
        if episode_steps < 1:
            raise ValueError(f"episode_steps must be >= 1, got {episode_steps}.")
        if not 0 <= grace_steps < episode_steps:
            raise ValueError(f"grace_steps must be in [0, episode_steps={episode_steps}), got {grace_steps}.")
        if reward_scale <= 0.0 or fail_threshold <= 0.0:
            raise ValueError(f"reward_scale and fail_threshold must be > 0, got {reward_scale} and {fail_threshold}.")
        if len(lookahead) == 0 or min(lookahead) < 1:
            raise ValueError(f"lookahead must be a non-empty sequence of steps >= 1, got {lookahead!r}.")
        if not 0.0 <= min_style_distance <= 0.7:
            # Above 0.7 rad almost no path is valid for all four styles (at 0.7, ~27 draws per episode)
            raise ValueError(f"min_style_distance must be in [0, 0.7] rad, got {min_style_distance}.")
        if start_noise < 0.0:
            raise ValueError(f"start_noise must be >= 0, got {start_noise}.")
        self.episode_steps = int(episode_steps)
        self.grace_steps = int(grace_steps)
        self.reward_scale = float(reward_scale)
        self.fail_threshold = float(fail_threshold)
        self.min_style_distance = float(min_style_distance)
        self.terminate_on_failure = bool(terminate_on_failure)
        self.ctrl_cost_weight = float(ctrl_cost_weight)
        self.lookahead = tuple(int(step) for step in lookahead)
        self.start_noise = float(start_noise)

        size = observation_size(self.conditioning, self.lookahead)
        observation_space = spaces.Box(-_OBS_BOUND, _OBS_BOUND, (size,), dtype=np.float32)
        MujocoEnv.__init__(
            self,
            _XML_PATH,
            _FRAME_SKIP,
            observation_space=observation_space,
            render_mode=render_mode,
            width=width,
            height=height,
            default_camera_config=_DEFAULT_CAMERA,
        )
        self._ctrl_scale = self.model.actuator_ctrlrange[:, 1].copy()
        self.action_space = spaces.Box(-1.0, 1.0, (self.model.nu,), dtype=np.float32)
        self._ee_site = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_SITE, "ee")

        n_points = self.episode_steps + max(self.lookahead) + 1
        self._t = 0
        self._style = 0
        self._requested_style: int | None = None
        self._failed = False
        self._ee_ref = np.zeros((n_points, 2))
        self._phi_ref = np.zeros((len(STYLES), n_points))
        self._q_ref = np.zeros((len(STYLES), n_points, 3))

    # ------------------------------------------------------------------ references

    @property
    def style(self) -> int:
        """The hidden style of the current episode (index into ``STYLES``)."""
        return self._style

    @property
    def t(self) -> int:
        """Control steps taken in the current episode."""
        return self._t

    def reference_joint_angles(self, style: int | None = None) -> np.ndarray:
        """
        Reference joint angles of the current episode, for ``t = 0 .. episode_steps + max(lookahead)``.

        :param style: a style index, or ``None`` for the episode's hidden style
        :return: a copy, shape ``(n_points, 3)``
        """
        return self._q_ref[self._style if style is None else self._check_style(style)].copy()

    def reference_ee(self) -> np.ndarray:
        """End-effector reference path of the current episode (the same for all styles), shape ``(n_points, 2)``."""
        return self._ee_ref.copy()

    def reference_action(self, style: int | None = None, lead: int = 1) -> np.ndarray:
        """
        Action that commands a style's reference posture ``lead`` steps ahead (a scripted tracking controller).

        :param style: a style index, or ``None`` for the episode's hidden style
        :param lead: how many steps ahead of the current time the commanded reference posture is
        :return: action in ``[-1, 1]^3``, ``float32``
        """
        index = min(self._t + lead, self._q_ref.shape[1] - 1)
        target = self.reference_joint_angles(style)[index]
        return np.clip(target / self._ctrl_scale, -1.0, 1.0).astype(np.float32)

    def style_actions(self, lead: int = 1) -> np.ndarray:
        """The :meth:`reference_action` of every style, shape ``(4, 3)``: the right answers, e.g. to plot samples."""
        return np.stack([self.reference_action(style, lead) for style in range(len(STYLES))])

    def tracking_errors(self, q: np.ndarray, style: int | None = None, t: int | None = None) -> tuple[float, float]:
        """
        Joint errors of a posture against a style's reference.

        :param q: joint angles (3)
        :param style: a style index, or ``None`` for the episode's hidden style
        :param t: reference time index, or ``None`` for the current time
        :return: ``(mean absolute error, mean squared error)`` in radians (wrapped differences)
        """
        index = self._t if t is None else t
        error = wrap_angle(np.asarray(q, dtype=np.float64) - self.reference_joint_angles(style)[index])
        return float(np.mean(np.abs(error))), float(np.mean(error**2))

    def tracking_reward(self, mean_squared_error: float) -> float:
        """``exp(-reward_scale * mean_squared_error)``: the tracking part of the reward."""
        return float(np.exp(-self.reward_scale * mean_squared_error))

    def _check_style(self, style: Any) -> int:
        if isinstance(style, bool) or not isinstance(style, (int, np.integer)) or not 0 <= style < len(STYLES):
            raise ValueError(f"style must be an integer in [0, {len(STYLES)}), got {style!r}.")
        return int(style)

    def _draw_references(self) -> None:
        """Draw an EE arc valid for all four styles and compute the four joint references (rejection sampling)."""
        n_points = self._ee_ref.shape[0]
        steps = np.arange(n_points)
        for _ in range(_MAX_PATH_DRAWS):
            rng = self.np_random
            centre_radius = rng.uniform(0.55, 0.85)
            centre_angle = rng.uniform(-0.9, 0.9)
            radius = rng.uniform(0.08, 0.2)
            phase = rng.uniform(-np.pi, np.pi)
            sweep = rng.uniform(0.5 * np.pi, 1.25 * np.pi) * rng.choice([-1.0, 1.0])
            angles = phase + sweep * steps / self.episode_steps
            centre = centre_radius * np.array([np.cos(centre_angle), np.sin(centre_angle)])
            ee = centre + radius * np.stack([np.cos(angles), np.sin(angles)], axis=-1)
            polar = np.arctan2(ee[:, 1], ee[:, 0])
            phi = np.stack([wrap_angle(polar + sign * ORIENTATION_OFFSET) for sign, _ in STYLES])
            q = np.stack([inverse_kinematics(ee, phi[k], elbow) for k, (_, elbow) in enumerate(STYLES)])
            if self._references_valid(ee, q):
                self._ee_ref, self._phi_ref, self._q_ref = ee, phi, q
                return
        raise RuntimeError(f"No valid reference path in {_MAX_PATH_DRAWS} draws.")  # pragma: no cover

    def _references_valid(self, ee: np.ndarray, q: np.ndarray) -> bool:
        if np.abs(q).max() > REFERENCE_LIMIT:
            return False
        elbow = np.abs(q[..., 1])
        if elbow.min() < ELBOW_RANGE[0] or elbow.max() > ELBOW_RANGE[1]:
            return False
        if not np.allclose(forward_kinematics(q), ee[None], atol=1e-6):
            return False
        # Every two styles at least min_style_distance apart after the reach: their midpoint fails the success test
        after_reach = q[:, self.grace_steps :]
        for i in range(len(STYLES)):
            for j in range(i + 1, len(STYLES)):
                distance = np.abs(wrap_angle(after_reach[i] - after_reach[j])).mean(-1)
                if distance.min() < self.min_style_distance:
                    return False
        return True

    # ------------------------------------------------------------------ gymnasium API

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """
        Start a new episode.

        :param seed: seed of the episode generator
        :param options: ``style``: the hidden style to use (``0 .. 3``), else drawn uniformly
        """
        options = options or {}
        unknown = set(options) - {"style"}
        if unknown:
            raise ValueError(f"Unknown reset options {sorted(unknown)}; allowed: 'style'.")
        style = options.get("style")
        self._requested_style = None if style is None else self._check_style(style)
        return super().reset(seed=seed, options=options)

    def reset_model(self) -> np.ndarray:
        # The style is always drawn first (one integer), so that a requested style leaves the random stream, the path
        # and the start pose exactly as they would be with any other style
        drawn = int(self.np_random.integers(len(STYLES)))
        self._style = drawn if self._requested_style is None else self._requested_style
        self._draw_references()
        noise = self.start_noise
        qpos = self.init_qpos + self.np_random.uniform(-noise, noise, self.model.nq)
        qvel = self.init_qvel + self.np_random.uniform(-noise, noise, self.model.nv)
        self.set_state(qpos, qvel)
        self._t = 0
        self._failed = False
        self._update_target_marker()
        return self._get_obs()

    def _get_reset_info(self) -> dict[str, Any]:
        return {"style": self._style, "tracking_error": self.tracking_errors(self.data.qpos)[0]}

    # MujocoEnv annotates step with float64 observations and float64 info values; these are float32 and mixed
    def step(self, action: np.ndarray) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:  # type: ignore[override]
        """Joint position targets in ``[-1, 1]`` for one control step; the reward and failure use the hidden reference."""
        action = np.clip(np.asarray(action, dtype=np.float64).reshape(self.model.nu), -1.0, 1.0)
        self.do_simulation(action * self._ctrl_scale, self.frame_skip)
        self._t = min(self._t + 1, self.episode_steps)
        mean_abs_error, mean_squared_error = self.tracking_errors(self.data.qpos)
        ctrl_cost = self.ctrl_cost_weight * float(np.sum(action**2))
        reward = self.tracking_reward(mean_squared_error) - ctrl_cost
        if self._t > self.grace_steps and mean_abs_error > self.fail_threshold:
            self._failed = True
        terminated = self._failed and self.terminate_on_failure
        truncated = not terminated and self._t >= self.episode_steps
        info: dict[str, Any] = {
            "style": self._style,
            "tracking_error": mean_abs_error,
            "tracking_reward": reward + ctrl_cost,
            "ctrl_cost": ctrl_cost,
            "failed": self._failed,
        }
        if terminated or truncated:
            info["success"] = info["is_success"] = not self._failed
        self._update_target_marker()
        if self.render_mode == "human":
            self.render()
        return self._get_obs(), reward, terminated, truncated, info

    def _update_target_marker(self) -> None:
        self.data.mocap_pos[0, :2] = self._ee_ref[self._t]

    def _get_obs(self) -> np.ndarray:
        last = self._ee_ref.shape[0] - 1
        indices = [min(self._t + step, last) for step in self.lookahead]
        parts = [
            self.data.qpos / np.pi,
            self.data.qvel * _QVEL_SCALE,
            self.data.site_xpos[self._ee_site, :2],
            [self._t / self.episode_steps],
            self._ee_ref[indices].ravel(),
        ]
        if self.conditioning in ("partial", "full"):
            parts.append(self._phi_ref[self._style, indices] / np.pi)
        if self.conditioning == "full":
            parts.append(self._q_ref[self._style, indices].ravel() / np.pi)
        obs = np.concatenate([np.asarray(part, dtype=np.float64).ravel() for part in parts])
        return np.clip(obs, -_OBS_BOUND, _OBS_BOUND).astype(np.float32)


def ambiguous_observation(conditioning: str = "minimal", seed: int = 0, **env_kwargs: Any) -> np.ndarray:
    """
    Observation at reset for a fixed seed: at ``minimal`` (and ``partial``) several styles fit it, so a policy's
    action samples there show whether it keeps several right answers (compare them with :func:`ambiguous_actions`).

    :param conditioning: the observation's conditioning level
    :param seed: the reset seed
    :param env_kwargs: other :class:`ArmTrackingEnv` arguments
    """
    env = ArmTrackingEnv(conditioning=conditioning, **env_kwargs)
    obs, _ = env.reset(seed=seed)
    env.close()
    return obs


def ambiguous_actions(seed: int = 0, lead: int = 1, **env_kwargs: Any) -> np.ndarray:
    """
    The four right answers at :func:`ambiguous_observation`'s state: each style's :meth:`ArmTrackingEnv.reference_action`,
    shape ``(4, 3)``, rows in ``STYLES`` order.

    :param seed: the reset seed
    :param lead: reference steps ahead commanded by the actions
    :param env_kwargs: other :class:`ArmTrackingEnv` arguments (``conditioning`` does not change the answers)
    """
    env = ArmTrackingEnv(**env_kwargs)
    env.reset(seed=seed)
    actions = env.style_actions(lead)
    env.close()
    return actions


def make_arm_tracking(conditioning: str = "full", **env_kwargs: Any) -> gym.Env:
    """``gym.make("ArmTracking-v0", conditioning=conditioning, **env_kwargs)``."""
    return gym.make("ArmTracking-v0", conditioning=conditioning, **env_kwargs)
