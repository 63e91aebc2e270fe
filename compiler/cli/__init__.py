"""The `modelops` command line."""
