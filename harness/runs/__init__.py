"""A run's bookkeeping: where things live (paths, folders), its records and what it read
(records, fingerprint, provenance), and how it is watched (progress, TensorBoard)."""
