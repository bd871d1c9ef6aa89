"""selbench harness: the GRPO backbone, executors, configs, tasks, models, run records and CLI."""
