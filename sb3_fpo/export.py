"""
Export a trained flow policy to ONNX: one graph from the raw observation to the action ``predict`` returns.

The graph holds the observation normalisation (optionally VecNormalize's saved statistics), SB3's preprocessing
(images divided by 255, discrete observations one-hot), the features extractor and actor ``net_arch``, the
integration steps of the velocity field unrolled, the ``tanh`` squash and the rescaling or clipping to the action
Box. Its output is ``model.predict(obs, deterministic=True)[0]`` for a batch of observations (the batch axis is
dynamic), so a deployed policy needs only numpy and onnxruntime:

.. code-block:: python

    from sb3_fpo.export import export_onnx

    export_onnx(model, "policy.onnx")  # zero-sampling: deterministic, the same as predict(deterministic=True)
    export_onnx(model, "sampler.onnx", noise="input")  # a second input "noise": sample with your own N(0, I)

    import onnxruntime as ort
    session = ort.InferenceSession("policy.onnx")
    action = session.run(None, {"obs": obs.astype("float32")})[0]
"""

from __future__ import annotations

import io
import logging
import pickle
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecNormalize
from torch import nn

from sb3_fpo.checks import check_int
from sb3_fpo.flow import IntegrationMethod, check_choice, initial_noise, integrate, integration_times
from sb3_fpo.policies import FlowPolicy

ExportNoise = Literal["zero", "fixed", "input"]

#: Name of the starting-noise input of a graph exported with ``noise="input"``
NOISE_INPUT = "noise"
#: Name of the observation input (``Dict`` observation spaces get one input per key, named by the key)
OBS_INPUT = "obs"
#: Name of the output
ACTION_OUTPUT = "action"


class _ObsNormalizer(nn.Module):
    """VecNormalize's observation transform ``clip((obs - mean) / sqrt(var + epsilon), -clip_obs, clip_obs)``."""

    mean: th.Tensor
    scale: th.Tensor

    def __init__(self, mean: np.ndarray, var: np.ndarray, epsilon: float, clip_obs: float) -> None:
        super().__init__()
        self.register_buffer("mean", th.as_tensor(np.asarray(mean), dtype=th.float32))
        self.register_buffer("scale", th.as_tensor(np.sqrt(np.asarray(var) + epsilon), dtype=th.float32))
        self.clip_obs = float(clip_obs)

    def forward(self, obs: th.Tensor) -> th.Tensor:
        # numpy computes VecNormalize's transform in float64; float32 here differs by float rounding (~1e-7)
        return th.clamp((obs.float() - self.mean) / self.scale, -self.clip_obs, self.clip_obs)


class FlowActor(nn.Module):
    """
    The acting part of a :class:`~sb3_fpo.policies.FlowPolicy` as a plain module: observation(s) (and, with
    ``noise="input"``, the starting noise) in, the action ``predict`` returns out. :func:`export_onnx` exports it;
    it can also be used as is, e.g. with ``torch.jit.trace``.

    :param policy: the trained policy (its parameters are shared, not copied)
    :param noise: starting point of the integration: ``zero`` (zero-sampling), ``fixed`` (the policy's fixed draw,
        see ``deterministic_noise``) or ``input`` (an extra ``noise`` argument, ``N(0, I)`` of shape ``(B, D)``;
        it is multiplied by the policy's ``source_std``, and zeros give zero-sampling)
    :param flow_steps: integration steps (default: the policy's ``eval_flow_steps``, else ``flow_steps``)
    :param flow_method: integrator (default: the policy's ``eval_flow_method``, else ``flow_method``)
    :param vec_normalize: VecNormalize whose observation statistics are applied first (the input is then the raw
        env observation); ``None`` if the observations reach the policy as they are
    """

    low: th.Tensor
    high: th.Tensor
    fixed_noise: th.Tensor

    def __init__(
        self,
        policy: FlowPolicy,
        noise: ExportNoise = "zero",
        flow_steps: int | None = None,
        flow_method: IntegrationMethod | None = None,
        vec_normalize: VecNormalize | None = None,
    ) -> None:
        super().__init__()
        check_choice("noise", noise, ExportNoise)
        self.policy = policy
        self.noise = noise
        self.n_steps = check_int("flow_steps", flow_steps or policy.eval_flow_steps or policy.flow_steps)
        self.method: IntegrationMethod = flow_method or policy.eval_flow_method or policy.flow_method
        check_choice("flow_method", self.method, IntegrationMethod)
        self.keys = list(policy.observation_space.spaces) if isinstance(policy.observation_space, spaces.Dict) else []
        self.normalizers = nn.ModuleDict(_normalizers(policy.observation_space, vec_normalize))
        self.taus = integration_times(self.n_steps, self.method)
        action_space = policy.action_space
        assert isinstance(action_space, spaces.Box)
        device = policy.device
        self.register_buffer("low", th.as_tensor(action_space.low, dtype=th.float32, device=device))
        self.register_buffer("high", th.as_tensor(action_space.high, dtype=th.float32, device=device))
        fixed = initial_noise((1, policy.action_dim), "fixed", device=device, seed=policy.noise_seed)
        self.register_buffer("fixed_noise", fixed)

    def forward(self, *inputs: th.Tensor) -> th.Tensor:
        """
        The action for the observation(s), one tensor per ``Dict`` key in the policy's order, followed by the starting
        noise with ``noise="input"``.
        """
        policy = self.policy
        if self.keys:
            observation: Any = {key: self._normalize(key, obs) for key, obs in zip(self.keys, inputs)}
        else:
            observation = self._normalize(OBS_INPUT, inputs[0])
        latent = policy._actor_latent(observation)  # SB3's preprocessing, the features extractor, net_arch's pi
        if self.noise == "input":
            x0 = inputs[-1].reshape(latent.shape[0], policy.action_dim).to(latent.dtype)
        elif self.noise == "fixed":
            x0 = self.fixed_noise.expand(latent.shape[0], -1)
        else:
            x0 = th.zeros_like(latent[:, :1]).expand(-1, policy.action_dim)
        if policy.source_std != 1.0:
            x0 = policy.source_std * x0
        cond = policy.velocity_net.condition(latent)
        # Functions of the weights alone: the exporter folds them into constants of the graph
        taus = th.tensor(self.taus, dtype=latent.dtype, device=latent.device).unsqueeze(-1)
        time_term_at = dict(zip(self.taus, policy.velocity_net.time_term(taus)))
        x = integrate(lambda x, tau: policy.velocity_net(cond, x, time_term_at[tau]), x0, self.n_steps, self.method)
        if policy.squash_output:  # tanh, then SB3's unscale_action to the Box bounds
            action = self.low + 0.5 * (th.tanh(x) + 1.0) * (self.high - self.low)
        else:  # SB3's np.clip to the Box bounds
            action = th.minimum(th.maximum(x, self.low.reshape(1, -1)), self.high.reshape(1, -1))
        return action.reshape((-1, *policy.action_space.shape))  # type: ignore[misc]

    def _normalize(self, key: str, obs: th.Tensor) -> th.Tensor:
        return self.normalizers[key](obs) if key in self.normalizers else obs


def _normalizers(observation_space: spaces.Space, vec_normalize: VecNormalize | None) -> dict[str, _ObsNormalizer]:
    """One :class:`_ObsNormalizer` per normalised observation (``OBS_INPUT``, or the normalised Dict keys)."""
    if vec_normalize is None or not vec_normalize.norm_obs:
        return {}
    rms, epsilon, clip_obs = vec_normalize.obs_rms, vec_normalize.epsilon, vec_normalize.clip_obs
    if isinstance(observation_space, spaces.Dict):
        assert isinstance(rms, dict)
        keys = vec_normalize.norm_obs_keys or []
        return {key: _ObsNormalizer(rms[key].mean, rms[key].var, epsilon, clip_obs) for key in keys}
    assert not isinstance(rms, dict)
    return {OBS_INPUT: _ObsNormalizer(rms.mean, rms.var, epsilon, clip_obs)}


def _load_vec_normalize(vec_normalize: VecNormalize | str | Path | None) -> VecNormalize | None:
    if vec_normalize is None or isinstance(vec_normalize, VecNormalize):
        return vec_normalize
    with open(vec_normalize, "rb") as file:  # VecNormalize.save pickles the wrapper without its env
        loaded = pickle.load(file)
    if not isinstance(loaded, VecNormalize):
        raise TypeError(f"{vec_normalize} holds a {type(loaded).__name__}, not a saved VecNormalize.")
    return loaded


def example_inputs(actor: FlowActor, batch_size: int = 2) -> tuple[th.Tensor, ...]:
    """Zero inputs of the right shapes and dtypes for ``actor`` (observations, then the noise if it takes one)."""
    space = actor.policy.observation_space
    subspaces: Mapping[str, spaces.Space] = space.spaces if isinstance(space, spaces.Dict) else {OBS_INPUT: space}
    inputs = [th.as_tensor(np.zeros((batch_size, *sub.shape), dtype=input_dtype(sub))) for sub in subspaces.values()]  # type: ignore[misc]
    if actor.noise == "input":
        inputs.append(th.zeros(batch_size, actor.policy.action_dim))
    return tuple(input_.to(actor.policy.device) for input_ in inputs)


def input_dtype(space: spaces.Space) -> np.dtype:
    """The dtype of an observation input: float32 for float spaces, the space's own dtype otherwise."""
    dtype = np.dtype(space.dtype)
    return np.dtype(np.float32) if np.issubdtype(dtype, np.floating) else dtype


def input_names(actor: FlowActor) -> list[str]:
    """The graph's input names: ``obs`` (or the Dict keys), then ``noise`` with ``noise="input"``."""
    return (actor.keys or [OBS_INPUT]) + ([NOISE_INPUT] if actor.noise == "input" else [])


def export_onnx(
    model: Any,
    path: str | Path | io.BytesIO,
    noise: ExportNoise = "zero",
    flow_steps: int | None = None,
    flow_method: IntegrationMethod | None = None,
    vec_normalize: VecNormalize | str | Path | None = None,
    opset: int | None = None,
) -> list[str]:
    """
    Write the acting policy of a trained FPO model (or a :class:`~sb3_fpo.policies.FlowPolicy`) as one ONNX graph.

    Inputs: ``obs`` (float32 for float Boxes, the space's dtype otherwise, e.g. uint8 images in the policy's
    channel-first layout), or one input per key of a ``Dict`` observation space; with ``noise="input"`` also
    ``noise``, float32 of shape ``(batch, action_dim)``. Output: ``action``, float32 of shape
    ``(batch, *action_shape)``, what ``model.predict(obs, deterministic=True)`` returns (with ``noise="input"``,
    zeros give that action and ``N(0, I)`` draws sample the policy). Every axis 0 is dynamic.

    :param model: an ``FPO`` model or its policy
    :param path: file to write (or a binary buffer)
    :param noise: ``zero`` (zero-sampling, the default of ``predict(deterministic=True)``), ``fixed`` (the policy's
        ``fixed`` starting noise) or ``input`` (the starting noise is a second input)
    :param flow_steps: integration steps (default: the policy's ``eval_flow_steps``, else ``flow_steps``)
    :param flow_method: ``euler``, ``midpoint`` or ``heun`` (default: the policy's predict setting)
    :param vec_normalize: a ``VecNormalize`` or the path of one saved with ``VecNormalize.save``: its observation
        statistics go into the graph, which then takes raw env observations
    :param opset: ONNX opset (default: torch's)
    :return: the graph's input names
    """
    policy = getattr(model, "policy", model)
    if not isinstance(policy, FlowPolicy):
        raise TypeError(f"export_onnx needs an FPO model or a FlowPolicy, got {type(policy).__name__}.")
    actor = FlowActor(policy, noise, flow_steps, flow_method, _load_vec_normalize(vec_normalize)).eval()
    names = input_names(actor)
    was_training = policy.training
    policy.set_training_mode(False)
    registration_log = logging.getLogger("torch.onnx._internal.exporter._registration")
    log_level = registration_log.level
    registration_log.setLevel(logging.ERROR)  # "torchvision is not installed. Skipping torchvision::nms", ...
    try:
        with th.no_grad(), warnings.catch_warnings():
            # Harmless notes of torch's exporter: every input shares the one "batch" axis, and a pytree deprecation
            warnings.filterwarnings("ignore", message=".*axis name: batch will not be used")
            warnings.filterwarnings("ignore", message=".*LeafSpec.*deprecated", category=FutureWarning)
            th.onnx.export(
                actor,
                example_inputs(actor),
                path,  # type: ignore[arg-type]  # a binary buffer works too
                input_names=names,
                output_names=[ACTION_OUTPUT],
                dynamic_shapes=(tuple({0: th.export.Dim("batch")} for _ in names),),
                opset_version=opset,
                dynamo=True,
                external_data=False,
                verbose=False,
            )
    finally:
        registration_log.setLevel(log_level)
        policy.set_training_mode(was_training)
    return names
