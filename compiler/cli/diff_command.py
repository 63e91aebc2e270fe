"""`modelops diff --base REF [--head REF]`: arguments to `compiler.api.review`, its report printed."""

from __future__ import annotations

import argparse
import sys

from compiler.api import Options, SideFailed, review
from compiler.cli.progress import Progress
from compiler.cli.report import print_diagnostics
from compiler.errors import UsageError
from compiler.review.render import as_json, as_markdown, as_text

EXIT_SAME, EXIT_CHANGED, EXIT_BREAKING = 0, 1, 4  # a side that does not compile: 2, from main


def run_diff(args: argparse.Namespace) -> int:
    if args.base is None:
        raise UsageError("--head needs --base REF: the other side of the comparison")
    options = Options(paths=args.paths, project=args.project, environments=args.environments)
    with Progress("diff", args.format) as progress:
        try:
            report = review(
                options,
                args.base,
                args.head,
                allow_breaking=args.allow_breaking,
                on_stage=progress.show,
            )
        except SideFailed as failed:  # main prints the message and exits 2
            progress.clear()
            print_diagnostics(failed.diagnostics, "text", stream=sys.stderr)
            raise
    rendered = {"json": as_json, "markdown": as_markdown}.get(args.format, as_text)(report)
    sys.stdout.write(rendered)
    if args.fail_on_breaking and report.breaking and not report.acknowledged:
        print(
            f"modelops: {len(report.breaking)} breaking change(s); label the PR modelops:breaking or add "
            "the trailer 'Modelops-Allow-Breaking: yes' to accept them",
            file=sys.stderr,
        )
        return EXIT_BREAKING
    return EXIT_CHANGED if report.changed else EXIT_SAME
