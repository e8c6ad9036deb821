"""sb3_fpo: Flow Policy Optimization (FPO, FPO++) for Stable-Baselines3."""

import os

import sb3_fpo.envs  # noqa: F401  (registers TwoGoal-v0 with gymnasium)
from sb3_fpo.fpo import FPO
from sb3_fpo.policies import CnnPolicy, FlowCnnPolicy, FlowMultiInputPolicy, FlowPolicy, MlpPolicy, MultiInputPolicy

with open(os.path.join(os.path.dirname(__file__), "version.txt")) as file_handler:
    __version__ = file_handler.read().strip()

__all__ = [
    "FPO",
    "CnnPolicy",
    "FlowCnnPolicy",
    "FlowMultiInputPolicy",
    "FlowPolicy",
    "MlpPolicy",
    "MultiInputPolicy",
    "__version__",
]
