"""FPO on a CUDA device: training, the ratio check, behaviour cloning and CPU <-> CUDA save / load.

Skipped where torch sees no GPU (CI has none); run on a GPU machine with ``pytest tests/test_cuda.py``.
"""

import numpy as np
import pytest
import torch as th
from conftest import TargetEnv
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import configure

from sb3_fpo import FPO
from sb3_fpo.demonstrations import Demonstrations

pytestmark = pytest.mark.skipif(not th.cuda.is_available(), reason="needs a CUDA device")

SMALL = dict(n_steps=64, batch_size=32, n_epochs=2, policy_kwargs=dict(velocity_net_arch=[32, 32], flow_steps=4))


def make_model(**kwargs):
    env = make_vec_env(TargetEnv, n_envs=2, seed=0)
    return FPO("MlpPolicy", env, device="cuda", seed=0, **{**SMALL, **kwargs})


def test_training_runs_on_the_gpu_with_every_tensor_there():
    model = make_model()
    model.learn(256)
    assert all(p.device.type == "cuda" for p in model.policy.parameters())
    obs = model.get_env().reset()
    for deterministic in (True, False):
        actions, _ = model.predict(obs, deterministic=deterministic)
        assert actions.shape == (2, 2) and np.isfinite(actions).all() and np.abs(actions).max() <= 1.0


@pytest.mark.parametrize("ratio_mode", ["per_sample", "averaged"])
def test_ratio_is_one_when_the_parameters_do_not_move(ratio_mode):
    # lr 0: the CFM losses recomputed in train() on the GPU match those stored while collecting the rollout
    model = make_model(learning_rate=0.0, ratio_mode=ratio_mode)
    model.set_logger(configure(None, ["csv"]))
    model.learn(128)
    values = model.logger.name_to_value
    assert values["train/ratio_min"] == pytest.approx(1.0, abs=1e-4)
    assert values["train/ratio_max"] == pytest.approx(1.0, abs=1e-4)


def test_save_on_gpu_load_on_cpu_gives_the_same_deterministic_actions(tmp_path):
    model = make_model()
    model.learn(128)
    model.save(tmp_path / "model")
    on_cpu = FPO.load(tmp_path / "model", device="cpu")
    back_on_gpu = FPO.load(tmp_path / "model", device="cuda")
    obs = np.random.default_rng(0).uniform(-1, 1, (16, 2)).astype(np.float32)
    expected, _ = model.predict(obs, deterministic=True)  # zero-sampling: no noise, so devices must agree
    np.testing.assert_allclose(on_cpu.predict(obs, deterministic=True)[0], expected, atol=1e-4)
    np.testing.assert_allclose(back_on_gpu.predict(obs, deterministic=True)[0], expected, atol=1e-5)


def test_behaviour_cloning_on_the_gpu():
    obs = np.random.default_rng(0).uniform(-1, 1, (2000, 2)).astype(np.float32)
    model = make_model()
    history = model.pretrain(Demonstrations(obs, obs.copy()), n_epochs=30, seed=0)
    assert history["train_cfm_loss"][-1] < history["train_cfm_loss"][0]
    actions, _ = model.predict(obs[:200], deterministic=True)
    assert np.mean(np.abs(actions - obs[:200])) < 0.2  # the expert copies its observation
