"""The GRPO core, written once for both executors: the math (grpo), the executor-independent half
of a step (step), rollout replay (replay), sampling with behaviour log-probs (rollout, engines,
sampler) and what a strategy sees while it selects (context)."""
