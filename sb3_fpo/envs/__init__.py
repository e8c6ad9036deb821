"""
Small environments for sb3_fpo diagnostics.

Importing this module registers ``TwoGoal-v0`` and ``ArmTracking-v0`` with Gymnasium (``gym.make("TwoGoal-v0")``,
``gym.make("ArmTracking-v0", conditioning="minimal")``); without the import, ``gym.make("sb3_fpo.envs:TwoGoal-v0")``
imports it first. ``ArmTracking-v0`` needs MuJoCo (``pip install sb3_fpo[mujoco]``): its module
(``sb3_fpo.envs.arm_tracking``) is only imported by ``gym.make``, so this package imports without MuJoCo.
"""

import gymnasium as gym

from sb3_fpo.envs.two_goal import BOTTOM_GOAL, NO_GOAL, TOP_GOAL, TwoGoalEnv

if "TwoGoal-v0" not in gym.registry:
    gym.register(id="TwoGoal-v0", entry_point="sb3_fpo.envs.two_goal:TwoGoalEnv", max_episode_steps=100)
if "ArmTracking-v0" not in gym.registry:
    # max_episode_steps matches ArmTrackingEnv's default episode_steps (the env also ends its episodes itself)
    gym.register(id="ArmTracking-v0", entry_point="sb3_fpo.envs.arm_tracking:ArmTrackingEnv", max_episode_steps=60)

__all__ = ["BOTTOM_GOAL", "NO_GOAL", "TOP_GOAL", "TwoGoalEnv"]
