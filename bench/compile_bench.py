"""Compile benchmark: validate and compile N synthetic specs x 2 environments.

Prints wall time, peak memory, objects per second, and the floor: the time PyYAML's C
dumper alone takes to serialise the same Kubernetes objects. Figures only; nothing asserts.

    python bench/compile_bench.py [N ...]      (default: 100 1000 5000)
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

SPEC = """\
apiVersion: modelops.dev/v1alpha1
kind: Model
metadata:
  name: bench-{i:05d}
  team: team-{team}
  labels: {{tier: t{tier}}}
spec:
  model:
    framework: sklearn
    task: classification
    version: 1.{minor}.0
    uri: models/bench-{i:05d}/model.skops
    features:
      - {{name: income, type: float}}
      - {{name: debt_ratio, type: float}}
      - {{name: age, type: int}}
  evaluation:
    dataset: data/bench-{i:05d}.csv
    target: label
    gates:
      accuracy: {{min: 0.8}}
      roc_auc: {{min: 0.85}}
  serving:
    replicas: {{min: 2, max: 8}}
    autoscaling: {{cpu: 70}}
    resources:
      requests: {{cpu: 250m, memory: 512Mi}}
      limits: {{memory: 1Gi}}
  monitoring:
    slo:
      availability: 99.9
      latency: {{threshold: 250ms, target: 99}}
    drift:
      psi: {{warning: 0.1, critical: 0.25}}
    alerts:
      runbook: https://runbooks.example/bench-{i:05d}
  environments:
    staging:
      serving: {{replicas: {{min: 1, max: 2}}}}
"""


def make_tree(root: Path, n: int) -> None:
    specs = root / "specs"
    specs.mkdir(parents=True)
    shutil.copy(REPO / "specs" / "modelops.yaml", specs / "modelops.yaml")
    for i in range(n):
        (specs / f"bench-{i:05d}.yaml").write_text(SPEC.format(i=i, team=i % 7, tier=i % 3, minor=i % 10))


def measure(root: str) -> None:
    """Runs in a child process so that peak memory is this run's alone."""
    sys.path.insert(0, str(REPO))
    import gc

    import yaml

    from compiler import api

    gc.set_threshold(100_000, 50, 100)  # as the CLI runs (compiler.cli.main.BATCH_GC_THRESHOLD)
    options = api.Options(paths=[Path(root) / "specs"], stamp=False)
    start = time.perf_counter()
    api.check(options)
    validate_s = time.perf_counter() - start

    start = time.perf_counter()
    files = api.render(api.check(options)).files
    in_memory_s = time.perf_counter() - start

    start = time.perf_counter()  # the command itself: check, render, journaled write
    written = api.write(api.check(options, api.Mode.FULL), api.Mode.FULL)
    compile_s = time.perf_counter() - start
    write_s = compile_s - in_memory_s

    documents = [  # the rendered documents, read back: what the floor serialises again
        (name, body)
        for name, content in files.items()
        if name.endswith((".yaml", ".json"))
        for body in (
            [json.loads(content)]
            if name.endswith(".json")
            else yaml.load_all(content, Loader=yaml.CSafeLoader)
        )
    ]
    objects = [b for n, b in documents if n.endswith(".yaml") and isinstance(b, dict) and "kind" in b]
    start = time.perf_counter()
    for name, body in documents:
        if name.endswith(".json"):
            json.dumps(body, indent=2, sort_keys=True, ensure_ascii=False)
        else:
            yaml.dump(body, Dumper=yaml.CSafeDumper, sort_keys=True, allow_unicode=True, width=1_000_000)
    floor_s = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "models": written.models,
                "objects": len(objects),
                "files": len(files),
                "validate_s": validate_s,
                "compile_s": compile_s,
                "in_memory_s": in_memory_s,
                "write_s": write_s,
                "floor_s": floor_s,
                "peak_mib": peak_mib,
            }
        )
    )


def main(sizes: list[int]) -> None:
    print(
        "compile = load + validate + resolve + render + serialise (in memory) + journaled write;\n"
        "floor = serialising the same documents alone (PyYAML's C dumper; json for dashboards), "
        "one process.\n"
        "objects = documents with a kind (Kubernetes objects, kustomizations); rule files, promtool tests\n"
        "and dashboard JSON come on top. The floor serialises every rendered document, read back.\n"
        "The write is disk-bound and varies a lot on shared disks: it is shown apart.\n"
    )
    print(
        f"{'specs':>6} {'model-envs':>10} {'objects':>8} {'validate s':>10} {'in-memory s':>11} "
        f"{'write s':>8} {'compile s':>10} {'objects/s':>10} {'floor s':>8} {'mem/floor':>9} "
        f"{'all/floor':>9} {'peak MiB':>9}"
    )
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            make_tree(Path(tmp), n)
            out = subprocess.run(
                [sys.executable, __file__, "--measure", tmp], capture_output=True, text=True, check=True
            )
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(
                f"{n:>6} {r['models']:>10} {r['objects']:>8} {r['validate_s']:>10.2f} "
                f"{r['in_memory_s']:>11.2f} {r['write_s']:>8.2f} {r['compile_s']:>10.2f} "
                f"{r['objects'] / r['compile_s']:>10.0f} {r['floor_s']:>8.2f} "
                f"{r['in_memory_s'] / r['floor_s']:>9.2f} {r['compile_s'] / r['floor_s']:>9.2f} "
                f"{r['peak_mib']:>9.0f}"
            )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--measure":
        measure(sys.argv[2])
    else:
        main([int(a) for a in sys.argv[1:]] or [100, 1000, 5000])
