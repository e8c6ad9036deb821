"""Flow Policy Optimization (FPO / FPO++) on Stable-Baselines3's PPO."""

from __future__ import annotations

import copy
import io
import pathlib
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import explained_variance
from stable_baselines3.common.vec_env import VecEnv  # noqa: F401  (resolves GymEnv's forward reference "VecEnv")
from torch.nn import functional as F

from sb3_fpo.buffers import FlowDictRolloutBuffer, FlowRolloutBuffer, _FlowSamplesMixin
from sb3_fpo.checks import (
    LogRatioClamp,
    check_adaptive_lr,
    check_env,
    check_flag,
    check_hyperparameters,
    check_int,
    check_rollout_finite,
    parse_log_ratio_clamp,
)
from sb3_fpo.flow import (
    AdaptEvery,
    RatioMode,
    TauSampling,
    TrustRegion,
    check_choice,
    clamp_cfm,
    clamp_log_ratio,
    draw_pairs,
    fpo_log_ratio,
    kl_adaptive_learning_rate,
    kl_proxy,
    surrogate_objective,
)
from sb3_fpo.loss_stats import LossStats, record_update
from sb3_fpo.persistence import check_model_file, clear_load_errors, sb3_fpo_version
from sb3_fpo.policies import (
    LEGACY_DEFAULTS,
    CnnPolicy,
    FlowPolicy,
    MlpPolicy,
    MultiInputPolicy,
    recorded_defaults,
)
from sb3_fpo.pretraining import pretrain

SelfFPO = TypeVar("SelfFPO", bound="FPO")


class FPO(PPO):
    """
    Flow Policy Optimization (FPO) and its FPO++ options, as a Stable-Baselines3 ``PPO``.

    The policy is a flow-matching model (:class:`sb3_fpo.policies.FlowPolicy`). PPO's likelihood ratio is
    replaced by ``exp(L_CFM,old(a|o) - L_CFM,new(a|o))``, where ``L_CFM`` is a Monte-Carlo conditional
    flow-matching loss over ``n_samples`` pairs ``(tau, eps)`` drawn once per transition and reused for the
    old and the new parameters. Rollout collection, GAE, advantage normalisation, the value loss,
    VecNormalize, callbacks and logging are SB3's.

    FPO paper: https://arxiv.org/abs/2507.21053 (McAllister et al., "Flow Matching Policy Gradients")
    FPO++ paper: https://arxiv.org/abs/2602.02481 (Yi, Choi et al., "Flow Policy Gradients for Robot Control")

    The pairs and the old CFM losses of the rollout are computed in one no-grad pass at the start of :meth:`train`,
    so a callback must not edit the policy's parameters in ``on_rollout_end``.

    :param policy: The policy model to use (MlpPolicy, CnnPolicy, MultiInputPolicy or a FlowPolicy subclass)
    :param env: The environment to learn from (if registered in Gym, can be str). Actions must be a ``Box``.
    :param learning_rate: The learning rate, it can be a function of the current progress remaining (from 1 to 0)
    :param n_steps: The number of steps to run for each environment per update
    :param batch_size: Minibatch size
    :param n_epochs: Number of epoch when optimizing the surrogate loss
    :param gamma: Discount factor
    :param gae_lambda: Factor for trade-off of bias vs variance for Generalized Advantage Estimator
    :param clip_range: Trust-region width epsilon (PPO clip, and the SPO penalty scale), it can be a function of
        the current progress remaining (from 1 to 0). Default 0.2, as SB3's PPO (the papers: 0.05, with thousands of
        parallel envs).
    :param clip_range_vf: Clipping parameter for the value function (as in PPO)
    :param normalize_advantage: Whether to normalize or not the advantage
    :param ent_coef: Must be 0: a flow policy has no closed-form entropy. Kept so that PPO configurations load.
    :param vf_coef: Value function coefficient for the loss calculation
    :param max_grad_norm: The maximum value for the gradient clipping
    :param n_samples: Number N of (tau, eps) pairs per transition (FPO paper: 8; FPO++: 16, 32 for humanoids)
    :param ratio_mode: ``per_sample`` (FPO++, the default: one ratio per (tau, eps) pair, the advantage broadcast
        over the pairs) or ``averaged`` (FPO paper: one ratio per transition from the mean CFM losses)
    :param trust_region: ``aspo`` (FPO++, the default: PPO's clip where A >= 0, SPO where A < 0), ``ppo`` (clipped
        ratio, FPO paper) or ``spo`` (``rho A - |A| (rho - 1)^2 / (2 eps)``)
    :param tau_sampling: ``uniform`` on ``[tau_min, tau_max]`` (FPO paper) or ``discrete`` on the rollout
        integration grid ``{k / flow_steps}`` (official FPO code)
    :param tau_min: Lower bound of the flow times (FPO: 0, FPO++: 0.005)
    :param tau_max: Upper bound of the flow times (FPO: 1, FPO++: 0.995)
    :param cfm_loss_clamp: Upper clamp of every CFM loss, old and new (FPO++ and default: 20; FPO paper: ``None``,
        which disables it)
    :param log_ratio_clamp: Clamp of the log-ratio: a number ``c`` means ``[-c, c]``, a pair ``(low, high)`` with
        ``None`` for an open side, ``None`` disables it. Default 3 (official FPO code, per-sample mode; FPO++:
        ``(None, 10)``): a pair whose ratio left ``[e^-3, e^3]`` gets no gradient, so it cannot carry the update.
    :param log_ratio_straight_through: Let the gradient pass through the log-ratio clamp as if unclamped (FPO++: True;
        default False, as the official FPO code)
    :param fit_clipped_actions: Fit the flow to the executed actions: the rollout's actions are clipped to the Box
        bounds (in place, at the start of :meth:`train`) before the CFM losses. Default False (the papers: the raw sample)
    :param rollout_buffer_class: Rollout buffer class (a ``FlowRolloutBuffer`` subclass). ``None``: chosen from
        the observation space.
    :param rollout_buffer_kwargs: Keyword arguments to pass to the rollout buffer on creation
    :param target_kl: Early-stop the epochs of an update when the KL proxy ``mean((rho - 1) - log rho)`` of a
        minibatch exceeds ``1.5 * target_kl``. The FPO ratio is an ELBO surrogate, so this is a proxy, not the KL.
    :param adaptive_lr_target_kl: KL-adaptive learning rate (rsl_rl's, used by FPO++): divided by 1.5 when the KL proxy
        exceeds twice this target, multiplied by 1.5 below half of it; starts at ``learning_rate`` and replaces its
        schedule; frozen during the critic warm-up. ``None`` (default): off.
    :param adaptive_lr_range: Bounds ``(low, high)`` of the adaptive learning rate
    :param adaptive_lr_every: When the adaptive learning rate adapts: ``minibatch`` (rsl_rl, FPO++: after every
        minibatch, on its KL proxy) or ``update`` (once per update, on the mean KL proxy of its minibatches)
    :param critic_warmup_steps: Updates before this many steps (``num_timesteps``, which ``learn()`` resets unless
        ``reset_num_timesteps=False``) train the critic only (FPO++'s fine-tuning recipe); a features extractor shared
        with the critic (``CnnPolicy``) still changes. Default 0: off.
    :param stats_window_size: Window size for the rollout logging
    :param tensorboard_log: the log location for tensorboard (if None, no logging)
    :param policy_kwargs: additional arguments to be passed to the policy on creation (network sizes, sampler,
        CFM reduction: see :class:`sb3_fpo.policies.FlowPolicy`)
    :param verbose: Verbosity level: 0 for no output, 1 for info messages, 2 for debug messages
    :param seed: Seed for the pseudo random generators
    :param device: Device (cpu, cuda, ...) on which the code should be run.
    :param _init_setup_model: Whether or not to build the network at the creation of the instance
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": MlpPolicy,
        "CnnPolicy": CnnPolicy,
        "MultiInputPolicy": MultiInputPolicy,
    }
    policy: FlowPolicy
    rollout_buffer: FlowRolloutBuffer | FlowDictRolloutBuffer

    def __init__(
        self,
        policy: str | type[FlowPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 3e-4,
        n_steps: int = 2048,
        batch_size: int = 64,
        n_epochs: int = 10,
        gamma: float = 0.99,
        gae_lambda: float = 0.95,
        clip_range: float | Schedule = 0.2,
        clip_range_vf: float | Schedule | None = None,
        normalize_advantage: bool = True,
        ent_coef: float = 0.0,
        vf_coef: float = 0.5,
        max_grad_norm: float = 0.5,
        n_samples: int = 8,
        ratio_mode: RatioMode = "per_sample",
        trust_region: TrustRegion = "aspo",
        tau_sampling: TauSampling = "uniform",
        tau_min: float = 0.0,
        tau_max: float = 1.0,
        cfm_loss_clamp: float | None = 20.0,
        log_ratio_clamp: LogRatioClamp = 3.0,
        log_ratio_straight_through: bool = False,
        fit_clipped_actions: bool = False,
        rollout_buffer_class: type[FlowRolloutBuffer] | type[FlowDictRolloutBuffer] | None = None,
        rollout_buffer_kwargs: dict[str, Any] | None = None,
        target_kl: float | None = None,
        adaptive_lr_target_kl: float | None = None,
        adaptive_lr_range: tuple[float, float] = (1e-5, 1e-2),
        adaptive_lr_every: AdaptEvery = "minibatch",
        critic_warmup_steps: int = 0,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ):
        check_hyperparameters(
            n_steps,
            batch_size,
            n_epochs,
            clip_range,
            ent_coef,
            n_samples,
            tau_min,
            tau_max,
            cfm_loss_clamp,
            normalize_advantage,
        )
        self.n_samples = n_samples
        self.ratio_mode: RatioMode = check_choice("ratio_mode", ratio_mode, RatioMode)  # type: ignore[assignment]
        self.trust_region: TrustRegion = check_choice("trust_region", trust_region, TrustRegion)  # type: ignore[assignment]
        self.tau_sampling: TauSampling = check_choice("tau_sampling", tau_sampling, TauSampling)  # type: ignore[assignment]
        self.tau_min = float(tau_min)
        self.tau_max = float(tau_max)
        self.cfm_loss_clamp = cfm_loss_clamp
        self.log_ratio_clamp = parse_log_ratio_clamp(log_ratio_clamp)
        self.log_ratio_straight_through = log_ratio_straight_through
        self.fit_clipped_actions = check_flag("fit_clipped_actions", fit_clipped_actions)
        self.adaptive_lr_target_kl = adaptive_lr_target_kl
        self.adaptive_lr_range = check_adaptive_lr(adaptive_lr_target_kl, adaptive_lr_range)
        self.adaptive_lr_every: AdaptEvery = check_choice("adaptive_lr_every", adaptive_lr_every, AdaptEvery)  # type: ignore[assignment]
        self.adaptive_lr: float | None = None  # the current adaptive learning rate, set by _setup_model
        self.critic_warmup_steps = check_int("critic_warmup_steps", critic_warmup_steps, minimum=0)
        if policy_kwargs and "use_sde" in policy_kwargs:
            # SB3 passes use_sde to the policy itself, so this would be a "multiple values" TypeError
            raise ValueError("FPO does not support gSDE (use_sde): exploration comes from the flow noise.")

        env = check_env(env, verbose, n_steps, normalize_advantage)  # a clear error here, before SB3 builds anything
        super().__init__(
            policy,
            env,
            learning_rate=learning_rate,
            n_steps=n_steps,
            batch_size=batch_size,
            n_epochs=n_epochs,
            gamma=gamma,
            gae_lambda=gae_lambda,
            clip_range=clip_range,
            clip_range_vf=clip_range_vf,
            normalize_advantage=normalize_advantage,
            ent_coef=ent_coef,
            vf_coef=vf_coef,
            max_grad_norm=max_grad_norm,
            rollout_buffer_class=rollout_buffer_class,
            rollout_buffer_kwargs=rollout_buffer_kwargs,
            target_kl=target_kl,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            policy_kwargs=policy_kwargs,
            verbose=verbose,
            seed=seed,
            device=device,
            _init_setup_model=False,
        )
        self._check_policy_class()
        # Saved with the model, so that a later change of a default does not change the network or loss it loads into
        self.policy_kwargs = {**recorded_defaults(), **self.policy_kwargs}
        if _init_setup_model:
            self._setup_model()

    def _check_policy_class(self) -> None:
        if not (isinstance(self.policy_class, type) and issubclass(self.policy_class, FlowPolicy)):
            raise ValueError(
                f"FPO needs a FlowPolicy ('MlpPolicy', 'CnnPolicy', 'MultiInputPolicy' or a subclass of "
                f"sb3_fpo.FlowPolicy), got {self.policy_class}. A file saved by another algorithm (e.g. PPO) "
                "must be loaded with that algorithm's class."
            )

    def _get_policy_from_name(self, policy_name: str) -> type[BasePolicy]:
        if policy_name not in self.policy_aliases:
            raise ValueError(f"Unknown policy {policy_name!r} for FPO. Valid names: {', '.join(self.policy_aliases)}.")
        return self.policy_aliases[policy_name]

    def learn(
        self: SelfFPO,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 1,
        tb_log_name: str = "FPO",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfFPO:
        """PPO's ``learn``; TensorBoard runs are named ``FPO_1``, ``FPO_2``, ... by default."""
        return super().learn(total_timesteps, callback, log_interval, tb_log_name, reset_num_timesteps, progress_bar)

    def _setup_model(self) -> None:
        self._check_policy_class()
        self.sb3_fpo_version = sb3_fpo_version()  # saved with the model, named by load errors
        for key, value in LEGACY_DEFAULTS.items():  # a model saved before __init__ recorded it: the default of its time
            self.policy_kwargs.setdefault(key, copy.copy(value))
        if self.rollout_buffer_class is None:
            is_dict = isinstance(self.observation_space, spaces.Dict)
            self.rollout_buffer_class = FlowDictRolloutBuffer if is_dict else FlowRolloutBuffer
        elif not issubclass(self.rollout_buffer_class, _FlowSamplesMixin):
            raise ValueError(
                "rollout_buffer_class must subclass FlowRolloutBuffer or FlowDictRolloutBuffer, "
                f"got {self.rollout_buffer_class}."
            )
        super()._setup_model()
        self._sync_adaptive_lr()

    # ------------------------------------------------------------------ FPO

    def _store_flow_samples(self) -> None:
        """Draw N (tau, eps) pairs per transition and compute their CFM losses with the rollout's parameters."""
        buffer = self.rollout_buffer
        if buffer.generator_ready and buffer.old_cfm is not None:
            # train() called again on the same rollout: keep its samples and old losses, as PPO keeps the
            # rollout's log-probabilities
            return
        if self.fit_clipped_actions and not self.policy.squash_output:
            # Before the old losses, so that old and new parameters see the same (executed) actions
            space = self.action_space
            assert isinstance(space, spaces.Box)  # checked in __init__
            low, high = (np.asarray(bound, buffer.actions.dtype).reshape(-1) for bound in (space.low, space.high))
            self.logger.record("train/clipped_action_fraction", buffer.clip_actions(low, high))
        observations, actions = buffer.flat_rollout()
        tau, eps = self._draw_pairs(len(actions), self.n_samples)
        old_cfm = self.policy.cfm_losses_no_grad(observations, actions, tau, eps)
        shape = (buffer.buffer_size, buffer.n_envs)
        buffer.set_flow_samples(*(x.cpu().numpy().reshape(*shape, *x.shape[1:]) for x in (tau, eps, old_cfm)))

    def fpo_loss(
        self, rollout_data: Any, clip_range: float, clip_range_vf: float | None
    ) -> tuple[th.Tensor, th.Tensor, th.Tensor, LossStats]:
        """
        FPO's loss on one minibatch, all that differs from PPO's ``train()``: the new CFM losses of the stored
        (tau, eps) pairs, the ratio ``exp(L_old - L_new)`` with its guards, the trust region, and PPO's value loss.

        :return: the total, policy and value losses, and the minibatch's :class:`~sb3_fpo.loss_stats.LossStats`
        """
        values, neg_cfm, _ = self.policy.evaluate_actions(
            rollout_data.observations, rollout_data.actions, rollout_data.tau, rollout_data.eps
        )
        values = values.flatten()
        raw_cfm = -neg_cfm
        new_cfm = clamp_cfm(raw_cfm, self.cfm_loss_clamp)
        old_cfm = clamp_cfm(rollout_data.old_cfm, self.cfm_loss_clamp)

        advantages = rollout_data.advantages
        if self.normalize_advantage and len(advantages) > 1:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)

        # FPO ratio: exp(L_old - L_new), exactly 1 on the first minibatch of an update
        raw_log_ratio = fpo_log_ratio(old_cfm, new_cfm, self.ratio_mode)
        low, high = self.log_ratio_clamp
        log_ratio = clamp_log_ratio(raw_log_ratio, low, high, self.log_ratio_straight_through)
        ratio = th.exp(log_ratio)
        policy_loss = -surrogate_objective(ratio, advantages, clip_range, self.trust_region).mean()

        if clip_range_vf is None:
            values_pred = values
        else:
            values_pred = rollout_data.old_values + th.clamp(values - rollout_data.old_values, -clip_range_vf, clip_range_vf)
        value_loss = F.mse_loss(rollout_data.returns, values_pred)

        with th.no_grad():
            cfm_clamp_frac = raw_cfm.new_zeros(())
            if self.cfm_loss_clamp is not None:
                cfm_clamp_frac = (raw_cfm > self.cfm_loss_clamp).float().mean()
            stats = LossStats(
                ratio_min=ratio.min(),
                ratio_mean=ratio.mean(),
                ratio_max=ratio.max(),
                clip_fraction=((ratio - 1).abs() > clip_range).float().mean(),
                cfm_loss=raw_cfm.mean(),
                cfm_clamp_fraction=cfm_clamp_frac,
                log_ratio_clamp_fraction=(raw_log_ratio != log_ratio).float().mean(),
                kl_proxy=kl_proxy(log_ratio),
            )
        return policy_loss + self.vf_coef * value_loss, policy_loss, value_loss, stats

    def _sync_adaptive_lr(self) -> float | None:
        """
        The adaptive learning rate, or ``None`` when off: ``adaptive_lr_target_kl`` alone decides (also for a loaded
        model); ``adaptive_lr`` holds the current value, started at ``learning_rate`` within ``adaptive_lr_range``.
        """
        if self.adaptive_lr_target_kl is None:
            self.adaptive_lr = None
        elif self.adaptive_lr is None:
            low, high = self.adaptive_lr_range
            self.adaptive_lr = min(max(float(self.lr_schedule(1.0)), low), high)
        return self.adaptive_lr

    def _set_adaptive_lr(self, learning_rate: float) -> None:
        self.adaptive_lr = learning_rate
        for group in self.policy.optimizer.param_groups:
            group["lr"] = learning_rate

    def _adapt_learning_rate(self, kl: float) -> None:
        assert self.adaptive_lr is not None and self.adaptive_lr_target_kl is not None
        rate = kl_adaptive_learning_rate(self.adaptive_lr, kl, self.adaptive_lr_target_kl, self.adaptive_lr_range)
        self._set_adaptive_lr(rate)

    def train(self) -> None:
        """
        Update policy using the currently gathered rollout buffer.

        PPO's ``train()`` loop (copied rather than inherited because PPO computes its ratio and loss inline, with no
        hook to replace them); the FPO loss of a minibatch is :meth:`fpo_loss`.
        """
        self.policy.set_training_mode(True)
        adaptive_lr = self._sync_adaptive_lr()
        if adaptive_lr is None:
            self._update_learning_rate(self.policy.optimizer)
        else:
            self._set_adaptive_lr(adaptive_lr)
        clip_range = self.clip_range(self._current_progress_remaining)  # type: ignore[operator]
        clip_range_vf = None
        if self.clip_range_vf is not None:
            clip_range_vf = self.clip_range_vf(self._current_progress_remaining)  # type: ignore[operator]

        check_rollout_finite(self.rollout_buffer)
        self._store_flow_samples()
        critic_only = self.num_timesteps <= self.critic_warmup_steps
        adapt = self.adaptive_lr is not None and not critic_only  # a frozen policy's KL proxy is 0

        pg_losses: list[float] = []
        value_losses: list[float] = []
        approx_kl_divs: list[float] = []
        grad_norms: list[th.Tensor] = []  # before clipping
        stats: list[LossStats] = []  # per minibatch, kept on the device

        continue_training = True
        for epoch in range(self.n_epochs):
            approx_kl_divs = []
            for rollout_data in self.rollout_buffer.get(self.batch_size):
                loss, policy_loss, value_loss, minibatch_stats = self.fpo_loss(rollout_data, clip_range, clip_range_vf)
                if critic_only:
                    loss = self.vf_coef * value_loss
                if not th.isfinite(loss):
                    raise ValueError(
                        f"The FPO loss became non-finite (policy {policy_loss.item()}, value {value_loss.item()}) at "
                        f"update {self._n_updates}. Lower learning_rate, or guard the ratio with cfm_loss_clamp / "
                        "log_ratio_clamp (defaults 20 and 3); check the rewards' scale (VecNormalize)."
                    )
                pg_losses.append(policy_loss.item())
                value_losses.append(value_loss.item())
                stats.append(minibatch_stats)
                approx_kl_div = minibatch_stats.kl_proxy.item()
                approx_kl_divs.append(approx_kl_div)

                if adapt and self.adaptive_lr_every == "minibatch":
                    self._adapt_learning_rate(approx_kl_div)

                if self.target_kl is not None and approx_kl_div > 1.5 * self.target_kl:
                    continue_training = False
                    if self.verbose >= 1:
                        print(f"Early stopping at step {epoch} due to reaching max kl proxy: {approx_kl_div:.2f}")
                    break

                self.policy.optimizer.zero_grad()
                loss.backward()
                grad_norm = th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
                grad_norms.append(grad_norm.detach())
                if not th.isfinite(grad_norm):
                    # Checked before the step, so the parameters stay as they were (no silent NaN model)
                    raise ValueError(
                        f"Non-finite gradient at update {self._n_updates} (the parameters were not changed). The "
                        "ratio exp(L_old - L_new) probably overflowed: set log_ratio_clamp (default 3, without "
                        "straight-through gradient) or cfm_loss_clamp, or lower learning_rate."
                    )
                self.policy.optimizer.step()

            self._n_updates += 1
            if not continue_training:
                break

        explained_var = explained_variance(self.rollout_buffer.values.flatten(), self.rollout_buffer.returns.flatten())

        self.logger.record("train/policy_gradient_loss", np.mean(pg_losses))
        self.logger.record("train/value_loss", np.mean(value_losses))
        self.logger.record("train/approx_kl", np.mean(approx_kl_divs))
        self.logger.record("train/loss", loss.item())
        self.logger.record("train/explained_variance", explained_var)
        stat = record_update(
            self.logger, stats, grad_norms, self.cfm_loss_clamp is not None, self.log_ratio_clamp != (None, None)
        )
        if adapt and self.adaptive_lr_every == "update":
            self._adapt_learning_rate(float(stat.kl_proxy.mean()))
        if self.adaptive_lr is not None:
            self.logger.record("train/learning_rate", self.adaptive_lr)  # its value after this update
        self.logger.record("train/critic_only", float(critic_only))
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/clip_range", clip_range)
        if clip_range_vf is not None:
            self.logger.record("train/clip_range_vf", clip_range_vf)

    # ------------------------------------------------------------------ behaviour cloning

    #: Behaviour cloning (:func:`sb3_fpo.pretraining.pretrain`, with this model as its first argument)
    pretrain = pretrain

    def _draw_pairs(self, n: int, n_samples: int, generator: th.Generator | None = None) -> tuple[th.Tensor, th.Tensor]:
        """
        ``n_samples`` (tau, eps) pairs for each of ``n`` transitions (:func:`sb3_fpo.flow.draw_pairs` with this model's
        settings), on the policy's device; drawn from torch's global RNG, or from a CPU ``generator`` if given.
        """
        device = self.device if generator is None else th.device("cpu")
        tau, eps = draw_pairs(
            n,
            n_samples,
            self.policy.action_dim,
            self.tau_sampling,
            self.tau_min,
            self.tau_max,
            grid_steps=self.policy.flow_steps,
            device=device,
            generator=generator,
        )
        return tau.to(self.device), eps.to(self.device)

    # ------------------------------------------------------------------ persistence

    @classmethod
    def load(cls: type[SelfFPO], path: str | pathlib.Path | io.BufferedIOBase, *args: Any, **kwargs: Any) -> SelfFPO:  # type: ignore[override]
        """
        Load an FPO model: ``BaseAlgorithm.load``'s arguments (``env``, ``device``, ``custom_objects``, ...).

        Errors name the cause: ``FileNotFoundError`` with the path as given; ``ValueError`` for a file that is not a
        readable SB3 zip (corrupted), for one saved by another algorithm, and for one whose policy does not fit
        this version of sb3_fpo (unknown policy keyword arguments or different parameters), with the version that
        wrote it.
        """
        check_model_file(path)
        with clear_load_errors(path):
            return super().load(path, *args, **kwargs)
