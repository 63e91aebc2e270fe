"""What each environment wants in its cluster: its rendered objects and its ApplySets."""

from __future__ import annotations

from dataclasses import dataclass

from compiler.pipeline import Checked
from compiler.reconcile.inventory import ApplySet
from compiler.reconcile.objects import Desired, rendered_objects
from compiler.stamp import Stamp


@dataclass(frozen=True)
class Target:
    environment: str
    context: str | None  # the kube context: --context, else the environment's, else current
    objects: list[Desired]  # in apply order
    applysets: list[ApplySet]


def targets(checked: Checked, environments: list[str] | None, context: str | None) -> list[Target]:
    """One Target per chosen environment of a project that passed its check."""
    assert checked.ok and checked.catalog is not None  # the caller reports a failed check
    project = checked.catalog.project
    commit = None
    if project.output.stamp:
        from compiler.gitops.stamp import commit_stamp

        commit = commit_stamp(checked.catalog.project_file.parent)
    found = []
    for env in project.environments:
        if environments and env.name not in environments:
            continue
        objects = rendered_objects(checked.models, project, Stamp(commit), env.name)
        # The environment's namespace always has an ApplySet: with every model removed, its
        # members are exactly what prune must consider.
        namespaces = sorted({d.ref.namespace for d in objects if d.ref.namespace} | {env.namespace})
        applysets = [ApplySet(project.metadata.name, env.name, ns) for ns in namespaces]
        found.append(Target(env.name, context or env.context, objects, applysets))
    return found
