"""MuJoCo v5 envs run under FPO with the installed mujoco (the `mujoco` extra puts no upper bound on it)."""

import numpy as np
import pytest
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize

from sb3_fpo import FPO

mujoco = pytest.importorskip("mujoco")


@pytest.mark.parametrize("env_id", ["Hopper-v5", "HalfCheetah-v5"])
def test_fpo_trains_and_acts_on_a_mujoco_env(env_id):
    env = VecNormalize(make_vec_env(env_id, n_envs=2, seed=0))
    model = FPO("MlpPolicy", env, n_steps=64, batch_size=64, n_epochs=1, seed=0)
    model.learn(256)
    assert model.num_timesteps == 256
    obs = env.reset()
    action, _ = model.predict(obs, deterministic=True)
    assert action.shape == (2, *env.action_space.shape) and np.isfinite(action).all()
    _, rewards, _, _ = env.step(action)
    assert np.isfinite(rewards).all()
