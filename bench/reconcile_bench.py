"""Reconcile benchmark against the test control plane (tests/testenv): diff and apply of N models.

    python bench/reconcile_bench.py [N ...]      (default: 100 1000)

For each N: first apply (creates everything), diff right after (nothing to change), second
apply (a no-op), and beside them `kubectl apply --server-side --dry-run=server` of the same
environment when kubectl is present. Figures only.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from compile_bench import make_tree  # noqa: E402

from tests.testenv import controlplane  # noqa: E402


def timed(command: list[str], cwd: Path) -> tuple[float, int]:
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command)}: exit {result.returncode}\n{result.stderr[-2000:]}")
    return elapsed, result.returncode


def main(sizes: list[int]) -> None:
    modelops = str(REPO / ".venv" / "bin" / "modelops")
    kubectl = shutil.which("kubectl", path=str(REPO / ".venv" / "bin")) or shutil.which("kubectl")
    with tempfile.TemporaryDirectory() as tmp, controlplane.running(Path(tmp) / "plane") as plane:
        header = ("models", "objects", "apply 1st s", "diff s", "apply 2nd s", "kubectl dry-run s")
        widths = (7, 8, 11, 8, 11, 17)
        print(" ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)))
        for n in sizes:
            root = Path(tmp) / f"tree-{n}"
            make_tree(root, n)
            project = root / "specs" / "modelops.yaml"
            project.write_text(project.read_text().replace("ml-staging", f"bench{n}-staging"))
            common = ["--env", "staging", "--context", "testenv", "--kubeconfig", str(plane.kubeconfig)]
            first, _ = timed([modelops, "apply", "specs", *common], root)
            diff, code = timed([modelops, "diff", "specs", *common], root)
            second, _ = timed([modelops, "apply", "specs", *common], root)
            subprocess.run([modelops, "compile", "specs"], cwd=root, check=True, capture_output=True)
            objects = sum(1 for _ in (root / "generated" / "staging").rglob("*.yaml")) - n - 1
            dry = "-"
            if kubectl:
                seconds, _ = timed(
                    [
                        kubectl,
                        "--kubeconfig",
                        str(plane.kubeconfig),
                        "apply",
                        "--server-side",
                        "--dry-run=server",
                        "--field-manager=modelops",
                        "-k",
                        "generated/staging",
                    ],
                    root,
                )
                dry = f"{seconds:.2f}"
            print(
                f"{n:>7} {objects:>8} {first:>11.2f} {diff:>8.2f} {second:>11.2f} {dry:>17}"
                f"{'' if code == 0 else '  (diff reported changes!)'}"
            )


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [100, 1000])
