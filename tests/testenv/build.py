"""Build the test control plane and its controllers (kube-apiserver, kube-controller-manager,
kube-scheduler, etcd, kwok, the Argo Rollouts controller) from the Go module proxy; fetch the CRDs.

`go install` of k8s.io/kubernetes commands is refused (its go.mod has replace directives),
so a small helper module requires k8s.io/kubernetes and replaces each staging module it
requires at v0.0.0 with the matching v0.<minor>.<patch> release, generated from its go.mod.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

KUBERNETES = "1.36.3"
ETCD = "3.6.16"
CONTROLLER_TOOLS = "0.19.0"
PROMETHEUS_OPERATOR = "0.87.0"
ARGO_CD = "3.5.7"
KUSTOMIZE_CONTROLLER = "1.9.6"  # Flux's; 1.10 needs Go 1.27
KUBE_SCORE = "1.20.0"
KWOK = "0.8.0"
ARGO_ROLLOUTS = "1.8.3"  # declares Go 1.23; later versions need a newer Go than the machine's


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "modelops-testenv"


def _go() -> str:
    found = shutil.which("go")
    if found is None:
        raise RuntimeError("Go is needed to build the test control plane (kube-apiserver, etcd)")
    return found


def _run(args: list[str], cwd: Path) -> str:
    env = {**os.environ, "GOFLAGS": "-mod=mod", "CGO_ENABLED": "0"}
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args)} failed in {cwd}:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    return result.stdout


def _module(workdir: Path, name: str, imports: list[str], extra: str = "") -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "go.mod").write_text(f"module modelops.dev/testenv/{name}\n\ngo 1.26\n{extra}")
    (workdir / "go.sum").unlink(missing_ok=True)
    lines = "\n".join(f'\t_ "{package}"' for package in imports)
    (workdir / "tools.go").write_text(f"//go:build tools\n\npackage tools\n\nimport (\n{lines}\n)\n")


def _built(name: str, target: Path) -> Path | None:
    """The binary from KUBEBUILDER_ASSETS, else the one built into `target` before; None: build it."""
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets and (Path(assets) / name).is_file():
        return Path(assets) / name
    return target if target.is_file() else None


def kube_apiserver() -> Path:
    return _kubernetes_command("kube-apiserver")


def kube_controller_manager() -> Path:
    """Runs the Deployment and ReplicaSet controllers, so a Rollout's ReplicaSets get pods."""
    return _kubernetes_command("kube-controller-manager")


def kube_scheduler() -> Path:
    """Binds pods to kwok's fake nodes."""
    return _kubernetes_command("kube-scheduler")


def _kubernetes_command(name: str) -> Path:
    """One command of k8s.io/kubernetes, built through a helper module (see the module docstring)."""
    target = cache_dir() / f"kubernetes-{KUBERNETES}" / name
    if (found := _built(name, target)) is not None:
        return found
    work = cache_dir() / "src" / f"{name}-{KUBERNETES}"
    package = f"k8s.io/kubernetes/cmd/{name}"
    module = name.replace("-", "")
    _module(work, module, [package])
    info = json.loads(_run([_go(), "mod", "download", "-json", f"k8s.io/kubernetes@v{KUBERNETES}"], work))
    staging = sorted(
        set(re.findall(r"^\s*(k8s\.io/[\w./-]+) => \./staging/", Path(info["GoMod"]).read_text(), re.M))
    )
    minor = KUBERNETES.split(".", 1)[1]
    replaces = "".join(f"\t{m} => {m} v0.{minor}\n" for m in staging)
    _module(work, module, [package], f"\nreplace (\n{replaces})\n")
    _run([_go(), "get", f"k8s.io/kubernetes@v{KUBERNETES}"], work)
    target.parent.mkdir(parents=True, exist_ok=True)
    major, minor_number = KUBERNETES.split(".")[:2]
    version = "k8s.io/component-base/version"
    ldflags = f"-X {version}.gitVersion=v{KUBERNETES} -X {version}.gitMajor={major} -X {version}.gitMinor={minor_number}"
    _run([_go(), "build", "-ldflags", ldflags, "-o", str(target), package], work)
    return target


def etcd() -> Path:
    module = "go.etcd.io/etcd/server/v3"
    return _go_command(module, ETCD, module, cache_dir() / f"etcd-{ETCD}" / "etcd")


def _go_command(
    module: str, version: str, command: str, target: Path, replaces: str = "", ldflags: str = ""
) -> Path:
    """Build `command`, a package of `module`@v`version`, into `target` (once) through a helper
    module that requires it, with `replaces` (go.mod replace directives) if given."""
    if (found := _built(target.name, target)) is not None:
        return found
    work = cache_dir() / "src" / target.parent.name
    _module(work, re.sub(r"\W", "", target.name), [command], replaces)
    _run([_go(), "get", f"{module}@v{version}"], work)
    target.parent.mkdir(parents=True, exist_ok=True)
    _run([_go(), "build", *(["-ldflags", ldflags] if ldflags else []), "-o", str(target), command], work)
    return target


def prometheus_operator_crds() -> list[Path]:
    """PrometheusRule and ServiceMonitor CRDs, generated by controller-gen from the API module."""
    out = cache_dir() / f"prometheus-operator-{PROMETHEUS_OPERATOR}-crds"
    wanted = [
        out / "monitoring.coreos.com_prometheusrules.yaml",
        out / "monitoring.coreos.com_servicemonitors.yaml",
    ]
    if all(p.is_file() for p in wanted):
        return wanted
    work = cache_dir() / "src" / f"crds-{PROMETHEUS_OPERATOR}-{CONTROLLER_TOOLS}"
    api = "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
    _module(work, "crds", ["sigs.k8s.io/controller-tools/cmd/controller-gen", api])
    _run(
        [
            _go(),
            "get",
            f"sigs.k8s.io/controller-tools/cmd/controller-gen@v{CONTROLLER_TOOLS}",
            f"{api}@v{PROMETHEUS_OPERATOR}",
        ],
        work,
    )
    generator = work / "controller-gen"
    _run([_go(), "build", "-o", str(generator), "sigs.k8s.io/controller-tools/cmd/controller-gen"], work)
    scratch = work / "out"
    shutil.rmtree(scratch, ignore_errors=True)
    _run([str(generator), "crd:crdVersions=v1", f"paths={api}", f"output:crd:dir={scratch}"], work)
    out.mkdir(parents=True, exist_ok=True)
    for path in wanted:
        shutil.copy(scratch / path.name, path)
    return wanted


def _published_file(module: str, version: str, inside: str) -> Path:
    """One file of a Go module as its project published it (`go mod download`: no build)."""
    out = cache_dir() / "published" / f"{module.replace('/', '_')}@v{version}" / Path(inside).name
    if out.is_file():
        return out
    work = cache_dir() / "src" / "downloads"
    work.mkdir(parents=True, exist_ok=True)
    info = json.loads(_run([_go(), "mod", "download", "-json", f"{module}@v{version}"], work))
    if "Dir" not in info:
        raise RuntimeError(f"go mod download {module}@v{version}: {info.get('Error', info)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(Path(info["Dir"]) / inside, out)
    return out


def sync_tool_crds() -> list[Path]:
    """The Argo CD ApplicationSet and Flux Kustomization CRDs, as Argo CD and Flux ship them."""
    return [
        _published_file("github.com/argoproj/argo-cd/v3", ARGO_CD, "manifests/crds/applicationset-crd.yaml"),
        _published_file(
            "github.com/fluxcd/kustomize-controller",
            KUSTOMIZE_CONTROLLER,
            "config/crd/bases/kustomize.toolkit.fluxcd.io_kustomizations.yaml",
        ),
    ]


def argo_rollouts_crds() -> list[Path]:
    """The Argo Rollouts CRDs (Rollout, AnalysisTemplate, ClusterAnalysisTemplate, AnalysisRun,
    Experiment), as the project ships them: the generated canary output is checked against these."""
    names = [
        "rollout-crd.yaml",
        "analysis-template-crd.yaml",
        "cluster-analysis-template-crd.yaml",
        "analysis-run-crd.yaml",
        "experiment-crd.yaml",
    ]
    module = "github.com/argoproj/argo-rollouts"
    return [_published_file(module, ARGO_ROLLOUTS, f"manifests/crds/{name}") for name in names]


def kwok() -> Path:
    """kwok: fake nodes, and pods on them that turn Running and Ready without containers."""
    return _go_command(
        "sigs.k8s.io/kwok", KWOK, "sigs.k8s.io/kwok/cmd/kwok", cache_dir() / f"kwok-{KWOK}" / "kwok"
    )


def kwok_stages() -> list[Path]:
    """kwok's "fast" stages, as it ships them: a node turns Ready, a scheduled pod Running and
    Ready at once, a deleted pod goes."""
    stages = [
        "node/fast/node-initialize.yaml",
        *(f"pod/fast/pod-{s}.yaml" for s in ("ready", "complete", "delete")),
    ]
    return [_published_file("sigs.k8s.io/kwok", KWOK, f"kustomize/stage/{stage}") for stage in stages]


def rollouts_controller() -> Path:
    """The Argo Rollouts controller. Its go.mod replaces modules (k8s.io staging modules at v0.0.0,
    a forked Telegram client), which `go install` refuses: the helper module repeats them."""
    module = "github.com/argoproj/argo-rollouts"
    replaces = _replace_directives(_published_file(module, ARGO_ROLLOUTS, "go.mod").read_text())
    return _go_command(
        module,
        ARGO_ROLLOUTS,
        f"{module}/cmd/rollouts-controller",
        cache_dir() / f"argo-rollouts-{ARGO_ROLLOUTS}" / "rollouts-controller",
        "\n" + "".join(replaces),
        f"-X {module}/utils/version.version={ARGO_ROLLOUTS}",
    )


def _replace_directives(gomod: str) -> list[str]:
    """The `replace` lines of a go.mod that point at other modules (not at local directories)."""
    lines: list[str] = []
    block = False
    for raw in gomod.splitlines():
        line = raw.split("//", 1)[0].strip()
        if line == "replace (":
            block = True
        elif block and line == ")":
            block = False
        elif "=>" in line and (block or line.startswith("replace ")):
            directive = line.removeprefix("replace ").strip()
            if not directive.split("=>", 1)[1].strip().startswith((".", "/")):
                lines.append(f"replace {directive}\n")
    return lines


def kube_score() -> Path:
    """kube-score, the static checker of Kubernetes objects, built from the Go module proxy."""
    module = "github.com/zegl/kube-score"
    target = cache_dir() / f"kube-score-{KUBE_SCORE}" / "kube-score"
    return _go_command(module, KUBE_SCORE, f"{module}/cmd/kube-score", target)


def build_all() -> dict[str, Path | list[Path]]:
    return {
        "kube-apiserver": kube_apiserver(),
        "etcd": etcd(),
        "crds": prometheus_operator_crds(),
        "sync-tool-crds": sync_tool_crds(),
        "argo-rollouts-crds": argo_rollouts_crds(),
        "kube-score": kube_score(),
        "kube-controller-manager": kube_controller_manager(),
        "kube-scheduler": kube_scheduler(),
        "kwok": kwok(),
        "rollouts-controller": rollouts_controller(),
    }
