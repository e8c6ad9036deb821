"""Behaviour cloning into a flow policy (FPO.pretrain) and the demonstrations recorder / reader."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from conftest import TargetEnv
from gymnasium import spaces
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import VecNormalize

from sb3_fpo import FPO
from sb3_fpo.demonstrations import (
    Demonstrations,
    as_demonstrations,
    discounted_returns,
    record_demonstrations,
    running_returns,
)
from sb3_fpo.diagnostics import mode_fractions, sample_raw_actions

SMALL_NET = dict(velocity_net_arch=[64, 64], flow_steps=10)


class AmbiguousEnv(gym.Env):
    """One observation (0), one action dimension: the demonstrations' two answers are -0.7 and +0.7."""

    observation_space = spaces.Box(-1.0, 1.0, (1,), dtype=np.float32)
    action_space = spaces.Box(-1.0, 1.0, (1,), dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(1, dtype=np.float32), {}

    def step(self, action):
        return np.zeros(1, dtype=np.float32), 0.0, False, True, {}


def copy_expert_demos(n: int = 3000, seed: int = 0) -> Demonstrations:
    """TargetEnv's expert copies the observed target: action = observation."""
    obs = np.random.default_rng(seed).uniform(-1, 1, (n, 2)).astype(np.float32)
    return Demonstrations(obs, obs.copy())


def test_deterministic_expert_is_cloned_accurately():
    model = FPO("MlpPolicy", TargetEnv(), seed=0, policy_kwargs=SMALL_NET)
    history = model.pretrain(copy_expert_demos(), n_epochs=60, batch_size=128, learning_rate=3e-3, seed=0)
    test_obs = np.random.default_rng(1).uniform(-0.9, 0.9, (200, 2)).astype(np.float32)
    predicted, _ = model.predict(test_obs, deterministic=True)
    error = np.abs(predicted - test_obs).mean()
    assert error < 0.05, error
    assert history["val_cfm_loss"][-1] < history["val_cfm_loss"][0]
    assert np.isnan(history["value_loss"]).all()  # no rewards, no critic fit


def test_squashed_policy_clones_actions_given_in_the_env_units():
    # Pendulum's torque is in [-2, 2]; the squashed policy stores tanh-squashed actions in [-1, 1] and
    # pretrain rescales the demonstrated torques to them: predict() gives the torques back.
    env = gym.make("Pendulum-v1")
    model = FPO("MlpPolicy", env, seed=0, policy_kwargs={**SMALL_NET, "squash_output": True})
    obs = np.random.default_rng(0).uniform(-1, 1, (3000, 3)).astype(np.float32)
    torques = 1.8 * obs[:, :1]  # inside the bounds, up to 0.9 of them
    model.pretrain((obs, torques), n_epochs=60, batch_size=128, learning_rate=3e-3, seed=0)
    test_obs = np.random.default_rng(1).uniform(-0.9, 0.9, (200, 3)).astype(np.float32)
    predicted, _ = model.predict(test_obs, deterministic=True)
    error = np.abs(predicted - 1.8 * test_obs[:, :1]).mean()
    assert error < 0.1, error


def test_bimodal_demonstrations_stay_bimodal():
    rng = np.random.default_rng(0)
    actions = np.where(rng.random(4000) < 0.5, -0.7, 0.7).astype(np.float32)[:, None]
    model = FPO("MlpPolicy", AmbiguousEnv(), seed=0, policy_kwargs=SMALL_NET)
    model.pretrain((np.zeros((4000, 1), dtype=np.float32), actions), n_epochs=40, learning_rate=3e-3, seed=0)
    samples = sample_raw_actions(model, np.zeros((1, 1), dtype=np.float32), k=2000, seed=0)[0, :, 0]
    shares = mode_fractions(samples)
    assert min(shares.values()) >= 0.3, shares  # both modes kept (a Gaussian fit by likelihood would put its mean at 0)
    near_a_mode = np.minimum(np.abs(samples - 0.7), np.abs(samples + 0.7)) < 0.25
    assert near_a_mode.mean() > 0.8


def test_early_stopping_logging_and_save_load(tmp_path):
    model = FPO("MlpPolicy", TargetEnv(), seed=0, policy_kwargs=SMALL_NET)
    model.set_logger(configure(str(tmp_path / "log"), ["csv"]))
    history = model.pretrain(copy_expert_demos(400), n_epochs=500, batch_size=64, patience=2, seed=0)
    assert len(history["train_cfm_loss"]) < 500  # stopped on the validation loss
    best = min(history["val_cfm_loss"])
    log = (tmp_path / "log" / "progress.csv").read_text()
    assert "pretrain/train_cfm_loss" in log and "pretrain/val_cfm_loss" in log
    obs = np.full((1, 2), 0.4, dtype=np.float32)
    before = model.predict(obs, deterministic=True)[0]
    model.save(tmp_path / "cloned")
    assert np.array_equal(FPO.load(tmp_path / "cloned").predict(obs, deterministic=True)[0], before)
    # the best weights are kept: their validation loss is the best seen
    model2 = FPO("MlpPolicy", TargetEnv(), seed=0, policy_kwargs=SMALL_NET)
    model2.set_logger(configure(None, []))
    again = model2.pretrain(copy_expert_demos(400), n_epochs=len(history["val_cfm_loss"]), batch_size=64, patience=2, seed=0)
    assert min(again["val_cfm_loss"]) == pytest.approx(best)
    model.learn(64)  # RL continues from the clone


def test_critic_fitted_to_discounted_returns():
    n = 2000
    obs = np.random.default_rng(0).uniform(-1, 1, (n, 2)).astype(np.float32)
    starts = np.zeros(n, dtype=bool)
    starts[::5] = True  # episodes of 5 steps, reward 1 per step
    demos = Demonstrations(obs, obs.copy(), np.ones(n, dtype=np.float32), starts)
    model = FPO("MlpPolicy", TargetEnv(), seed=0, gamma=0.5, policy_kwargs=SMALL_NET)
    history = model.pretrain(demos, n_epochs=30, learning_rate=3e-3, seed=0)
    assert history["value_loss"][-1] < 0.1 * history["value_loss"][0]
    returns = discounted_returns(demos.rewards, starts, 0.5)
    assert returns[:5] == pytest.approx([1.9375, 1.875, 1.75, 1.5, 1.0])


def test_vecnormalize_statistics_fitted_from_the_demonstrations_when_fresh():
    demos = copy_expert_demos(2000)
    demos.observations = 3.0 + 2.0 * demos.observations  # mean 3, std ~1.15
    env = VecNormalize(make_vec_env(TargetEnv, n_envs=1, seed=0), norm_reward=False)
    model = FPO("MlpPolicy", env, seed=0, policy_kwargs=SMALL_NET)
    model.pretrain(demos, n_epochs=1, seed=0)
    assert env.obs_rms.mean == pytest.approx([3.0, 3.0], abs=0.1)
    fitted = env.obs_rms.mean.copy()
    model.pretrain(demos, n_epochs=1, seed=0)
    assert np.array_equal(env.obs_rms.mean, fitted)  # not refitted once they hold data
    normalized = Demonstrations(env.normalize_obs(demos.observations), demos.actions, normalized=True)
    model.pretrain(normalized, n_epochs=1, seed=0)
    plain = FPO("MlpPolicy", TargetEnv(), seed=0)
    with pytest.raises(ValueError, match="no VecNormalize"):
        plain.pretrain(normalized, n_epochs=1)


def test_bad_demonstrations_are_refused():
    model = FPO("MlpPolicy", TargetEnv(), seed=0)
    obs = np.zeros((10, 2), dtype=np.float32)
    with pytest.raises(ValueError, match="shape"):
        model.pretrain((np.zeros((10, 3), dtype=np.float32), obs))
    with pytest.raises(ValueError, match="2 dimensions"):
        model.pretrain((obs, np.zeros((10, 3), dtype=np.float32)))
    with pytest.raises(ValueError, match="NaN"):
        model.pretrain((np.full((10, 2), np.nan, dtype=np.float32), obs))
    with pytest.raises(ValueError, match="one action per observation"):
        model.pretrain((obs, obs[:5]))
    with pytest.raises(ValueError, match="needs demonstrations with rewards"):
        model.pretrain((obs, obs), fit_critic=True)
    with pytest.raises(TypeError, match="Cannot read"):
        as_demonstrations([obs, obs])


def test_record_demonstrations_of_a_callable_and_a_model():
    demos = record_demonstrations(lambda obs: obs, TargetEnv(ep_length=5), n_episodes=3)
    assert len(demos) == 15 and demos.episode_starts.sum() == 3 and not demos.terminated.any()
    assert np.allclose(demos.actions, demos.observations)  # the copy expert
    model = FPO("MlpPolicy", VecNormalize(make_vec_env(TargetEnv, n_envs=1, seed=0)), n_steps=32, batch_size=32, seed=0)
    model.learn(64)
    raw = record_demonstrations(model, TargetEnv(), n_episodes=2)
    seen = record_demonstrations(model, TargetEnv(), n_episodes=2, normalized=True)
    assert not raw.normalized and seen.normalized
    assert np.allclose(model.get_vec_normalize_env().normalize_obs(raw.observations), seen.observations)
    with pytest.raises(ValueError, match="needs a model trained with VecNormalize"):
        record_demonstrations(lambda obs: obs, TargetEnv(), n_episodes=1, normalized=True)


def test_minari_dataset_round_trip(tmp_path, monkeypatch):
    minari = pytest.importorskip("minari")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    recorded = record_demonstrations(lambda obs: obs, TargetEnv(ep_length=5), n_episodes=4, dataset_id="target/copy-v0")
    dataset = minari.load_dataset("target/copy-v0")
    demos = as_demonstrations(dataset)
    assert len(demos) == len(recorded) == 20 and demos.episode_starts.sum() == 4
    assert np.allclose(demos.observations, recorded.observations) and np.allclose(demos.actions, recorded.actions)
    model = FPO("MlpPolicy", TargetEnv(), seed=0)
    model.pretrain(dataset, n_epochs=2, seed=0)
    assert th.isfinite(next(model.policy.parameters())).all()


def test_critic_warmup_trains_the_critic_only():
    model = FPO("MlpPolicy", TargetEnv(), n_steps=32, batch_size=32, seed=0, critic_warmup_steps=64)
    velocity = [p.detach().clone() for p in model.policy.velocity_net.parameters()]
    critic = [p.detach().clone() for p in model.policy.value_net.parameters()]
    model.learn(64)  # two updates, both at num_timesteps <= 64
    assert all(th.equal(a, b) for a, b in zip(velocity, model.policy.velocity_net.parameters()))
    assert not all(th.equal(a, b) for a, b in zip(critic, model.policy.value_net.parameters()))
    assert model.logger.name_to_value["train/critic_only"] == 1.0
    model.learn(32, reset_num_timesteps=False)  # past the warm-up: the policy moves
    assert not all(th.equal(a, b) for a, b in zip(velocity, model.policy.velocity_net.parameters()))
    with pytest.raises(ValueError, match="critic_warmup_steps"):
        FPO("MlpPolicy", TargetEnv(), critic_warmup_steps=-1)


def test_pretrain_leaves_the_logger_to_learn(tmp_path):
    # pretrain's own logger is not the user's: learn(tb_log_name=...) afterwards opens its own run directory
    pytest.importorskip("tensorboard")
    model = FPO("MlpPolicy", TargetEnv(), seed=0, tensorboard_log=str(tmp_path), policy_kwargs=SMALL_NET, n_steps=64)
    model.pretrain(copy_expert_demos(200), n_epochs=2, seed=0)
    model.learn(64, tb_log_name="finetune")
    assert (tmp_path / "finetune_1").is_dir()
    assert "finetune_1" in model.logger.dir
    # a logger the user set stays theirs through pretrain and learn
    user = FPO("MlpPolicy", TargetEnv(), seed=0, policy_kwargs=SMALL_NET, n_steps=64)
    mine = configure(str(tmp_path / "mine"), ["csv"])
    user.set_logger(mine)
    user.pretrain(copy_expert_demos(200), n_epochs=2, seed=0)
    user.learn(64)
    assert user.logger is mine


def test_pretrain_with_dict_observations_and_normalized_rewards():
    from stable_baselines3.common.envs import SimpleMultiObsEnv

    env = VecNormalize(
        make_vec_env(lambda: SimpleMultiObsEnv(discrete_actions=False), n_envs=1, seed=0), norm_obs_keys=["vec"]
    )
    model = FPO("MultiInputPolicy", env, seed=0, n_steps=64, policy_kwargs=SMALL_NET)
    expert = FPO("MultiInputPolicy", make_vec_env(lambda: SimpleMultiObsEnv(discrete_actions=False), n_envs=1), seed=1)
    demos = record_demonstrations(expert, SimpleMultiObsEnv(discrete_actions=False), n_episodes=3)
    assert isinstance(demos.observations, dict) and set(demos.observations) == {"img", "vec"}
    assert len(demos) == len(demos.actions) and demos.observations["img"].shape[1:] == (64, 64, 1)
    history = model.pretrain(demos, n_epochs=2, batch_size=32, seed=0)
    assert len(history["train_cfm_loss"]) == 2 and np.isfinite(history["value_loss"]).all()
    assert env.obs_rms["vec"].count > 1 and env.ret_rms.count > 1  # fitted from the demonstrations
    model.learn(64)
    with pytest.raises(ValueError, match="keys"):
        model.pretrain(Demonstrations({"vec": demos.observations["vec"]}, demos.actions), n_epochs=1)


def test_running_returns_are_what_vec_normalize_tracks():
    rewards = np.array([1.0, 2.0, 3.0, 4.0])
    starts = np.array([True, False, True, False])
    assert running_returns(rewards, starts, 0.5).tolist() == [1.0, 2.5, 3.0, 5.5]
    env = VecNormalize(make_vec_env(TargetEnv, n_envs=1), gamma=0.5)
    tracked = []
    env.returns = np.zeros(1)
    for reward, start in zip(rewards, starts):
        if start:
            env.returns[:] = 0.0
        env.returns = env.returns * env.gamma + reward  # VecNormalize._update_reward
        tracked.append(float(env.returns[0]))
    assert tracked == running_returns(rewards, starts, 0.5).tolist()


def test_normalized_demonstrations_with_fresh_statistics_warn():
    env = VecNormalize(make_vec_env(TargetEnv, n_envs=1, seed=0), norm_reward=False)
    model = FPO("MlpPolicy", env, seed=0, policy_kwargs=SMALL_NET)
    demos = copy_expert_demos(200)
    with pytest.warns(UserWarning, match="have seen no data"):
        model.pretrain(Demonstrations(demos.observations, demos.actions, normalized=True), n_epochs=1, seed=0)
