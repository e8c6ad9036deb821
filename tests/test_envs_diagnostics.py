"""TwoGoal-v0 and the multimodality diagnostics (sb3_fpo.envs, sb3_fpo.diagnostics)."""

from __future__ import annotations

import copy
import types
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from conftest import SMALL
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3 import PPO
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.logger import configure

from sb3_fpo import FPO
from sb3_fpo.diagnostics import (
    SARLE_THRESHOLD,
    ActionHistogramCallback,
    action_mode_report,
    count_modes,
    kde_bandwidth,
    mode_fractions,
    plot_action_samples,
    sample_raw_actions,
    sarle_bimodality,
)
from sb3_fpo.envs import TwoGoalEnv
from sb3_fpo.envs.two_goal_diagnostics import goal_split, plot_trajectories
from sb3_fpo.flow import integrate

UP, DOWN, STAY = np.array([0.0, 1.0]), np.array([0.0, -1.0]), np.zeros(2)


# --------------------------------------------------------------------------------------------------
# TwoGoal-v0
# --------------------------------------------------------------------------------------------------


def test_env_passes_both_checkers():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no checker warning either
        gym_check_env(gym.make("TwoGoal-v0").unwrapped)  # made: with a spec, so that it also tests rendering
        gym_check_env(gym.make("TwoGoal-v0", render_mode="rgb_array").unwrapped)
        sb3_check_env(TwoGoalEnv(), warn=True)
    env = gym.make("TwoGoal-v0")
    assert env.spec is not None and env.spec.max_episode_steps == 100
    assert gym.make("sb3_fpo.envs:TwoGoal-v0", middle_start=True).unwrapped.middle_start


def test_env_render():
    env = TwoGoalEnv(render_mode="rgb_array", render_size=64)
    env.reset(seed=0, options={"start": (0.0, 0.0)})
    image = env.render()
    assert image is not None and image.shape == (64, 64, 3) and image.dtype == np.uint8
    assert TwoGoalEnv().render() is None


def rollout(env: gym.Env, seed: int, n: int = 30) -> np.ndarray:
    obs, _ = env.reset(seed=seed)
    actions = np.random.default_rng(0).uniform(-1, 1, (n, 2))
    trace = [obs]
    for action in actions:
        obs, _, terminated, truncated, _ = env.step(action)
        trace.append(obs)
        if terminated or truncated:
            obs, _ = env.reset()
            trace.append(obs)
    return np.array(trace)


def test_env_deterministic_under_seed():
    a, b = rollout(gym.make("TwoGoal-v0"), seed=3), rollout(gym.make("TwoGoal-v0"), seed=3)
    assert a.dtype == np.float32 and np.array_equal(a, b)
    assert not np.array_equal(a, rollout(gym.make("TwoGoal-v0"), seed=4))


def test_env_starts():
    env = TwoGoalEnv()
    starts = np.array([env.reset(seed=seed)[0] for seed in range(300)])
    assert np.all(np.abs(starts[:, 1]) < 0.8) and np.all(np.abs(starts[:, 0]) <= 1.0)
    assert starts[:, 1].max() > 0.6 and starts[:, 1].min() < -0.6  # the whole non-goal region
    middle = np.array([env.reset(seed=seed, options={"middle_start": True})[0] for seed in range(100)])
    assert np.all(np.abs(middle[:, 1]) < 0.1)
    env_middle = TwoGoalEnv(middle_start=True)
    assert all(abs(env_middle.reset(seed=seed)[0][1]) < 0.1 for seed in range(50))
    assert abs(env_middle.reset(seed=0, options={"middle_start": False})[0][1]) < 0.8
    obs, info = env.reset(options={"start": (0.25, -0.5)})
    assert np.allclose(obs, [0.25, -0.5]) and info["goal"] == 0
    for bad in ({"start": (0.0, 0.9)}, {"start": (2.0, 0.0)}, {"start": (0.0,)}, {"unknown": 1}):
        with pytest.raises(ValueError):
            env.reset(options=bad)


@pytest.mark.parametrize(("action", "goal", "y_end"), [(UP, 1, 0.8), (DOWN, -1, -0.8)])
def test_reaching_a_goal_band_terminates(action, goal, y_end):
    env = gym.make("TwoGoal-v0", step_cost=0.01)
    env.reset(seed=0, options={"start": (0.3, 0.0)})
    rewards = []
    for _ in range(16):  # 16 full-speed steps of 0.05 from the middle
        obs, reward, terminated, truncated, info = env.step(action)
        rewards.append(reward)
        assert not truncated
        if terminated:
            break
    assert terminated and len(rewards) == 16
    assert info["goal"] == goal and rewards[-1] == 1.0 and rewards[:-1] == [-0.01] * 15
    assert np.allclose(obs, [0.3, y_end])


def test_env_walls_action_clip_and_time_limit():
    env = gym.make("TwoGoal-v0")
    env.reset(seed=0, options={"start": (0.98, 0.0)})
    obs, *_ = env.step(np.array([5.0, 0.0]))  # clipped to 1, then the wall
    assert obs[0] == 1.0 and obs[1] == 0.0
    for t in range(100):
        obs, reward, terminated, truncated, info = env.step(STAY)
        assert reward == 0.0 and not terminated and info["goal"] == 0
        assert truncated == (t == 98)  # one step above, 99 here: 100 in all
        if truncated:
            break


# --------------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------------


def mixture(n: int, seed: int = 0, spread: float = 0.2, p_up: float = 0.5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.where(rng.random(n) < p_up, 1.0, -1.0) + spread * rng.normal(size=n)


def test_statistics_bimodal_gaussian_uniform():
    rng = np.random.default_rng(0)
    bimodal, gaussian, uniform = mixture(2000), rng.normal(size=2000), rng.uniform(-1, 1, 20_000)
    assert sarle_bimodality(bimodal) > 0.8 > SARLE_THRESHOLD
    assert count_modes(bimodal) == 2 and count_modes(bimodal, bandwidth="scott") == 2
    assert sarle_bimodality(gaussian) == pytest.approx(1 / 3, abs=0.03)
    assert count_modes(gaussian) == 1 and count_modes(gaussian, bandwidth="scott") == 1
    assert sarle_bimodality(uniform) == pytest.approx(5 / 9, abs=0.02)
    assert count_modes(np.full(10, 0.5)) == 1 and np.isnan(sarle_bimodality(np.full(10, 0.5)))
    # Three separated modes; a single far outlier is not a mode
    assert count_modes(np.concatenate([mixture(1000), rng.normal(4.0, 0.2, 500)])) == 3
    assert count_modes(np.append(gaussian, 30.0)) == 1
    # 2-D samples: the last dimension (the goal axis) by default
    samples = np.stack([gaussian, bimodal], axis=1)
    assert count_modes(samples) == 2 and count_modes(samples, dim=0) == 1
    assert mode_fractions(mixture(1000, p_up=0.7)) == pytest.approx({1: 0.7, -1: 0.3}, abs=0.05)
    assert mode_fractions(np.array([[0.0, -1.0], [0.0, 2.0], [0.0, 0.5], [1.0, 0.0]])) == {1: 0.5, -1: 0.25}
    assert kde_bandwidth(gaussian, 0.3) == 0.3
    with pytest.raises(ValueError):
        sarle_bimodality(np.ones((2, 3, 4)))
    with pytest.raises(ValueError):
        sarle_bimodality([1.0, 2.0, 3.0])


class BimodalStub:
    """A hand-built bimodal policy: the y action is +-1 (each with probability 1/2) plus N(0, 0.1) noise."""

    def sample_actions(self, obs: th.Tensor, noise: str = "random") -> th.Tensor:
        n = obs.shape[0]
        sign = th.where(th.rand(n) < 0.5, 1.0, -1.0) if noise == "random" else th.ones(n)
        return th.stack([0.1 * th.randn(n), sign + 0.1 * th.randn(n)], dim=1)


def test_diagnostics_on_a_bimodal_stub():
    obs = np.zeros((3, 2), dtype=np.float32)
    samples = sample_raw_actions(BimodalStub(), obs, k=1000, seed=0)
    assert samples.shape == (3, 1000, 2)
    assert np.array_equal(samples, sample_raw_actions(BimodalStub(), obs, k=1000, seed=0))
    for per_obs in samples:
        assert sarle_bimodality(per_obs) > SARLE_THRESHOLD and count_modes(per_obs) == 2
        assert mode_fractions(per_obs)[1] == pytest.approx(0.5, abs=0.06)
    report = action_mode_report(BimodalStub(), obs[:1], k=1000, seed=0)
    assert report[0]["n_modes"] == 2 and report[0]["sarle"] > SARLE_THRESHOLD


def test_exact_two_goal_flow_is_bimodal():
    """The exact flow-matching velocity of a target at +-1 (sb3_fpo.flow.integrate, as the policy samples) is bimodal."""

    def velocity(x: th.Tensor, tau: float) -> th.Tensor:
        # Linear path x_tau = tau a + (1 - tau) eps: E[a | x_tau] = tanh(tau x / (1 - tau)^2), v = (E[a|x] - x) / (1 - tau)
        return (th.tanh(tau * x / (1 - tau) ** 2) - x) / (1 - tau)

    th.manual_seed(0)
    actions = integrate(velocity, th.randn(2000, 1), n_steps=50).numpy()
    assert count_modes(actions) == 2 and sarle_bimodality(actions) > 0.9
    assert mode_fractions(actions)[1] == pytest.approx(0.5, abs=0.05)
    # A Gaussian policy's raw samples at the same state have one mode
    gaussian = th.distributions.Normal(th.zeros(2000, 1), th.ones(2000, 1)).sample().numpy()
    assert count_modes(gaussian) == 1 and sarle_bimodality(gaussian) < SARLE_THRESHOLD


def test_sample_raw_actions_real_models():
    obs = np.array([[0.0, 0.0], [0.5, -0.5]], dtype=np.float32)
    model = FPO("MlpPolicy", "TwoGoal-v0", seed=0)
    state = th.get_rng_state()
    samples = sample_raw_actions(model, obs, k=256, seed=1)
    assert th.equal(state, th.get_rng_state())  # seeded draws leave torch's generator alone
    assert samples.shape == (2, 256, 2) and samples.dtype == np.float32
    assert np.abs(samples).max() > 1.0  # raw: not clipped to the Box
    assert np.array_equal(samples, sample_raw_actions(model.policy, obs, k=256, seed=1))
    zero = sample_raw_actions(model, obs, k=4, noise="zero")
    assert np.allclose(zero, zero[:, :1])
    assert sample_raw_actions(model, obs[0], k=3).shape == (1, 3, 2)  # a single observation
    clipped = sample_raw_actions(model, obs, k=256, seed=1, clip=True)
    assert np.array_equal(clipped, np.clip(samples, -1.0, 1.0))
    with pytest.raises(ValueError):
        sample_raw_actions(BimodalStub(), obs, k=3, clip=True)  # no action space to clip to

    ppo = PPO("MlpPolicy", "TwoGoal-v0", seed=0)  # Gaussian: get_distribution().sample()
    gaussian = sample_raw_actions(ppo, obs, k=2000, seed=0)
    assert gaussian.shape == (2, 2000, 2) and np.abs(gaussian).max() > 1.0
    for per_obs in gaussian:
        assert count_modes(per_obs) == 1 and sarle_bimodality(per_obs) < SARLE_THRESHOLD
    mode = sample_raw_actions(ppo, obs, k=3, noise="zero")
    assert np.allclose(mode, mode[:, :1])
    with pytest.raises(ValueError):
        sample_raw_actions(ppo, obs, k=3, noise="fixed")
    with pytest.raises(TypeError):
        sample_raw_actions(object(), obs, k=3)


# --------------------------------------------------------------------------------------------------
# Goal split
# --------------------------------------------------------------------------------------------------


def test_goal_split_always_up():
    result = goal_split(lambda obs: UP, "TwoGoal-v0", starts=[[0.0, 0.0], [0.5, 0.4]], n_episodes=3)
    assert (result["top"], result["bottom"], result["none"]) == (1.0, 0.0, 0.0)
    assert result["n_episodes"] == 6 and result["mean_return"] == 1.0
    assert list(result["lengths"]) == [16, 16, 16, 8, 8, 8]
    assert result["mean_length"] == 12.0


def test_goal_split_exact_fractions():
    def up_if_right(obs: np.ndarray) -> np.ndarray:
        return UP if obs[0] > 0 else DOWN

    starts = [[0.5, 0.0], [-0.5, 0.0], [0.2, 0.3], [0.9, -0.7]]
    result = goal_split(up_if_right, TwoGoalEnv(), starts=starts, n_episodes=2)
    assert result["top"] == 0.75 and result["bottom"] == 0.25 and result["none"] == 0.0
    assert list(result["goals"]) == [1, 1, -1, -1, 1, 1, 1, 1]

    # Never reaching a goal: the registered time limit (100) or max_steps (unwrapped env) ends the episode
    stay = goal_split(lambda obs: STAY, "TwoGoal-v0", n_episodes=2, reset_options={"middle_start": True})
    assert stay["none"] == 1.0 and stay["mean_length"] == 100.0 and stay["mean_return"] == 0.0
    assert goal_split(lambda obs: STAY, TwoGoalEnv(), n_episodes=1, max_steps=7)["mean_length"] == 7.0


class PredictStub:
    """SB3-like ``predict``: up when deterministic, else up or down at random (its own seeded generator)."""

    def __init__(self) -> None:
        self.rng = np.random.default_rng(0)
        self.calls: list[bool] = []

    def predict(self, obs: np.ndarray, deterministic: bool = False) -> tuple[np.ndarray, Any]:
        self.calls.append(deterministic)
        if deterministic:
            return UP, None
        return (UP if self.rng.random() < 0.5 else DOWN), None


def test_goal_split_with_predict_and_models():
    stub = PredictStub()
    assert goal_split(stub, "TwoGoal-v0", n_episodes=3, deterministic=True)["top"] == 1.0
    assert all(stub.calls)
    # From the middle line, a policy that always goes down reaches the bottom goal every time
    down = types.SimpleNamespace(predict=lambda obs, deterministic=False: (DOWN, None))
    result = goal_split(down, "TwoGoal-v0", n_episodes=3, deterministic=True, reset_options={"middle_start": True})
    assert result["bottom"] == 1.0 and result["top"] == 0.0
    # A real (untrained) model, reproducible under the seed
    model = FPO("MlpPolicy", "TwoGoal-v0", seed=0)
    first = goal_split(model, "TwoGoal-v0", starts=[[0.0, 0.6]], n_episodes=2, seed=5)
    again = goal_split(model, "TwoGoal-v0", starts=[[0.0, 0.6]], n_episodes=2, seed=5)
    assert np.array_equal(first["lengths"], again["lengths"]) and np.array_equal(first["goals"], again["goals"])


# --------------------------------------------------------------------------------------------------
# Plots and the TensorBoard callback
# --------------------------------------------------------------------------------------------------


def test_plots_write_png(tmp_path):
    pytest.importorskip("matplotlib")
    rng = np.random.default_rng(0)
    samples = {"middle": np.stack([rng.normal(size=300), mixture(300)], axis=1), "1-D": rng.normal(size=(300, 1))}
    starts = [[0.5, 0.0], [-0.5, 0.2]]
    written = [
        plot_action_samples(samples, tmp_path / "samples.png", title="raw actions"),
        plot_action_samples(np.stack([samples["middle"]] * 2), tmp_path / "array.png"),
        plot_trajectories(lambda obs: UP if obs[0] > 0 else DOWN, "TwoGoal-v0", starts, tmp_path / "traj.png"),
    ]
    assert written == [tmp_path / "samples.png", tmp_path / "array.png", tmp_path / "traj.png"]
    for path in written:
        assert path.stat().st_size > 1000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def policy_parameters(model: FPO) -> list[th.Tensor]:
    return [p.detach().clone() for p in model.policy.parameters()]


def test_action_histogram_callback(tmp_path):
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    params = copy.deepcopy(SMALL)
    obs = np.array([[0.0, 0.0], [0.0, 0.5]], dtype=np.float32)
    callback = ActionHistogramCallback(obs, k=64, log_freq=16, names=["middle", "upper"])

    model = FPO("MlpPolicy", "TwoGoal-v0", seed=0, **params)
    # Every output format at once: the histograms must only reach TensorBoard
    model.set_logger(configure(str(tmp_path), ["stdout", "csv", "json", "log", "tensorboard"]))
    model.learn(2 * SMALL["n_steps"], callback=callback)
    assert callback.n_logs == 4

    reference = FPO("MlpPolicy", "TwoGoal-v0", seed=0, **params)
    reference.learn(2 * SMALL["n_steps"])
    for with_callback, without in zip(policy_parameters(model), policy_parameters(reference)):
        assert th.equal(with_callback, without)  # logging does not change the training run

    events = event_accumulator.EventAccumulator(str(tmp_path), size_guidance={"histograms": 0})
    events.Reload()
    tags = events.Tags()
    assert {"actions/middle/a0", "actions/middle/a1", "actions/upper/a1"} <= set(tags["histograms"])
    assert {"actions/middle/sarle_a1", "actions/upper/modes_a0"} <= set(tags["scalars"])
    assert "actions/middle/a1" not in (tmp_path / "progress.csv").read_text()
