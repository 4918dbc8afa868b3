"""Entry point: the one place that turns exceptions into a message and an exit status."""

from __future__ import annotations

import logging
import sys

import typer

from casesync.errors import CasesyncError, ExitCode
from casesync.settings import debug_from_env

log = logging.getLogger("casesync")


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; never let a traceback reach the user unless --debug asked for it."""
    from casesync.cli.app import app

    try:
        status = app(args=argv, prog_name="casesync", standalone_mode=False)
    except CasesyncError as exc:
        print(f"casesync: error: {exc}", file=sys.stderr)
        sys.exit(int(exc.exit_code))
    except typer.Abort:  # Ctrl-C or end of input at a prompt
        print("casesync: aborted (no answer at the prompt)", file=sys.stderr)
        sys.exit(int(ExitCode.INTERRUPTED))
    except KeyboardInterrupt:
        print("casesync: interrupted", file=sys.stderr)
        sys.exit(int(ExitCode.INTERRUPTED))
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # the last line of defence: one line, not a traceback
        if _is_usage_error(exc):
            exc.show()  # type: ignore[attr-defined]
            sys.exit(int(ExitCode.ERROR))
        if _debug_enabled():
            raise
        print(
            f"casesync: internal error: {type(exc).__name__}: {exc} "
            "(rerun with --debug for details, and please report it)",
            file=sys.stderr,
        )
        sys.exit(int(ExitCode.ERROR))
    sys.exit(status if isinstance(status, int) else 0)


def _is_usage_error(exc: Exception) -> bool:
    """Click's usage errors (typer vendors click in newer releases, so match by shape)."""
    return callable(getattr(exc, "show", None)) and hasattr(exc, "exit_code")


def _debug_enabled() -> bool:
    return "--debug" in sys.argv or debug_from_env()


if __name__ == "__main__":
    main()
