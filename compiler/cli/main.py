"""Entry point of `modelops`. Imports are lazy so that `--help` and `validate` stay fast."""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from compiler import __version__
from compiler.cli.command import Command, Handler, register
from compiler.cli.init_command import SCAFFOLD_COMMANDS
from compiler.cli.report import FORMATS
from compiler.errors import ModelopsError, UsageError

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3


def _add_paths(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="*",
        type=Path,
        default=[Path("specs")],  # argparse takes it when no path is given
        metavar="PATHS",
        help="spec files or directories (searched recursively); default: specs/",
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def _seconds(text: str) -> float:
    """A duration: finite and more than 0 (float() takes "nan", which every comparison fails)."""
    value = _number(text)
    if not value > 0 or value == math.inf:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, not {text!r}")
    return value


def _share(text: str) -> float:
    """A share of the owned objects: from 0 to 1 (a NaN would lift the prune guard unseen)."""
    value = _number(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be a share from 0 to 1, such as 0.5, not {text!r}")
    return value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _add_input_arguments(parser: argparse.ArgumentParser) -> None:
    _add_paths(parser)
    parser.add_argument(
        "--project",
        type=Path,
        metavar="FILE",
        help="project file; default: the nearest modelops.yaml at or above the first path",
    )
    parser.add_argument(
        "--env",
        action="append",
        metavar="ENV",
        dest="environments",
        help="only this environment (repeatable); default: every environment",
    )


def _add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--context", metavar="CTX", help="kube context (default: the environment's, else current)"
    )
    parser.add_argument(
        "--kubeconfig", metavar="FILE", help="kubeconfig (default: $KUBECONFIG or ~/.kube/config)"
    )
    parser.add_argument(
        "--request-timeout",
        type=_seconds,
        default=30.0,
        metavar="SECONDS",
        help="give up on any one request to the API server after this long (default 30)",
    )


def _add_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="text for people, json for programs, github for workflow annotations",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelops",
        description="Declarative GitOps compiler for machine-learning models.",
        epilog="Exit codes: 0 success, 1 invalid specs or stale output, 2 usage error or "
        "unreadable input, 3 internal error.",
    )
    parser.add_argument("--version", action="version", version=f"modelops {__version__}")
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND")
    subcommands.required = True
    register(subcommands, COMMANDS)
    return parser


def _validate_arguments(parser: argparse.ArgumentParser) -> None:
    _add_input_arguments(parser)
    _add_format(parser)
    parser.add_argument(
        "--strict", action="store_true", help="treat warnings as errors (exit 1 on any warning)"
    )


def _compile_arguments(parser: argparse.ArgumentParser) -> None:
    _add_input_arguments(parser)
    _add_format(parser)
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="output directory; default: generated/ beside the specs directory",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; list files that would be added, changed or removed; exit 1 if stale",
    )
    parser.add_argument(
        "--ref",
        metavar="REF",
        help="compile the specs as they are at this commit, branch or tag (read from Git, no checkout)",
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help="render every model again (default: reuse the files of models whose inputs are unchanged)",
    )
    parser.add_argument(
        "--jobs",
        type=_positive_int,
        metavar="N",
        help="worker processes that check and render (default: the CPUs this process may use)",
    )
    stamp = parser.add_mutually_exclusive_group()
    stamp.add_argument(
        "--stamp",
        dest="stamp",
        action="store_true",
        default=None,
        help="annotate objects with the Git commit (default: the project's output.stamp)",
    )
    stamp.add_argument(
        "--no-stamp", dest="stamp", action="store_false", help="leave the Git commit annotation out"
    )


def _diff_arguments(parser: argparse.ArgumentParser) -> None:
    _add_input_arguments(parser)
    parser.add_argument(
        "--base",
        metavar="REF",
        help="compare with the specs at this Git ref (without it: with the live cluster)",
    )
    parser.add_argument("--head", metavar="REF", help="the other side (default: the working tree)")
    parser.add_argument("--format", choices=("text", "json", "markdown"), default="text")
    _add_cluster_arguments(parser)
    parser.add_argument(
        "--fail-on-breaking",
        action="store_true",
        help="exit 4 on breaking changes unless accepted (--allow-breaking, or a commit trailer "
        "'Modelops-Allow-Breaking: yes' between base and head)",
    )
    parser.add_argument(
        "--allow-breaking", action="store_true", help="accept breaking changes (e.g. a PR label)"
    )


def _history_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL")
    _add_paths(parser)
    parser.add_argument("--project", type=Path, metavar="FILE")
    parser.add_argument("--format", choices=("text", "json"), default="text")


def _apply_arguments(parser: argparse.ArgumentParser) -> None:
    _add_input_arguments(parser)
    _add_cluster_arguments(parser)
    parser.add_argument("--prune", action="store_true", help="delete owned objects the output no longer has")
    parser.add_argument(
        "--prune-max-share",
        type=_share,
        default=0.5,
        metavar="SHARE",
        help="refuse to prune more than this share of the owned objects (default 0.5)",
    )
    parser.add_argument("--prune-allow-mass-delete", action="store_true", help="lift the prune share guard")
    parser.add_argument("--dry-run", action="store_true", help="show what would be applied and pruned")
    parser.add_argument("--wait", action="store_true", help="wait until workloads have rolled out")
    parser.add_argument(
        "--timeout", type=_seconds, default=300, metavar="SECONDS", help="for --wait (default 300)"
    )
    parser.add_argument(
        "--force-conflicts", action="store_true", help="take over fields another manager owns"
    )
    parser.add_argument(
        "--force", action="store_true", help="delete and recreate objects whose immutable fields changed"
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")


def _evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    _add_input_arguments(parser)
    _add_format(parser)
    parser.add_argument("--no-write", action="store_true", help="do not write evaluation records")


def _serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, required=True, metavar="FILE", help="runtime configuration")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="API port (default: server.port of the config)")
    parser.add_argument("--metrics-port", type=int, help="/metrics port (default: server.metricsPort)")


def _schema_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kind", choices=("Model", "Project"), default="Model")


def _version_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("text", "json"), default="text")


def _completion_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shell", choices=("bash", "zsh"))


def _run_validate(args: argparse.Namespace) -> int:
    """check specs and the project file

    Check every spec for every environment: types, semantics and policies.
    """
    from compiler.cli.report import print_diagnostics
    from compiler.pipeline import check

    checked = check(args.paths, args.project, args.environments)
    diagnostics = checked.diagnostics
    failed = not checked.ok or (args.strict and bool(diagnostics))
    files = checked.catalog.spec_files if checked.catalog else 0
    environments = len({m.environment for m in checked.models})
    print_diagnostics(
        diagnostics,
        args.format,
        extra={
            "models": [
                {"name": m.name, "environment": m.environment, "namespace": m.namespace, "source": m.source}
                for m in checked.models
            ]
        },
        ok_message=f"{files} spec file{'s' if files != 1 else ''} valid "
        f"({len(checked.models)} model{'s' if len(checked.models) != 1 else ''} across "
        f"{environments} environment{'s' if environments != 1 else ''})",
    )
    return EXIT_INVALID if failed else EXIT_OK


def _run_compile(args: argparse.Namespace) -> int:
    """render every spec for every environment into generated/

    Render Kubernetes manifests for every spec and environment into a deterministic tree,
    written as one transaction (only the files that change).
    """
    from compiler.cli.compile_command import run_compile

    return run_compile(args)


def _run_diff(args: argparse.Namespace) -> int:
    """what compiling another version of the specs changes (per model, per file)

    Compile the specs at --base and at --head (default: the working tree), compare the output
    file by file and object by object, and summarise per model and environment. Exit codes: 0 no
    change, 1 changes, 2 error, 4 unaccepted breaking changes with --fail-on-breaking.
    """
    if args.base is None and args.head is None:
        if args.format == "markdown":
            raise UsageError("--format markdown is for diff --base (the pull-request comment)")
        from compiler.cli.reconcile_command import run_cluster_diff

        return run_cluster_diff(args)
    from compiler.cli.diff_command import run_diff

    return run_diff(args)


def _run_apply(args: argparse.Namespace) -> int:
    """server-side apply the compiled output to the cluster, with inventory and prune

    Compile the specs, then server-side apply (field manager modelops) every object whose dry
    run shows a change, in stages; record ownership in an ApplySet per namespace; optionally
    prune what the output no longer has and wait for rollouts.
    """
    from compiler.cli.apply_command import run_apply

    return run_apply(args)


def _run_history(args: argparse.Namespace) -> int:
    """each version a model had, from the Git log of its spec

    List each version MODEL had: when, in which commit, by whom, and its gate results where an
    evaluation record was committed with it.
    """
    from compiler.gitops.history import history, render

    sys.stdout.write(render(history(args.model, args.paths, args.project), args.format))
    return EXIT_OK


def _run_evaluate(args: argparse.Namespace) -> int:
    """score models on their holdout sets and check their gates

    Load each artifact (skops only, trusted types only), verify its sha256 pin, score the
    holdout set, compare every gate, and record the metrics and the drift baseline in
    evaluations/<model>/<version>.json for compile and the runtime.
    """
    from compiler.cli.evaluate_command import run_evaluate

    return run_evaluate(args)


def _run_serve(args: argparse.Namespace) -> int:
    """serve a model over the Open Inference Protocol v2, with Prometheus metrics

    Run the model runtime that the builtin Deployment runs. FILE is the runtime configuration
    the compiled ConfigMap carries; a relative model uri resolves against the working directory.
    """
    from compiler.serving.server import serve

    return serve(args.config, args.host, args.port, args.metrics_port)


def _run_schema(args: argparse.Namespace) -> int:
    """print the JSON Schema of the spec (for editors)

    Print the JSON Schema of a Model spec or of the project file. Point a spec at it with
    '# yaml-language-server: $schema=PATH'.
    """
    from compiler.spec.schema import schema_json

    sys.stdout.write(schema_json(args.kind))
    return EXIT_OK


def _run_version(args: argparse.Namespace) -> int:
    """print the version"""
    if args.format == "json":
        print(json.dumps({"version": __version__}))
    else:
        print(f"modelops {__version__}")
    return EXIT_OK


def _run_completion(args: argparse.Namespace) -> int:
    """print a shell completion script (bash or zsh)

    Print a completion script built from modelops's own argument parser. bash: 'source
    <(modelops completion bash)'; zsh: write it as _modelops into a $fpath directory.
    """
    from compiler.cli.completion import script

    sys.stdout.write(script(build_parser(), args.shell))
    return EXIT_OK


COMMANDS = (
    Command("validate", _validate_arguments, _run_validate),
    Command("compile", _compile_arguments, _run_compile),
    Command("diff", _diff_arguments, _run_diff),
    Command("history", _history_arguments, _run_history),
    Command("apply", _apply_arguments, _run_apply),
    Command("evaluate", _evaluate_arguments, _run_evaluate),
    Command("serve", _serve_arguments, _run_serve),
    Command("schema", _schema_arguments, _run_schema),
    *SCAFFOLD_COMMANDS,
    Command("version", _version_arguments, _run_version),
    Command("completion", _completion_arguments, _run_completion),
)

# A batch command allocates a few hundred thousand objects and exits: collecting garbage
# every 700 allocations took a tenth of an incremental compile. (mypy does the same.)
# The long-running server keeps Python's defaults.
BATCH_GC_THRESHOLD = (100_000, 50, 100)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    thresholds = gc.get_threshold()
    if args.command != "serve":
        gc.set_threshold(*BATCH_GC_THRESHOLD)
    try:
        return handler(args)
    except ModelopsError as err:  # the library's typed refusals, the CLI's own usage errors
        print(f"modelops: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("modelops: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as err:  # a bug: say so plainly, show the traceback only on request
        if os.environ.get("MODELOPS_DEBUG"):
            raise
        print(
            f"modelops: internal error: {type(err).__name__}: {err}\n"
            "This is a bug in modelops; run again with MODELOPS_DEBUG=1 for the traceback.",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
    finally:
        gc.set_threshold(*thresholds)  # main() also runs in-process, in tests and embedders


if __name__ == "__main__":
    raise SystemExit(main())
