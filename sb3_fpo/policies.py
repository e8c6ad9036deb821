"""Flow-matching actor-critic policies for FPO (drop-in for SB3's ``ActorCriticPolicy``)."""

from __future__ import annotations

import itertools
import math
from functools import partial
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import ActorCriticPolicy, BaseModel
from stable_baselines3.common.torch_layers import (
    BaseFeaturesExtractor,
    CombinedExtractor,
    FlattenExtractor,
    NatureCNN,
)
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from stable_baselines3.common.utils import obs_as_tensor
from torch import nn
from torch.nn import functional as F

from sb3_fpo.flow import (
    CfmReduction,
    CfmTarget,
    DeterministicNoise,
    IntegrationMethod,
    NoiseMode,
    cfm_loss,
    check_choice,
    draw_pairs,
    initial_noise,
    integrate,
    integration_times,
    interpolate,
    time_embedding,
)

#: Most (transition, pair) rows per chunk of :meth:`FlowPolicy.cfm_losses_no_grad`
CFM_CHUNK_ROWS = 1 << 16

SQUASH_BOUND = 1.0 - 1e-6
"""With ``squash_output``, stored actions are clipped to ``[-SQUASH_BOUND, SQUASH_BOUND]`` before ``atanh``."""


def select_rows(observations: Any, rows: Any) -> Any:
    """The ``rows`` of an observation array, or of every key's array for ``Dict`` observations."""
    if isinstance(observations, dict):
        return {key: value[rows] for key, value in observations.items()}
    return observations[rows]


#: Default hidden sizes of the velocity MLP (SB3 PPO's actor size)
VELOCITY_NET_ARCH = (64, 64)
#: Default target of the CFM loss
CFM_TARGET: CfmTarget = "velocity"
#: For each policy default that ``FPO`` records in a new model's ``policy_kwargs`` (so that a later change of the
#: default leaves a saved model's network and loss as they were): the value a model saved before it was recorded gets
#: when loaded, the default of its time
LEGACY_DEFAULTS: dict[str, Any] = {"velocity_net_arch": [32, 32, 32, 32], "cfm_target": "velocity"}


def recorded_defaults() -> dict[str, Any]:
    """The current values of the defaults in ``LEGACY_DEFAULTS``, as ``FPO`` records them in ``policy_kwargs``."""
    return {"velocity_net_arch": list(VELOCITY_NET_ARCH), "cfm_target": CFM_TARGET}


class VelocityNet(nn.Module):
    """
    MLP ``v(latent, x_tau, emb(tau))`` that predicts the flow velocity.

    Mathematically it is an MLP on ``concat(latent, x_tau, emb(tau))``. The first layer is kept as three
    linear maps (one per input block, initialised as the single concatenated layer would be), so that the
    observation term ``W_latent @ latent + b`` is computed once per observation and reused by every
    integration step and every (tau, eps) sample.

    :param latent_dim: size of the actor latent (features after the ``pi`` branch of ``net_arch``)
    :param action_dim: number of action dimensions D
    :param time_embed_dim: size of the sinusoidal time embedding (even)
    :param net_arch: hidden layer sizes (at least one)
    :param activation_fn: activation between hidden layers
    :param output_scale: the network output is multiplied by this constant (FPO paper: 0.25)
    """

    def __init__(
        self,
        latent_dim: int,
        action_dim: int,
        time_embed_dim: int,
        net_arch: list[int],
        activation_fn: type[nn.Module],
        output_scale: float,
    ) -> None:
        super().__init__()
        self.time_embed_dim = time_embed_dim
        self.output_scale = output_scale
        hidden = list(net_arch)
        self.latent_proj = nn.Linear(latent_dim, hidden[0])
        self.x_proj = nn.Linear(action_dim, hidden[0], bias=False)
        self.time_proj = nn.Linear(time_embed_dim, hidden[0], bias=False)
        # Same init as nn.Linear(latent_dim + action_dim + time_embed_dim, hidden[0])
        bound = 1.0 / math.sqrt(latent_dim + action_dim + time_embed_dim)
        for param in (self.latent_proj.weight, self.latent_proj.bias, self.x_proj.weight, self.time_proj.weight):
            nn.init.uniform_(param, -bound, bound)
        layers: list[nn.Module] = [activation_fn()]
        for n_in, n_out in itertools.pairwise(hidden):
            layers += [nn.Linear(n_in, n_out), activation_fn()]
        layers.append(nn.Linear(hidden[-1], action_dim))
        self.trunk = nn.Sequential(*layers)
        self._grid_cache: dict[tuple[int, th.device, th.dtype], tuple[th.Tensor, th.Tensor]] = {}  # see _grid
        self._euler_cache: tuple[Any, th.Tensor, tuple[Any, ...]] | None = None  # see _euler_constants
        self._constant_params: list[th.Tensor] | None = None  # see _constant_parameters

    def condition(self, latent: th.Tensor) -> th.Tensor:
        """Observation part of the first layer, shape ``(B, H)``; pass it to :meth:`forward`."""
        return self.latent_proj(latent)

    def time_term(self, tau: th.Tensor) -> th.Tensor:
        """Time part of the first layer for flow times ``tau`` of shape ``(..., 1)``."""
        return self.time_proj(time_embedding(tau, self.time_embed_dim))

    def forward(self, cond: th.Tensor, x: th.Tensor, time_term: th.Tensor) -> th.Tensor:
        """Velocity from the precomputed condition, the noised action and the precomputed time term."""
        # Layers are applied through .forward() (no module-call bookkeeping, so no hooks): the sampler calls
        # this K times per action and the bookkeeping was a third of its cost on CPU.
        h = cond + self.x_proj.forward(x) + time_term
        for layer in self.trunk:
            h = layer.forward(h)
        return self.output_scale * h

    def euler(self, cond: th.Tensor, x0: th.Tensor, n_steps: int) -> th.Tensor:
        """
        ``n_steps`` Euler steps from ``x0`` at ``tau = 0`` to ``tau = 1``: the same result as
        ``flow.integrate(lambda x, tau: self(cond, x, time_term(tau)), x0, n_steps)`` up to float rounding,
        in 0.4-0.5x the time on CPU (the sampler is most of a rollout's cost).

        Each step is ``2 * len(net_arch) + 1`` tensor ops: the step size and output scale are folded into
        the output layer, so the update ``x += dt * scale * (W h + b)`` is one ``addmm``; the bias part
        ``k * dt * scale * b`` of ``x_k`` is moved into the per-step first-layer bias, precomputed for all
        steps with the time terms; activations run in place when no gradient is recorded.

        :param cond: observation term from :meth:`condition`, shape ``(B, H)``
        :param x0: starting point, shape ``(B, D)``
        :return: ``x_1``, shape ``(B, D)``
        """
        activations, layers, step_weight, step_bias, x_weight, time_bias = self._euler_constants(n_steps, x0)
        first_bias = cond + time_bias  # (K, B, H)
        y = x0  # y_k = x_k - k * step_bias
        for k in range(n_steps):
            h = activations[0](th.addmm(first_bias[k], y, x_weight))
            for (bias, weight), activation in zip(layers, activations[1:]):
                h = activation(th.addmm(bias, h, weight))
            y = th.addmm(y, h, step_weight)
        return y + n_steps * step_bias

    def _euler_constants(self, n_steps: int, like: th.Tensor) -> tuple[Any, ...]:
        """
        The observation-independent parts of :meth:`euler`. Without autograd (rollouts, ``predict``) they are cached
        and reused while the parameters they come from are bitwise the same as when they were computed: one
        ``cat`` and one ``equal`` per call instead of the dozen small ops that rebuild them. Any change to the
        weights (an optimizer step, ``load_state_dict``, an in-place copy through ``.data``, which leaves version
        counters as they were, as torch's fused Adam does) is seen on the next call.
        """
        snapshot = None
        if not th.is_grad_enabled():  # with autograd, recompute to keep the graph
            snapshot = th.cat([param.reshape(-1) for param in self._constant_parameters()])
            cache = self._euler_cache
            if (
                cache is not None
                and cache[0] == (n_steps, like.device, like.dtype)
                and cache[1].shape == snapshot.shape
                and th.equal(cache[1], snapshot)
            ):
                return cache[2]
        dt = 1.0 / n_steps
        *hidden, out = [layer for layer in self.trunk if isinstance(layer, nn.Linear)]
        activations = [_fast_activation(layer) for layer in self.trunk if not isinstance(layer, nn.Linear)]
        step_weight = (dt * self.output_scale) * out.weight.T  # (H_last, D)
        step_bias = (dt * self.output_scale) * out.bias  # (D,)
        x_weight = self.x_proj.weight.T  # (D, H)
        steps, embedding = self._grid(n_steps, like)
        # Time term of step k plus W_x (k * step_bias), the bias part of x_k moved into the first layer
        time_bias = th.addmm(th.outer(steps, step_bias @ x_weight), embedding, self.time_proj.weight.T).unsqueeze(1)
        layers: list[tuple[th.Tensor, th.Tensor]]
        if snapshot is None:
            layers = [(layer.bias, layer.weight.T) for layer in hidden]
            return activations, layers, step_weight, step_bias, x_weight, time_bias  # time_bias: (K, 1, H)
        # Cached: copies, not views of parameters that may change later
        layers = [(layer.bias.clone(), layer.weight.T.clone()) for layer in hidden]
        constants = (activations, layers, step_weight, step_bias, x_weight.clone(), time_bias)
        self._euler_cache = ((n_steps, like.device, like.dtype), snapshot, constants)
        return constants

    def _constant_parameters(self) -> list[th.Tensor]:
        """The parameters :meth:`_euler_constants` reads (all but the observation projection), listed once: the
        Parameter objects stay the same through optimizer steps, ``load_state_dict`` and ``.to(device)``."""
        if self._constant_params is None:
            self._constant_params = [p for name, p in self.named_parameters() if not name.startswith("latent_proj.")]
        return self._constant_params

    def _grid(self, n_steps: int, like: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """Step indices ``k`` (K,) and the time embedding of ``k / K`` (K, E): functions of ``n_steps`` alone, cached."""
        key = (n_steps, like.device, like.dtype)
        grid = self._grid_cache.get(key)
        if grid is None:
            steps = th.arange(n_steps, device=like.device, dtype=like.dtype)
            grid = (steps, time_embedding(steps.unsqueeze(-1) / n_steps, self.time_embed_dim))
            self._grid_cache[key] = grid
        return grid


def _fast_activation(module: nn.Module) -> Any:
    """The activation as a function, in place (no temporary) for SiLU and ReLU when no gradient is recorded."""
    functional = {nn.SiLU: F.silu, nn.ReLU: F.relu}.get(type(module))
    if functional is None or th.is_grad_enabled():
        return module.forward
    return partial(functional, inplace=True)


class FlowPolicy(ActorCriticPolicy):
    """
    Actor-critic policy whose actor is a flow-matching (velocity) network.

    Actions are sampled by integrating the velocity field from noise (tau = 0) to the action (tau = 1).
    The critic is SB3's: the ``vf`` branch of ``net_arch`` followed by ``value_net``.
    There is no closed-form likelihood: :meth:`evaluate_actions` returns per-sample conditional
    flow-matching losses, negated, as FPO's log-likelihood surrogate.

    :param observation_space: Observation space
    :param action_space: Action space (must be a ``gymnasium.spaces.Box``)
    :param lr_schedule: Learning rate schedule (could be constant)
    :param net_arch: SB3 ``net_arch``: ``pi`` is an observation encoder in front of the velocity network,
        ``vf`` the critic. Default ``dict(pi=[], vf=[64, 64])`` (``[]`` for the CNN policy).
    :param activation_fn: Activation of the ``net_arch`` layers (SB3 default ``nn.Tanh``)
    :param ortho_init: Orthogonal initialisation of the feature extractor, ``net_arch`` and value head (as SB3)
    :param features_extractor_class: Features extractor to use.
    :param features_extractor_kwargs: Keyword arguments to pass to the features extractor.
    :param share_features_extractor: If True, the features extractor is shared between the actor and the critic
    :param normalize_images: Whether to normalize images or not, dividing by 255.0 (True by default)
    :param optimizer_class: The optimizer to use, ``th.optim.Adam`` by default
    :param optimizer_kwargs: Additional keyword arguments, excluding the learning rate, to pass to the optimizer
        (default for Adam: ``dict(eps=1e-5, fused=True)``, SB3's epsilon with torch's fused Adam)
    :param use_sde: gSDE is not supported (a ``ValueError``); ``log_std_init``, ``full_std`` and ``use_expln``, the
        options of SB3's Gaussian, raise too (the flow's spread is set by ``source_std``)
    :param velocity_net_arch: Hidden sizes of the velocity MLP (default ``[64, 64]``, the size of SB3 PPO's actor; FPO
        paper: ``[32, 32, 32, 32]``)
    :param velocity_activation_fn: Activation of the velocity MLP (FPO paper: SiLU)
    :param time_embed_dim: Size of the sinusoidal flow-time embedding (FPO paper: 8)
    :param output_scale: Constant multiplying the velocity network output (FPO paper: 0.25)
    :param output_init_gain: Initialise the velocity network's output layer orthogonally with this gain and a zero
        bias, as SB3 initialises PPO's ``action_net`` (gain 0.01); ``None`` (default, the papers): torch's default
        ``nn.Linear`` init. A small gain with ``output_scale=1`` starts the flow near the identity map of its noise
        while letting each optimizer step move the action 4x more than ``output_scale=0.25`` does.
    :param flow_steps: Integration steps used to act during training rollouts (FPO paper: 10)
    :param flow_method: Integrator for training rollouts: ``euler`` (paper), ``midpoint`` or ``heun``
    :param eval_flow_steps: Integration steps for :meth:`predict`; ``None`` = ``flow_steps``
    :param eval_flow_method: Integrator for :meth:`predict`; ``None`` = ``flow_method``
    :param deterministic_noise: Starting noise of ``predict(deterministic=True)``: ``zero`` (FPO++ zero-sampling,
        default) or ``fixed`` (one N(0, I) draw, seeded by ``noise_seed``, the same for every observation).
        ``predict(deterministic=False)`` uses fresh noise.
    :param noise_seed: Seed of the ``fixed`` noise mode
    :param source_std: Standard deviation of the source noise: the sampler starts from ``x_0 = source_std * eps``
        and the CFM loss uses ``x_tau = tau a + (1 - tau) source_std eps``, target ``a - source_std eps``
        (the papers: 1). Below 1 the untrained policy explores less (its actions start close to
        ``N(0, source_std^2 I)``), as a lower ``log_std_init`` does for PPO. Zero-sampling is unaffected.
    :param cfm_reduction: Reduction of the squared velocity error over action dimensions: ``mean`` (FPO),
        ``sum_sqrt_d`` (FPO++) or ``sum``
    :param squash_output: Squash actions with ``tanh`` (the official FPO Playground code's action head; default
        False, the papers' unbounded flow with SB3 clipping at the Box bounds). The flow then samples a pre-squash
        ``x`` and the policy acts with ``tanh(x)`` in ``[-1, 1]``, which SB3 rescales to the Box bounds, as for SAC.
        The rollout buffer stores ``tanh(x)``; the CFM loss recovers its target as
        ``atanh(clip(a, -SQUASH_BOUND, SQUASH_BOUND))`` (``SQUASH_BOUND = 1 - 1e-6``, so a saturated action is
        read as ``|x| = 7.2``), the same target for the old and the new parameters. Needs finite Box bounds.
    :param cfm_target: What the CFM loss measures: ``velocity`` (the FPO paper's ``|v - (a - eps)|^2``, default) or
        ``noise`` (the official FPO code's default, ``|eps_hat - eps|^2`` with ``eps_hat = x_tau - tau v``: the
        velocity loss weighted by ``tau^2``; with ``source_std`` s the noise error is this divided by s^2)
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        activation_fn: type[nn.Module] = nn.Tanh,
        ortho_init: bool = True,
        use_sde: bool = False,
        log_std_init: float | None = None,
        full_std: bool | None = None,
        use_expln: bool | None = None,
        squash_output: bool = False,
        features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor,
        features_extractor_kwargs: dict[str, Any] | None = None,
        share_features_extractor: bool = True,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        velocity_net_arch: list[int] | None = None,
        velocity_activation_fn: type[nn.Module] = nn.SiLU,
        time_embed_dim: int = 8,
        output_scale: float = 0.25,
        output_init_gain: float | None = None,
        flow_steps: int = 10,
        flow_method: IntegrationMethod = "euler",
        eval_flow_steps: int | None = None,
        eval_flow_method: IntegrationMethod | None = None,
        deterministic_noise: DeterministicNoise = "zero",
        noise_seed: int = 0,
        source_std: float = 1.0,
        cfm_reduction: CfmReduction = "mean",
        cfm_target: CfmTarget = CFM_TARGET,
    ):
        if not isinstance(action_space, spaces.Box):
            raise ValueError(
                f"FlowPolicy needs a continuous gymnasium.spaces.Box action space, got {action_space}. "
                "For discrete actions use SB3's PPO."
            )
        if use_sde:
            raise ValueError("FlowPolicy does not support gSDE (use_sde): exploration comes from the flow noise.")
        gaussian_options = dict(log_std_init=log_std_init, full_std=full_std, use_expln=use_expln)
        given = [name for name, value in gaussian_options.items() if value is not None]
        if given:
            # Accepted by SB3's ActorCriticPolicy for its Gaussian; a flow policy has no log std to set
            raise ValueError(
                f"FlowPolicy has no Gaussian log std, so {', '.join(given)} would do nothing. Its exploration is the "
                "flow's source noise: set source_std instead (e.g. source_std=0.14 starts about as narrow as "
                "log_std_init=-2)."
            )
        if squash_output and not (np.isfinite(action_space.low).all() and np.isfinite(action_space.high).all()):
            raise ValueError(
                f"squash_output=True maps tanh's [-1, 1] onto the action bounds, which must be finite: got low "
                f"{action_space.low}, high {action_space.high}."
            )
        velocity_net_arch = list(VELOCITY_NET_ARCH if velocity_net_arch is None else velocity_net_arch)
        if len(velocity_net_arch) == 0 or min(velocity_net_arch) < 1:
            raise ValueError(f"velocity_net_arch must list at least one positive layer size, got {velocity_net_arch}.")
        if time_embed_dim < 2 or time_embed_dim % 2:
            raise ValueError(f"time_embed_dim must be a positive even number, got {time_embed_dim}.")
        for name, steps in (("flow_steps", flow_steps), ("eval_flow_steps", eval_flow_steps)):
            if steps is not None and (not isinstance(steps, int) or steps < 1):
                raise ValueError(f"{name} must be an integer >= 1, got {steps!r}.")
        if not output_scale > 0:
            raise ValueError(f"output_scale must be > 0, got {output_scale}.")
        if output_init_gain is not None and not (math.isfinite(output_init_gain) and output_init_gain > 0):
            raise ValueError(f"output_init_gain must be a finite number > 0 or None, got {output_init_gain}.")
        if not (math.isfinite(source_std) and source_std > 0):
            raise ValueError(f"source_std must be a finite number > 0, got {source_std}.")
        check_choice("flow_method", flow_method, IntegrationMethod)
        if eval_flow_method is not None:
            check_choice("eval_flow_method", eval_flow_method, IntegrationMethod)
        if deterministic_noise == "random":
            raise ValueError(
                "deterministic_noise='random' was removed: it was the same as predict(deterministic=False). "
                "Use 'zero' (zero-sampling) or 'fixed'. A model saved with it loads with "
                "FPO.load(path, custom_objects={'policy_kwargs': {...its policy_kwargs, 'deterministic_noise': 'zero'}})."
            )
        check_choice("deterministic_noise", deterministic_noise, DeterministicNoise)
        check_choice("cfm_reduction", cfm_reduction, CfmReduction)
        check_choice("cfm_target", cfm_target, CfmTarget)
        if net_arch is None and features_extractor_class is not NatureCNN:
            net_arch = dict(pi=[], vf=[64, 64])
        if optimizer_kwargs is None and optimizer_class is th.optim.Adam:
            # SB3's Adam default (eps 1e-5) in torch's fused implementation: the same update in one kernel instead
            # of a Python loop over parameter tensors (~12% faster FPO updates on CPU)
            optimizer_kwargs = dict(eps=1e-5, fused=True)

        # Must be set before super().__init__(), which calls self._build()
        self.velocity_net_arch = velocity_net_arch
        self.velocity_activation_fn = velocity_activation_fn
        self.time_embed_dim = time_embed_dim
        self.output_scale = output_scale
        self.output_init_gain = output_init_gain
        self.flow_steps = flow_steps
        self.flow_method: IntegrationMethod = flow_method
        self.eval_flow_steps = eval_flow_steps
        self.eval_flow_method = eval_flow_method
        self.deterministic_noise: DeterministicNoise = deterministic_noise
        self.noise_seed = noise_seed
        self.source_std = float(source_std)
        self.cfm_reduction: CfmReduction = cfm_reduction
        self.cfm_target: CfmTarget = cfm_target
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch=net_arch,
            activation_fn=activation_fn,
            ortho_init=ortho_init,
            features_extractor_class=features_extractor_class,
            features_extractor_kwargs=features_extractor_kwargs,
            share_features_extractor=share_features_extractor,
            normalize_images=normalize_images,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
        )
        # Set after ActorCriticPolicy.__init__, which allows squash_output only with gSDE: SB3's predict() and
        # collect_rollouts() read this flag and rescale [-1, 1] to the Box bounds instead of clipping.
        self._squash_output = bool(squash_output)

    @property
    def action_dim(self) -> int:
        return math.prod(self.action_space.shape)  # type: ignore[arg-type]

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        for unused in ("use_sde", "log_std_init", "full_std", "use_expln"):
            data.pop(unused, None)
        data.update(
            dict(
                share_features_extractor=self.share_features_extractor,
                normalize_images=self.normalize_images,
                squash_output=self.squash_output,
                velocity_net_arch=self.velocity_net_arch,
                velocity_activation_fn=self.velocity_activation_fn,
                time_embed_dim=self.time_embed_dim,
                output_scale=self.output_scale,
                output_init_gain=self.output_init_gain,
                flow_steps=self.flow_steps,
                flow_method=self.flow_method,
                eval_flow_steps=self.eval_flow_steps,
                eval_flow_method=self.eval_flow_method,
                deterministic_noise=self.deterministic_noise,
                noise_seed=self.noise_seed,
                source_std=self.source_std,
                cfm_reduction=self.cfm_reduction,
                cfm_target=self.cfm_target,
            )
        )
        return data

    def _build(self, lr_schedule: Schedule) -> None:
        # Replaces ActorCriticPolicy._build: a velocity network instead of action_net/log_std.
        # The orthogonal-init gains are SB3's for the modules the two policies share.
        self._build_mlp_extractor()
        self.velocity_net = VelocityNet(
            self.mlp_extractor.latent_dim_pi,
            self.action_dim,
            self.time_embed_dim,
            self.velocity_net_arch,
            self.velocity_activation_fn,
            self.output_scale,
        )
        if self.output_init_gain is not None:
            output_layer = self.velocity_net.trunk[-1]
            assert isinstance(output_layer, nn.Linear)
            nn.init.orthogonal_(output_layer.weight, gain=self.output_init_gain)
            nn.init.zeros_(output_layer.bias)
        self.value_net = nn.Linear(self.mlp_extractor.latent_dim_vf, 1)
        if self.ortho_init:
            module_gains: dict[nn.Module, float] = {self.mlp_extractor: math.sqrt(2), self.value_net: 1.0}
            if self.share_features_extractor:
                module_gains[self.features_extractor] = math.sqrt(2)
            else:
                module_gains[self.pi_features_extractor] = math.sqrt(2)
                module_gains[self.vf_features_extractor] = math.sqrt(2)
            for module, gain in module_gains.items():
                module.apply(partial(self.init_weights, gain=gain))
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)  # type: ignore[call-arg]

    # ------------------------------------------------------------------ latents

    def _actor_latent(self, obs: PyTorchObs) -> th.Tensor:
        features = BaseModel.extract_features(self, obs, self.pi_features_extractor)
        return self.mlp_extractor.forward_actor(features)

    def _latents(self, obs: PyTorchObs) -> tuple[th.Tensor, th.Tensor]:
        features = self.extract_features(obs)
        if self.share_features_extractor:
            return self.mlp_extractor(features)
        pi_features, vf_features = features
        return self.mlp_extractor.forward_actor(pi_features), self.mlp_extractor.forward_critic(vf_features)

    # ------------------------------------------------------------------ sampling

    def _integrate(self, latent_pi: th.Tensor, noise: NoiseMode, n_steps: int, method: IntegrationMethod) -> th.Tensor:
        cond = self.velocity_net.condition(latent_pi)
        x0 = initial_noise((latent_pi.shape[0], self.action_dim), noise, device=latent_pi.device, seed=self.noise_seed)
        if self.source_std != 1.0:
            x0 = self.source_std * x0
        if method == "euler":
            return self._squash(self.velocity_net.euler(cond, x0, n_steps))
        # The time terms of every integration step in one call: the loop below only does the x-dependent work
        taus = integration_times(n_steps, method)
        time_terms = self.velocity_net.time_term(th.tensor(taus, device=x0.device, dtype=x0.dtype).unsqueeze(-1))
        time_term_at = dict(zip(taus, time_terms))

        def velocity(x: th.Tensor, tau: float) -> th.Tensor:
            return self.velocity_net(cond, x, time_term_at[tau])

        return self._squash(integrate(velocity, x0, n_steps, method))

    def _squash(self, x: th.Tensor) -> th.Tensor:
        return th.tanh(x) if self.squash_output else x

    def _unsquash(self, actions: th.Tensor) -> th.Tensor:
        """The pre-squash flow sample of stored actions (the CFM target); the identity without ``squash_output``."""
        if not self.squash_output:
            return actions
        return th.atanh(actions.clamp(-SQUASH_BOUND, SQUASH_BOUND))

    def sample_actions(
        self,
        obs: PyTorchObs,
        noise: NoiseMode = "random",
        n_steps: int | None = None,
        method: IntegrationMethod | None = None,
    ) -> th.Tensor:
        """
        Raw (unclipped) actions for a batch of observations, shape ``(B, *action_shape)``: the flow's samples, or
        with ``squash_output`` their ``tanh`` in ``[-1, 1]`` (:meth:`predict` rescales these to the Box bounds).

        :param noise: starting noise: ``random``, ``zero`` or ``fixed`` (see ``deterministic_noise``)
        :param n_steps: integration steps (default: ``eval_flow_steps``, else ``flow_steps``)
        :param method: integrator (default: ``eval_flow_method``, else ``flow_method``)
        """
        n_steps = n_steps or self.eval_flow_steps or self.flow_steps
        method = method or self.eval_flow_method or self.flow_method
        actions = self._integrate(self._actor_latent(obs), noise, n_steps, method)
        return actions.reshape((-1, *self.action_space.shape))  # type: ignore[misc]

    def forward(self, obs: th.Tensor, deterministic: bool = False) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        """
        Act during training rollouts (SB3's ``collect_rollouts`` calls this).

        :return: raw action (``tanh``-squashed with ``squash_output``), value and a placeholder log-probability of
            zeros (FPO computes its old CFM losses for the whole buffer at the start of ``train()``)
        """
        latent_pi, latent_vf = self._latents(obs)
        values = self.value_net(latent_vf)
        noise: NoiseMode = self.deterministic_noise if deterministic else "random"
        actions = self._integrate(latent_pi, noise, self.flow_steps, self.flow_method)
        placeholder_log_prob = th.zeros(actions.shape[0], device=actions.device)
        return actions.reshape((-1, *self.action_space.shape)), values, placeholder_log_prob  # type: ignore[misc]

    def set_training_mode(self, mode: bool) -> None:
        """SB3's ``set_training_mode``, skipped when the policy is already in ``mode``: ``predict`` calls it every
        time, and walking the module tree was a third of a single-observation ``predict``'s time."""
        if self.training != mode or any(module.training != mode for module in self.children()):
            super().set_training_mode(mode)

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        noise: NoiseMode = self.deterministic_noise if deterministic else "random"
        return self.sample_actions(observation, noise)

    def get_distribution(self, obs: PyTorchObs) -> Any:
        raise NotImplementedError(
            "A flow policy has no closed-form action distribution: use sample_actions() to draw actions "
            "and evaluate_actions() for the CFM-loss surrogate of the log-likelihood."
        )

    # ------------------------------------------------------------------ CFM surrogate

    def _cfm_from_latent(self, latent_pi: th.Tensor, actions: th.Tensor, tau: th.Tensor, eps: th.Tensor) -> th.Tensor:
        actions = self._unsquash(actions.reshape(actions.shape[0], self.action_dim))
        if self.source_std != 1.0:
            eps = self.source_std * eps  # the stored pairs are N(0, I); the flow's source is N(0, source_std^2 I)
        cond = self.velocity_net.condition(latent_pi).unsqueeze(-2)
        velocity = self.velocity_net(cond, interpolate(actions, tau, eps), self.velocity_net.time_term(tau))
        return cfm_loss(velocity, actions, eps, self.cfm_reduction, tau, self.cfm_target)

    def cfm_losses(self, obs: PyTorchObs, actions: th.Tensor, tau: th.Tensor, eps: th.Tensor) -> th.Tensor:
        """
        Per-sample CFM losses of the actor alone (no critic pass).

        :param actions: shape ``(B, D)`` (or ``(B, *action_shape)``)
        :param tau: flow times, shape ``(B, N, 1)``
        :param eps: noises, shape ``(B, N, D)``
        :return: shape ``(B, N)``
        """
        return self._cfm_from_latent(self._actor_latent(obs), actions, tau, eps)

    def cfm_losses_no_grad(
        self,
        observations: np.ndarray | dict[str, np.ndarray],
        actions: np.ndarray,
        tau: th.Tensor,
        eps: th.Tensor,
        max_rows: int = CFM_CHUNK_ROWS,
    ) -> th.Tensor:
        """
        Per-sample CFM losses of many transitions without gradients (FPO's old losses, a validation loss), in chunks of
        at most ``max_rows`` (transition, pair) rows so that memory stays bounded.

        :param observations: ``(n, *obs_shape)`` (the policy's layout; a dict of such arrays for ``Dict`` spaces)
        :param actions: ``(n, D)``
        :param tau: ``(n, N, 1)``; ``eps``: ``(n, N, D)``
        :return: shape ``(n, N)``
        """
        chunk = max(1, max_rows // max(1, tau.shape[1]))
        losses = []
        with th.no_grad():
            for start in range(0, len(actions), chunk):
                rows = slice(start, start + chunk)
                obs = obs_as_tensor(select_rows(observations, rows), self.device)  # type: ignore[arg-type]
                act = th.as_tensor(actions[rows], dtype=th.float32, device=self.device)
                losses.append(self.cfm_losses(obs, act, tau[rows], eps[rows]))
        return th.cat(losses) if losses else tau.new_zeros((0, tau.shape[1]))

    def evaluate_actions(  # type: ignore[override]
        self,
        obs: PyTorchObs,
        actions: th.Tensor,
        tau: th.Tensor | None = None,
        eps: th.Tensor | None = None,
        n_samples: int = 8,
    ) -> tuple[th.Tensor, th.Tensor, None]:
        """
        Values and the FPO log-likelihood surrogate of ``actions``: the negated CFM losses ``-l(tau_i, eps_i)``.

        Called as SB3 calls ``ActorCriticPolicy.evaluate_actions(obs, actions)``, it draws ``n_samples`` fresh pairs
        (``tau ~ U[0, 1]``, ``eps ~ N(0, I)``) and returns the per-transition surrogate ``-mean_i l(tau_i, eps_i)``
        of shape ``(B,)``, in the place of a log-probability (higher is more likely; it is not normalised and, with
        fresh pairs, not deterministic). With given pairs (FPO's training: the same pairs for the old and the new
        parameters) it returns the per-sample surrogates, shape ``(B, N)``.

        :param actions: shape ``(B, D)`` (or ``(B, *action_shape)``)
        :param tau: flow times, shape ``(B, N, 1)``; ``None`` (with ``eps``) draws fresh pairs
        :param eps: noises, shape ``(B, N, D)``; ``None`` (with ``tau``) draws fresh pairs
        :param n_samples: number of fresh pairs per transition when ``tau`` and ``eps`` are not given
        :return: values ``(B, 1)``; the surrogate, ``(B, N)`` for given pairs, ``(B,)`` for fresh ones; ``None``
            for the entropy (a flow policy has none in closed form)
        """
        latent_pi, latent_vf = self._latents(obs)
        values = self.value_net(latent_vf)
        if tau is None and eps is None:
            tau, eps = draw_pairs(latent_pi.shape[0], n_samples, self.action_dim, device=latent_pi.device)
            return values, -self._cfm_from_latent(latent_pi, actions, tau, eps).mean(dim=-1), None
        if tau is None or eps is None:
            raise ValueError("evaluate_actions needs both tau and eps, or neither (fresh pairs are then drawn).")
        return values, -self._cfm_from_latent(latent_pi, actions, tau, eps), None


class FlowCnnPolicy(FlowPolicy):
    """:class:`FlowPolicy` with SB3's ``NatureCNN`` features extractor (image observations)."""

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        features_extractor_class: type[BaseFeaturesExtractor] = NatureCNN,
        **kwargs: Any,
    ):
        super().__init__(
            observation_space, action_space, lr_schedule, features_extractor_class=features_extractor_class, **kwargs
        )


class FlowMultiInputPolicy(FlowPolicy):
    """:class:`FlowPolicy` with SB3's ``CombinedExtractor`` (``Dict`` observations)."""

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        features_extractor_class: type[BaseFeaturesExtractor] = CombinedExtractor,
        **kwargs: Any,
    ):
        super().__init__(
            observation_space, action_space, lr_schedule, features_extractor_class=features_extractor_class, **kwargs
        )


MlpPolicy = FlowPolicy
CnnPolicy = FlowCnnPolicy
MultiInputPolicy = FlowMultiInputPolicy
