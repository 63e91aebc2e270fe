"""Git-aware benchmarks: incremental compile of one changed spec among N, and diff --base
(one spec changed or added, with generated/ committed; and without the check cache).

    python bench/gitops_bench.py [N]      (default 1000)

Each figure is an end-to-end CLI run in a fresh process (interpreter start and imports
included); the incremental one is repeated and its median printed. The compiler's bytecode is
compiled first, as `pip install` does for an installed package (an editable checkout under
PYTHONDONTWRITEBYTECODE would otherwise compile ~80 modules from source on every run).
Figures only.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

from compile_bench import make_tree  # noqa: E402


def timed(command: list[str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return elapsed, result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""


def main(n: int) -> None:
    modelops = str(REPO / ".venv" / "bin" / "modelops")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_tree(root, n)
        subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "compiler")], check=True)
        full, _ = timed([modelops, "compile", "specs"], root)
        commit(root, "specs and generated/")  # committed output: what diff --base reads file names from
        unchanged, line_unchanged = timed([modelops, "compile", "specs"], root)
        spec = root / "specs" / "bench-00042.yaml"
        runs = []
        previous = 2
        for minimum in (3, 4, 5, 6, 7, 6, 5, 4, 3):  # a change each time: each run renders one model
            text = spec.read_text()
            spec.write_text(text.replace(f"{{min: {previous}, max: 8}}", f"{{min: {minimum}, max: 8}}"))
            previous = minimum
            elapsed, line_incremental = timed([modelops, "compile", "specs"], root)
            runs.append(elapsed)
        incremental = statistics.median(runs)
        full_check, _ = timed([modelops, "compile", "specs", "--full"], root)
        check, _ = timed([modelops, "validate", "specs"], root)
        diff, line_diff = timed([modelops, "diff", "specs", "--base", "HEAD"], root)
        (root / "specs" / "bench-new.yaml").write_text(spec.read_text().replace("bench-00042", "bench-new"))
        added, line_added = timed([modelops, "diff", "specs", "--base", "HEAD"], root)
        (root / "specs" / "bench-new.yaml").unlink()
        shutil.rmtree(root / ".modelops-cache")
        cold, line_cold = timed([modelops, "diff", "specs", "--base", "HEAD"], root)
        shutil.rmtree(root / "generated")
    print(f"{n} specs x 2 environments")
    print(f"  full compile                         {full:7.2f} s")
    print(f"  recompile, nothing changed           {unchanged:7.2f} s   ({line_unchanged})")
    print(
        f"  recompile, one spec changed          {incremental:7.2f} s   median of {len(runs)} "
        f"(min {min(runs):.2f}, max {max(runs):.2f}; {line_incremental})"
    )
    print(f"  recompile --full (no cache, no reuse) {full_check:6.2f} s")
    print(f"  validate alone                       {check:7.2f} s")
    print(f"  diff --base HEAD (one spec changed)  {diff:7.2f} s   ({line_diff})")
    print(f"  diff --base HEAD (one spec added)    {added:7.2f} s   ({line_added})")
    print(f"  diff, one changed, no check cache    {cold:7.2f} s   ({line_cold})")
    print("targets among 1000: incremental compile of one changed spec under 0.5 s; diff --base under 2 s")


def commit(root: Path, message: str) -> None:
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(
        ["git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", message], cwd=root, check=True
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
