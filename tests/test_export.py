"""ONNX export: the exported graph acts as ``predict`` does, run by onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th
from conftest import SMALL, TargetEnv
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.envs import FakeImageEnv, SimpleMultiObsEnv
from stable_baselines3.common.vec_env import VecNormalize

from sb3_fpo import FPO
from sb3_fpo.export import export_onnx, input_dtype

ort = pytest.importorskip("onnxruntime")

N_OBS = 1000
TOLERANCE = 1e-5


def pendulum() -> tuple[FPO, VecNormalize]:
    env = VecNormalize(make_vec_env("Pendulum-v1", n_envs=2, seed=0))
    return FPO("MlpPolicy", env, seed=0, **SMALL), env


def mujoco() -> tuple[FPO, VecNormalize]:
    pytest.importorskip("mujoco")
    env = VecNormalize(make_vec_env("InvertedPendulum-v5", n_envs=2, seed=0), norm_reward=False)
    kwargs = dict(SMALL, policy_kwargs=dict(SMALL["policy_kwargs"], squash_output=True, eval_flow_method="midpoint"))
    return FPO("MlpPolicy", env, seed=0, **kwargs), env


def image() -> tuple[FPO, None]:
    env = make_vec_env(lambda: FakeImageEnv(screen_height=36, screen_width=36, discrete=False), n_envs=2, seed=0)
    return FPO("CnnPolicy", env, seed=0, **SMALL), None


def multi_input() -> tuple[FPO, VecNormalize]:
    env = VecNormalize(
        make_vec_env(lambda: SimpleMultiObsEnv(discrete_actions=False), n_envs=2, seed=0), norm_obs_keys=["vec"]
    )
    return FPO("MultiInputPolicy", env, seed=0, **SMALL), env


def target() -> tuple[FPO, None]:
    kwargs = dict(SMALL, policy_kwargs=dict(SMALL["policy_kwargs"], source_std=0.5, flow_method="heun"))
    return FPO("MlpPolicy", TargetEnv(dim=3), seed=0, **kwargs), None


CASES = {"pendulum": pendulum, "mujoco": mujoco, "image": image, "multi_input": multi_input, "target": target}


@pytest.fixture(scope="module", params=list(CASES))
def trained(request):
    model, env = CASES[request.param]()
    model.learn(128)
    return model, env


def raw_observations(model: FPO, n: int = N_OBS) -> dict[str, np.ndarray]:
    """``n`` raw observations per graph input, in the graph's dtypes; random, with a spread beyond the unit box."""
    rng = np.random.default_rng(0)
    space = model.observation_space
    subspaces = space.spaces if hasattr(space, "spaces") else {"obs": space}
    inputs = {}
    for key, sub in subspaces.items():
        if np.issubdtype(sub.dtype, np.integer):
            inputs[key] = rng.integers(0, 256, (n, *sub.shape)).astype(sub.dtype)
        else:
            inputs[key] = (3 * rng.standard_normal((n, *sub.shape))).astype(input_dtype(sub))
    return inputs


def torch_observation(inputs: dict[str, np.ndarray], env: VecNormalize | None, model: FPO):
    """What ``predict`` receives: the observations normalised as the VecNormalize of training does."""
    observation = inputs if hasattr(model.observation_space, "spaces") else inputs["obs"]
    if env is not None:
        env.training = False
        observation = env.normalize_obs(observation)
    return observation


def test_exported_actions_match_predict(trained, tmp_path):
    model, env = trained
    names = export_onnx(model, tmp_path / "policy.onnx", vec_normalize=env)
    session = ort.InferenceSession(str(tmp_path / "policy.onnx"))
    assert [node.name for node in session.get_inputs()] == names
    inputs = raw_observations(model)
    expected, _ = model.predict(torch_observation(inputs, env, model), deterministic=True)
    actions = session.run(None, inputs)[0]  # a batch of 1000
    assert actions.shape == expected.shape
    np.testing.assert_allclose(actions, expected, atol=TOLERANCE, rtol=0)
    one_by_one = [session.run(None, {key: value[i : i + 1] for key, value in inputs.items()})[0] for i in range(50)]
    np.testing.assert_allclose(np.concatenate(one_by_one), expected[:50], atol=TOLERANCE, rtol=0)
    low, high = model.action_space.low, model.action_space.high
    assert np.all(actions >= low) and np.all(actions <= high)


def test_noise_input_zero_is_zero_sampling_and_random_noise_samples(trained, tmp_path):
    model, env = trained
    path = tmp_path / "sampler.onnx"
    export_onnx(model, path, noise="input", vec_normalize=env)
    session = ort.InferenceSession(str(path))
    inputs = raw_observations(model)
    observation = torch_observation(inputs, env, model)
    dim = model.policy.action_dim
    zero = session.run(None, {**inputs, "noise": np.zeros((N_OBS, dim), np.float32)})[0]
    np.testing.assert_allclose(zero, model.predict(observation, deterministic=True)[0], atol=TOLERANCE, rtol=0)
    # predict(deterministic=False) starts from th.randn((B, D)): the same draw, given to the graph, gives its actions
    th.manual_seed(7)
    noise = th.randn((N_OBS, dim)).numpy()
    th.manual_seed(7)
    sampled, _ = model.predict(observation, deterministic=False)
    actions = session.run(None, {**inputs, "noise": noise})[0]
    np.testing.assert_allclose(actions, sampled, atol=TOLERANCE, rtol=0)
    assert np.abs(actions - zero).max() > 1e-3  # the noise reaches the action


def test_flow_steps_and_method_arguments(tmp_path):
    model, _ = target()
    export_onnx(model, tmp_path / "p.onnx", flow_steps=4, flow_method="euler")
    obs = raw_observations(model, 200)
    actions = ort.InferenceSession(str(tmp_path / "p.onnx")).run(None, obs)[0]
    expected = model.policy.sample_actions(th.as_tensor(obs["obs"]), "zero", 4, "euler").detach().numpy()
    np.testing.assert_allclose(actions, np.clip(expected, -1, 1), atol=TOLERANCE, rtol=0)
    heun = model.policy.sample_actions(th.as_tensor(obs["obs"]), "zero", 3, "heun").detach().numpy()
    assert np.abs(np.clip(heun, -1, 1) - actions).max() > 1e-4  # the arguments changed the graph


def test_fixed_noise_and_saved_vec_normalize(tmp_path):
    model, env = pendulum()
    model.policy.deterministic_noise = "fixed"
    model.learn(64)
    env.save(str(tmp_path / "vecnormalize.pkl"))
    export_onnx(model, tmp_path / "p.onnx", noise="fixed", vec_normalize=tmp_path / "vecnormalize.pkl")
    inputs = raw_observations(model, 200)
    actions = ort.InferenceSession(str(tmp_path / "p.onnx")).run(None, inputs)[0]
    expected, _ = model.predict(torch_observation(inputs, env, model), deterministic=True)
    np.testing.assert_allclose(actions, expected, atol=TOLERANCE, rtol=0)


def test_export_rejects_what_it_cannot_export(tmp_path):
    with pytest.raises(TypeError, match="FPO model or a FlowPolicy"):
        export_onnx(PPO("MlpPolicy", "Pendulum-v1", n_steps=64), tmp_path / "p.onnx")
    model, _ = target()
    with pytest.raises(ValueError, match="Unknown noise"):
        export_onnx(model, tmp_path / "p.onnx", noise="random")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="flow_steps"):
        export_onnx(model, tmp_path / "p.onnx", flow_steps=-1)
    with pytest.raises(TypeError, match="not a saved VecNormalize"):
        path = tmp_path / "not_vecnormalize.pkl"
        path.write_bytes(__import__("pickle").dumps({"a": 1}))
        export_onnx(model, tmp_path / "p.onnx", vec_normalize=path)


def test_predict_skips_only_a_redundant_training_mode_switch():
    model, _ = target()
    policy = model.policy
    policy.set_training_mode(True)
    assert all(module.training for module in policy.modules())
    model.predict(np.zeros(3, np.float32), deterministic=True)
    assert not any(module.training for module in policy.modules())
    policy.velocity_net.train()  # a child switched on its own is still switched back
    policy.set_training_mode(False)
    assert not any(module.training for module in policy.modules())
