"""The metrics contract: the one place that names what the serving runtime exports."""
