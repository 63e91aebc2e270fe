"""Git access through GitPython: commit stamps now; compiling at a ref later."""
