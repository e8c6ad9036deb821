"""
FPO's presets (``hyperparams/fpo.yml``, rl-zoo3's format) as ready-to-use keyword arguments.

One reader of zoo-format files for the whole project: the command line (``python -m sb3_fpo``), the examples and
the benchmarks call :func:`load_preset`; rl-zoo3 (``python -m sb3_fpo.zoo``) reads the same file itself.
It needs PyYAML only, not rl-zoo3::

    from stable_baselines3.common.env_util import make_vec_env
    from sb3_fpo import FPO
    from sb3_fpo.presets import load_preset

    preset = load_preset("Pendulum-v1")
    model = FPO(preset.policy, make_vec_env("Pendulum-v1", n_envs=preset.n_envs), **preset.kwargs)
    model.learn(preset.n_timesteps)
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Any

#: FPO's rl-zoo3 presets. The file is ``hyperparams/fpo.yml`` at the top of the repository; ``sb3_fpo/fpo.yml``
#: links to it so that wheels and installs carry it.
HYPERPARAMS_FILE = Path(__file__).resolve().parent / "fpo.yml"
#: Fine-tuning presets for policies cloned with ``FPO.pretrain`` (``hyperparams/fpo_finetune.yml``, linked the same way)
FINETUNE_HYPERPARAMS_FILE = Path(__file__).resolve().parent / "fpo_finetune.yml"

# Keys of a zoo entry that are not constructor arguments of the algorithm
ZOO_ONLY_KEYS = ("n_envs", "n_timesteps", "policy", "normalize", "env_wrapper", "frame_stack", "callback")
SCHEDULED_KEYS = ("learning_rate", "clip_range", "clip_range_vf")


@dataclasses.dataclass
class Preset:
    """A zoo entry split as rl-zoo3 splits it.

    :param env_id: the env id the preset was asked for
    :param entry: the key of the file's entry that was used (the env id, its v4 / v2 id, or ``default``)
    :param policy: policy alias (``MlpPolicy`` ...)
    :param n_envs: number of parallel envs
    :param n_timesteps: the training budget
    :param normalize: ``VecNormalize`` keyword arguments, or ``None`` for no normalisation
    :param kwargs: the algorithm's keyword arguments (``policy_kwargs`` evaluated, ``lin_X`` turned into schedules)
    """

    env_id: str
    entry: str
    policy: str
    n_envs: int
    n_timesteps: int
    normalize: dict[str, Any] | None
    kwargs: dict[str, Any]


def read_zoo_file(path: str | Path = HYPERPARAMS_FILE) -> dict[str, Any]:
    """All entries of a zoo-format file (rl-zoo3's use the ``!!float`` tag and anchors, both plain YAML)."""
    import yaml

    table = yaml.safe_load(Path(path).read_text())
    if not isinstance(table, dict):
        raise ValueError(f"{path} is not a zoo hyperparameter file (a mapping of env ids to settings).")
    return table


def parse_value(text: str) -> Any:
    """A ``--hyperparams``-style value: YAML, with numbers that YAML 1.1 reads as strings (``6e-4``) as floats."""
    import yaml

    value = yaml.safe_load(text)
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)
    return value


def load_preset(
    env_id: str,
    path: str | Path = HYPERPARAMS_FILE,
    overrides: dict[str, Any] | None = None,
    use_default: bool = False,
) -> Preset:
    """
    The preset of ``env_id`` in a zoo-format file (FPO's by default).

    The entry is the env id's, else that of its ``-v4`` then ``-v2`` id (rl-zoo3 tuned the MuJoCo envs on those),
    else, with ``use_default``, the file's ``default`` entry.

    :param env_id: Gymnasium env id
    :param path: a zoo-format file (FPO's presets by default; rl-zoo3's ``ppo.yml`` works the same)
    :param overrides: entries that replace the file's (zoo format, e.g. ``{"policy_kwargs": "dict(...)"}``)
    :param use_default: fall back on the ``default`` entry for envs without one
    """
    table = read_zoo_file(path)
    candidates = [env_id, env_id.replace("-v5", "-v4"), env_id.replace("-v5", "-v2")]
    if use_default:
        candidates.append("default")
    key = next((candidate for candidate in candidates if candidate in table), None)
    if key is None:
        raise KeyError(f"No preset for {env_id!r} in {path}. Presets: {', '.join(sorted(table))}.")
    entry = {**table[key], **(overrides or {})}
    return Preset(
        env_id=env_id,
        entry=key,
        policy=str(entry.get("policy", "MlpPolicy")),
        n_envs=int(entry.get("n_envs", 1)),
        n_timesteps=int(float(entry.get("n_timesteps", 1e6))),
        normalize=_normalize_kwargs(entry.get("normalize", False)),
        kwargs=_algorithm_kwargs(entry),
    )


def _algorithm_kwargs(entry: dict[str, Any]) -> dict[str, Any]:
    import torch as th
    from stable_baselines3.common.utils import LinearSchedule
    from torch import nn

    kwargs = {key: value for key, value in entry.items() if key not in ZOO_ONLY_KEYS}
    if isinstance(kwargs.get("policy_kwargs"), str):
        # rl-zoo3 evaluates this string the same way
        kwargs["policy_kwargs"] = eval(kwargs["policy_kwargs"], {"nn": nn, "th": th, "dict": dict})
    for key in SCHEDULED_KEYS:
        value = kwargs.get(key)
        if isinstance(value, str) and value.startswith("lin_"):
            kwargs[key] = LinearSchedule(float(value[4:]), 0.0, 1.0)  # rl-zoo3's linear_schedule
    return kwargs


def _normalize_kwargs(normalize: Any) -> dict[str, Any] | None:
    if isinstance(normalize, str):
        normalize = eval(normalize, {"dict": dict})  # rl-zoo3 writes e.g. "dict(norm_obs=True, norm_reward=False)"
    if normalize is True:
        return {}
    if normalize is False or normalize is None:
        return None
    return dict(normalize)
