"""
DeepMind Control Suite tasks as SB3 vectorised environments with flat observations.

Two backends give the same task (the FPO paper's Table 1 suite or any other ``domain-task`` of the suite):

* ``dm_control``: dm_control's own task definitions through Shimmy's Gymnasium bindings (the reference; the ``dmc``
  extra: ``pip install "sb3_fpo[dmc]"``), one ``gymnasium.Env`` per env in a ``DummyVecEnv``;
* ``envpool``: envpool's C++ ports of the same tasks (``pip install envpool``), several times faster per core.
  Its observations carry keys the dm_control task does not have (``finger-spin`` has ``target_position``), so only
  dm_control's keys are kept, in dm_control's order: a policy trained on one backend acts on the other.

Episodes are 1000 control steps, with no action repeat; the time limit is a truncation (SB3 bootstraps the value).
Observations are the task's observation dict flattened in dm_control's key order, as ``float32``; actions lie in
the task's Box (``[-1, 1]`` for every task of the suite)::

    from sb3_fpo import FPO
    from sb3_fpo.envs.dmc import make_dmc_vec_env

    env = make_dmc_vec_env("finger-spin", n_envs=8, seed=0, backend="dm_control")
    FPO("MlpPolicy", env).learn(100_000)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial
from typing import Any, Literal

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecMonitor
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn

Backend = Literal["dm_control", "envpool"]

#: The ten tasks of the FPO paper's Table 1 (dm_control ``domain-task`` names)
PAPER_TASKS = (
    "ball_in_cup-catch",
    "cartpole-balance",
    "cheetah-run",
    "finger-spin",
    "finger-turn_easy",
    "finger-turn_hard",
    "fish-swim",
    "point_mass-easy",
    "reacher-easy",
    "reacher-hard",
)

#: Control steps per episode of every suite task
EPISODE_STEPS = 1000

#: dm_control's observation keys of the Table 1 tasks, in its order (checked against dm_control by the tests)
OBSERVATION_KEYS: dict[str, tuple[str, ...]] = {
    "ball_in_cup-catch": ("position", "velocity"),
    "cartpole-balance": ("position", "velocity"),
    "cheetah-run": ("position", "velocity"),
    "finger-spin": ("position", "velocity", "touch"),
    "finger-turn_easy": ("position", "velocity", "touch", "target_position", "dist_to_target"),
    "finger-turn_hard": ("position", "velocity", "touch", "target_position", "dist_to_target"),
    "fish-swim": ("joint_angles", "upright", "target", "velocity"),
    "point_mass-easy": ("position", "velocity"),
    "reacher-easy": ("position", "to_target", "velocity"),
    "reacher-hard": ("position", "to_target", "velocity"),
}


def split_name(name: str) -> tuple[str, str]:
    """``"finger-turn_hard"`` -> ``("finger", "turn_hard")``, with a clear error for anything else."""
    domain, sep, task = name.partition("-")
    if not sep or not domain or not task:
        raise ValueError(f"DM Control tasks are named 'domain-task', e.g. 'finger-turn_hard'; got {name!r}.")
    return domain, task


def is_dmc_name(name: str) -> bool:
    """Whether ``name`` looks like a dm_control ``domain-task`` name rather than a Gymnasium id (``Name-vN``)."""
    domain, sep, task = name.partition("-")
    return bool(sep) and domain.islower() and not (task.startswith("v") and task[1:].isdigit())


def envpool_id(name: str) -> str:
    """envpool's id of a suite task: ``"ball_in_cup-catch"`` -> ``"BallInCupCatch-v1"``."""
    domain, task = split_name(name)
    words = domain.split("_") + task.split("_")
    return "".join(word.capitalize() for word in words) + "-v1"


def _flatten(observation: dict[str, Any], keys: Sequence[str], batch: tuple[int, ...]) -> np.ndarray:
    parts = [np.asarray(observation[key], dtype=np.float32).reshape(*batch, -1) for key in keys]
    return np.concatenate(parts, axis=-1)


def _flat_space(dict_space: Any, keys: Sequence[str]) -> spaces.Box:
    """The unbounded float32 Box of the observation dict's ``keys`` flattened and concatenated."""
    size = sum(math.prod(dict_space[key].shape or ()) for key in keys)
    return spaces.Box(-np.inf, np.inf, (size,), np.float32)


class FlatDMControl(gym.ObservationWrapper):
    """A Shimmy dm_control env with its observation dict flattened in dm_control's key order, as ``float32``."""

    def __init__(self, env: gym.Env, keys: Sequence[str]):
        super().__init__(env)
        assert isinstance(env.observation_space, spaces.Dict)
        self.keys = tuple(keys)
        self.observation_space = _flat_space(env.observation_space, self.keys)

    def observation(self, observation: dict[str, Any]) -> np.ndarray:
        """dm_control's observation dict as one float32 vector, its keys in dm_control's order."""
        return _flatten(observation, self.keys, ())


def observation_keys(name: str) -> tuple[str, ...]:
    """dm_control's observation keys of a task (known for the Table 1 tasks, else read from dm_control)."""
    if name in OBSERVATION_KEYS:
        return OBSERVATION_KEYS[name]
    from dm_control import suite

    return tuple(suite.load(*split_name(name)).observation_spec())


def make_dmc_env(name: str, seed: int | None = None) -> gym.Env:
    """One suite task through Shimmy (dm_control's own definition), flat ``float32`` observations."""
    try:
        import shimmy  # noqa: F401  (registers the dm_control/ ids)
    except ImportError as error:
        raise ImportError('The dm_control backend needs the dmc extra: pip install "sb3_fpo[dmc]"') from error
    domain, task = split_name(name)
    env = gym.make(f"dm_control/{domain}-{task}-v0", task_kwargs=None if seed is None else {"random": seed})
    return FlatDMControl(env, observation_keys(name))


class EnvpoolDMControl(VecEnv):
    """
    envpool's port of a suite task as an SB3 ``VecEnv``: flat observations in dm_control's key order, and SB3's
    reset convention (an env whose episode ends is reset in the same ``step``; its last observation goes to
    ``info["terminal_observation"]``, a time limit sets ``info["TimeLimit.truncated"]``), instead of envpool's reset
    on the next step.

    :param name: the task, ``domain-task``
    :param n_envs: number of environments
    :param seed: seed of the first env (envpool seeds env ``i`` with ``seed + i``)
    :param num_threads: envpool's worker threads (1: one core, as the benchmarks run)
    """

    def __init__(self, name: str, n_envs: int, seed: int = 0, num_threads: int = 1):
        try:
            import envpool
        except ImportError as error:
            raise ImportError("The envpool backend needs envpool: pip install envpool") from error
        self.name = name
        self.keys = observation_keys(name)
        self._pool = envpool.make_gymnasium(
            envpool_id(name), num_envs=n_envs, seed=seed, num_threads=num_threads, max_episode_steps=EPISODE_STEPS
        )
        observation_space = _flat_space(self._pool.observation_space, self.keys)
        pool_actions = self._pool.action_space
        action_space = spaces.Box(pool_actions.low.astype(np.float32), pool_actions.high.astype(np.float32))
        super().__init__(n_envs, observation_space, action_space)
        self._actions: np.ndarray | None = None

    def reset(self) -> VecEnvObs:
        observation, _ = self._pool.reset()
        return _flatten(observation, self.keys, (self.num_envs,))

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions, dtype=np.float64).reshape(self.num_envs, -1)

    def step_wait(self) -> VecEnvStepReturn:
        assert self._actions is not None
        observation, rewards, terminated, truncated, info = self._pool.step(self._actions)
        order = np.argsort(info["env_id"])  # envpool answers in env_id order when all envs step together
        observations = _flatten(observation, self.keys, (self.num_envs,))[order]
        terminated, truncated, rewards = terminated[order], truncated[order], rewards[order]
        dones = terminated | truncated
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        done_ids = np.flatnonzero(dones)
        if len(done_ids):
            for i in done_ids:
                infos[i]["terminal_observation"] = observations[i].copy()
                infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
            reset_observation, reset_info = self._pool.reset(done_ids.astype(np.int32))
            fresh = _flatten(reset_observation, self.keys, (len(done_ids),))
            observations[reset_info["env_id"]] = fresh
        return observations, rewards.astype(np.float32), dones, infos

    def close(self) -> None:
        self._pool.close()

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        if attr_name == "render_mode":
            return [None] * len(list(self._get_indices(indices)))
        raise AttributeError(f"EnvpoolDMControl has no per-env attribute {attr_name!r}.")

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        raise AttributeError(f"EnvpoolDMControl cannot set the per-env attribute {attr_name!r}.")

    def env_method(self, method_name: str, *method_args: Any, indices: Any = None, **method_kwargs: Any) -> list[Any]:
        raise AttributeError(f"EnvpoolDMControl has no per-env method {method_name!r}.")

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: Any = None) -> list[bool]:
        return [False] * len(list(self._get_indices(indices)))

    def seed(self, seed: int | None = None) -> Sequence[int | None]:  # type: ignore[override]
        """No effect: envpool seeds its envs once, when created (``seed``). SB3 calls this when a model is seeded."""
        return [None] * self.num_envs


def make_dmc_vec_env(name: str, n_envs: int = 1, seed: int = 0, backend: Backend = "dm_control") -> VecEnv:
    """
    A suite task as an SB3 ``VecEnv`` of ``n_envs`` envs with flat ``float32`` observations.

    :param name: ``domain-task``, e.g. ``"finger-turn_hard"``
    :param n_envs: number of environments
    :param seed: env ``i`` is seeded with ``seed + i`` (its task's random initial states)
    :param backend: ``dm_control`` (Shimmy, the reference) or ``envpool`` (its C++ port, faster)
    """
    split_name(name)
    env: VecEnv
    if backend == "envpool":
        env = EnvpoolDMControl(name, n_envs, seed)
    elif backend == "dm_control":
        env = DummyVecEnv([partial(make_dmc_env, name, seed + i) for i in range(n_envs)])
    else:
        raise ValueError(f"Unknown DM Control backend {backend!r}. Allowed values: 'dm_control', 'envpool'.")
    return VecMonitor(env)  # episode returns and lengths for SB3's logger and evaluate_policy
