"""Selection strategies: the small, pure objects that decide which prompts GRPO trains on next.

Nothing here imports torch: a strategy sees question indices, rewards and (through the
selection context) services such as extra rollouts; it never sees a model or an executor.
"""

from strategies.base import GroupFeedback, SelectionContext, StepFeedback, Strategy
from strategies.registry import StrategyEntry, available, build_strategy, get_entry, register

__all__ = [
    "GroupFeedback",
    "SelectionContext",
    "StepFeedback",
    "Strategy",
    "StrategyEntry",
    "available",
    "build_strategy",
    "get_entry",
    "register",
]
