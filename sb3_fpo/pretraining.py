"""
Behaviour cloning into a flow policy by conditional flow matching: :func:`pretrain` is :meth:`sb3_fpo.FPO.pretrain`.

The steps, each a function: :func:`prepare` (the demonstrations as the policy will see them, and the critic's
targets), :func:`split` (training and validation transitions), :func:`fit_epoch` (one pass of minibatch updates) and
:func:`validation_cfm` (the CFM loss of the held-out transitions on fixed (tau, eps) pairs); :func:`pretrain` runs
them with early stopping.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.preprocessing import maybe_transpose
from torch.nn import functional as F

from sb3_fpo.demonstrations import Demonstrations, as_demonstrations, discounted_returns, running_returns
from sb3_fpo.policies import select_rows

if TYPE_CHECKING:
    from sb3_fpo.fpo import FPO

#: Observations of demonstrations: one array, or one array per key of a ``Dict`` observation space
Observations = np.ndarray | dict[str, np.ndarray]


class Prepared(NamedTuple):
    """Demonstrations ready for the policy: observations normalised as it acts, actions as its buffer holds them."""

    observations: Observations
    actions: np.ndarray
    returns: np.ndarray | None  # the critic's Monte-Carlo targets, or None


def fresh(statistics: Any) -> bool:
    """Whether running mean / std statistics have seen no data yet (SB3's RunningMeanStd starts at count 1e-4)."""
    if isinstance(statistics, Mapping):
        return any(fresh(value) for value in statistics.values())
    return bool(statistics.count < 1.0)


def _checked(observations: Any, space: spaces.Space, name: str) -> np.ndarray:
    # Channel-last images as the env gives them, for a policy that sees them channel-first (VecTransposeImage)
    array = np.asarray(maybe_transpose(np.asarray(observations), space), dtype=np.float32)
    if array.shape[1:] != space.shape or not np.isfinite(array).all():
        raise ValueError(
            f"Demonstrated observations{name} must be finite with shape (T, *{space.shape}), got {array.shape}"
            f"{'' if np.isfinite(array).all() else ' with NaN or inf'}."
        )
    return array


def demonstration_observations(model: FPO, demos: Demonstrations) -> Observations:
    """The demonstrations' observations as the policy will see them (VecNormalize fitted first if still fresh)."""
    space = model.observation_space
    observations: Observations
    if isinstance(space, spaces.Dict):
        if not isinstance(demos.observations, Mapping) or set(demos.observations) != set(space.spaces):
            given = sorted(demos.observations) if isinstance(demos.observations, Mapping) else "one array"
            raise ValueError(f"Demonstrated observations must have the keys {sorted(space.spaces)}, got {given}.")
        observations = {key: _checked(demos.observations[key], sub, f"[{key!r}]") for key, sub in space.spaces.items()}
    else:
        observations = _checked(demos.observations, space, "")
    vec_normalize = model.get_vec_normalize_env()
    if vec_normalize is None or not vec_normalize.norm_obs:
        if demos.normalized:
            raise ValueError("The demonstrations' observations are normalised but the model has no VecNormalize.")
        return observations
    if demos.normalized:
        if fresh(vec_normalize.obs_rms):
            warnings.warn(
                "The demonstrations are normalised but the model's VecNormalize statistics have seen no data: they "
                "are not fitted (the raw observations are unknown), so learn() will normalise with untrained "
                "statistics. Load the statistics the demonstrations were normalised with (VecNormalize.load).",
                stacklevel=3,
            )
        return observations
    if fresh(vec_normalize.obs_rms):  # fitted from the demonstrations
        if isinstance(observations, Mapping):
            for key in vec_normalize.norm_obs_keys or []:
                vec_normalize.obs_rms[key].update(observations[key])  # type: ignore[index]
        else:
            vec_normalize.obs_rms.update(observations)  # type: ignore[union-attr]
    normalized = vec_normalize.normalize_obs(observations)
    if isinstance(normalized, Mapping):
        return {key: np.asarray(value, dtype=np.float32) for key, value in normalized.items()}
    return np.asarray(normalized, dtype=np.float32)


def demonstration_rewards(model: FPO, demos: Demonstrations) -> np.ndarray:
    """Rewards as the critic will see them: VecNormalize-scaled (its return statistics fitted if still fresh)."""
    rewards = np.asarray(demos.rewards, dtype=np.float64)
    vec_normalize = model.get_vec_normalize_env()
    if vec_normalize is None or not vec_normalize.norm_reward:
        return rewards
    assert demos.episode_starts is not None
    if fresh(vec_normalize.ret_rms):
        vec_normalize.ret_rms.update(running_returns(rewards, demos.episode_starts, vec_normalize.gamma))
    return np.asarray(vec_normalize.normalize_reward(rewards), dtype=np.float64)


def prepare(model: FPO, demonstrations: Any, fit_critic: bool | None) -> Prepared:
    """Check the demonstrations and bring them to the policy's conventions (see :meth:`sb3_fpo.FPO.pretrain`)."""
    demos = as_demonstrations(demonstrations)
    observations = demonstration_observations(model, demos)
    actions = demos.actions.reshape(len(demos), -1)
    if actions.shape[1] != model.policy.action_dim or not np.isfinite(actions).all():
        raise ValueError(
            f"Demonstrated actions must be finite with {model.policy.action_dim} dimensions, got shape "
            f"{demos.actions.shape}{'' if np.isfinite(actions).all() else ' with NaN or inf'}."
        )
    if model.policy.squash_output:  # the buffer's convention: tanh-squashed actions in [-1, 1]
        shape = model.policy.action_space.shape
        assert shape is not None
        actions = model.policy.scale_action(actions.reshape((len(demos), *shape))).reshape(len(demos), -1)
        actions = actions.astype(np.float32, copy=False)
    fit_critic = demos.rewards is not None if fit_critic is None else fit_critic
    returns = None
    if fit_critic:
        if demos.rewards is None:
            raise ValueError("fit_critic=True needs demonstrations with rewards.")
        assert demos.episode_starts is not None
        returns = discounted_returns(demonstration_rewards(model, demos), demos.episode_starts, model.gamma)
    return Prepared(observations, actions, returns)


def split(n: int, validation_fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random training and validation indices of ``n`` transitions (no validation for a single transition)."""
    order = rng.permutation(n)
    n_val = round(validation_fraction * n) if n > 1 else 0
    return order[n_val:], order[:n_val]


def fit_epoch(
    model: FPO,
    data: Prepared,
    train_idx: np.ndarray,
    optimizer: th.optim.Optimizer,
    batch_size: int,
    n_samples: int,
    rng: np.random.Generator,
    generator: th.Generator,
) -> tuple[float, float]:
    """One pass over the training transitions in random minibatches; mean CFM loss and value loss (NaN without)."""
    policy = model.policy
    policy.set_training_mode(True)
    cfm_losses, value_losses = [], []
    shuffled = train_idx[rng.permutation(len(train_idx))]
    for start in range(0, len(shuffled), batch_size):
        batch = shuffled[start : start + batch_size]
        obs = policy.obs_to_tensor(select_rows(data.observations, batch))[0]
        act = th.as_tensor(data.actions[batch], device=model.device)
        tau, eps = model._draw_pairs(len(batch), n_samples, generator)
        loss = policy.cfm_losses(obs, act, tau, eps).mean()
        cfm_losses.append(loss.item())
        if data.returns is not None:
            target = th.as_tensor(data.returns[batch], device=model.device)
            value_loss = F.mse_loss(policy.predict_values(obs).flatten(), target)
            value_losses.append(value_loss.item())
            loss = loss + model.vf_coef * value_loss
        optimizer.zero_grad()
        loss.backward()
        th.nn.utils.clip_grad_norm_(policy.parameters(), model.max_grad_norm)
        optimizer.step()
    return float(np.mean(cfm_losses)), float(np.mean(value_losses)) if value_losses else np.nan


def validation_cfm(model: FPO, data: Prepared, rows: np.ndarray, pairs: tuple[th.Tensor, th.Tensor]) -> float:
    """Mean CFM loss of the transitions ``rows`` on the fixed ``pairs`` (one per row), without gradients."""
    model.policy.set_training_mode(False)
    observations = select_rows(data.observations, rows)
    return model.policy.cfm_losses_no_grad(observations, data.actions[rows], *pairs).mean(dim=1).mean().item()


def pretrain(
    model: FPO,
    demonstrations: Any,
    n_epochs: int = 100,
    batch_size: int = 256,
    learning_rate: float = 1e-3,
    n_samples: int | None = None,
    validation_fraction: float = 0.1,
    patience: int = 10,
    fit_critic: bool | None = None,
    progress_bar: bool = False,
    seed: int | None = None,
) -> dict[str, list[float]]:
    """
    ``model.pretrain(demonstrations, ...)``. Behaviour cloning: fit the velocity network to demonstrations by
    conditional flow matching, the same CFM loss as FPO's training (same ``n_samples`` pairs per transition, ``tau``
    drawn as in training). A flow policy has no likelihood to maximise; flow matching fits the demonstrated action
    distribution, several modes included.

    Observations are normalised as the model will act: with a ``VecNormalize`` env, by its statistics, which are first
    fitted to the demonstrations if they have seen no data yet (and left as they are otherwise). The critic can be
    fitted to the demonstrations' discounted returns (Monte Carlo, normalised rewards with
    ``VecNormalize(norm_reward=True)``; no bootstrap at time limits, so the last steps' targets are biased low). A
    random ``validation_fraction`` of the transitions is held out; training stops when the validation CFM loss (on fixed
    (tau, eps) pairs) has not improved for ``patience`` epochs, and the best weights are kept.
    ``pretrain/train_cfm_loss``, ``pretrain/val_cfm_loss`` (and ``pretrain/value_loss``) go to SB3's logger, one dump
    per epoch. :meth:`~sb3_fpo.FPO.learn` continues from the result as usual (with a fresh optimizer state: pretraining
    uses its own Adam), and :meth:`~sb3_fpo.FPO.save` keeps it. Demonstrated actions are in the env's units; a
    ``squash_output`` policy rescales them to ``[-1, 1]`` as its buffer holds them.

    :param model: the FPO model to pretrain (``self`` when called as ``model.pretrain``)
    :param demonstrations: ``(observations, actions)`` arrays, ``(observations, actions, rewards[,
        episode_starts])``, a :class:`sb3_fpo.demonstrations.Demonstrations` or a ``minari.MinariDataset``
        (``Dict`` observation spaces: observations as a dict of arrays, one per key)
    :param n_epochs: maximum number of passes over the training transitions
    :param batch_size: transitions per minibatch
    :param learning_rate: Adam's learning rate
    :param n_samples: (tau, eps) pairs per transition (default: the model's ``n_samples``)
    :param validation_fraction: share of transitions held out for early stopping (0: none, no early stopping)
    :param patience: epochs without a better validation loss before stopping
    :param fit_critic: fit the critic to the discounted returns (default: when the demonstrations have rewards)
    :param progress_bar: show a tqdm progress bar over epochs
    :param seed: seed of the split and of the (tau, eps) draws (default: unseeded)
    :return: per-epoch ``train_cfm_loss``, ``val_cfm_loss`` (NaN without validation) and ``value_loss``
    """
    from stable_baselines3.common.utils import configure_logger

    n_samples = n_samples or model.n_samples
    for name, value in (("n_epochs", n_epochs), ("batch_size", batch_size), ("patience", patience)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}.")
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}.")
    data = prepare(model, demonstrations, fit_critic)

    rng = np.random.default_rng(seed)
    generator = th.Generator(device="cpu").manual_seed(int(rng.integers(2**31)))
    train_idx, val_idx = split(len(data.actions), validation_fraction, rng)
    val_pairs = model._draw_pairs(len(val_idx), n_samples, generator)  # fixed: a low-noise early-stopping signal

    if not hasattr(model, "_logger"):
        # Not set_logger(): that marks the logger as the user's, and learn() would then keep writing to it
        model._logger = configure_logger(model.verbose, model.tensorboard_log, "FPO_pretrain")
    optimizer = th.optim.Adam(model.policy.parameters(), lr=learning_rate)
    history: dict[str, list[float]] = {"train_cfm_loss": [], "val_cfm_loss": [], "value_loss": []}
    best, best_state, waited = np.inf, None, 0
    epochs: Any = range(n_epochs)
    if progress_bar:
        from tqdm.auto import tqdm

        epochs = tqdm(epochs, desc="FPO pretrain")
    for epoch in epochs:
        train_loss, value_loss = fit_epoch(model, data, train_idx, optimizer, batch_size, n_samples, rng, generator)
        val_loss = validation_cfm(model, data, val_idx, val_pairs) if len(val_idx) else np.nan
        history["train_cfm_loss"].append(train_loss)
        history["val_cfm_loss"].append(val_loss)
        history["value_loss"].append(value_loss)
        model.logger.record("pretrain/epoch", epoch)
        model.logger.record("pretrain/train_cfm_loss", train_loss)
        if len(val_idx):
            model.logger.record("pretrain/val_cfm_loss", val_loss)
        if not np.isnan(value_loss):
            model.logger.record("pretrain/value_loss", value_loss)
        model.logger.dump(step=epoch)
        if len(val_idx):
            if val_loss < best:
                best, waited = val_loss, 0
                best_state = {k: v.detach().clone() for k, v in model.policy.state_dict().items()}
            else:
                waited += 1
                if waited >= patience:
                    break
    if best_state is not None:
        model.policy.load_state_dict(best_state)
    model.policy.set_training_mode(False)
    return history
