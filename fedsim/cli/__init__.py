"""The ``fedsim`` command line: the typer app and the entry point that turns user errors into one line.

Exit codes: 0 done, 2 a user mistake (one ``error:`` line on stderr; a command-line typo also
gets its usage line), 3 a diverged run, 130 Ctrl-C, 143 SIGTERM.

click is not imported: typer 0.2x vendors its own copy, whose exceptions are not click's. The
base classes are found through typer's public ``BadParameter``, so the same handler catches
whichever click typer runs on.
"""

from __future__ import annotations

import errno
import sys
from typing import Any

import typer

from fedsim.cli.app import EXIT_TERMINATED, app, freeze_start_up
from fedsim.errors import FedsimError, Terminated, sigterm_received

__all__ = ["app", "main"]

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
# A file-system error on a named path that a command did not check first is still the user's
# path (a folder that cannot exist, a read-only place): one line naming it, not a traceback.
_PATH_ERRNOS = {errno.ENOENT, errno.EACCES, errno.EPERM, errno.EEXIST, errno.ENOTDIR, errno.EISDIR, errno.EROFS,
                errno.ENAMETOOLONG, errno.ENOSPC, errno.EDQUOT}


def _base(name: str) -> type[Exception]:
    return next(c for c in typer.BadParameter.__mro__ if c.__name__ == name)


_CLICK_EXCEPTION = _base("ClickException")
_USAGE_ERROR = _base("UsageError")
# typer < 0.2x re-exports click's Exit and Abort; later versions have their own.
_EXITS = tuple({typer.Exit, *(getattr(sys.modules.get(_CLICK_EXCEPTION.__module__), "Exit", typer.Exit),)})
_ABORTS = tuple({typer.Abort, *(getattr(sys.modules.get(_CLICK_EXCEPTION.__module__), "Abort", typer.Abort),)})


def _usage_lines(exc: Any) -> tuple[str | None, str]:
    """The usage line of the command ``exc`` is about, and a one-line message."""
    ctx = getattr(exc, "ctx", None)
    usage = ctx.get_usage().splitlines()[0].strip() if ctx is not None else None
    if type(exc).__name__ == "NoArgsIsHelpError":  # bare `fedsim` or `fedsim topology`
        command = ctx.command if ctx is not None else None
        names = command.list_commands(ctx) if command is not None and hasattr(command, "list_commands") else []
        what = f"missing command (one of: {', '.join(names)})" if names else "missing arguments"
        return usage, f"{what}; {ctx.command_path if ctx is not None else 'fedsim'} --help shows the options"
    message = " ".join(exc.format_message().split())
    hint = f" ({ctx.command_path} --help shows the options)" if ctx is not None else ""
    return usage, message + hint


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors -> one line on stderr and exit 2; Ctrl-C -> 130; SIGTERM -> 143."""
    if argv is None:  # the process's own command line; an in-process caller (tests) passes argv
        freeze_start_up()
    try:
        result = app(args=argv, prog_name="fedsim", standalone_mode=False)
    except FedsimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    except OSError as exc:
        if exc.filename is None or exc.errno not in _PATH_ERRNOS:
            raise
        print(f"error: {exc.filename}: {exc.strerror}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    except (KeyboardInterrupt, *_ABORTS, *_EXITS) as exc:
        # typer turns a KeyboardInterrupt (so also Terminated) into Exit(130), click into Abort;
        # both keep it as the cause.
        chain = (exc, exc.__cause__, exc.__context__)
        if isinstance(exc, _EXITS) and not any(isinstance(e, KeyboardInterrupt) for e in chain):
            sys.exit(exc.exit_code)
        terminated = sigterm_received() or any(isinstance(e, Terminated) for e in chain)
        print("terminated" if terminated else "interrupted", file=sys.stderr)
        sys.exit(EXIT_TERMINATED if terminated else EXIT_INTERRUPTED)
    except _USAGE_ERROR as exc:
        usage, message = _usage_lines(exc)
        if usage:
            print(usage, file=sys.stderr)
        print(f"error: {message}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    except _CLICK_EXCEPTION as exc:
        print(f"error: {' '.join(exc.format_message().split())}", file=sys.stderr)  # type: ignore[attr-defined]  # a click.ClickException, looked up lazily
        sys.exit(EXIT_USAGE)
    code = result if isinstance(result, int) else 0
    # typer reports any KeyboardInterrupt, so also a SIGTERM caught inside a run (sweep, study), as 130.
    sys.exit(EXIT_TERMINATED if code == EXIT_INTERRUPTED and sigterm_received() else code)
