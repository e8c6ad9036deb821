"""Statistics of FPO's loss, per minibatch, and how an update logs them."""

from __future__ import annotations

from typing import Any, NamedTuple

import torch as th
from stable_baselines3.common.logger import Logger


class LossStats(NamedTuple):
    """Statistics of FPO's loss on one minibatch (:meth:`sb3_fpo.FPO.fpo_loss`), logged by ``train()``."""

    ratio_min: Any
    ratio_mean: Any
    ratio_max: Any
    clip_fraction: Any  # share of ratios outside [1 - clip_range, 1 + clip_range]
    cfm_loss: Any  # mean CFM loss under the current parameters, before the clamp
    cfm_clamp_fraction: Any  # share of current CFM losses above cfm_loss_clamp
    log_ratio_clamp_fraction: Any  # share of log-ratios changed by log_ratio_clamp
    kl_proxy: Any  # mean((rho - 1) - log rho)


def record_update(
    logger: Logger, stats: list[LossStats], grad_norms: list[th.Tensor], cfm_clamp: bool, log_ratio_clamp: bool
) -> LossStats:
    """
    Log an update's minibatch statistics (kept on the device until now, read in one transfer): the means, the
    ratio's extremes, the clamps' shares when a clamp is set, and the gradient's norm before ``max_grad_norm`` clips
    it (mean and max: how hard the loss pulls, outliers included).

    :return: the statistics as one numpy array per field, one entry per minibatch
    """
    stat = LossStats(*th.stack([th.stack(minibatch) for minibatch in stats]).cpu().numpy().T)  # one array per field
    logger.record("train/clip_fraction", float(stat.clip_fraction.mean()))
    logger.record("train/cfm_loss", float(stat.cfm_loss.mean()))
    logger.record("train/ratio_min", float(stat.ratio_min.min()))
    logger.record("train/ratio_mean", float(stat.ratio_mean.mean()))
    logger.record("train/ratio_max", float(stat.ratio_max.max()))
    if cfm_clamp:
        logger.record("train/cfm_clamp_fraction", float(stat.cfm_clamp_fraction.mean()))
    if log_ratio_clamp:
        logger.record("train/log_ratio_clamp_fraction", float(stat.log_ratio_clamp_fraction.mean()))
    if grad_norms:
        norms = th.stack(grad_norms).cpu().numpy()
        logger.record("train/grad_norm_mean", float(norms.mean()))
        logger.record("train/grad_norm_max", float(norms.max()))
    return stat
