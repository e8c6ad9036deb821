"""sb3_fpo: Flow Policy Optimization (FPO, FPO++) for Stable-Baselines3."""

import sb3_fpo.envs  # noqa: F401  (registers TwoGoal-v0 with gymnasium)
from sb3_fpo.fpo import FPO
from sb3_fpo.persistence import sb3_fpo_version
from sb3_fpo.policies import CnnPolicy, FlowCnnPolicy, FlowMultiInputPolicy, FlowPolicy, MlpPolicy, MultiInputPolicy

__version__ = sb3_fpo_version()

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
