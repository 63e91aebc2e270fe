"""Reviewing a change: what compiling two versions of the specs changes, in words and files."""
