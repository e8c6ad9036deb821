"""FlowPolicy: sampling, save/load for every policy alias, and SB3 tooling around FPO."""

from __future__ import annotations

import copy
import json
import math
import zipfile

import numpy as np
import pytest
import torch as th
from conftest import SMALL, TargetEnv
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback, EvalCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.envs import FakeImageEnv, SimpleMultiObsEnv
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import SubprocVecEnv, VecNormalize

import sb3_fpo
from sb3_fpo import FPO, FlowCnnPolicy, FlowMultiInputPolicy, FlowPolicy
from sb3_fpo.flow import integrate
from sb3_fpo.policies import SQUASH_BOUND, VelocityNet

POLICY_ENVS = {
    "MlpPolicy": (FlowPolicy, lambda: TargetEnv()),
    "CnnPolicy": (FlowCnnPolicy, lambda: FakeImageEnv(action_dim=2, screen_height=36, screen_width=36, discrete=False)),
    "MultiInputPolicy": (FlowMultiInputPolicy, lambda: SimpleMultiObsEnv(discrete_actions=False)),
}


def make_model(policy: str, **kwargs) -> FPO:
    params = {"seed": 0, **copy.deepcopy(SMALL)}
    params.update(kwargs)
    return FPO(policy, POLICY_ENVS[policy][1](), **params)


def observations(model: FPO, n: int = 4):
    env = model.get_env()
    assert env is not None
    obs = env.reset()
    if isinstance(obs, dict):
        return {k: np.repeat(v, n, axis=0) for k, v in obs.items()}
    return np.repeat(obs, n, axis=0)


@pytest.mark.parametrize("policy", list(POLICY_ENVS))
def test_save_load_identical_deterministic_actions(tmp_path, policy):
    model = make_model(policy)
    model.learn(SMALL["n_steps"])
    obs = observations(model)
    action, _ = model.predict(obs, deterministic=True)
    again, _ = model.predict(obs, deterministic=True)
    assert np.array_equal(action, again)  # zero-sampling is bit-repeatable

    model.save(tmp_path / "model")
    loaded = FPO.load(tmp_path / "model", env=POLICY_ENVS[policy][1]())
    assert isinstance(loaded.policy, POLICY_ENVS[policy][0])
    assert np.array_equal(loaded.predict(obs, deterministic=True)[0], action)
    for name in ("n_samples", "ratio_mode", "trust_region", "tau_sampling"):
        assert getattr(loaded, name) == getattr(model, name), name
    assert loaded.clip_range(1.0) == model.clip_range(1.0) == 0.2  # a schedule: compared by its value

    model.policy.save(tmp_path / "policy.pth")
    policy_only = POLICY_ENVS[policy][0].load(tmp_path / "policy.pth")
    assert policy_only.flow_steps == model.policy.flow_steps
    assert np.array_equal(policy_only.predict(obs, deterministic=True)[0], action)

    # Training goes on after loading
    loaded.learn(SMALL["n_steps"], reset_num_timesteps=False)
    assert loaded.num_timesteps == 2 * SMALL["n_steps"]


def test_output_init_gain_starts_the_flow_near_its_noise():
    default = make_model("MlpPolicy", policy_kwargs=dict(output_scale=1.0))
    small = make_model("MlpPolicy", policy_kwargs=dict(output_scale=1.0, output_init_gain=0.01))
    layer = small.policy.velocity_net.trunk[-1]
    assert th.count_nonzero(layer.bias) == 0
    rows = layer.weight @ layer.weight.T  # orthogonal rows of norm 0.01
    assert th.allclose(rows, 1e-4 * th.eye(rows.shape[0]), atol=1e-9)
    obs = th.zeros((256, 2))
    for model, bound in ((small, 0.02), (default, None)):
        with th.no_grad():
            th.manual_seed(0)
            sampled = model.policy.sample_actions(obs, "random")
            th.manual_seed(0)
            start = th.randn(256, 2)
        shift = (sampled - start).abs().max().item()
        if bound is not None:
            assert shift < bound  # the velocity is ~0: the samples are their starting noise
        else:
            assert shift > 0.05
    with pytest.raises(ValueError, match="output_init_gain"):
        make_model("MlpPolicy", policy_kwargs=dict(output_init_gain=0.0))


def test_constructor_parameters_round_trip(tmp_path):
    kwargs = dict(
        net_arch=dict(pi=[8], vf=[16]),
        velocity_net_arch=[12, 6],
        velocity_activation_fn=th.nn.ReLU,
        time_embed_dim=4,
        output_scale=0.5,
        output_init_gain=0.01,
        flow_steps=3,
        flow_method="heun",
        eval_flow_steps=5,
        eval_flow_method="midpoint",
        deterministic_noise="fixed",
        noise_seed=3,
        source_std=0.5,
        cfm_reduction="sum_sqrt_d",
        share_features_extractor=False,
        squash_output=True,
    )
    model = FPO("MlpPolicy", TargetEnv(), policy_kwargs=kwargs, n_steps=16, batch_size=16, seed=0)
    model.policy.save(tmp_path / "p.pth")
    loaded = FlowPolicy.load(tmp_path / "p.pth")
    for key, value in kwargs.items():
        assert getattr(loaded, key) == value, key
    obs = np.zeros((2, 2), dtype=np.float32)
    assert np.array_equal(loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])


def test_default_optimizer_is_fused_adam_and_user_kwargs_win(tmp_path):
    model = make_model("MlpPolicy")
    group = model.policy.optimizer.param_groups[0]
    assert isinstance(model.policy.optimizer, th.optim.Adam) and group["fused"] and group["eps"] == 1e-5
    model.learn(SMALL["n_steps"])
    model.save(tmp_path / "m.zip")
    loaded = FPO.load(tmp_path / "m.zip", env=TargetEnv())
    assert loaded.policy.optimizer.param_groups[0]["fused"]
    loaded.learn(SMALL["n_steps"])  # the loaded optimizer state steps
    own = make_model("MlpPolicy", policy_kwargs=dict(optimizer_kwargs=dict(eps=1e-7)))
    assert not own.policy.optimizer.param_groups[0]["fused"] and own.policy.optimizer.param_groups[0]["eps"] == 1e-7
    sgd = make_model("MlpPolicy", policy_kwargs=dict(optimizer_class=th.optim.SGD))
    assert isinstance(sgd.policy.optimizer, th.optim.SGD)


def test_noise_modes_of_predict():
    model = make_model("MlpPolicy", policy_kwargs=dict(flow_steps=2, output_scale=1.0))
    obs = np.random.default_rng(0).uniform(-1, 1, (64, 2)).astype(np.float32)
    zero = model.predict(obs, deterministic=True)[0]
    th.manual_seed(0)
    s1 = model.predict(obs, deterministic=False)[0]
    s2 = model.predict(obs, deterministic=False)[0]
    assert not np.array_equal(s1, s2)
    assert not np.array_equal(zero, s1)

    model.policy.deterministic_noise = "fixed"
    fixed = model.predict(obs, deterministic=True)[0]
    assert np.array_equal(fixed, model.predict(obs, deterministic=True)[0])
    assert not np.array_equal(fixed, zero)


def test_fixed_noise_is_one_starting_point_for_every_observation():
    model = make_model("MlpPolicy", policy_kwargs=dict(deterministic_noise="fixed", noise_seed=3))
    obs = np.tile(np.array([[0.3, -0.2]], dtype=np.float32), (20, 1))
    actions = model.predict(obs, deterministic=True)[0]
    assert np.array_equal(actions, np.tile(actions[:1], (20, 1)))  # 20 identical observations, one action
    assert np.array_equal(actions[:1], model.predict(obs[:1], deterministic=True)[0])  # whatever the batch size
    mixed = np.random.default_rng(0).uniform(-1, 1, (7, 2)).astype(np.float32)
    mixed[4] = obs[0]
    assert np.array_equal(model.predict(mixed, deterministic=True)[0][4], actions[0])  # whatever the row


def test_random_deterministic_noise_is_refused_with_the_alternative():
    with pytest.raises(ValueError, match=r"deterministic=False"):
        make_model("MlpPolicy", policy_kwargs=dict(deterministic_noise="random"))
    with pytest.raises(ValueError, match="Allowed values: 'zero', 'fixed'"):
        make_model("MlpPolicy", policy_kwargs=dict(deterministic_noise="mean"))


@pytest.mark.parametrize("method", ["euler", "heun"])
def test_source_std_scales_the_sampler_start_and_the_cfm_noise(method):
    unit = make_model("MlpPolicy", policy_kwargs=dict(flow_steps=3, flow_method=method))
    half = make_model("MlpPolicy", policy_kwargs=dict(flow_steps=3, flow_method=method, source_std=0.5))
    half.policy.load_state_dict(unit.policy.state_dict())
    obs = th.as_tensor(np.random.default_rng(0).uniform(-1, 1, (6, 2)), dtype=th.float32)
    actions, tau, eps = th.randn(6, 2), th.rand(6, 4, 1), th.randn(6, 4, 2)
    # CFM with source N(0, 0.25 I) = CFM of the unit-source flow on the scaled noise
    assert th.allclose(half.policy.cfm_losses(obs, actions, tau, eps), unit.policy.cfm_losses(obs, actions, tau, 0.5 * eps))
    assert not th.allclose(half.policy.cfm_losses(obs, actions, tau, eps), unit.policy.cfm_losses(obs, actions, tau, eps))
    with th.no_grad():
        # A zero velocity field: the action is the starting point x_0 = source_std * noise
        for policy in (unit.policy, half.policy):
            last = policy.velocity_net.trunk[-1]
            last.weight.zero_(), last.bias.zero_()
        fixed_unit, fixed_half = (p.sample_actions(obs, noise="fixed") for p in (unit.policy, half.policy))
        assert th.allclose(fixed_half, 0.5 * fixed_unit) and fixed_unit.abs().min() > 0
        assert th.equal(half.policy.sample_actions(obs, noise="zero"), th.zeros(6, 2))  # zero-sampling unaffected


def test_zero_sampling_with_untrained_net_matches_manual_euler():
    model = make_model("MlpPolicy", policy_kwargs=dict(velocity_net_arch=[8], flow_steps=3))
    policy = model.policy
    obs = th.tensor([[0.2, -0.4]])
    with th.no_grad():
        latent = policy._actor_latent(obs)
        x = th.zeros(1, 2)
        for k in range(3):
            tau = th.full((1, 1), k / 3)
            inp = th.cat(
                [
                    latent,
                    x,
                    th.cat([th.cos(tau * th.tensor([1.0, 2.0, 4.0, 8.0])), th.sin(tau * th.tensor([1.0, 2.0, 4.0, 8.0]))], -1),
                ],
                -1,
            )
            net = policy.velocity_net
            weight = th.cat([net.latent_proj.weight, net.x_proj.weight, net.time_proj.weight], dim=1)
            x = x + (1 / 3) * net.output_scale * net.trunk(inp @ weight.T + net.latent_proj.bias)
        sampled = policy.sample_actions(obs, noise="zero", n_steps=3, method="euler")
    assert th.allclose(sampled, x, atol=1e-6)


def test_eval_sampler_is_separate_from_rollout_sampler():
    model = make_model(
        "MlpPolicy", policy_kwargs=dict(flow_steps=2, eval_flow_steps=7, eval_flow_method="heun", output_scale=1.0)
    )
    policy = model.policy
    obs = th.tensor([[0.3, 0.1]])
    with th.no_grad():
        predicted = policy._predict(obs, deterministic=True)
        assert th.equal(predicted, policy.sample_actions(obs, noise="zero", n_steps=7, method="heun"))
        assert not th.allclose(predicted, policy.sample_actions(obs, noise="zero", n_steps=2, method="euler"))
        rollout_action, value, log_prob = policy(obs, deterministic=True)
        assert th.equal(rollout_action, policy.sample_actions(obs, noise="zero", n_steps=2, method="euler"))
        assert value.shape == (1, 1) and th.equal(log_prob, th.zeros(1))


def test_actions_are_raw_and_clipped_only_by_sb3():
    model = make_model("MlpPolicy", policy_kwargs=dict(output_scale=50.0, flow_steps=2))
    obs = np.ones((32, 2), dtype=np.float32)
    raw = model.policy.sample_actions(th.as_tensor(obs))
    assert raw.abs().max() > 1.0  # unbounded flow output
    clipped, _ = model.predict(obs)
    assert np.abs(clipped).max() <= 1.0


def test_squash_output_acts_inside_the_bounds_with_tanh():
    # Pendulum's torque is in [-2, 2]: the squashed flow acts with 2 tanh(x), without clipping, where the
    # unsquashed flow with a large output scale leaves the bounds and relies on SB3's clip.
    kwargs = dict(output_scale=50.0, flow_steps=2, velocity_net_arch=[16])
    plain = FPO("MlpPolicy", "Pendulum-v1", policy_kwargs=kwargs, n_steps=16, batch_size=16, seed=0)
    squashed = FPO(
        "MlpPolicy", "Pendulum-v1", policy_kwargs={**kwargs, "squash_output": True}, n_steps=16, batch_size=16, seed=0
    )
    squashed.policy.load_state_dict(plain.policy.state_dict())
    assert squashed.policy.squash_output and not plain.policy.squash_output
    obs = th.as_tensor(np.random.default_rng(0).uniform(-1, 1, (64, 3)), dtype=th.float32)
    with th.no_grad():
        x = plain.policy.sample_actions(obs, noise="zero")
    assert x.abs().max() > 2.0
    with th.no_grad():
        assert th.allclose(squashed.policy.sample_actions(obs, noise="zero"), th.tanh(x))
        rollout_action, _, _ = squashed.policy(obs)
    act, _ = squashed.predict(obs.numpy(), deterministic=True)
    assert np.allclose(act, 2.0 * np.tanh(x.numpy()), atol=1e-5)  # rescaled to the bounds, not clipped
    assert np.abs(act).max() <= 2.0 and len(np.unique(np.round(act, 4))) > 2
    assert rollout_action.abs().max() < 1.0 + 1e-6  # what the buffer stores: tanh(x) in [-1, 1]


def test_squash_output_cfm_target_is_the_pre_squash_sample():
    plain = make_model("MlpPolicy")
    squashed = make_model("MlpPolicy", policy_kwargs={**SMALL["policy_kwargs"], "squash_output": True})
    squashed.policy.load_state_dict(plain.policy.state_dict())
    obs = th.zeros(3, 2)
    x = th.tensor([[0.3, -1.2], [2.0, 0.0], [50.0, -50.0]])
    tau, eps = th.rand(3, 4, 1), th.randn(3, 4, 2)
    squashed_loss = squashed.policy.cfm_losses(obs, th.tanh(x), tau, eps)
    assert th.allclose(squashed_loss[:2], plain.policy.cfm_losses(obs, x, tau, eps)[:2], atol=1e-4)
    # a saturated action is read at the clip: atanh(1 - 1e-6) = 7.25 (7.23 in float32)
    saturated = th.atanh(th.tensor(SQUASH_BOUND)) * th.tensor([[1.0, -1.0]])
    assert abs(saturated[0, 0].item() - math.atanh(SQUASH_BOUND)) < 0.05
    assert th.allclose(squashed_loss[2:], plain.policy.cfm_losses(obs[:1], saturated, tau[2:], eps[2:]), atol=1e-3)
    assert th.isfinite(squashed.policy.cfm_losses(obs, th.ones(3, 2), tau, eps)).all()


def test_squash_output_needs_finite_bounds():
    space = spaces.Box(-np.inf, np.inf, (2,), dtype=np.float32)
    with pytest.raises(ValueError, match="finite"):
        FlowPolicy(spaces.Box(-1, 1, (2,)), space, lambda _: 1e-3, squash_output=True)


def test_evaluate_actions_shapes_and_sign():
    model = make_model("MlpPolicy")
    obs, actions = th.zeros(5, 2), th.zeros(5, 2)
    tau, eps = th.rand(5, 3, 1), th.randn(5, 3, 2)
    values, neg_cfm, entropy = model.policy.evaluate_actions(obs, actions, tau, eps)
    assert values.shape == (5, 1) and neg_cfm.shape == (5, 3) and entropy is None
    assert (neg_cfm <= 0).all()
    assert th.allclose(-neg_cfm, model.policy.cfm_losses(obs, actions, tau, eps))


def test_evaluate_actions_as_sb3_calls_it():
    # Tools written for ActorCriticPolicy call evaluate_actions(obs, actions): fresh pairs, one surrogate per transition
    model = make_model("MlpPolicy")
    obs, actions = th.as_tensor(observations(model, 6)), th.randn(6, 2)
    th.manual_seed(0)
    values, log_prob, entropy = model.policy.evaluate_actions(obs, actions)
    assert values.shape == (6, 1) and log_prob.shape == (6,) and entropy is None
    th.manual_seed(0)
    tau, eps = th.rand(6, 8, 1), th.randn(6, 8, 2)  # the pairs it drew
    assert th.allclose(log_prob, -model.policy.cfm_losses(obs, actions, tau, eps).mean(dim=-1))
    assert model.policy.evaluate_actions(obs, actions, n_samples=3)[1].shape == (6,)
    log_prob.mean().backward()  # differentiable, as a behaviour-cloning loss needs
    assert model.policy.velocity_net.x_proj.weight.grad is not None
    with pytest.raises(ValueError, match="both tau and eps"):
        model.policy.evaluate_actions(obs, actions, tau=tau)


def test_velocity_net_equals_concatenated_linear():
    th.manual_seed(0)
    net = VelocityNet(latent_dim=3, action_dim=2, time_embed_dim=4, net_arch=[5], activation_fn=th.nn.SiLU, output_scale=0.25)
    latent, x, tau = th.randn(6, 3), th.randn(6, 2), th.rand(6, 1)
    out = net(net.condition(latent), x, net.time_term(tau))
    weight = th.cat([net.latent_proj.weight, net.x_proj.weight, net.time_proj.weight], dim=1)
    emb = th.cat([th.cos(tau * th.tensor([1.0, 2.0])), th.sin(tau * th.tensor([1.0, 2.0]))], -1)
    manual = 0.25 * net.trunk(th.cat([latent, x, emb], -1) @ weight.T + net.latent_proj.bias)
    assert th.allclose(out, manual, atol=1e-6)


@pytest.mark.parametrize("activation", [th.nn.SiLU, th.nn.ReLU, th.nn.Tanh])
@pytest.mark.parametrize("net_arch", [[5], [4, 6, 3]])
@pytest.mark.parametrize("n_steps", [1, 4, 10])
def test_fused_euler_equals_generic_integration(activation, net_arch, n_steps):
    th.manual_seed(0)
    net = VelocityNet(
        latent_dim=3, action_dim=2, time_embed_dim=4, net_arch=net_arch, activation_fn=activation, output_scale=0.7
    )
    for param in net.parameters():  # non-trivial biases, so the folded output bias is exercised
        th.nn.init.normal_(param)
    cond, x0 = net.condition(th.randn(6, 3)), th.randn(6, 2)

    def velocity(x, tau):
        return net(cond, x, net.time_term(th.full((1,), tau)))

    reference = integrate(velocity, x0, n_steps, "euler")
    with th.no_grad():  # the in-place activation path
        assert th.allclose(net.euler(cond, x0, n_steps), reference, atol=1e-5)
    fused = net.euler(cond, x0, n_steps)  # with autograd: same values and gradients
    assert th.allclose(fused, reference, atol=1e-5)
    grads = th.autograd.grad(fused.square().sum(), list(net.parameters()), retain_graph=True)
    reference_grads = th.autograd.grad(reference.square().sum(), list(net.parameters()))
    for grad, reference_grad in zip(grads, reference_grads):
        assert th.allclose(grad, reference_grad, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("optimizer_kwargs", [dict(fused=True), dict(foreach=False)])
def test_fused_euler_follows_parameter_changes_outside_rollouts(optimizer_kwargs):
    # torch's fused Adam changes parameters without bumping their version counters: constants computed for
    # earlier parameters must never be reused outside the rollout block
    th.manual_seed(0)
    net = VelocityNet(latent_dim=3, action_dim=2, time_embed_dim=4, net_arch=[5, 5], activation_fn=th.nn.SiLU, output_scale=1)
    cond, x0 = net.condition(th.randn(4, 3)).detach(), th.randn(4, 2)

    def reference():
        return integrate(lambda x, tau: net(cond, x, net.time_term(th.full((1,), tau))), x0, 3, "euler")

    optimizer = th.optim.Adam(net.parameters(), lr=0.1, **optimizer_kwargs)
    for _ in range(2):
        with th.no_grad():
            before = net.euler(cond, x0, 3)
            assert th.allclose(before, reference(), atol=1e-5)
        net.euler(cond, x0, 3).square().sum().backward()
        optimizer.step()
        with th.no_grad():
            after = net.euler(cond, x0, 3)
            assert not th.allclose(after, before) and th.allclose(after, reference(), atol=1e-5)


def test_fused_euler_constants_reused_while_the_weights_are_unchanged(monkeypatch):
    model = make_model("MlpPolicy")
    calls = []
    monkeypatch.setattr(VelocityNet, "_euler_constants", _counting(VelocityNet._euler_constants, calls))
    obs = th.zeros(2, 2)
    with th.no_grad():
        for _ in range(3):
            model.policy.sample_actions(obs, noise="zero")
    assert calls == [True, False, False]  # computed once, then reused
    with th.no_grad():
        for param in model.policy.velocity_net.trunk.parameters():
            param.data.mul_(1.5)  # through .data: no version counter moves
        model.policy.sample_actions(obs, noise="zero")
    assert calls[-1] is True


def _counting(method, calls):
    """Wrap VelocityNet._euler_constants to record whether each call rebuilt the constants (True) or reused them."""

    def wrapper(self, n_steps, like):
        before = self._euler_cache
        result = method(self, n_steps, like)
        calls.append(self._euler_cache is not before)
        return result

    return wrapper


class _LoadWeightsMidRollout(BaseCallback):
    """Loads a given state dict into the policy at one step of the first rollout, as an EMA or BC callback might."""

    def __init__(self, state_dict, at_step):
        super().__init__()
        self.state_dict, self.at_step = state_dict, at_step

    def _on_step(self) -> bool:
        if self.n_calls == self.at_step:
            self.model.policy.load_state_dict(self.state_dict)
        return True


def test_weights_changed_by_a_callback_during_a_rollout_are_used_at_once():
    # The sampler's cached constants must follow a load_state_dict in the middle of a rollout: the actions after it
    # are those of the loaded weights, exactly (same noise), never a mix of old and new weights.
    other = make_model("MlpPolicy", seed=1)
    model = make_model("MlpPolicy", seed=0)
    callback = _LoadWeightsMidRollout(other.policy.state_dict(), at_step=5)
    model.n_epochs = 1
    th.manual_seed(123)
    model.learn(SMALL["n_steps"], callback=callback)
    buffer_actions = model.rollout_buffer.actions.reshape(-1, 2)
    obs = th.as_tensor(model.rollout_buffer.observations.reshape(-1, 2))
    # Replay the rollout's noise: the sampler drew one (1, 2) normal per step from torch's global generator
    th.manual_seed(123)
    noises = [th.randn(1, 2) for _ in range(SMALL["n_steps"])]
    with th.no_grad():
        latent = other.policy._actor_latent(obs[5:6])
        expected = other.policy.velocity_net.euler(
            other.policy.velocity_net.condition(latent), noises[5], other.policy.flow_steps
        )
    assert np.allclose(buffer_actions[5], expected.numpy()[0], atol=1e-5)


def test_loading_a_ppo_file_is_a_clear_error(tmp_path):
    PPO("MlpPolicy", TargetEnv(), n_steps=16, batch_size=16).save(tmp_path / "ppo")
    with pytest.raises(ValueError, match="saved by another algorithm"):
        FPO.load(tmp_path / "ppo")


def test_loading_a_corrupted_file_is_a_clear_error(tmp_path):
    make_model("MlpPolicy").save(tmp_path / "model")
    data = (tmp_path / "model.zip").read_bytes()
    (tmp_path / "truncated.zip").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="Could not load an FPO model"):
        FPO.load(tmp_path / "truncated.zip")
    (tmp_path / "garbage.zip").write_bytes(b"not a zip at all")
    with pytest.raises(ValueError, match="Could not load an FPO model"):
        FPO.load(tmp_path / "garbage.zip")
    # A zip whose parameters are damaged
    with zipfile.ZipFile(tmp_path / "model.zip") as src, zipfile.ZipFile(tmp_path / "bad_params.zip", "w") as dst:
        for item in src.infolist():
            dst.writestr(item, b"\x00garbage" if item.filename == "policy.pth" else src.read(item.filename))
    with pytest.raises(ValueError, match="Could not load an FPO model"):
        FPO.load(tmp_path / "bad_params.zip")
    with pytest.raises(FileNotFoundError):
        FPO.load(tmp_path / "missing.zip")


def _rewrite_data(src_path, dst_path, edit) -> None:
    """Copy a saved model, passing its JSON ``data`` entry through ``edit``."""
    with zipfile.ZipFile(src_path) as src, zipfile.ZipFile(dst_path, "w") as dst:
        for item in src.infolist():
            content = src.read(item.filename)
            if item.filename == "data":
                data = json.loads(content)
                edit(data)
                content = json.dumps(data).encode()
            dst.writestr(item, content)


def test_loading_a_missing_file_names_the_path_given(tmp_path):
    for name in ("x.zip", "x"):
        with pytest.raises(FileNotFoundError) as info:
            FPO.load(tmp_path / name)
        message = str(info.value)
        assert str(tmp_path / name) in message and "x.zip.zip" not in message


def test_loading_a_file_of_another_version_says_so(tmp_path):
    model = make_model("MlpPolicy")
    model.save(tmp_path / "model")
    assert json.loads(zipfile.ZipFile(tmp_path / "model.zip").read("data"))["sb3_fpo_version"] == sb3_fpo.__version__

    def future_option(data):
        data["policy_kwargs"]["velocity_dropout"] = 0.1
        data["sb3_fpo_version"] = "9.9.9"

    _rewrite_data(tmp_path / "model.zip", tmp_path / "future.zip", future_option)
    with pytest.raises(ValueError, match=r"written by sb3_fpo 9\.9\.9 .*policy_kwargs are not accepted.*velocity_dropout"):
        FPO.load(tmp_path / "future.zip")

    def other_sizes(data):
        data["policy_kwargs"]["velocity_net_arch"] = [8]
        del data["sb3_fpo_version"]

    _rewrite_data(tmp_path / "model.zip", tmp_path / "resized.zip", other_sizes)
    with pytest.raises(ValueError, match=r"did not record itself.*parameters do not fit") as info:
        FPO.load(tmp_path / "resized.zip")
    assert "corrupted" not in str(info.value)


def test_unknown_policy_alias_lists_the_valid_names():
    with pytest.raises(ValueError, match=r"'MLPPolicy'.*MlpPolicy, CnnPolicy, MultiInputPolicy"):
        FPO("MLPPolicy", TargetEnv())


def test_tensorboard_runs_are_named_fpo(tmp_path):
    model = make_model("MlpPolicy", tensorboard_log=str(tmp_path))
    model.learn(SMALL["n_steps"])
    model.learn(SMALL["n_steps"])
    assert sorted(path.name for path in tmp_path.iterdir()) == ["FPO_1", "FPO_2"]


def test_sb3_tooling_end_to_end(tmp_path):
    """SubprocVecEnv + VecNormalize + EvalCallback + CheckpointCallback + TensorBoard + progress bar + evaluate_policy."""
    env = VecNormalize(make_vec_env(TargetEnv, n_envs=2, seed=0, vec_env_cls=SubprocVecEnv))
    eval_env = VecNormalize(make_vec_env(TargetEnv, n_envs=1, seed=1), training=False, norm_reward=False)
    model = FPO("MlpPolicy", env, n_steps=32, batch_size=32, n_epochs=2, seed=0, tensorboard_log=str(tmp_path / "tb"))
    callbacks = [
        EvalCallback(eval_env, eval_freq=32, n_eval_episodes=2, log_path=str(tmp_path / "eval"), verbose=0),
        CheckpointCallback(save_freq=32, save_path=str(tmp_path / "ckpt"), save_vecnormalize=True),
    ]
    model.learn(128, callback=callbacks, progress_bar=True)
    env.close()
    assert (tmp_path / "eval" / "evaluations.npz").exists()
    assert len(list((tmp_path / "ckpt").glob("*.zip"))) >= 2
    assert any((tmp_path / "tb").rglob("events.out.tfevents.*"))
    mean, std = evaluate_policy(model, eval_env, n_eval_episodes=3)
    assert np.isfinite(mean) and np.isfinite(std)
