"""
Small environments for sb3_fpo diagnostics.

Importing this module registers ``TwoGoal-v0`` with Gymnasium (``gym.make("TwoGoal-v0")``); without the
import, ``gym.make("sb3_fpo.envs:TwoGoal-v0")`` imports it first.
"""

import gymnasium as gym

from sb3_fpo.envs.two_goal import BOTTOM_GOAL, NO_GOAL, TOP_GOAL, TwoGoalEnv

if "TwoGoal-v0" not in gym.registry:
    gym.register(id="TwoGoal-v0", entry_point="sb3_fpo.envs.two_goal:TwoGoalEnv", max_episode_steps=100)

__all__ = ["BOTTOM_GOAL", "NO_GOAL", "TOP_GOAL", "TwoGoalEnv"]
