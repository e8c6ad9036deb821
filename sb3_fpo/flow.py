"""
The mathematics of Flow Policy Optimization, as small pure-torch functions.

Nothing here imports Stable-Baselines3: the SB3 classes in :mod:`sb3_fpo.policies` and
:mod:`sb3_fpo.fpo` only call these functions, so every formula can be read (and unit-tested) in one place.

Conventions (shared by both papers):

* flow time ``tau`` in [0, 1], **noise at tau = 0, action at tau = 1**;
* noised action ``x_tau = tau * a + (1 - tau) * eps`` with ``eps ~ N(0, I)``;
* conditional target velocity ``u = a - eps`` (constant along the straight path);
* per-sample CFM loss ``l(tau_i, eps_i) = reduce_d (v(x_tau, tau) - u) ** 2``;
* sampling integrates ``dx/dtau = v(x, tau)`` from tau = 0 (``x_0 = eps`` or ``0``) to tau = 1.

References:

* FPO: McAllister et al., "Flow Matching Policy Gradients", https://arxiv.org/abs/2507.21053
* FPO++: Yi, Choi et al., "Flow Policy Gradients for Robot Control", https://arxiv.org/abs/2602.02481
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal, get_args

import torch as th

CfmReduction = Literal["mean", "sum", "sum_sqrt_d"]
CfmTarget = Literal["velocity", "noise"]
RatioMode = Literal["averaged", "per_sample"]
TrustRegion = Literal["ppo", "spo", "aspo"]
TauSampling = Literal["uniform", "discrete"]
AdaptEvery = Literal["minibatch", "update"]
IntegrationMethod = Literal["euler", "midpoint", "heun"]
NoiseMode = Literal["zero", "random", "fixed"]
#: Starting noises of a deterministic ``predict`` (``random`` is ``predict(deterministic=False)``)
DeterministicNoise = Literal["zero", "fixed"]

VelocityFn = Callable[[th.Tensor, float], th.Tensor]


def check_choice(name: str, value: str, allowed: object) -> str:
    """Validate a ``Literal`` option once, with an error that lists the allowed values."""
    choices = get_args(allowed)
    if value not in choices:
        raise ValueError(f"Unknown {name}={value!r}. Allowed values: {', '.join(repr(c) for c in choices)}.")
    return value


# --------------------------------------------------------------------------------------------------
# Flow matching
# --------------------------------------------------------------------------------------------------


def time_embedding(tau: th.Tensor, dim: int) -> th.Tensor:
    """
    Sinusoidal embedding ``[cos(2^k tau), sin(2^k tau)]`` for ``k = 0 .. dim/2 - 1`` (FPO's embedding).

    :param tau: flow times, shape ``(..., 1)``
    :param dim: embedding size (even)
    :return: shape ``(..., dim)``
    """
    freqs = 2.0 ** th.arange(dim // 2, device=tau.device, dtype=tau.dtype)
    scaled = tau * freqs
    return th.cat([th.cos(scaled), th.sin(scaled)], dim=-1)


def interpolate(actions: th.Tensor, tau: th.Tensor, eps: th.Tensor) -> th.Tensor:
    """
    Point on the straight path from noise to action: ``x_tau = tau * a + (1 - tau) * eps``.

    :param actions: shape ``(B, D)``
    :param tau: shape ``(B, N, 1)``
    :param eps: shape ``(B, N, D)``
    :return: shape ``(B, N, D)``
    """
    return tau * actions.unsqueeze(-2) + (1.0 - tau) * eps


def target_velocity(actions: th.Tensor, eps: th.Tensor) -> th.Tensor:
    """Conditional flow-matching target ``u = a - eps``, shape ``(B, N, D)``."""
    return actions.unsqueeze(-2) - eps


def reduce_action_dims(squared_error: th.Tensor, reduction: CfmReduction) -> th.Tensor:
    """
    Reduce the squared velocity error over the action dimension (last axis).

    ``mean`` is FPO's choice, ``sum_sqrt_d`` (sum divided by sqrt(D)) is FPO++'s, ``sum`` is the plain
    squared norm. The reduction scales the log-ratio, so it interacts with the clip range.
    """
    if reduction == "mean":
        return squared_error.mean(dim=-1)
    if reduction == "sum":
        return squared_error.sum(dim=-1)
    if reduction == "sum_sqrt_d":
        return squared_error.sum(dim=-1) / math.sqrt(squared_error.shape[-1])
    raise ValueError(f"Unknown cfm reduction {reduction!r}")


def cfm_loss(
    velocity: th.Tensor,
    actions: th.Tensor,
    eps: th.Tensor,
    reduction: CfmReduction = "mean",
    tau: th.Tensor | None = None,
    target: CfmTarget = "velocity",
) -> th.Tensor:
    """
    Per-sample conditional flow-matching loss.

    * ``velocity`` (the FPO paper's formula): ``reduce_d (v - (a - eps))^2``;
    * ``noise`` (the official FPO code's default output mode, "u_but_supervise_as_eps"): the network still predicts
      the velocity, and the error is measured on the noise it implies, ``eps_hat = x_tau - tau v``:
      ``reduce_d (eps_hat - eps)^2 = reduce_d tau^2 (v - (a - eps))^2``, the velocity loss weighted by ``tau^2``,
      which puts the weight on flow times near the action (the FPO paper's Table 1: 759 vs 665 for the velocity loss,
      mean over 10 Playground tasks).

    :param velocity: predicted velocity at ``(x_tau, tau)``, shape ``(B, N, D)``
    :param actions: the actions the policy took, shape ``(B, D)``
    :param eps: the noise of each sample, shape ``(B, N, D)``
    :param reduction: reduction over the action dimensions (see :func:`reduce_action_dims`)
    :param tau: flow times, shape ``(B, N, 1)`` (needed by ``target="noise"``)
    :param target: ``velocity`` or ``noise``
    :return: shape ``(B, N)``
    """
    squared_error = (velocity - target_velocity(actions, eps)) ** 2
    if target == "noise":
        if tau is None:
            raise ValueError("cfm_loss(target='noise') needs the flow times tau.")
        squared_error = tau**2 * squared_error
    elif target != "velocity":
        raise ValueError(f"Unknown cfm target {target!r}")
    return reduce_action_dims(squared_error, reduction)


def sample_tau(
    shape: tuple[int, ...],
    mode: TauSampling = "uniform",
    tau_min: float = 0.0,
    tau_max: float = 1.0,
    grid_steps: int = 10,
    device: th.device | str = "cpu",
    generator: th.Generator | None = None,
) -> th.Tensor:
    """
    Draw flow times for the Monte-Carlo CFM loss.

    * ``uniform``: ``tau ~ U[tau_min, tau_max]`` (FPO paper: [0, 1]; FPO++: [0.005, 0.995]);
    * ``discrete``: ``tau`` uniform on the integration grid ``{k / grid_steps}``, ``k = 0 .. grid_steps - 1``,
      restricted to ``[tau_min, tau_max]`` (the official FPO code trains on the sampler's own grid).

    :param shape: output shape, usually ``(B, N, 1)``
    """
    if mode == "uniform":
        u = th.rand(shape, device=device, generator=generator)
        return tau_min + (tau_max - tau_min) * u
    if mode == "discrete":
        grid = th.arange(grid_steps, device=device, dtype=th.float32) / grid_steps
        grid = grid[(grid >= tau_min) & (grid <= tau_max)]
        if grid.numel() == 0:
            raise ValueError(f"No point of the {grid_steps}-step grid lies in [tau_min={tau_min}, tau_max={tau_max}].")
        idx = th.randint(grid.numel(), shape, device=device, generator=generator)
        return grid[idx]
    raise ValueError(f"Unknown tau sampling {mode!r}")


def draw_pairs(
    n: int,
    n_samples: int,
    action_dim: int,
    tau_sampling: TauSampling = "uniform",
    tau_min: float = 0.0,
    tau_max: float = 1.0,
    grid_steps: int = 10,
    device: th.device | str = "cpu",
    generator: th.Generator | None = None,
) -> tuple[th.Tensor, th.Tensor]:
    """
    The Monte-Carlo pairs of the CFM loss: ``n_samples`` (tau, eps) pairs for each of ``n`` transitions, tau from
    :func:`sample_tau`, eps standard normal. Drawn on ``device`` from torch's global RNG, or from ``generator``
    (which must live on ``device``).

    :return: ``tau`` of shape ``(n, n_samples, 1)`` and ``eps`` of shape ``(n, n_samples, action_dim)``
    """
    tau = sample_tau((n, n_samples, 1), tau_sampling, tau_min, tau_max, grid_steps, device, generator)
    eps = th.randn((n, n_samples, action_dim), device=device, generator=generator)
    return tau, eps


# --------------------------------------------------------------------------------------------------
# Samplers (the policy is a black box for FPO: any integrator, any step count)
# --------------------------------------------------------------------------------------------------


def integration_times(n_steps: int, method: IntegrationMethod = "euler") -> list[float]:
    """The flow times at which :func:`integrate` evaluates the velocity (so callers can precompute per-time terms)."""
    dt = 1.0 / n_steps
    times = {k * dt for k in range(n_steps)}
    if method == "midpoint":
        times |= {k * dt + 0.5 * dt for k in range(n_steps)}
    elif method == "heun":
        times |= {k * dt + dt for k in range(n_steps)}
    return sorted(times)


def integrate(velocity_fn: VelocityFn, x0: th.Tensor, n_steps: int, method: IntegrationMethod = "euler") -> th.Tensor:
    """
    Integrate ``dx/dtau = v(x, tau)`` from ``tau = 0`` to ``tau = 1`` with ``n_steps`` uniform steps.

    :param velocity_fn: ``v(x, tau)`` with ``tau`` a Python float, one of :func:`integration_times`
    :param x0: starting point (noise, or zeros for zero-sampling), shape ``(B, D)``
    :param method: ``euler`` (1 evaluation per step), ``midpoint`` or ``heun`` (2 evaluations per step,
        second order)
    :return: ``x_1``, shape ``(B, D)``
    """
    dt = 1.0 / n_steps
    x = x0
    for k in range(n_steps):
        v = velocity_fn(x, k * dt)
        if method == "euler":
            x = x + dt * v
        elif method == "midpoint":
            x = x + dt * velocity_fn(x + 0.5 * dt * v, k * dt + 0.5 * dt)
        elif method == "heun":
            v_next = velocity_fn(x + dt * v, k * dt + dt)
            x = x + 0.5 * dt * (v + v_next)
        else:
            raise ValueError(f"Unknown integration method {method!r}")
    return x


def initial_noise(
    shape: tuple[int, ...],
    mode: NoiseMode,
    device: th.device | str = "cpu",
    seed: int = 0,
) -> th.Tensor:
    """
    Starting point ``x_0`` of the sampler.

    * ``random``: fresh ``N(0, I)`` noise from torch's global generator (seeded by SB3's ``set_random_seed``);
    * ``zero``: ``x_0 = 0`` (FPO++ zero-sampling; the mode of the noise, deterministic);
    * ``fixed``: one ``N(0, I)`` draw of the last dimension, from a generator seeded with ``seed``, shared by every
      row: the same starting point for every observation and every call, whatever the batch size.
    """
    if mode == "random":
        return th.randn(shape, device=device)
    if mode == "zero":
        return th.zeros(shape, device=device)
    if mode == "fixed":
        generator = th.Generator(device="cpu").manual_seed(seed)
        return th.randn(shape[-1:], generator=generator).to(device).expand(shape)
    raise ValueError(f"Unknown noise mode {mode!r}")


# --------------------------------------------------------------------------------------------------
# Ratios, guards and trust regions
# --------------------------------------------------------------------------------------------------


def clamp_cfm(loss: th.Tensor, max_value: float | None) -> th.Tensor:
    """Clamp each CFM loss from above (FPO++: 20). ``None`` disables the guard."""
    if max_value is None:
        return loss
    return loss.clamp(max=max_value)


def fpo_log_ratio(old_cfm: th.Tensor, new_cfm: th.Tensor, mode: RatioMode = "averaged") -> th.Tensor:
    """
    FPO log-ratio, the surrogate of ``log pi_new(a|o) - log pi_old(a|o)``.

    * ``averaged`` (FPO): ``mean_i l_old,i - mean_i l_new,i``, shape ``(B,)``;
    * ``per_sample`` (FPO++): ``l_old,i - l_new,i``, shape ``(B, N)``.

    :param old_cfm: CFM losses of the parameters that collected the data, shape ``(B, N)``
    :param new_cfm: CFM losses of the current parameters on the same ``(tau, eps)`` pairs, shape ``(B, N)``
    """
    if mode == "averaged":
        return old_cfm.mean(dim=-1) - new_cfm.mean(dim=-1)
    if mode == "per_sample":
        return old_cfm - new_cfm
    raise ValueError(f"Unknown ratio mode {mode!r}")


def clamp_log_ratio(
    log_ratio: th.Tensor,
    low: float | None,
    high: float | None,
    straight_through: bool = False,
) -> th.Tensor:
    """
    Clamp the log-ratio to ``[low, high]`` (``None`` = unbounded on that side).

    With ``straight_through=True`` the forward value is clamped but the gradient is the identity
    (FPO++ clamps at 10 this way, so a large ratio cannot overflow yet still receives a gradient);
    otherwise clamped entries get zero gradient (the official FPO code clamps to +-3 this way).
    """
    if low is None and high is None:
        return log_ratio
    clamped = log_ratio.clamp(min=low, max=high)
    if straight_through:
        return log_ratio + (clamped - log_ratio).detach()
    return clamped


def ppo_objective(ratio: th.Tensor, advantages: th.Tensor, clip_range: float) -> th.Tensor:
    """PPO clipped surrogate ``min(rho A, clip(rho, 1 - eps, 1 + eps) A)``, elementwise (to maximise)."""
    return th.min(ratio * advantages, th.clamp(ratio, 1.0 - clip_range, 1.0 + clip_range) * advantages)


def spo_objective(ratio: th.Tensor, advantages: th.Tensor, clip_range: float) -> th.Tensor:
    """SPO penalty surrogate ``rho A - |A| (rho - 1)^2 / (2 eps)``, elementwise (to maximise)."""
    return ratio * advantages - advantages.abs() * (ratio - 1.0) ** 2 / (2.0 * clip_range)


def surrogate_objective(
    ratio: th.Tensor,
    advantages: th.Tensor,
    clip_range: float,
    trust_region: TrustRegion = "ppo",
) -> th.Tensor:
    """
    Elementwise policy objective (to maximise).

    ``advantages`` of shape ``(B,)`` is broadcast over the sample axis when ``ratio`` is ``(B, N)``.
    ``aspo`` (FPO++) selects PPO's clip where ``A >= 0`` and SPO where ``A < 0``, per element, before any
    averaging.
    """
    if ratio.dim() == advantages.dim() + 1:
        advantages = advantages.unsqueeze(-1)
    if trust_region == "ppo":
        return ppo_objective(ratio, advantages, clip_range)
    if trust_region == "spo":
        return spo_objective(ratio, advantages, clip_range)
    if trust_region == "aspo":
        return th.where(
            advantages >= 0,
            ppo_objective(ratio, advantages, clip_range),
            spo_objective(ratio, advantages, clip_range),
        )
    raise ValueError(f"Unknown trust region {trust_region!r}")


def kl_proxy(log_ratio: th.Tensor) -> th.Tensor:
    """
    Schulman's k3 estimator ``mean((rho - 1) - log rho)`` on the FPO log-ratio.

    A *proxy*: the FPO ratio is a ratio of ELBO surrogates, not of likelihoods, so this is not the true KL
    between the old and new flow policies. It is what ``target_kl`` is compared against.
    """
    return th.mean(th.expm1(log_ratio) - log_ratio)


def kl_adaptive_learning_rate(learning_rate: float, kl: float, target_kl: float, bounds: tuple[float, float]) -> float:
    """
    rsl_rl's adaptive schedule (robotics PPO, FPO++): the learning rate divided by 1.5 when ``kl`` exceeds twice
    ``target_kl``, multiplied by 1.5 when it is below half of it, unchanged in between; kept within ``bounds``.
    """
    low, high = bounds
    if kl > 2.0 * target_kl:
        return max(learning_rate / 1.5, low)
    if kl < 0.5 * target_kl:
        return min(learning_rate * 1.5, high)
    return learning_rate
