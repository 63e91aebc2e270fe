"""Exceptions the CLI maps to exit codes."""


class UsageError(Exception):
    """Bad command line or unreadable input: exit code 2, like kubectl and most Unix tools."""
