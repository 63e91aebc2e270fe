"""`modelops serve`: the Open Inference Protocol v2 runtime that the builtin Deployment runs."""
