"""DM Control through dm_control (Shimmy) and envpool: names, flat observations, episodes, the same task."""

from __future__ import annotations

import numpy as np
import pytest

from sb3_fpo.envs.dmc import (
    EPISODE_STEPS,
    OBSERVATION_KEYS,
    PAPER_TASKS,
    envpool_id,
    is_dmc_name,
    make_dmc_vec_env,
    split_name,
)


def test_names():
    assert split_name("finger-turn_hard") == ("finger", "turn_hard")
    assert envpool_id("ball_in_cup-catch") == "BallInCupCatch-v1"
    assert envpool_id("point_mass-easy") == "PointMassEasy-v1"
    assert is_dmc_name("cheetah-run") and is_dmc_name("ball_in_cup-catch")
    assert not is_dmc_name("HalfCheetah-v5") and not is_dmc_name("Pendulum-v1") and not is_dmc_name("cartpole")
    for bad in ("cartpole", "-balance", "cartpole-"):
        with pytest.raises(ValueError, match="domain-task"):
            split_name(bad)
    with pytest.raises(ValueError, match="Unknown DM Control backend"):
        make_dmc_vec_env("cartpole-balance", backend="mujoco")  # type: ignore[arg-type]


def test_observation_keys_are_dm_controls():
    suite = pytest.importorskip("dm_control.suite")
    assert set(OBSERVATION_KEYS) == set(PAPER_TASKS)
    for name in PAPER_TASKS:
        assert tuple(suite.load(*split_name(name)).observation_spec()) == OBSERVATION_KEYS[name], name


def play(env, steps: int, action: float = 0.0):
    """Constant actions for ``steps`` steps: (observations, rewards, dones, infos) of every step."""
    env.reset()
    actions = np.full((env.num_envs, *env.action_space.shape), action, dtype=np.float32)
    return [env.step(actions) for _ in range(steps)]


@pytest.mark.parametrize("backend", ["dm_control", "envpool"])
def test_episodes_are_1000_steps_of_flat_float32_observations(backend):
    pytest.importorskip("shimmy" if backend == "dm_control" else "envpool")
    pytest.importorskip("dm_control")
    env = make_dmc_vec_env("cartpole-balance", n_envs=2, seed=0, backend=backend)
    assert env.observation_space.shape == (5,) and env.observation_space.dtype == np.float32
    assert env.action_space.shape == (1,) and np.all(env.action_space.high == 1.0)
    transitions = play(env, EPISODE_STEPS + 3)
    dones = np.array([done for _, _, done, _ in transitions])
    assert dones.shape == (EPISODE_STEPS + 3, 2)
    assert np.flatnonzero(dones[:, 0]).tolist() == [EPISODE_STEPS - 1] == np.flatnonzero(dones[:, 1]).tolist()
    obs, _, _, infos = transitions[EPISODE_STEPS - 1]
    assert obs.dtype == np.float32 and obs.shape == (2, 5)
    for info in infos:  # a time limit, SB3's convention: truncated, last observation kept, next episode started
        assert info["TimeLimit.truncated"] is True
        assert info["terminal_observation"].shape == (5,)
        assert not np.array_equal(info["terminal_observation"], obs[0])
        assert info["episode"]["l"] == EPISODE_STEPS  # VecMonitor


def test_both_backends_give_the_same_task():
    pytest.importorskip("shimmy")
    pytest.importorskip("envpool")
    returns = {}
    for backend in ("dm_control", "envpool"):
        env = make_dmc_vec_env("finger-spin", n_envs=1, seed=0, backend=backend)
        assert env.observation_space.shape == (9,)  # envpool's extra target_position key is dropped
        env.close()
        env = make_dmc_vec_env("cartpole-balance", n_envs=4, seed=0, backend=backend)
        rewards = np.array([reward for _, reward, _, _ in play(env, EPISODE_STEPS)])
        returns[backend] = rewards.sum(axis=0)
        assert np.all((rewards >= 0) & (rewards <= 1))
    # The pole falls under zero force from random initial states: ~750 per episode on both, within seed noise
    assert abs(returns["dm_control"].mean() - returns["envpool"].mean()) < 0.05 * returns["dm_control"].mean()


def test_fpo_trains_on_envpool_with_vec_normalize():
    pytest.importorskip("envpool")
    from stable_baselines3.common.vec_env import VecNormalize

    from sb3_fpo import FPO

    env = VecNormalize(make_dmc_vec_env("point_mass-easy", n_envs=2, seed=0, backend="envpool"))
    model = FPO("MlpPolicy", env, n_steps=32, batch_size=32, n_epochs=1, seed=0)
    model.learn(128)
    assert model.num_timesteps == 128
