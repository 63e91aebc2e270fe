"""Evaluation gates: score a model on its holdout set and record metrics and drift baseline."""
