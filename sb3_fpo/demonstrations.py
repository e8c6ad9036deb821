"""
Demonstrations for behaviour cloning: a recorder, and a reader of arrays or Minari datasets.

A flow policy has no closed-form likelihood, so SB3-era behaviour cloning (maximum Gaussian likelihood) does not
apply to it; :meth:`sb3_fpo.FPO.pretrain` fits it by conditional flow matching instead, the same loss as FPO's
training, which keeps multimodal demonstrations multimodal. This module gets the demonstrations to it::

    from sb3_fpo import FPO
    from sb3_fpo.demonstrations import record_demonstrations

    expert = FPO.load("expert")  # or any SB3 model, or a callable obs -> action
    demos = record_demonstrations(expert, "Pendulum-v1", n_episodes=20, dataset_id="pendulum/expert-v0")
    student = FPO("MlpPolicy", "Pendulum-v1")
    student.pretrain(demos)  # or student.pretrain(minari.load_dataset("pendulum/expert-v0"))

Observations are stored raw (as the env returns them) unless ``normalized=True`` is asked for, which stores them as
the expert's ``VecNormalize`` statistics normalise them; :class:`Demonstrations` says which.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np

_MINARI_KEYS = ("observations", "actions", "rewards", "terminations", "truncations")


@dataclasses.dataclass
class Demonstrations:
    """
    Transitions of whole episodes, in order.

    :param observations: shape ``(T, *obs_shape)``, or for a ``Dict`` observation space a dict of such arrays
    :param actions: shape ``(T, *action_shape)``
    :param rewards: shape ``(T,)``, or ``None`` (then no critic can be fitted)
    :param episode_starts: shape ``(T,)``, True at the first transition of each episode
    :param terminated: shape ``(T,)``, True at the last transition of an episode that ended in a terminal state (its
        return ends there); False elsewhere, also at a time limit (that return is cut short). Kept for the record:
        ``pretrain`` fits the critic to Monte-Carlo returns without a bootstrap, so the targets of the last steps
        before a time limit are biased low (by at most ``gamma^k`` times the return beyond the limit, ``k`` steps
        ahead)
    :param normalized: whether the observations are already normalised by the model's ``VecNormalize``
    """

    observations: np.ndarray | dict[str, np.ndarray]
    actions: np.ndarray
    rewards: np.ndarray | None = None
    episode_starts: np.ndarray | None = None
    terminated: np.ndarray | None = None
    normalized: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.observations, Mapping):
            self.observations = {key: np.asarray(value) for key, value in self.observations.items()}
            lengths = {len(value) for value in self.observations.values()}
            if len(lengths) != 1:
                raise ValueError(f"Every observation key needs one entry per transition, got lengths {sorted(lengths)}.")
        else:
            self.observations = np.asarray(self.observations)
        self.actions = np.asarray(self.actions, dtype=np.float32)
        n = self._rows()
        if len(self.actions) != n:
            raise ValueError(f"{n} observations but {len(self.actions)} actions: one action per observation is needed.")
        if self.episode_starts is None:
            self.episode_starts = np.zeros(n, dtype=bool)
            if n:
                self.episode_starts[0] = True  # one episode
        if self.terminated is None:
            self.terminated = np.zeros(n, dtype=bool)
        for name in ("rewards", "episode_starts", "terminated"):
            value = getattr(self, name)
            if value is not None:
                value = np.asarray(value, dtype=np.float32 if name == "rewards" else bool).reshape(-1)
                if len(value) != n:
                    raise ValueError(f"{name} has {len(value)} entries for {n} transitions.")
                setattr(self, name, value)

    def _rows(self) -> int:
        if isinstance(self.observations, Mapping):
            return len(next(iter(self.observations.values())))
        return len(self.observations)

    def __len__(self) -> int:
        return self._rows()


def as_demonstrations(data: Any) -> Demonstrations:
    """
    Demonstrations from what :meth:`sb3_fpo.FPO.pretrain` accepts: :class:`Demonstrations`, a tuple
    ``(observations, actions)`` or ``(observations, actions, rewards[, episode_starts])`` of arrays (one episode if no
    starts are given), or a Minari dataset (``minari.MinariDataset``).
    """
    if isinstance(data, Demonstrations):
        return data
    if isinstance(data, tuple):
        if not 2 <= len(data) <= 4:
            raise ValueError(
                f"Demonstrations as a tuple are (observations, actions[, rewards[, episode_starts]]), got {len(data)} items."
            )
        return Demonstrations(*data)
    if hasattr(data, "iterate_episodes"):
        return from_minari(data)
    raise TypeError(
        f"Cannot read demonstrations from {type(data).__name__}: pass (observations, actions) arrays, "
        "sb3_fpo.demonstrations.Demonstrations or a minari.MinariDataset."
    )


def from_minari(dataset: Any) -> Demonstrations:
    """The transitions of every episode of a Minari dataset (its observations hold one more entry than its actions)."""
    observations, actions, rewards, starts, terminated = [], [], [], [], []
    for episode in dataset.iterate_episodes():
        if isinstance(episode.observations, dict):
            raise ValueError("Dict observations in Minari datasets are not supported by the reader yet.")
        length = len(episode.actions)
        observations.append(np.asarray(episode.observations)[:length])
        actions.append(np.asarray(episode.actions))
        rewards.append(np.asarray(episode.rewards, dtype=np.float32))
        episode_starts = np.zeros(length, dtype=bool)
        episode_starts[0] = True
        starts.append(episode_starts)
        terminated.append(np.asarray(episode.terminations, dtype=bool))
    if not observations:
        raise ValueError("The Minari dataset holds no episode.")
    return Demonstrations(
        np.concatenate(observations),
        np.concatenate(actions),
        np.concatenate(rewards),
        np.concatenate(starts),
        np.concatenate(terminated),
    )


def discounted_returns(rewards: np.ndarray, episode_starts: np.ndarray, gamma: float) -> np.ndarray:
    """Monte-Carlo discounted return from every transition to the end of its episode (no bootstrap)."""
    returns = np.zeros(len(rewards), dtype=np.float64)
    future = 0.0
    for t in reversed(range(len(rewards))):
        next_is_start = t + 1 == len(rewards) or episode_starts[t + 1]
        future = rewards[t] + (0.0 if next_is_start else gamma * future)
        returns[t] = future
    return returns.astype(np.float32)


def running_returns(rewards: np.ndarray, episode_starts: np.ndarray, gamma: float) -> np.ndarray:
    """
    The running discounted return ``R_t = r_t + gamma R_{t-1}`` (0 before each episode's first transition) that
    SB3's ``VecNormalize`` tracks to scale rewards: a return accumulated forward in time, not the return to go.
    """
    running = 0.0
    returns = np.empty(len(rewards), dtype=np.float64)
    for t, reward in enumerate(rewards):
        running = reward + (0.0 if episode_starts[t] else gamma * running)
        returns[t] = running
    return returns


def record_demonstrations(
    policy: Any,
    env: str | gym.Env,
    n_episodes: int,
    deterministic: bool = True,
    seed: int | None = 0,
    normalized: bool = False,
    dataset_id: str | None = None,
) -> Demonstrations:
    """
    Play ``n_episodes`` episodes of a policy and record them.

    :param policy: an SB3 model (its ``predict``; a model trained with ``VecNormalize`` acts on observations
        normalised with its statistics, ``model.get_vec_normalize_env()``, frozen) or a callable ``obs -> action``
    :param env: an env id or a single ``gym.Env`` (not a VecEnv); the recorder owns an env it makes
    :param n_episodes: episodes to record
    :param deterministic: ``predict(deterministic=...)``. For a clone that FPO will fine-tune, record the sampled
        actions (``False``): a flow cloned from mean actions is nearly deterministic and its first FPO updates
        break it (Hopper-v5: 933 -> 282 in 200k steps, against +33% for clones of sampled actions)
    :param seed: seeds the first reset (the next episodes follow the env's random stream)
    :param normalized: store the normalised observations the model saw instead of the raw ones
    :param dataset_id: also write a Minari dataset with this id (raw observations only; Minari's local storage,
        ``MINARI_DATASETS_PATH``); load it back with ``minari.load_dataset(dataset_id)``
    :return: the recorded transitions
    """
    if n_episodes < 1:
        raise ValueError(f"n_episodes must be >= 1, got {n_episodes}.")
    if normalized and dataset_id is not None:
        raise ValueError("A Minari dataset stores the env's raw observations: record it with normalized=False.")
    act, normalize = actor(policy, deterministic)
    if normalized and normalize is None:
        raise ValueError("normalized=True needs a model trained with VecNormalize (model.get_vec_normalize_env()).")
    owned = isinstance(env, str)
    gym_env = gym.make(env) if isinstance(env, str) else env
    observations, actions, rewards, starts, terminated = [], [], [], [], []
    episodes: list[dict[str, Any]] = []  # for Minari: each episode's observations hold its last one too
    try:
        for episode in range(n_episodes):
            obs, _ = gym_env.reset(seed=seed if episode == 0 else None)
            record: dict[str, Any] = {
                "observations": [obs],
                "actions": [],
                "rewards": [],
                "terminations": [],
                "truncations": [],
            }
            done, first = False, True
            while not done:
                seen = normalize(obs) if normalize is not None else obs
                action = np.asarray(act(seen), dtype=np.float32)
                next_obs, reward, term, trunc, _ = gym_env.step(action)
                observations.append(seen if normalized else obs)
                actions.append(action)
                rewards.append(float(reward))
                starts.append(first)
                terminated.append(bool(term))
                for key, value in zip(_MINARI_KEYS, (next_obs, action, float(reward), bool(term), bool(trunc))):
                    record[key].append(value)
                obs, first, done = next_obs, False, bool(term or trunc)
            episodes.append(record)
        if dataset_id is not None:
            _write_minari(dataset_id, episodes, gym_env, type(policy).__name__)
    finally:
        if owned:
            gym_env.close()
    arrays = (np.asarray(actions), np.asarray(rewards), np.asarray(starts), np.asarray(terminated))
    return Demonstrations(_stack(observations), *arrays, normalized=normalized)


def _stack(observations: list[Any]) -> np.ndarray | dict[str, np.ndarray]:
    """One array of the recorded observations, or one per key of Dict observations."""
    if observations and isinstance(observations[0], Mapping):
        return {key: np.asarray([obs[key] for obs in observations]) for key in observations[0]}
    return np.asarray(observations)


def _write_minari(dataset_id: str, episodes: list[dict[str, Any]], env: gym.Env, algorithm_name: str) -> None:
    """Write recorded episodes as a Minari dataset (from episode buffers: Minari's collector would need jax)."""
    from minari import create_dataset_from_buffers
    from minari.data_collector import EpisodeBuffer

    buffers = [
        EpisodeBuffer(
            id=i,
            observations=np.asarray(e["observations"]),
            actions=np.asarray(e["actions"]),
            **{key: e[key] for key in ("rewards", "terminations", "truncations")},
        )
        for i, e in enumerate(episodes)
    ]
    create_dataset_from_buffers(
        dataset_id,
        buffers,
        env=env.spec,
        algorithm_name=algorithm_name,
        description="Recorded with sb3_fpo.demonstrations.record_demonstrations",
        action_space=env.action_space,
        observation_space=env.observation_space,
    )


def actor(policy: Any, deterministic: bool) -> tuple[Callable[[Any], np.ndarray], Callable[[Any], Any] | None]:
    """``obs -> action`` of one (unbatched) observation, and the observation normaliser of the model, if any."""
    if hasattr(policy, "predict"):
        vec_normalize = policy.get_vec_normalize_env() if hasattr(policy, "get_vec_normalize_env") else None
        normalize = vec_normalize.normalize_obs if vec_normalize is not None else None
        return (lambda obs: policy.predict(obs, deterministic=deterministic)[0]), normalize
    if callable(policy):
        return (lambda obs: np.asarray(policy(obs))), None
    raise TypeError(f"{type(policy).__name__} has no predict() method and is not callable.")
