"""Allow `python -m compiler` as an alias of the `modelops` console script."""

from compiler.cli.main import main

raise SystemExit(main())
