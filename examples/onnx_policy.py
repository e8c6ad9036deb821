"""
Run an exported flow policy with numpy and onnxruntime only (no torch, no Stable-Baselines3).

``examples/export_onnx.py`` writes ``policy.onnx``; this file is what a deployment needs. It plays Pendulum-v1
episodes with the graph and prints their returns, then the modules it imported: neither torch nor stable_baselines3
is among them::

    python examples/onnx_policy.py examples/export_onnx/policy.onnx --episodes 3 --seed 0
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import onnxruntime as ort


class OnnxPolicy:
    """A policy exported by ``sb3_fpo.export.export_onnx``: raw observation in, action out."""

    def __init__(self, path: str) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.takes_noise = "noise" in [node.name for node in self.session.get_inputs()]
        self.action_dim = self.session.get_outputs()[0].shape[-1]

    def __call__(self, obs: np.ndarray, noise: np.ndarray | None = None) -> np.ndarray:
        inputs = {"obs": np.asarray(obs, dtype=np.float32)[None]}
        if self.takes_noise:  # zeros: zero-sampling; N(0, I): a sample of the policy
            inputs["noise"] = np.zeros((1, self.action_dim), np.float32) if noise is None else noise[None]
        return self.session.run(None, inputs)[0][0]


def episode_returns(
    policy: Callable[[np.ndarray], np.ndarray], episodes: int, seed: int, env_id: str = "Pendulum-v1"
) -> list[float]:
    env = gym.make(env_id)
    returns = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(policy(obs))
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return returns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path")
    parser.add_argument("--env", default="Pendulum-v1")
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    returns = episode_returns(OnnxPolicy(args.path), args.episodes, args.seed, args.env)
    print("onnxruntime returns:", " ".join(f"{value:.3f}" for value in returns))
    print("torch imported:", "torch" in sys.modules, "| stable_baselines3 imported:", "stable_baselines3" in sys.modules)


if __name__ == "__main__":
    main()
