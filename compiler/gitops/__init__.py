"""Git access through GitPython: specs as they are at a ref, commit stamps, and model history."""
