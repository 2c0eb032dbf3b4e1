"""Entry point of ``lcq``: the click group and the mapping of errors to exit codes.

Commands live in their own modules and load on first use, so ``lcq status``
does not import the search service and ``lcq --help`` stays fast.
Every error reaches the user as one line on stderr: usage errors exit 2,
other failures 1, and no traceback is printed.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import sys

import click
import redis

from lcworker import __version__
from lcworker.errors import LcqError

_LINE_BREAKS = re.compile(r"\s*[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]+\s*")

#: Command name -> "module:attribute" of its click command.
COMMANDS = {
    "submit": "cli.search_commands:submit",
    "status": "cli.status_commands:status",
    "show": "cli.show_commands:show",
    "resume": "cli.search_commands:resume",
    "cancel": "cli.search_commands:cancel",
    "worker": "cli.worker_commands:worker",
    "serve": "cli.serve_commands:serve",
    "demo": "cli.demo_commands:demo",
    "validate": "cli.validate_commands:validate",
}


class LazyGroup(click.Group):
    """A click group that imports each command's module when it is first used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            return None
        return getattr(module, attribute)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lcq")
@click.option(
    "-v", "--verbose", count=True, help="Log more: -v for INFO, -vv for DEBUG."
)
def cli(verbose: int) -> None:
    """Run long LimaCharlie searches as resumable chains of RQ jobs.

    Each page of a search is one RQ job. Pages are written exactly once to a
    JSONL checkpoint, so any process can be killed and the search resumed.
    """
    level = logging.WARNING
    if verbose == 1:
        level = logging.INFO
    elif verbose >= 2:
        level = logging.DEBUG
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def _command_path(ctx: click.Context | None) -> str:
    return ctx.command_path if ctx is not None else "lcq"


def _echo_error(text: str) -> None:
    """Print ``text`` on stderr as one line.

    Messages can quote a server's error or body, which may hold line breaks;
    joining the lines keeps the one-line-per-error rule.
    """
    click.echo(_LINE_BREAKS.sub(" ", text.strip()), err=True)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI and turn every error into one line and an exit code."""
    try:
        # Without standalone mode, click returns the code of ctx.exit(n).
        code = cli.main(args=argv, prog_name="lcq", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        where = _command_path(exc.ctx)
        _echo_error(f"{where}: error: {exc.format_message()} (see '{where} --help')")
        sys.exit(2)
    except click.Abort:
        click.echo("lcq: aborted", err=True)
        sys.exit(130)
    except LcqError as exc:
        _echo_error(f"lcq: error: {exc}")
        sys.exit(exc.exit_code)
    except redis.exceptions.AuthenticationError as exc:
        _echo_error(
            f"lcq: error: Redis rejected the credentials ({exc}); "
            "check the password in LCQ_REDIS_URL"
        )
        sys.exit(1)
    except redis.exceptions.ConnectionError as exc:
        _echo_error(
            f"lcq: error: cannot reach Redis ({exc}); start it or set "
            "LCQ_REDIS_URL to a running server"
        )
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("lcq: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        _echo_error(f"lcq: error: {exc.format_message()}")
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        sys.exit(0)
    except Exception as exc:
        # A bug, not a user error: one line by default, the traceback on request.
        if os.environ.get("LCQ_DEBUG"):
            raise
        _echo_error(
            f"lcq: internal error: {type(exc).__name__}: {exc}; rerun with "
            "LCQ_DEBUG=1 for the traceback and report it"
        )
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
