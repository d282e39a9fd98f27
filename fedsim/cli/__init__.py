"""The ``fedsim`` command line: the typer app and the entry point that turns user errors into one line."""

from __future__ import annotations

import sys

import click

from fedsim.cli.app import app
from fedsim.errors import FedsimError

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors -> one line on stderr and exit 2; Ctrl-C -> exit 130."""
    try:
        result = app(args=argv, standalone_mode=False)
    except FedsimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except (KeyboardInterrupt, click.exceptions.Abort):
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    sys.exit(result if isinstance(result, int) else 0)
