"""Spec language: safe YAML loading with positions, typed models, semantic checks."""
