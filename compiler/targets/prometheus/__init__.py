"""Prometheus rules (recording, SLO burn-rate and model-quality alerts) and their unit tests."""
