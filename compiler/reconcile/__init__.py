"""Reconcile compiled output with a live cluster, split by verb like Flux's ssa package.

objects (what the render stage wants, with one identity each), order (the kind-order table),
environments (an environment's objects and ApplySets), client (the API server, with a
timeout on every request), changeset (the typed Action per object, the journal of writes),
errors (faults classified; the typed error of each stage), diff (plan: dry run against live),
apply (guards, then the apply, prune and parent stages), prune, inventory (ApplySet
ownership), wait (rollouts) and report (the words for all of it).
"""
