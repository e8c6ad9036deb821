"""Unit tests of the pure-torch FPO mathematics in sb3_fpo.flow, on hand-computed numbers."""

import math

import pytest
import torch as th

from sb3_fpo import flow


def test_time_embedding_values():
    tau = th.tensor([[0.0], [0.5]])
    emb = flow.time_embedding(tau, 4)
    expected = th.tensor(
        [
            [1.0, 1.0, 0.0, 0.0],
            [math.cos(0.5), math.cos(1.0), math.sin(0.5), math.sin(1.0)],
        ]
    )
    assert emb.shape == (2, 4)
    assert th.allclose(emb, expected)


def test_time_convention_noise_at_zero_action_at_one():
    actions = th.tensor([[1.0, -2.0]])
    eps = th.tensor([[[0.3, 0.7]]])
    assert th.equal(flow.interpolate(actions, th.zeros(1, 1, 1), eps), eps)
    assert th.equal(flow.interpolate(actions, th.ones(1, 1, 1), eps), actions.unsqueeze(1))
    half = flow.interpolate(actions, th.full((1, 1, 1), 0.5), eps)
    assert th.allclose(half, th.tensor([[[0.65, -0.65]]]))
    # The target velocity moves the noise onto the action in unit time
    assert th.allclose(eps + flow.target_velocity(actions, eps), actions.unsqueeze(1))


def test_cfm_loss_hand_computed():
    actions = th.tensor([[1.0, 2.0]])  # (B=1, D=2)
    eps = th.tensor([[[0.0, 0.0], [1.0, 1.0]]])  # (B, N=2, D)
    velocity = th.tensor([[[1.0, 2.0], [0.0, 0.0]]])
    # u = a - eps = [[1, 2], [0, 1]] -> squared errors [[0, 0], [0, 1]]
    assert flow.cfm_loss(velocity, actions, eps, "mean").tolist() == [[0.0, 0.5]]
    assert flow.cfm_loss(velocity, actions, eps, "sum").tolist() == [[0.0, 1.0]]
    assert th.allclose(flow.cfm_loss(velocity, actions, eps, "sum_sqrt_d"), th.tensor([[0.0, 1.0 / math.sqrt(2.0)]]))
    with pytest.raises(ValueError, match="reduction"):
        flow.cfm_loss(velocity, actions, eps, "max")  # type: ignore[arg-type]


def test_sample_tau_uniform_and_discrete():
    th.manual_seed(0)
    tau = flow.sample_tau((1000, 4, 1), "uniform", 0.005, 0.995)
    assert tau.shape == (1000, 4, 1)
    assert tau.min() >= 0.005 and tau.max() <= 0.995
    assert abs(tau.mean().item() - 0.5) < 0.02
    grid = flow.sample_tau((1000, 4, 1), "discrete", grid_steps=5)
    assert th.allclose(th.unique(grid), th.tensor([0.0, 0.2, 0.4, 0.6, 0.8]))
    restricted = flow.sample_tau((1000, 1), "discrete", tau_min=0.3, tau_max=0.7, grid_steps=5)
    assert th.allclose(th.unique(restricted), th.tensor([0.4, 0.6]))
    with pytest.raises(ValueError, match="grid"):
        flow.sample_tau((3,), "discrete", tau_min=0.81, tau_max=0.99, grid_steps=5)


@pytest.mark.parametrize("method", ["euler", "midpoint", "heun"])
def test_integrators_exact_on_constant_field(method):
    x0 = th.tensor([[0.5, -1.0]])
    c = th.tensor([[2.0, 3.0]])
    x1 = flow.integrate(lambda x, tau: c.expand_as(x), x0, n_steps=4, method=method)
    assert th.allclose(x1, x0 + c)


def test_integrators_on_time_linear_field():
    # dx/dtau = tau  ->  x1 = x0 + 1/2. Euler (left Riemann sum) gives (K - 1) / (2K); 2nd-order methods are exact.
    x0 = th.zeros(1, 1)

    def field(x: th.Tensor, tau: float) -> th.Tensor:
        return th.full_like(x, tau)

    assert th.allclose(flow.integrate(field, x0, 4, "euler"), th.tensor([[3.0 / 8.0]]))
    for method in ("midpoint", "heun"):
        assert th.allclose(flow.integrate(field, x0, 4, method), th.tensor([[0.5]]))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "method, step_factor, tol",
    [
        ("euler", lambda h: 1 + h, 1e-6),
        ("midpoint", lambda h: 1 + h + h**2 / 2, 1e-6),
        ("heun", lambda h: 1 + h + h**2 / 2, 1e-6),
    ],
)
def test_integrators_on_linear_state_field(method, step_factor, tol):
    # dx/dtau = a x: each method multiplies x by its known amplification factor per step.
    a, k = -1.5, 10
    x0 = th.tensor([[1.0, 2.0]], dtype=th.float64)
    x1 = flow.integrate(lambda x, tau: a * x, x0, k, method)
    assert th.allclose(x1, x0 * step_factor(a / k) ** k, atol=tol)
    # ... and converges to the exact solution, second-order methods much faster
    error = (x1 - x0 * math.exp(a)).abs().max().item()
    assert error < (0.1 if method == "euler" else 5e-3)


def test_integrate_unknown_method():
    with pytest.raises(ValueError, match="integration method"):
        flow.integrate(lambda x, tau: x, th.zeros(1, 1), 2, "rk4")  # type: ignore[arg-type]


def test_initial_noise_modes():
    th.manual_seed(0)
    assert th.equal(flow.initial_noise((3, 2), "zero"), th.zeros(3, 2))
    fixed_a, fixed_b = flow.initial_noise((3, 2), "fixed", seed=7), flow.initial_noise((3, 2), "fixed", seed=7)
    assert th.equal(fixed_a, fixed_b) and not th.equal(fixed_a, flow.initial_noise((3, 2), "fixed", seed=8))
    assert th.equal(fixed_a, fixed_a[:1].expand(3, 2)) and th.equal(fixed_a[0], flow.initial_noise((1, 2), "fixed", seed=7)[0])
    assert not th.equal(flow.initial_noise((3, 2), "random"), flow.initial_noise((3, 2), "random"))


def test_log_ratio_modes():
    old = th.tensor([[1.0, 3.0], [2.0, 2.0]])
    new = th.tensor([[2.0, 1.0], [2.0, 4.0]])
    assert flow.fpo_log_ratio(old, new, "averaged").tolist() == [0.5, -1.0]
    assert flow.fpo_log_ratio(old, new, "per_sample").tolist() == [[-1.0, 2.0], [0.0, -2.0]]


def test_clamp_cfm():
    loss = th.tensor([1.0, 25.0])
    assert flow.clamp_cfm(loss, None) is loss
    assert flow.clamp_cfm(loss, 20.0).tolist() == [1.0, 20.0]


def test_clamp_log_ratio_gradients():
    x = th.tensor([-5.0, 0.5, 12.0], requires_grad=True)
    hard = flow.clamp_log_ratio(x, -3.0, 10.0, straight_through=False)
    assert hard.tolist() == [-3.0, 0.5, 10.0]
    hard.sum().backward()
    assert x.grad is not None and x.grad.tolist() == [0.0, 1.0, 0.0]

    x.grad = None
    st = flow.clamp_log_ratio(x, None, 10.0, straight_through=True)
    assert st.tolist() == [-5.0, 0.5, 10.0]
    st.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 1.0]
    assert flow.clamp_log_ratio(x, None, None) is x


def test_trust_regions_hand_computed():
    ratio = th.tensor([1.2, 1.2, 0.5, 0.5])
    adv = th.tensor([1.0, -1.0, 1.0, -2.0])
    eps = 0.1
    ppo = flow.surrogate_objective(ratio, adv, eps, "ppo")
    assert th.allclose(ppo, th.tensor([1.1, -1.2, 0.5, -1.8]))
    spo = flow.surrogate_objective(ratio, adv, eps, "spo")
    # rho A - |A| (rho - 1)^2 / (2 eps)
    assert th.allclose(spo, th.tensor([1.2 - 0.2, -1.2 - 0.2, 0.5 - 1.25, -1.0 - 2.5]))
    aspo = flow.surrogate_objective(ratio, adv, eps, "aspo")
    assert th.allclose(aspo, th.tensor([1.1, -1.4, 0.5, -3.5]))
    with pytest.raises(ValueError, match="trust region"):
        flow.surrogate_objective(ratio, adv, eps, "trpo")  # type: ignore[arg-type]


def test_aspo_selects_per_sample_before_averaging():
    # Advantage broadcast over the sample axis; selection depends on the sign of A only.
    ratio = th.tensor([[1.5, 0.5]])
    out = flow.surrogate_objective(ratio, th.tensor([-1.0]), 0.2, "aspo")
    assert out.shape == (1, 2)
    assert th.allclose(out, th.tensor([[-1.5 - 0.25 / 0.4, -0.5 - 0.25 / 0.4]]))


def test_kl_proxy():
    assert flow.kl_proxy(th.zeros(5)).item() == 0.0
    lr = th.tensor([0.1, -0.1])
    expected = ((lr.exp() - 1) - lr).mean()
    assert th.allclose(flow.kl_proxy(lr), expected)
    assert flow.kl_proxy(lr).item() > 0


def test_check_choice_lists_allowed_values():
    assert flow.check_choice("ratio_mode", "per_sample", flow.RatioMode) == "per_sample"
    with pytest.raises(ValueError, match="'averaged', 'per_sample'"):
        flow.check_choice("ratio_mode", "mean", flow.RatioMode)


def test_cfm_loss_noise_target_by_hand():
    # v = (1, 2), a = (1, 0), eps = (0, 1): u = a - eps = (1, -1), v - u = (0, 3), squared (0, 9)
    velocity = th.tensor([[[1.0, 2.0], [1.0, 2.0]]])  # (B=1, N=2, D=2)
    actions = th.tensor([[1.0, 0.0]])
    eps = th.tensor([[[0.0, 1.0], [0.0, 1.0]]])
    tau = th.tensor([[[0.5], [1.0]]])
    velocity_loss = flow.cfm_loss(velocity, actions, eps, "sum")
    assert th.allclose(velocity_loss, th.tensor([[9.0, 9.0]]))
    noise_loss = flow.cfm_loss(velocity, actions, eps, "sum", tau=tau, target="noise")
    assert th.allclose(noise_loss, th.tensor([[0.25 * 9.0, 9.0]]))  # tau^2 (v - u)^2
    # ... which is |eps_hat - eps|^2 with eps_hat = x_tau - tau v, x_tau = tau a + (1 - tau) eps
    x_tau = flow.interpolate(actions, tau, eps)
    eps_hat = x_tau - tau * velocity
    assert th.allclose(noise_loss, ((eps_hat - eps) ** 2).sum(-1))
    with pytest.raises(ValueError, match="needs the flow times"):
        flow.cfm_loss(velocity, actions, eps, target="noise")


@pytest.mark.parametrize("sigma", [1.0, 0.25])
def test_the_smallest_cfm_loss_of_gaussian_actions_is_pi_over_two_sigma(sigma):
    # The benchmarks read a run's mean CFM loss as a bound on its action spread: for actions ~ N(0, sigma^2), the
    # best velocity field E[a - eps | x_tau] is linear in x_tau, and its loss, averaged over tau ~ U[0, 1], is
    # (pi / 2) sigma per action dimension
    generator = th.Generator().manual_seed(0)
    n = 400_000
    actions = sigma * th.randn(n, 1, generator=generator)
    tau = flow.sample_tau((n, 1, 1), generator=generator)
    eps = th.randn(n, 1, 1, generator=generator)
    x = flow.interpolate(actions, tau, eps)

    def field(spread: float) -> th.Tensor:  # E[a - eps | x_tau] for actions ~ N(0, spread^2)
        return (tau * spread**2 - (1 - tau)) / (tau**2 * spread**2 + (1 - tau) ** 2) * x

    loss = flow.cfm_loss(field(sigma), actions, eps).mean().item()
    assert loss == pytest.approx(math.pi / 2 * sigma, rel=0.02)
    assert flow.cfm_loss(field(2 * sigma), actions, eps).mean().item() > loss  # another spread's field does worse
