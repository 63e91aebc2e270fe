"""Reconcile compiled output with a live cluster: server-side apply, diff, inventory, prune, wait.

Split like Flux's ssa package: objects (what we want, in stages), client (talking to the API
server), diff (dry run against live), inventory (ApplySet ownership), apply, prune, wait.
"""
