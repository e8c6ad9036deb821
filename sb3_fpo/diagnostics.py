"""
Multimodality diagnostics for flow policies (and, where it makes sense, any SB3 policy).

A flow policy can put its probability mass on several good actions at once; a Gaussian policy has one
mode. These helpers measure that on a trained model:

* :func:`sample_raw_actions`: ``k`` raw (unclipped) actions per observation;
* :func:`sarle_bimodality`, :func:`count_modes`, :func:`mode_fractions`, :func:`action_mode_report`: statistics of
  the samples along one action axis (the goal axis of ``TwoGoal-v0`` is ``y``, the last one);
* :func:`kde`, :func:`kde_bandwidth`: the density estimate behind the mode count;
* :func:`plot_action_samples`: densities (histograms) and scatter plots of the samples, as PNG (needs the ``plots``
  extra, matplotlib);
* :class:`ActionHistogramCallback`: TensorBoard histograms of raw action samples during training.

Example::

    import numpy as np
    from sb3_fpo import FPO
    from sb3_fpo.diagnostics import action_mode_report

    model = FPO("MlpPolicy", "TwoGoal-v0").learn(100_000)
    print(action_mode_report(model, np.zeros((1, 2), dtype=np.float32), k=1000))

Helpers that only make sense on ``TwoGoal-v0`` (which goal rollouts reach, trajectory plots) are in
:mod:`sb3_fpo.envs.two_goal_diagnostics`.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy

from sb3_fpo.flow import NoiseMode, check_choice

#: Sarle's bimodality coefficient of the uniform distribution; larger values suggest bimodality.
SARLE_THRESHOLD = 5.0 / 9.0

Bandwidth = Literal["silverman", "scott"] | float

# The logger outputs that cannot show an array: histograms go to TensorBoard only.
_NOT_TENSORBOARD = ("stdout", "log", "json", "csv")


# --------------------------------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def torch_seed(seed: int | None) -> Iterator[None]:
    """Run the block with torch's generators seeded by ``seed``, restoring their states afterwards."""
    if seed is None:
        yield
        return
    devices = list(range(th.cuda.device_count())) if th.cuda.is_available() and th.cuda.is_initialized() else []
    with th.random.fork_rng(devices=devices):
        th.random.default_generator.manual_seed(seed)
        if devices:
            th.cuda.manual_seed_all(seed)
        yield


def _policy_of(model_or_policy: Any) -> Any:
    return model_or_policy.policy if isinstance(model_or_policy, BaseAlgorithm) else model_or_policy


def _repeat_obs(obs: Any, k: int) -> Any:
    if isinstance(obs, dict):
        return {key: value.repeat_interleave(k, dim=0) for key, value in obs.items()}
    return obs.repeat_interleave(k, dim=0)


def _n_obs(obs: Any) -> int:
    first = next(iter(obs.values())) if isinstance(obs, dict) else obs
    return int(first.shape[0])


def sample_raw_actions(
    model_or_policy: Any,
    observations: Any,
    k: int,
    noise: NoiseMode = "random",
    seed: int | None = None,
    clip: bool = False,
) -> np.ndarray:
    """
    ``k`` raw action samples per observation, before SB3 clips them to the action space.

    * a :class:`~sb3_fpo.policies.FlowPolicy` (or any object with a ``sample_actions(obs, noise=...)`` method):
      the flow sampler from ``noise`` (``random``: fresh N(0, I) starting noise; ``zero`` and ``fixed`` give the
      same action ``k`` times);
    * an SB3 ``ActorCriticPolicy`` (PPO, A2C): ``get_distribution(obs).sample()`` (``noise="zero"``: the mode);
    * any other SB3 policy: ``_predict(obs, deterministic=noise != "random")`` (SAC's actions are tanh-squashed
      to [-1, 1], TD3's are deterministic).

    Observations are given as the policy sees them: normalise them first if the model trains on ``VecNormalize``.

    :param model_or_policy: an SB3 algorithm (``FPO``, ``PPO``, ...) or its ``policy``
    :param observations: a batch ``(n_obs, *obs_shape)`` (or a dict of batches), or a single observation
    :param k: samples per observation
    :param noise: ``random`` (default), ``zero`` or ``fixed``
    :param seed: seed torch's generator for these samples (its previous state is restored afterwards, so that a
        callback does not change the training run); ``None`` draws from the current state
    :param clip: clip the samples to the policy's ``Box`` action space, as SB3 does before ``env.step``: the
        actions the env executes. A policy trained on a clipping env often pushes its raw samples far beyond
        the bounds (where they all act the same), which makes raw histograms wide and skewed.
    :return: float array of shape ``(n_obs, k, *action_shape)``
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}.")
    check_choice("noise", noise, NoiseMode)
    policy = _policy_of(model_or_policy)
    if isinstance(policy, BasePolicy):
        obs, _ = policy.obs_to_tensor(observations)
        was_training = policy.training
        policy.set_training_mode(False)
    else:
        obs = th.as_tensor(np.asarray(observations, dtype=np.float32))
        was_training = None
    n_obs = _n_obs(obs)
    batch = _repeat_obs(obs, k)
    try:
        with th.no_grad(), torch_seed(seed):
            if hasattr(policy, "sample_actions"):
                actions = policy.sample_actions(batch, noise=noise)
            elif isinstance(policy, ActorCriticPolicy):
                if noise == "fixed":
                    raise ValueError("noise='fixed' is only defined for flow policies.")
                distribution = policy.get_distribution(batch)
                actions = distribution.sample() if noise == "random" else distribution.mode()
            elif isinstance(policy, BasePolicy):
                actions = policy._predict(batch, deterministic=noise != "random")
            else:
                raise TypeError(
                    f"Cannot sample actions from {type(policy).__name__}: expected an SB3 algorithm or policy, "
                    "or an object with a sample_actions(obs, noise=...) method."
                )
    finally:
        if was_training is not None:
            policy.set_training_mode(was_training)
    samples = th.as_tensor(actions).detach().cpu().numpy()
    samples = samples.reshape((n_obs, k, *samples.shape[1:]))
    if clip:
        action_space = getattr(policy, "action_space", None)
        if not isinstance(action_space, gym.spaces.Box):
            raise ValueError(f"clip=True needs a policy with a Box action_space, got {action_space!r}.")
        samples = np.clip(samples, action_space.low, action_space.high)
    return samples


# --------------------------------------------------------------------------------------------------
# Statistics along one action axis
# --------------------------------------------------------------------------------------------------


def _axis_values(samples: Any, dim: int) -> np.ndarray:
    """The 1-D samples along action dimension ``dim``: ``samples`` is ``(k,)`` or ``(k, D)``."""
    values = np.asarray(samples, dtype=np.float64)
    if values.ndim == 2:
        values = values[:, dim]
    elif values.ndim != 1:
        raise ValueError(
            f"Expected samples of shape (k,) or (k, D), got {values.shape}; "
            "pass one observation's samples, e.g. sample_raw_actions(...)[i]."
        )
    if values.size == 0 or not np.all(np.isfinite(values)):
        raise ValueError("samples must be non-empty and finite.")
    return values


def sarle_bimodality(samples: Any, dim: int = -1) -> float:
    """
    Sarle's bimodality coefficient ``(G1^2 + 1) / (G2 + 3 (n - 1)^2 / ((n - 2) (n - 3)))``.

    ``G1`` and ``G2`` are the sample skewness and excess kurtosis with their small-sample bias corrections
    (SAS's definition). Values above ``5/9`` (the uniform distribution, :data:`SARLE_THRESHOLD`) suggest
    bimodality; a Gaussian gives ``1/3``, two well separated equal modes approach ``1``. A skewed or heavy-tailed
    unimodal sample can also exceed ``5/9``: read it with :func:`count_modes`.

    :param samples: shape ``(k,)``, or ``(k, D)`` of which action dimension ``dim`` is used
    :param dim: action dimension, for 2-D ``samples`` (default: the last, the goal axis of ``TwoGoal-v0``)
    :return: the coefficient, ``nan`` if all samples are equal
    """
    x = _axis_values(samples, dim)
    n = x.size
    if n < 4:
        raise ValueError(f"Sarle's coefficient needs at least 4 samples, got {n}.")
    centred = x - x.mean()
    m2 = float(np.mean(centred**2))
    if m2 <= 0.0:
        return float("nan")
    g1 = float(np.mean(centred**3)) / m2**1.5
    g2 = float(np.mean(centred**4)) / m2**2 - 3.0
    skew = g1 * math.sqrt(n * (n - 1)) / (n - 2)
    excess_kurtosis = ((n + 1) * g2 + 6.0) * (n - 1) / ((n - 2) * (n - 3))
    return (skew**2 + 1.0) / (excess_kurtosis + 3.0 * (n - 1) ** 2 / ((n - 2) * (n - 3)))


def kde_bandwidth(samples: Any, bandwidth: Bandwidth = "silverman", dim: int = -1) -> float:
    """
    Bandwidth of a 1-D Gaussian kernel density estimate.

    * ``silverman``: Silverman's rule of thumb ``0.9 min(std, IQR / 1.349) n^(-1/5)``;
    * ``scott``: Scott's rule ``std n^(-1/5)`` (``scipy.stats.gaussian_kde``'s default in 1-D);
    * a positive float: used as is.
    """
    x = _axis_values(samples, dim)
    if not isinstance(bandwidth, str):
        if not bandwidth > 0:
            raise ValueError(f"bandwidth must be > 0, got {bandwidth}.")
        return float(bandwidth)
    std = float(np.std(x, ddof=1)) if x.size > 1 else 0.0
    factor = x.size ** (-0.2)
    if bandwidth == "scott":
        return std * factor
    if bandwidth == "silverman":
        q75, q25 = np.percentile(x, [75, 25])
        iqr = float(q75 - q25) / 1.349
        spread = min(std, iqr) if iqr > 0 else std
        return 0.9 * spread * factor
    raise ValueError(f"Unknown bandwidth {bandwidth!r}: 'silverman', 'scott' or a positive float.")


def kde(samples: Any, grid: np.ndarray, bandwidth: Bandwidth = "silverman", dim: int = -1) -> np.ndarray:
    """Gaussian kernel density estimate of the samples (along ``dim``) at the points ``grid``."""
    x = _axis_values(samples, dim)
    h = kde_bandwidth(x, bandwidth)
    grid = np.asarray(grid, dtype=np.float64)
    if h <= 0:  # all samples equal: a point mass
        return np.where(np.isclose(grid, x[0]), np.inf, 0.0)
    density = np.zeros_like(grid)
    for start in range(0, x.size, 4096):  # bounded memory: (grid, 4096) at a time
        z = (grid[:, None] - x[None, start : start + 4096]) / h
        density += np.exp(-0.5 * z**2).sum(axis=1)
    return density / (x.size * h * math.sqrt(2.0 * math.pi))


def count_modes(
    samples: Any,
    dim: int = -1,
    bandwidth: Bandwidth = "silverman",
    grid_size: int = 512,
    min_prominence: float = 0.05,
) -> int:
    """
    Number of modes of the samples along action dimension ``dim``: peaks of a Gaussian KDE.

    A peak counts if its topographic prominence (its height above the higher of the two lowest points that
    separate it from a higher peak, or from the ends of the grid) is at least ``min_prominence`` times the
    highest density, which ignores ripples of the estimate and bumps of single outliers.

    :param samples: shape ``(k,)``, or ``(k, D)`` of which action dimension ``dim`` is used
    :param dim: action dimension, for 2-D ``samples``
    :param bandwidth: ``silverman`` (default), ``scott`` or a float, see :func:`kde_bandwidth`
    :param grid_size: KDE evaluation points, over the sample range plus 3 bandwidths on each side
    :param min_prominence: relative prominence a peak needs
    """
    x = _axis_values(samples, dim)
    h = kde_bandwidth(x, bandwidth)
    if h <= 0:
        return 1
    grid = np.linspace(x.min() - 3.0 * h, x.max() + 3.0 * h, grid_size)
    density = kde(x, grid, h)
    peaks = [i for i in range(1, grid_size - 1) if density[i - 1] < density[i] >= density[i + 1]]
    highest = float(density.max())
    n_modes = 0
    for i in peaks:
        left = next((j for j in range(i - 1, -1, -1) if density[j] > density[i]), 0)
        right = next((j for j in range(i + 1, grid_size) if density[j] > density[i]), grid_size - 1)
        base = max(float(density[left : i + 1].min()), float(density[i : right + 1].min()))
        if density[i] - base >= min_prominence * highest:
            n_modes += 1
    return max(n_modes, 1)


def mode_fractions(samples: Any, threshold: float = 0.0, dim: int = -1) -> dict[int, float]:
    """
    Fractions of the samples on each side of ``threshold`` along action dimension ``dim``.

    :param samples: shape ``(k,)``, or ``(k, D)`` of which action dimension ``dim`` is used
    :param threshold: the split point (``TwoGoal-v0``: ``0``, up versus down)
    :param dim: action dimension, for 2-D ``samples``
    :return: ``{+1: fraction > threshold, -1: fraction < threshold}`` (samples equal to it count in neither)
    """
    x = _axis_values(samples, dim)
    return {1: float(np.mean(x > threshold)), -1: float(np.mean(x < threshold))}


def action_mode_report(
    model_or_policy: Any,
    observations: Any,
    k: int = 1000,
    dim: int = -1,
    threshold: float = 0.0,
    noise: NoiseMode = "random",
    seed: int | None = None,
    clip: bool = False,
) -> list[dict[str, float]]:
    """
    Per-observation summary of the raw action samples along action dimension ``dim``.

    :param clip: summarise the clipped actions (the ones the env executes), see :func:`sample_raw_actions`
    :return: one dict per observation: ``sarle``, ``n_modes``, ``frac_pos`` / ``frac_neg`` (share of samples
        above / below ``threshold``), ``mean`` and ``std``
    """
    samples = sample_raw_actions(model_or_policy, observations, k, noise=noise, seed=seed, clip=clip)
    report = []
    for per_obs in samples.reshape(samples.shape[0], k, -1):
        values = per_obs[:, dim]
        fractions = mode_fractions(values, threshold)
        report.append(
            {
                "sarle": sarle_bimodality(values) if k >= 4 else float("nan"),
                "n_modes": float(count_modes(values)),
                "frac_pos": fractions[1],
                "frac_neg": fractions[-1],
                "mean": float(values.mean()),
                "std": float(values.std()),
            }
        )
    return report


# --------------------------------------------------------------------------------------------------
# Plots (matplotlib, imported on use; no pyplot, so no global backend change: figures render with Agg)
# --------------------------------------------------------------------------------------------------


def new_figure(n_cols: int, n_rows: int = 1, size: float = 3.2) -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError as error:  # pragma: no cover - depends on the installed extras
        raise ImportError("The plots need matplotlib: pip install 'sb3_fpo[plots]'") from error
    return Figure(figsize=(size * n_cols, size * n_rows), layout="constrained")


def plot_action_samples(
    samples_by_state: Mapping[str, Any] | Sequence[Any] | np.ndarray,
    path: str | Path,
    dim: int = -1,
    bounds: tuple[float, float] | None = (-1.0, 1.0),
    bins: int = 50,
    title: str | None = None,
) -> Path:
    """
    Scatter (first two action dimensions) and histogram (dimension ``dim``) of raw action samples per state.

    :param samples_by_state: ``{label: samples (k, D)}``, or a sequence / array ``(n_states, k, D)`` (labels
        ``state 0``, ...), e.g. the output of :func:`sample_raw_actions`
    :param path: PNG file to write
    :param dim: action dimension of the histograms (default: the last, the goal axis of ``TwoGoal-v0``)
    :param bounds: action-space bounds drawn as dashed lines (``None``: none)
    :param bins: histogram bins
    :param title: figure title
    :return: ``path``
    """
    if isinstance(samples_by_state, Mapping):
        items = [(str(label), np.asarray(s, dtype=np.float64)) for label, s in samples_by_state.items()]
    else:
        items = [(f"state {i}", np.asarray(s, dtype=np.float64)) for i, s in enumerate(samples_by_state)]
    if not items:
        raise ValueError("No samples to plot.")
    items = [(label, s.reshape(s.shape[0], -1)) for label, s in items]
    has_scatter = any(s.shape[1] >= 2 for _, s in items)
    fig = new_figure(len(items), 2 if has_scatter else 1)
    axes = fig.subplots(2 if has_scatter else 1, len(items), squeeze=False)
    for col, (label, s) in enumerate(items):
        values = s[:, dim]
        axis = dim % s.shape[1]
        stats = f"Sarle {sarle_bimodality(values):.2f}, {count_modes(values)} mode(s)" if len(values) >= 4 else ""
        hist_ax = axes[-1, col]
        hist_ax.hist(values, bins=bins, density=True, color="tab:blue", alpha=0.7)
        hist_ax.set_xlabel(f"action[{axis}]")
        hist_ax.set_title(f"{label}\n{stats}", fontsize=9)
        if has_scatter:
            ax = axes[0, col]
            if s.shape[1] >= 2:
                ax.scatter(s[:, 0], s[:, 1], s=4, alpha=0.4, color="tab:blue")
                ax.set_xlabel("action[0]")
                ax.set_ylabel("action[1]")
                ax.set_aspect("equal", adjustable="datalim")
            ax.set_title(label, fontsize=9)
        for ax in axes[:, col]:
            if bounds is not None:
                ax.axvline(bounds[0], color="grey", ls="--", lw=0.8)
                ax.axvline(bounds[1], color="grey", ls="--", lw=0.8)
        if has_scatter and bounds is not None and s.shape[1] >= 2:
            axes[0, col].axhline(bounds[0], color="grey", ls="--", lw=0.8)
            axes[0, col].axhline(bounds[1], color="grey", ls="--", lw=0.8)
    if title:
        fig.suptitle(title)
    path = Path(path)
    fig.savefig(path, dpi=100)
    return path


# --------------------------------------------------------------------------------------------------
# TensorBoard callback
# --------------------------------------------------------------------------------------------------


class ActionHistogramCallback(BaseCallback):
    """
    Log histograms of raw action samples at fixed observations, and their bimodality, during training.

    Every ``log_freq`` calls (vectorised env steps, i.e. ``log_freq * n_envs`` timesteps), draws ``k`` raw
    actions per observation (:func:`sample_raw_actions`) and records, for each observation ``i`` (or its name)
    and action dimension ``d``:

    * ``{prefix}/{name}/a{d}``: the samples, which SB3's TensorBoard output writes with ``add_histogram``
      (excluded from the stdout, log, csv and json outputs, which cannot show an array);
    * ``{prefix}/{name}/sarle_a{d}`` and ``{prefix}/{name}/modes_a{d}``: Sarle's coefficient and the KDE mode
      count, as scalars.

    The values are written at SB3's next logger dump (every ``log_interval`` rollouts for PPO / FPO). The
    sampling runs on its own seeded torch generator state (``seed``, then ``seed + 1``, ...), so adding this
    callback does not change the training run.

    :param observations: ``(n_obs, *obs_shape)`` observations, as the policy sees them (normalised if needed)
    :param k: samples per observation
    :param log_freq: log every ``log_freq`` calls of the callback
    :param names: one name per observation for the keys (default ``obs0``, ``obs1``, ...)
    :param prefix: key prefix
    :param seed: seed of the first draw
    :param verbose: verbosity level
    """

    def __init__(
        self,
        observations: Any,
        k: int = 256,
        log_freq: int = 2048,
        names: Sequence[str] | None = None,
        prefix: str = "actions",
        seed: int = 0,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)
        if k < 4:
            raise ValueError(f"k must be >= 4 (Sarle's coefficient), got {k}.")
        if log_freq < 1:
            raise ValueError(f"log_freq must be >= 1, got {log_freq}.")
        self.observations = observations
        self.k = k
        self.log_freq = log_freq
        self.names = list(names) if names is not None else None
        self.prefix = prefix
        self.seed = seed
        self.n_logs = 0

    def _on_step(self) -> bool:
        if self.n_calls % self.log_freq == 0:
            self.log_samples()
        return True

    def log_samples(self) -> np.ndarray:
        """Draw the samples and record them now; returns them, shape ``(n_obs, k, *action_shape)``."""
        samples = sample_raw_actions(self.model, self.observations, self.k, seed=self.seed + self.n_logs)
        self.n_logs += 1
        flat = samples.reshape(samples.shape[0], self.k, -1)
        names = self.names if self.names is not None else [f"obs{i}" for i in range(flat.shape[0])]
        if len(names) != flat.shape[0]:
            raise ValueError(f"{len(names)} names for {flat.shape[0]} observations.")
        for name, per_obs in zip(names, flat):
            for d in range(per_obs.shape[1]):
                key = f"{self.prefix}/{name}"
                values = per_obs[:, d]
                self.logger.record(f"{key}/a{d}", values.copy(), exclude=_NOT_TENSORBOARD)
                self.logger.record(f"{key}/sarle_a{d}", sarle_bimodality(values))
                self.logger.record(f"{key}/modes_a{d}", count_modes(values))
        return samples
