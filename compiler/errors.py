"""The library's own errors: each says what was refused and what to do; the CLI maps them to exit codes."""


class ModelopsError(Exception):
    """Input or a request the library refuses for a reason the user can fix (the CLI exits 2)."""


class UsageError(ModelopsError):
    """Bad command line or unreadable input: exit code 2, like kubectl and most Unix tools."""


class ProjectError(ModelopsError):
    """The project cannot be loaded as asked: an unknown environment, a path outside the project."""


class OutputError(ModelopsError):
    """The output directory cannot be read or written as a tree of modelops' own."""


class WorkerStopped(ModelopsError):
    """A worker process the command started was killed before it finished (by the system, most
    often for memory): nothing was written, and running again with fewer jobs may do."""
