"""The protocol: sweeps (plan, execution, worker), time-to-target statistics across seeds and
pairs, the cost clock, the report (tables, figures, published claims), packing, and the demo."""
