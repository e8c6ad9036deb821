"""Rollout buffers that also carry FPO's Monte-Carlo flow samples (tau, eps) and the old CFM losses."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, NamedTuple

import numpy as np
import torch as th
from stable_baselines3.common.buffers import DictRolloutBuffer, RolloutBuffer
from stable_baselines3.common.type_aliases import TensorDict
from stable_baselines3.common.vec_env import VecNormalize


class FlowRolloutBufferSamples(NamedTuple):
    observations: th.Tensor
    actions: th.Tensor
    old_values: th.Tensor
    old_log_prob: th.Tensor
    advantages: th.Tensor
    returns: th.Tensor
    tau: th.Tensor  # (B, N, 1)
    eps: th.Tensor  # (B, N, D)
    old_cfm: th.Tensor  # (B, N)


class FlowDictRolloutBufferSamples(NamedTuple):
    observations: TensorDict
    actions: th.Tensor
    old_values: th.Tensor
    old_log_prob: th.Tensor
    advantages: th.Tensor
    returns: th.Tensor
    tau: th.Tensor
    eps: th.Tensor
    old_cfm: th.Tensor


class _FlowSamplesMixin:
    """
    Adds ``tau (T, E, N, 1)``, ``eps (T, E, N, D)`` and ``old_cfm (T, E, N)`` to an SB3 rollout buffer.

    SB3's ``collect_rollouts`` fills the buffer as usual; FPO then draws the pairs for the whole buffer and
    stores them with :meth:`set_flow_samples` before the first :meth:`get`. The arrays are flattened like
    SB3's own fields, so each minibatch carries the pairs of its own transitions.
    """

    _flow_fields = ("tau", "eps", "old_cfm")
    tau: np.ndarray | None
    eps: np.ndarray | None
    old_cfm: np.ndarray | None
    buffer_size: int
    n_envs: int
    generator_ready: bool

    def reset(self) -> None:
        self.tau = self.eps = self.old_cfm = None
        super().reset()  # type: ignore[misc]

    def set_flow_samples(self, tau: np.ndarray, eps: np.ndarray, old_cfm: np.ndarray) -> None:
        """Store the flow samples of a full buffer, each shaped ``(n_steps, n_envs, N, ...)``."""
        if self.generator_ready:
            raise RuntimeError("set_flow_samples() must be called before the first get() of a rollout.")
        expected = (self.buffer_size, self.n_envs)
        for name, value in zip(self._flow_fields, (tau, eps, old_cfm)):
            if value.shape[:2] != expected:
                raise ValueError(f"{name} must start with shape {expected}, got {value.shape}.")
        self.tau, self.eps, self.old_cfm = tau, eps, old_cfm

    def flat_rollout(self) -> tuple[Any, np.ndarray]:
        """
        Time-major flat views (row ``t * n_envs + e``) of the not yet flattened observations (an array, or a dict of
        arrays) and actions, ``n_steps * n_envs`` rows each: the order of the rows of :meth:`set_flow_samples`.
        """
        n_total = self.buffer_size * self.n_envs
        observations: Any = self.observations  # type: ignore[attr-defined]
        if isinstance(observations, dict):
            observations = {key: value.reshape(n_total, *value.shape[2:]) for key, value in observations.items()}
        else:
            observations = observations.reshape(n_total, *observations.shape[2:])
        return observations, self.actions.reshape(n_total, -1)  # type: ignore[attr-defined]

    def clip_actions(self, low: np.ndarray, high: np.ndarray) -> float:
        """Clip the stored actions in place to ``[low, high]``; return the share of action entries that were outside."""
        actions: np.ndarray = self.actions  # type: ignore[attr-defined]
        outside = float(((actions < low) | (actions > high)).mean())
        np.clip(actions, low, high, out=actions)
        return outside

    def _flatten_flow_samples(self) -> None:
        if self.old_cfm is None:
            raise RuntimeError("FPO flow samples missing: call set_flow_samples() before get().")
        if not self.generator_ready:
            for name in self._flow_fields:
                setattr(self, name, self.swap_and_flatten(getattr(self, name)))  # type: ignore[attr-defined]

    def _flow_tensors(self, batch_inds: np.ndarray) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        assert self.tau is not None and self.eps is not None and self.old_cfm is not None
        to_torch = self.to_torch  # type: ignore[attr-defined]
        return to_torch(self.tau[batch_inds]), to_torch(self.eps[batch_inds]), to_torch(self.old_cfm[batch_inds])


class FlowRolloutBuffer(_FlowSamplesMixin, RolloutBuffer):
    """SB3 ``RolloutBuffer`` plus FPO's flow samples (Box/image observations)."""

    def get(self, batch_size: int | None = None) -> Generator[FlowRolloutBufferSamples, None, None]:  # type: ignore[override]
        self._flatten_flow_samples()
        yield from super().get(batch_size)  # type: ignore[misc]

    def _get_samples(self, batch_inds: np.ndarray, env: VecNormalize | None = None) -> FlowRolloutBufferSamples:  # type: ignore[override]
        return FlowRolloutBufferSamples(*super()._get_samples(batch_inds, env), *self._flow_tensors(batch_inds))


class FlowDictRolloutBuffer(_FlowSamplesMixin, DictRolloutBuffer):
    """SB3 ``DictRolloutBuffer`` plus FPO's flow samples (``Dict`` observations)."""

    def get(self, batch_size: int | None = None) -> Generator[FlowDictRolloutBufferSamples, None, None]:  # type: ignore[override]
        self._flatten_flow_samples()
        yield from super().get(batch_size)  # type: ignore[misc]

    def _get_samples(  # type: ignore[override]
        self, batch_inds: np.ndarray, env: VecNormalize | None = None
    ) -> FlowDictRolloutBufferSamples:
        return FlowDictRolloutBufferSamples(*super()._get_samples(batch_inds, env), *self._flow_tensors(batch_inds))
