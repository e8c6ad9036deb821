"""ArmTracking-v0: the under-conditioned MuJoCo tracking task (sb3_fpo/envs/arm_tracking.py)."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("mujoco")

import sb3_fpo  # noqa: F401  (registers ArmTracking-v0)
from sb3_fpo.envs.arm_tracking import (
    CONDITIONING_LEVELS,
    STYLES,
    ArmTrackingEnv,
    ambiguous_actions,
    ambiguous_observation,
    forward_kinematics,
    inverse_kinematics,
    observation_size,
)

EXPECTED_SIZES = {"full": 21, "partial": 15, "minimal": 13}


def run_episode(env: ArmTrackingEnv, policy) -> tuple[list[float], dict]:
    """Play the current episode of an unwrapped env to its end; return the rewards and the last info."""
    rewards = []
    while True:
        _, reward, terminated, truncated, info = env.step(policy())
        rewards.append(float(reward))
        if terminated or truncated:
            return rewards, info


@pytest.mark.parametrize("conditioning", CONDITIONING_LEVELS)
def test_env_checkers(conditioning):
    from gymnasium.utils.env_checker import check_env as gym_check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = gym.make("ArmTracking-v0", conditioning=conditioning)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # MuJoCo rendering needs an OpenGL backend (MUJOCO_GL), which test machines often lack
        gym_check_env(env.unwrapped, skip_render_check=True)
        sb3_check_env(env)
    env.close()


def test_observation_sizes():
    for conditioning, size in EXPECTED_SIZES.items():
        env = gym.make("ArmTracking-v0", conditioning=conditioning)
        assert env.observation_space.shape == (size,) == (observation_size(conditioning),)
        assert env.reset(seed=0)[0].shape == (size,)
        assert env.action_space.shape == (3,)
        env.close()
    assert EXPECTED_SIZES["full"] > EXPECTED_SIZES["partial"] > EXPECTED_SIZES["minimal"]
    assert observation_size("minimal", lookahead=(1, 2, 3)) == 9 + 2 * 3


def test_invalid_arguments():
    with pytest.raises(ValueError, match=r"\['full', 'partial', 'minimal'\]"):
        gym.make("ArmTracking-v0", conditioning="none")
    env = ArmTrackingEnv()
    with pytest.raises(ValueError, match="style"):
        env.reset(seed=0, options={"style": 4})
    with pytest.raises(ValueError, match="Unknown reset options"):
        env.reset(seed=0, options={"goal": 1})


def test_kinematics_round_trip():
    rng = np.random.default_rng(0)
    ee = np.stack([rng.uniform(0.6, 0.8, 20), rng.uniform(-0.3, 0.3, 20)], axis=-1)
    phi = np.arctan2(ee[:, 1], ee[:, 0]) + 0.6
    up, down = inverse_kinematics(ee, phi, 1), inverse_kinematics(ee, phi, -1)
    for q in (up, down):
        np.testing.assert_allclose(forward_kinematics(q), ee, atol=1e-9)
        np.testing.assert_allclose(np.cos(q.sum(-1)), np.cos(phi), atol=1e-9)
    assert np.all(up[:, 1] > 0) and np.all(down[:, 1] < 0)


def test_no_style_leak_at_minimal_level():
    """For one seed, the observation at reset is the same for every style at minimal, not at full."""
    observations = {level: [] for level in CONDITIONING_LEVELS}
    for level in CONDITIONING_LEVELS:
        env = ArmTrackingEnv(conditioning=level)
        for style in range(len(STYLES)):
            obs, info = env.reset(seed=3, options={"style": style})
            assert info["style"] == style
            observations[level].append(obs)
    for obs in observations["minimal"][1:]:
        np.testing.assert_array_equal(obs, observations["minimal"][0])
    # partial: styles 0 and 1 share the orientation (only the elbow differs), 0 and 2 do not
    np.testing.assert_array_equal(observations["partial"][0], observations["partial"][1])
    assert not np.array_equal(observations["partial"][0], observations["partial"][2])
    full = observations["full"]
    assert all(not np.array_equal(full[i], full[j]) for i in range(4) for j in range(i + 1, 4))
    # the helpers: one ambiguous observation, four distinct right answers
    np.testing.assert_array_equal(ambiguous_observation("minimal", seed=3), observations["minimal"][0])
    answers = ambiguous_actions(seed=3)
    assert answers.shape == (4, 3)
    assert min(np.abs(answers[i] - answers[j]).max() for i in range(4) for j in range(i + 1, 4)) > 0.1


def test_reward_uses_the_hidden_reference():
    env = ArmTrackingEnv(conditioning="minimal")
    # Same observation, same actions: the rewards depend on the hidden style
    returns = []
    for style in (0, 1):
        env.reset(seed=5, options={"style": style})
        rewards, _ = run_episode(env, lambda: env.reference_action(0))
        returns.append(sum(rewards))
    assert returns[0] > 40.0 > 10.0 > returns[1]
    # The reward of style A's reference posture: 1 against style A, small against every other style
    env.reset(seed=5, options={"style": 0})
    posture = env.reference_joint_angles(0)[20]
    assert env.tracking_errors(posture, style=0, t=20) == (0.0, 0.0)
    assert env.tracking_reward(env.tracking_errors(posture, style=0, t=20)[1]) == 1.0
    for other in (1, 2, 3):
        mean_abs, mean_squared = env.tracking_errors(posture, style=other, t=20)
        assert mean_abs > 2 * env.fail_threshold
        assert env.tracking_reward(mean_squared) < 0.5


@pytest.mark.parametrize("conditioning", ["full", "minimal"])
def test_scripted_controllers(conditioning):
    """Following the hidden style succeeds; following another one or the average of all styles fails."""
    env = ArmTrackingEnv(conditioning=conditioning)
    for seed in range(3):
        for follow in range(len(STYLES)):
            env.reset(seed=seed, options={"style": 1})
            rewards, info = run_episode(env, lambda follow=follow: env.reference_action(follow))
            assert info["style"] == 1
            assert info["is_success"] is info["success"] is (follow == 1)
            assert len(rewards) == (env.episode_steps if follow == 1 else env.grace_steps + 1)
            if follow == 1:
                assert min(rewards[env.grace_steps :]) > 0.95
        env.reset(seed=seed)
        _, info = run_episode(env, lambda: env.style_actions().mean(axis=0))
        assert info["is_success"] is False


def test_success_and_failure_logic():
    zero = np.zeros(3, dtype=np.float32)
    # A huge threshold: any policy succeeds, the env truncates at episode_steps
    env = ArmTrackingEnv(fail_threshold=100.0, episode_steps=20, grace_steps=5)
    env.reset(seed=0)
    rewards, info = run_episode(env, lambda: zero)
    assert len(rewards) == 20 and info["is_success"] is True and info["success"] is True
    assert all(0.0 < reward <= 1.0 for reward in rewards)
    # A tiny threshold: the first step after the grace period fails and terminates
    env = ArmTrackingEnv(fail_threshold=1e-6, episode_steps=20, grace_steps=5)
    env.reset(seed=0)
    steps = 0
    while True:
        _, _, terminated, truncated, info = env.step(zero)
        steps += 1
        assert info["tracking_error"] >= 0.0
        if steps <= 5:
            assert not (terminated or truncated) and "is_success" not in info
        if terminated or truncated:
            break
    assert steps == 6 and terminated and not truncated and info["is_success"] is False
    # Without termination the episode runs to its end and still fails
    env = ArmTrackingEnv(fail_threshold=1e-6, episode_steps=20, grace_steps=5, terminate_on_failure=False)
    env.reset(seed=0)
    rewards, info = run_episode(env, lambda: zero)
    assert len(rewards) == 20 and info["failed"] is True and info["is_success"] is False


def test_registered_time_limit_and_is_success():
    env = gym.make("ArmTracking-v0", conditioning="minimal")
    env.reset(seed=0)
    steps, info = 0, {}
    while "is_success" not in info:
        _, _, _, truncated, info = env.step(env.unwrapped.reference_action())
        steps += 1
    assert steps == 60 and truncated and info["is_success"] is True
    env.close()
