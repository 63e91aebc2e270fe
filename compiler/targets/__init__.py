"""Renderers: pure functions from the resolved IR to objects for one target system."""
