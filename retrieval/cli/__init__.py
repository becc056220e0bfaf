"""The `retrieval` console script's side in this package: flag parsing (the one place flags are read), the
`serve` configuration, and the client commands (`commands/`), each imported only when it runs so `--help`
stays fast.

May import: every other package of `retrieval` (lazily, inside the command that needs it)."""

from retrieval.cli.main import build_parser, run_command
from retrieval.cli.serve import config_from_args

__all__ = ["build_parser", "config_from_args", "run_command"]
