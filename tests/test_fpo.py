"""Tests of the FPO algorithm on SB3: invariants of the ratio, options, logging, bad input."""

from __future__ import annotations

import copy
from functools import partial

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from conftest import SMALL, CorruptEnv, TargetEnv
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import configure

import sb3_fpo.fpo as fpo_module
from sb3_fpo import FPO, FlowPolicy
from sb3_fpo.buffers import FlowRolloutBuffer
from sb3_fpo.flow import kl_adaptive_learning_rate

MODES = [(r, t) for r in ("averaged", "per_sample") for t in ("ppo", "spo", "aspo")]


def small_fpo(env=None, **kwargs) -> FPO:
    params = copy.deepcopy(SMALL)
    params.update(kwargs)
    return FPO("MlpPolicy", env if env is not None else TargetEnv(), seed=0, **params)


@pytest.mark.parametrize(
    "n_envs, cfm_target, squash_output, fit_clipped",
    [
        (1, "velocity", False, False),
        (3, "velocity", False, False),
        (1, "noise", False, False),
        (1, "velocity", True, False),
        (3, "velocity", False, True),
    ],
    ids=["1env", "3envs", "noise_target", "squash", "fit_clipped"],
)
@pytest.mark.parametrize("ratio_mode, trust_region", MODES)
def test_ratio_is_one_on_first_minibatch(
    monkeypatch, ratio_mode, trust_region, n_envs, cfm_target, squash_output, fit_clipped
):
    # With several envs SB3 flattens the (n_steps, n_envs) buffer env-major: the stored (tau, eps) pairs and old
    # losses must follow their own transitions through that reshuffle, or the first ratios are not 1.
    seen: list[th.Tensor] = []
    original = fpo_module.surrogate_objective

    def spy(ratio, advantages, clip_range, region):
        seen.append(ratio.detach().clone())
        return original(ratio, advantages, clip_range, region)

    monkeypatch.setattr(fpo_module, "surrogate_objective", spy)
    model = small_fpo(
        make_vec_env(TargetEnv, n_envs=n_envs, seed=0),
        ratio_mode=ratio_mode,
        trust_region=trust_region,
        cfm_loss_clamp=20.0,
        log_ratio_clamp=(None, 10.0),
        log_ratio_straight_through=True,
        fit_clipped_actions=fit_clipped,
        policy_kwargs={**SMALL["policy_kwargs"], "cfm_target": cfm_target, "squash_output": squash_output},
    )
    assert model.policy.cfm_target == cfm_target and model.policy.squash_output == squash_output
    model.learn(2 * SMALL["n_steps"] * n_envs)
    minibatches_per_update = SMALL["n_epochs"] * SMALL["n_steps"] * n_envs // SMALL["batch_size"]
    assert len(seen) == 2 * minibatches_per_update
    expected_shape = (SMALL["batch_size"],) if ratio_mode == "averaged" else (SMALL["batch_size"], model.n_samples)
    for update in range(2):
        first = seen[update * minibatches_per_update]
        assert first.shape == expected_shape
        assert th.allclose(first, th.ones_like(first), atol=1e-6, rtol=0), (first - 1).abs().max()
    # ... and the policy does move during an update
    later = th.cat([r.flatten() for r in seen[1:minibatches_per_update]])
    assert (later - 1).abs().max() > 1e-4


def test_ratio_is_one_on_first_minibatch_with_dict_observations(monkeypatch):
    from stable_baselines3.common.envs import SimpleMultiObsEnv

    seen: list[th.Tensor] = []
    original = fpo_module.surrogate_objective
    monkeypatch.setattr(fpo_module, "surrogate_objective", lambda r, *a: (seen.append(r.detach().clone()), original(r, *a))[1])
    env = make_vec_env(lambda: SimpleMultiObsEnv(discrete_actions=False), n_envs=3, seed=0)
    model = FPO("MultiInputPolicy", env, seed=0, **SMALL)
    model.learn(SMALL["n_steps"] * 3)
    assert th.allclose(seen[0], th.ones_like(seen[0]), atol=1e-6, rtol=0), (seen[0] - 1).abs().max()
    assert (th.cat([r.flatten() for r in seen[1:]]) - 1).abs().max() > 1e-4


def test_old_cfm_pass_in_several_chunks_equals_one_pass():
    from stable_baselines3.common.envs import SimpleMultiObsEnv

    for env, policy in ((TargetEnv(), "MlpPolicy"), (SimpleMultiObsEnv(discrete_actions=False), "MultiInputPolicy")):
        model = FPO(policy, env, seed=0, **SMALL)
        space = model.observation_space
        n = 37
        if hasattr(space, "spaces"):
            obs = {key: np.stack([sub.sample() for _ in range(n)]).astype(np.float32) for key, sub in space.spaces.items()}
        else:
            obs = np.stack([space.sample() for _ in range(n)])
        actions = np.random.default_rng(0).uniform(-1, 1, (n, model.policy.action_dim)).astype(np.float32)
        tau, eps = model._draw_pairs(n, 8)
        whole = model.policy.cfm_losses_no_grad(obs, actions, tau, eps)
        chunked = model.policy.cfm_losses_no_grad(obs, actions, tau, eps, max_rows=8 * 5)  # 8 chunks of 5 transitions
        assert whole.shape == (n, 8) and th.allclose(whole, chunked, atol=1e-6)


def test_clip_range_vf_bounds_the_value_change():
    model = small_fpo(clip_range_vf=1e-3, learning_rate=1e-2)
    model.learn(SMALL["n_steps"])
    assert model.logger.name_to_value["train/clip_range_vf"] == 1e-3
    buffer = model.rollout_buffer
    data = next(buffer.get(SMALL["batch_size"]))
    *_, value_loss, _ = model.fpo_loss(data, 0.2, 1e-3)
    *_, unclipped, _ = model.fpo_loss(data, 0.2, None)
    assert th.isfinite(value_loss) and value_loss.item() != pytest.approx(unclipped.item())


def test_gradient_norm_is_logged_before_clipping():
    model = small_fpo(max_grad_norm=1e-6)
    model.learn(SMALL["n_steps"])
    values = model.logger.name_to_value
    assert values["train/grad_norm_max"] >= values["train/grad_norm_mean"] > 1e-6  # the norm before the clip


def test_training_without_straight_through_log_ratio_clamp():
    model = small_fpo(log_ratio_clamp=(None, 0.5), log_ratio_straight_through=False, learning_rate=3e-3)
    model.learn(2 * SMALL["n_steps"])
    assert 0.0 <= model.logger.name_to_value["train/log_ratio_clamp_fraction"] <= 1.0
    assert np.isfinite(model.logger.name_to_value["train/loss"])


@pytest.mark.parametrize("fit_clipped", [False, True])
def test_fit_clipped_actions_stores_the_executed_actions(tmp_path, fit_clipped):
    # The flow starts near its N(0, I) source, so about a third of the raw samples fall outside [-1, 1]
    model = small_fpo(fit_clipped_actions=fit_clipped)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(2 * SMALL["n_steps"])
    actions = model.rollout_buffer.actions
    outside = np.abs(actions) > 1
    log = read_progress(tmp_path)
    if fit_clipped:
        assert not outside.any() and (np.abs(actions) == 1).any()
        assert 0.15 < log["train/clipped_action_fraction"][-1] < 0.6
    else:
        assert outside.any()
        assert "train/clipped_action_fraction" not in log
    # ... and the minibatches, whose first ratios are 1 (test_ratio_is_one_on_first_minibatch), train on them
    data = next(model.rollout_buffer.get(batch_size=None))
    assert bool((data.actions.abs() <= 1).all()) == fit_clipped


def test_fit_clipped_actions_uses_each_dimensions_bounds_and_is_saved(tmp_path):
    env = TargetEnv()
    env.action_space = gym.spaces.Box(np.array([-0.2, -3.0], dtype=np.float32), np.array([0.4, 3.0], dtype=np.float32))
    model = small_fpo(env, fit_clipped_actions=True)
    model.learn(SMALL["n_steps"])
    actions = model.rollout_buffer.actions.reshape(-1, 2)
    assert actions[:, 0].min() == pytest.approx(-0.2) and actions[:, 0].max() == pytest.approx(0.4)
    assert np.abs(actions[:, 1]).max() < 3.0  # N(0, 1) samples stay inside the wide bound, unchanged
    model.save(tmp_path / "model.zip")
    assert FPO.load(tmp_path / "model.zip").fit_clipped_actions is True
    assert small_fpo().fit_clipped_actions is False
    with pytest.raises(ValueError, match="fit_clipped_actions must be True or False"):
        small_fpo(fit_clipped_actions="false")


def _minibatch_gradient(model: FPO, ratio_mode: str, trust_region: str) -> list[th.Tensor]:
    model.ratio_mode, model.trust_region = ratio_mode, trust_region  # type: ignore[assignment]
    data = next(model.rollout_buffer.get(batch_size=None))
    _, neg_cfm, _ = model.policy.evaluate_actions(data.observations, data.actions, data.tau, data.eps)
    log_ratio = fpo_module.fpo_log_ratio(data.old_cfm, -neg_cfm, ratio_mode)  # type: ignore[arg-type]
    objective = fpo_module.surrogate_objective(th.exp(log_ratio), data.advantages, 0.05, trust_region)  # type: ignore[arg-type]
    model.policy.zero_grad()
    (-objective.mean()).backward()
    return [p.grad.clone() if p.grad is not None else th.zeros_like(p) for p in model.policy.velocity_net.parameters()]


def test_averaged_and_per_sample_same_gradient_on_fresh_data():
    # At ratio 1 every mode's gradient is mean_b A_b * mean_i grad(-l_i): FPO and FPO++ agree on fresh data.
    model = small_fpo()
    model.learn(SMALL["n_steps"])  # one update, then collect a fresh rollout without training on it
    model.collect_rollouts(model.env, model._init_callback(None), model.rollout_buffer, SMALL["n_steps"])  # type: ignore[arg-type]
    model._store_flow_samples()
    reference = _minibatch_gradient(model, "averaged", "ppo")
    assert sum(g.abs().sum() for g in reference) > 0
    for ratio_mode, trust_region in MODES[1:]:
        grads = _minibatch_gradient(model, ratio_mode, trust_region)
        for g_ref, g in zip(reference, grads):
            assert th.allclose(g_ref, g, atol=1e-6, rtol=1e-4)


def test_flow_samples_reused_across_epochs(monkeypatch):
    # The same (tau, eps) pairs, old losses and their transitions come back every epoch.
    batches = []
    original_get = FlowRolloutBuffer.get

    def recording_get(self, batch_size=None):
        for data in original_get(self, batch_size):
            batches.append(data)
            yield data

    monkeypatch.setattr(FlowRolloutBuffer, "get", recording_get)
    model = small_fpo(n_epochs=2, batch_size=SMALL["n_steps"])
    model.learn(SMALL["n_steps"])
    assert len(batches) == 2
    first, second = batches
    order_1, order_2 = first.old_cfm[:, 0].argsort(), second.old_cfm[:, 0].argsort()
    assert th.equal(first.tau[order_1], second.tau[order_2])
    assert th.equal(first.eps[order_1], second.eps[order_2])
    assert th.equal(first.actions[order_1], second.actions[order_2])
    assert first.tau.shape == (SMALL["n_steps"], model.n_samples, 1)
    assert first.eps.shape == (SMALL["n_steps"], model.n_samples, 2)


def test_old_cfm_matches_policy_losses():
    model = small_fpo(n_samples=3)
    model.learn(SMALL["n_steps"])
    model.collect_rollouts(model.env, model._init_callback(None), model.rollout_buffer, SMALL["n_steps"])  # type: ignore[arg-type]
    model._store_flow_samples()
    data = next(model.rollout_buffer.get(batch_size=None))
    with th.no_grad():
        losses = model.policy.cfm_losses(data.observations, data.actions, data.tau, data.eps)
    assert th.allclose(losses, data.old_cfm, atol=1e-6)


def test_train_again_on_the_same_rollout_keeps_its_samples():
    # As PPO keeps the rollout's log-probabilities, a second train() keeps the rollout's (tau, eps) and old losses
    model = small_fpo(n_epochs=1)
    model.learn(SMALL["n_steps"])
    buffer = model.rollout_buffer
    tau, eps, old_cfm = buffer.tau, buffer.eps, buffer.old_cfm
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.train()
    assert buffer.tau is tau and buffer.eps is eps and buffer.old_cfm is old_cfm
    assert any(not th.equal(a, b) for a, b in zip(before, model.policy.parameters()))


def read_progress(tmp_path) -> dict[str, np.ndarray]:
    import csv

    with open(tmp_path / "progress.csv") as f:
        rows = list(csv.DictReader(f))
    return {key: np.array([float(r[key]) if r[key] else np.nan for r in rows]) for key in rows[0]}


def test_logs_ppo_keys_and_fpo_keys(tmp_path):
    model = small_fpo(cfm_loss_clamp=1e-3, log_ratio_clamp=0.5)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(2 * SMALL["n_steps"])
    log = read_progress(tmp_path)
    for key in (
        "train/policy_gradient_loss",
        "train/value_loss",
        "train/approx_kl",
        "train/clip_fraction",
        "train/loss",
        "train/explained_variance",
        "train/clip_range",
        "train/cfm_loss",
        "train/ratio_min",
        "train/ratio_mean",
        "train/ratio_max",
        "train/cfm_clamp_fraction",
        "train/log_ratio_clamp_fraction",
        "rollout/ep_rew_mean",
        "time/fps",
    ):
        assert key in log, key
    # A clamp at 1e-3 catches almost every CFM loss; the ratio then stays at 1
    assert log["train/cfm_clamp_fraction"][-1] > 0.9
    assert log["train/ratio_max"][-1] == pytest.approx(1.0, abs=1e-3)
    assert log["train/ratio_min"][-1] <= log["train/ratio_mean"][-1] <= log["train/ratio_max"][-1]


def test_guards_not_logged_when_inactive(tmp_path):
    model = small_fpo(log_ratio_clamp=None)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(SMALL["n_steps"])
    log = read_progress(tmp_path)
    assert "train/cfm_clamp_fraction" not in log and "train/log_ratio_clamp_fraction" not in log


def test_target_kl_stops_early_on_kl_proxy():
    model = small_fpo(n_epochs=10, target_kl=1e-12, learning_rate=1e-2)
    model.learn(SMALL["n_steps"])
    assert model._n_updates < 10
    full = small_fpo(n_epochs=10)
    full.learn(SMALL["n_steps"])
    assert full._n_updates == 10


def test_tau_sampling_discrete_uses_rollout_grid():
    model = small_fpo(tau_sampling="discrete", policy_kwargs=dict(velocity_net_arch=[8], flow_steps=4))
    model.learn(SMALL["n_steps"])
    assert th.allclose(th.as_tensor(np.unique(model.rollout_buffer.tau)), th.tensor([0.0, 0.25, 0.5, 0.75]))
    uniform = small_fpo(tau_min=0.25, tau_max=0.5)
    uniform.learn(SMALL["n_steps"])
    assert uniform.rollout_buffer.tau.min() >= 0.25 and uniform.rollout_buffer.tau.max() <= 0.5


@pytest.mark.parametrize("reduction, factor", [("sum", 2.0), ("sum_sqrt_d", 2.0 / np.sqrt(2.0))])
def test_cfm_reduction_scales_loss(reduction, factor):
    losses = {}
    for name in ("mean", reduction):
        model = small_fpo(policy_kwargs=dict(velocity_net_arch=[8], flow_steps=2, cfm_reduction=name))
        model.learn(SMALL["n_steps"])
        losses[name] = model.rollout_buffer.old_cfm
    # Same seed: same first rollout and pairs, the reduction only rescales (D = 2)
    np.testing.assert_allclose(losses[reduction], factor * losses["mean"], rtol=1e-5)


def test_seeded_runs_identical():
    params = []
    for _ in range(2):
        model = small_fpo(ratio_mode="per_sample", trust_region="aspo")
        model.learn(2 * SMALL["n_steps"])
        params.append(th.nn.utils.parameters_to_vector(model.policy.parameters()).detach())
    assert th.equal(params[0], params[1])
    other = FPO("MlpPolicy", TargetEnv(), seed=1, **copy.deepcopy(SMALL))
    other.learn(2 * SMALL["n_steps"])
    assert not th.equal(params[0], th.nn.utils.parameters_to_vector(other.policy.parameters()).detach())


def test_vec_env_with_several_envs():
    env = make_vec_env(TargetEnv, n_envs=3, seed=0)
    model = FPO("MlpPolicy", env, n_steps=16, batch_size=24, n_epochs=1, seed=0, policy_kwargs=dict(flow_steps=2))
    model.learn(3 * 16 * 2)
    assert model.rollout_buffer.old_cfm.shape == (16 * 3, model.n_samples)
    assert model.num_timesteps == 96


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_samples=0), "n_samples"),
        (dict(n_samples=2.5), "n_samples"),
        (dict(n_epochs=0), "n_epochs"),
        (dict(batch_size=1), "batch_size"),
        (dict(clip_range=0.0), "clip_range"),
        (dict(ent_coef=0.01), "entropy"),
        (dict(ratio_mode="mean"), "'averaged', 'per_sample'"),
        (dict(trust_region="clip"), "'ppo', 'spo', 'aspo'"),
        (dict(tau_sampling="beta"), "'uniform', 'discrete'"),
        (dict(tau_min=0.5, tau_max=0.5), "tau_min"),
        (dict(tau_max=1.5), "tau_max"),
        (dict(cfm_loss_clamp=0.0), "cfm_loss_clamp"),
        (dict(log_ratio_clamp=-1.0), "log_ratio_clamp"),
        (dict(log_ratio_clamp=(1.0, 2.0)), "contain 0"),
        (dict(policy_kwargs=dict(flow_steps=0)), "flow_steps"),
        (dict(policy_kwargs=dict(eval_flow_steps=0)), "eval_flow_steps"),
        (dict(policy_kwargs=dict(flow_method="rk4")), "'euler', 'midpoint', 'heun'"),
        (dict(policy_kwargs=dict(eval_flow_method="rk4")), "eval_flow_method"),
        (dict(policy_kwargs=dict(deterministic_noise="mean")), "'zero', 'fixed'"),
        (dict(policy_kwargs=dict(cfm_reduction="max")), "cfm_reduction"),
        (dict(policy_kwargs=dict(time_embed_dim=5)), "time_embed_dim"),
        (dict(policy_kwargs=dict(use_sde=True)), "gSDE"),
        (dict(policy_kwargs=dict(log_std_init=-2)), "log_std_init would do nothing.*source_std"),
        (dict(policy_kwargs=dict(full_std=False, use_expln=True)), "full_std, use_expln would do nothing"),
        (dict(policy_kwargs=dict(velocity_net_arch=[])), "velocity_net_arch"),
        (dict(policy_kwargs=dict(source_std=0.0)), "source_std"),
        (dict(policy_kwargs=dict(source_std=float("nan"))), "source_std"),
    ],
)
def test_bad_hyperparameters_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FPO("MlpPolicy", TargetEnv(), **kwargs)


@pytest.mark.parametrize("env_id", ["CartPole-v1"])
def test_non_box_action_space_rejected(env_id):
    with pytest.raises(ValueError, match="Box action space"):
        FPO("MlpPolicy", env_id)
    with pytest.raises(ValueError, match="Box action space"):
        FPO("MlpPolicy", gym.make(env_id))


def test_impossible_rollout_size():
    with pytest.raises(ValueError, match="n_steps \\* n_envs"):
        FPO("MlpPolicy", TargetEnv(), n_steps=1)


def test_wrong_policy_class_rejected():
    with pytest.raises(ValueError, match="FlowPolicy"):
        FPO(PPO.policy_aliases["MlpPolicy"], TargetEnv())  # type: ignore[arg-type]


@pytest.mark.parametrize("what, match", [("obs", "NaN or inf observations"), ("reward", "NaN or inf rewards")])
def test_nan_in_rollout_raises_before_update(what, match):
    model = small_fpo(env=CorruptEnv(what))
    before = th.nn.utils.parameters_to_vector(model.policy.parameters()).detach().clone()
    with pytest.raises(ValueError, match=match):
        model.learn(SMALL["n_steps"])
    assert th.equal(before, th.nn.utils.parameters_to_vector(model.policy.parameters()).detach())


def test_overflowing_ratio_keeps_finite_gradients_with_default_clamp():
    # A log-ratio of 100 overflows exp() in float32; the default clamp keeps it finite.
    log_ratio = th.tensor([100.0, -100.0, 0.0], requires_grad=True)
    model = small_fpo()
    low, high = model.log_ratio_clamp
    ratio = th.exp(fpo_module.clamp_log_ratio(log_ratio, low, high, model.log_ratio_straight_through))
    objective = fpo_module.surrogate_objective(ratio, th.tensor([-1.0, 1.0, 1.0]), 0.2, "ppo").sum()
    objective.backward()
    assert th.isfinite(objective) and th.isfinite(log_ratio.grad).all()
    unguarded = th.exp(log_ratio.detach().requires_grad_())
    assert not th.isfinite(fpo_module.surrogate_objective(unguarded, th.tensor([-1.0, 1.0, 1.0]), 0.2, "ppo")).all()


def test_non_finite_gradient_raises_before_the_step(monkeypatch):
    model = small_fpo()
    before = th.nn.utils.parameters_to_vector(model.policy.parameters()).detach().clone()
    monkeypatch.setattr(th.nn.utils, "clip_grad_norm_", lambda *args, **kwargs: th.tensor(float("nan")))
    with pytest.raises(ValueError, match=r"Non-finite gradient.*not changed"):
        model.learn(SMALL["n_steps"])
    assert th.equal(before, th.nn.utils.parameters_to_vector(model.policy.parameters()).detach())


def test_non_finite_loss_raises(monkeypatch):
    model = small_fpo()
    monkeypatch.setattr(fpo_module, "kl_proxy", lambda lr: lr.mean())
    original = fpo_module.surrogate_objective
    monkeypatch.setattr(fpo_module, "surrogate_objective", lambda *a: original(*a) * float("nan"))
    with pytest.raises(ValueError, match="non-finite"):
        model.learn(SMALL["n_steps"])


def test_flow_policy_rejects_gsde():
    env = TargetEnv()
    with pytest.raises(ValueError, match="gSDE"):
        FlowPolicy(env.observation_space, env.action_space, lambda _: 1e-3, use_sde=True)


def test_flow_policy_is_an_actor_critic_policy():
    model = small_fpo()
    assert isinstance(model.policy, FlowPolicy)
    with pytest.raises(NotImplementedError, match="closed-form"):
        model.policy.get_distribution(th.zeros(1, 2))


def test_adaptive_learning_rate_waits_for_the_critic_warmup():
    # While the policy is frozen its KL proxy is 0: adapting then would raise the rate x1.5 per minibatch
    n_steps = SMALL["n_steps"]
    model = small_fpo(learning_rate=1e-4, adaptive_lr_target_kl=0.01, critic_warmup_steps=3 * n_steps)
    model.learn(3 * n_steps)
    assert model.logger.name_to_value["train/critic_only"] == 1.0
    assert model.adaptive_lr == 1e-4 and model.policy.optimizer.param_groups[0]["lr"] == 1e-4
    model.learn(n_steps, reset_num_timesteps=False)  # the first policy update adapts, from the intended rate
    assert model.logger.name_to_value["train/critic_only"] == 0.0
    assert 1e-4 < model.adaptive_lr <= 1e-4 * 1.5 ** (SMALL["n_epochs"] * n_steps // SMALL["batch_size"])


def test_adaptive_learning_rate_once_per_update(monkeypatch):
    # adaptive_lr_every="update": one adaptation per update, on the mean KL proxy of its minibatches
    kls = []
    original = FPO.fpo_loss

    def recording_loss(self, *args):
        out = original(self, *args)
        kls.append(out[3].kl_proxy.item())
        return out

    monkeypatch.setattr(FPO, "fpo_loss", recording_loss)
    model = small_fpo(learning_rate=1e-3, adaptive_lr_target_kl=0.01, adaptive_lr_every="update")
    model.learn(2 * SMALL["n_steps"])  # two updates of 2 epochs x 2 minibatches
    assert len(kls) == 8
    expected = 1e-3
    for update in (kls[:4], kls[4:]):
        expected = kl_adaptive_learning_rate(expected, float(np.mean(update)), 0.01, model.adaptive_lr_range)
    assert model.adaptive_lr == pytest.approx(expected) and expected != 1e-3
    assert model.policy.optimizer.param_groups[0]["lr"] == pytest.approx(expected)
    with pytest.raises(ValueError, match="adaptive_lr_every"):
        small_fpo(adaptive_lr_target_kl=0.01, adaptive_lr_every="epoch")


def test_adaptive_learning_rate_off_after_loading_with_no_target(tmp_path):
    trained = small_fpo(learning_rate=1e-3, adaptive_lr_target_kl=0.01)
    trained.learn(SMALL["n_steps"])
    trained.save(tmp_path / "model")
    loaded = FPO.load(tmp_path / "model", env=TargetEnv(), custom_objects={"adaptive_lr_target_kl": None})
    loaded.learn(SMALL["n_steps"])  # no AssertionError: the target alone decides whether the rate adapts
    assert loaded.adaptive_lr is None and loaded.policy.optimizer.param_groups[0]["lr"] == 1e-3


def test_kl_adaptive_learning_rate(tmp_path):
    model = small_fpo(learning_rate=1e-3, adaptive_lr_target_kl=0.01, adaptive_lr_range=(1e-4, 2e-3))
    assert model.adaptive_lr == 1e-3
    rate = partial(kl_adaptive_learning_rate, target_kl=0.01, bounds=(1e-4, 2e-3))
    assert rate(1e-3, 0.05) == pytest.approx(1e-3 / 1.5)  # above twice the target: / 1.5
    assert rate(1e-3, 0.02) == rate(1e-3, 0.005) == 1e-3  # within [target / 2, 2 target]: unchanged
    assert rate(1e-3, 0.001) == pytest.approx(1.5e-3)  # below half the target: * 1.5
    assert rate(1.5e-3, 0.001) == 2e-3 and rate(1.2e-4, 1.0) == 1e-4  # within the bounds

    # In training: the KL proxy is ~0 on the first minibatch of each update, so the rate rises from 1e-3
    trained = small_fpo(learning_rate=1e-3, adaptive_lr_target_kl=0.01, adaptive_lr_range=(1e-4, 2e-3))
    trained.learn(SMALL["n_steps"])
    assert trained.adaptive_lr > 1e-3 and trained.policy.optimizer.param_groups[0]["lr"] == trained.adaptive_lr
    assert trained.logger.name_to_value["train/learning_rate"] == trained.adaptive_lr
    trained.save(tmp_path / "model")
    loaded = FPO.load(tmp_path / "model", env=TargetEnv())
    assert loaded.adaptive_lr == trained.adaptive_lr  # the adapted rate carries on after loading
    loaded.learn(SMALL["n_steps"])

    off = small_fpo(learning_rate=1e-3)
    off.learn(SMALL["n_steps"])
    assert off.adaptive_lr is None and off.policy.optimizer.param_groups[0]["lr"] == 1e-3
    for bad in (dict(adaptive_lr_target_kl=0.0), dict(adaptive_lr_target_kl=0.01, adaptive_lr_range=(1e-3, 1e-4))):
        with pytest.raises(ValueError, match="adaptive_lr"):
            small_fpo(**bad)


def test_the_recorded_defaults_are_saved_and_older_saves_keep_theirs(tmp_path):
    import json
    import zipfile

    from sb3_fpo.policies import CFM_TARGET, LEGACY_DEFAULTS, VELOCITY_NET_ARCH, recorded_defaults

    assert set(LEGACY_DEFAULTS) == set(recorded_defaults())  # every recorded default has the value of older saves

    model = FPO("MlpPolicy", TargetEnv(), n_steps=32, batch_size=16, seed=0)
    assert model.policy.velocity_net_arch == list(VELOCITY_NET_ARCH) == model.policy_kwargs["velocity_net_arch"]
    assert model.policy.cfm_target == CFM_TARGET == model.policy_kwargs["cfm_target"]
    user_kwargs = dict(flow_steps=3)
    FPO("MlpPolicy", TargetEnv(), n_steps=32, policy_kwargs=user_kwargs)
    assert user_kwargs == dict(flow_steps=3)  # the user's dict is not changed

    # A file saved before the defaults were recorded: its policy_kwargs lack velocity_net_arch and cfm_target
    legacy = dict(velocity_net_arch=[32, 32, 32, 32], cfm_target="velocity")
    old = FPO("MlpPolicy", TargetEnv(), n_steps=32, seed=0, policy_kwargs=legacy)
    old.save(tmp_path / "old.zip")
    with zipfile.ZipFile(tmp_path / "old.zip") as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    data = json.loads(entries["data"])
    del data["policy_kwargs"]["velocity_net_arch"], data["policy_kwargs"]["cfm_target"]
    entries["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(tmp_path / "old.zip", "w") as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    loaded = FPO.load(tmp_path / "old.zip", device="cpu")
    assert loaded.policy.velocity_net_arch == [32, 32, 32, 32] and loaded.policy.cfm_target == "velocity"
    obs = np.stack([TargetEnv().observation_space.sample() for _ in range(5)])
    assert np.array_equal(loaded.predict(obs, deterministic=True)[0], old.predict(obs, deterministic=True)[0])


def test_default_guards_keep_one_outlier_from_carrying_the_gradient():
    # Under the default CFM-loss clamp (20) a log-ratio can reach 20. With the former default guard, (None, 20) with a
    # straight-through gradient, it never acted, and one A < 0 pair at that log-ratio carried ~100% of the policy
    # gradient's norm under ASPO (a code review found one at 25 doing so in a logged 256-transition minibatch).
    model = small_fpo()
    generator = th.Generator().manual_seed(0)
    old = 2.0 * th.rand(256, model.n_samples, generator=generator)
    new = (old + 0.05 * th.randn(old.shape, generator=generator)).clamp(min=0.0)
    old[0, 0], new[0, 0] = model.cfm_loss_clamp, 0.0  # the largest log-ratio the CFM clamp lets through
    advantages = th.randn(256, generator=generator)
    advantages[0] = -1.0
    new.requires_grad_(True)
    old_cfm, new_cfm = (fpo_module.clamp_cfm(x, model.cfm_loss_clamp) for x in (old, new))
    low, high = model.log_ratio_clamp
    raw = fpo_module.fpo_log_ratio(old_cfm, new_cfm, model.ratio_mode)
    ratio = th.exp(fpo_module.clamp_log_ratio(raw, low, high, model.log_ratio_straight_through))
    loss = -fpo_module.surrogate_objective(ratio, advantages, 0.2, model.trust_region).mean()
    loss.backward()
    assert th.isfinite(new.grad).all() and new.grad.norm() > 0
    assert new.grad[0, 0].abs() / new.grad.norm() < 0.5
