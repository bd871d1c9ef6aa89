"""The measuring instrument: models and tasks of the suite pairs, the suite's membership and regime
criteria, the base-policy probe, and how fast this machine is (machine probe, useful-work floor)."""
