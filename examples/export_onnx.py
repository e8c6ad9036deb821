"""
Train FPO on Pendulum-v1 (with VecNormalize), export it to ONNX and play it without torch.

1. trains ``FPO("MlpPolicy", VecNormalize(env))`` for ``--timesteps`` steps (or loads ``--out``/model.zip and
   ``--out``/vecnormalize.pkl when they exist and ``--retrain`` is not given);
2. exports the zero-sampling policy with the VecNormalize observation statistics inside the graph
   (``--out``/policy.onnx), so the graph takes the raw env observation;
3. plays ``--episodes`` episodes with the torch model (``predict(deterministic=True)`` on normalised observations)
   and, in a separate Python process that imports only numpy, gymnasium and onnxruntime
   (``examples/onnx_policy.py``), with the ONNX graph, on the same env seeds, and prints both returns::

    python examples/export_onnx.py --timesteps 30000 --episodes 3
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import gymnasium as gym
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from sb3_fpo import FPO
from sb3_fpo.export import export_onnx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from onnx_policy import episode_returns  # the same episode loop as the torch-free player

HERE = Path(__file__).resolve().parent


def trained_model(out: Path, timesteps: int, retrain: bool) -> tuple[FPO, VecNormalize]:
    model_path, stats_path = out / "model.zip", out / "vecnormalize.pkl"
    if model_path.exists() and stats_path.exists() and not retrain:
        env = VecNormalize.load(str(stats_path), DummyVecEnv([lambda: gym.make("Pendulum-v1")]))
        return FPO.load(model_path, env=env), env
    env = VecNormalize(make_vec_env("Pendulum-v1", n_envs=4, seed=0))
    model = FPO("MlpPolicy", env, n_steps=256, batch_size=256, gamma=0.9, learning_rate=1e-3, seed=0)
    model.learn(timesteps)
    model.save(model_path)
    env.save(str(stats_path))
    return model, env


def torch_policy(model: FPO, env: VecNormalize):
    """The torch model as a function of the raw observation, with the VecNormalize statistics frozen."""
    env.training = False  # the graph holds the statistics as they are now
    return lambda obs: model.predict(env.normalize_obs(obs), deterministic=True)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timesteps", type=int, default=30_000)
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help="seed of the first evaluation episode")
    parser.add_argument("--out", type=Path, default=HERE / "export_onnx")
    parser.add_argument("--retrain", action="store_true")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    model, env = trained_model(args.out, args.timesteps, args.retrain)
    graph = args.out / "policy.onnx"
    export_onnx(model, graph, vec_normalize=env)
    print(f"exported {graph} ({graph.stat().st_size} bytes)")
    returns = episode_returns(torch_policy(model, env), args.episodes, args.seed)
    print("torch returns:      ", " ".join(f"{value:.3f}" for value in returns))
    command = [sys.executable, str(HERE / "onnx_policy.py"), str(graph), "--episodes", str(args.episodes)]
    subprocess.run([*command, "--seed", str(args.seed)], check=True)


if __name__ == "__main__":
    main()
