"""The ``modelport`` command: noun-verb sub-commands, one readable error line on failure.

Sub-commands are imported when they run, not when the program starts: ``modelport
serve`` must not pay for the registry CLI's imports (its cold start is measured).
"""

from __future__ import annotations

import importlib
import sys

import click

from modelport import __version__
from modelport.config import Settings
from modelport.errors import ModelportError

# command name -> "module:attribute"
COMMANDS = {
    "model": "modelport.cli.model:model",
    "version": "modelport.cli.version:version",
    "alias": "modelport.cli.alias:alias",
    "audit": "modelport.cli.audit:audit",
    "db": "modelport.cli.db:db",
    "serve": "modelport.cli.serve:serve",
    "quickstart": "modelport.cli.quickstart:quickstart",
}


class LazyGroup(click.Group):
    """A group whose sub-commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, _, attribute = target.partition(":")
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="modelport")
def cli() -> None:
    """Package, register, serve and load machine-learning models.

    Settings come from MODELPORT_* variables: MODELPORT_HOME (default ~/.modelport),
    MODELPORT_DATABASE_URL, MODELPORT_ARTIFACTS_URI, MODELPORT_USER,
    MODELPORT_VERSION_CHECK (strict|warn), MODELPORT_CONFIG (a TOML file), and
    MODELPORT_SERVE__* for the server (e.g. MODELPORT_SERVE__PORT).
    """


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; errors become one line on stderr and a non-zero exit code."""
    try:
        code = cli.main(args=argv, prog_name="modelport", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        code = 1
    except click.ClickException as exc:
        exc.show()
        code = exc.exit_code
    except ModelportError as exc:
        click.echo(f"error: {exc.message}", err=True)
        code = 1
    except KeyboardInterrupt:
        code = 130
    except Exception as exc:
        if _debug():
            raise
        click.echo(
            f"error: unexpected {type(exc).__name__}: {exc} "
            "(set MODELPORT_DEBUG=1 to see the traceback)",
            err=True,
        )
        code = 1
    sys.exit(code if isinstance(code, int) else 0)


def _debug() -> bool:
    try:
        return Settings().debug
    except ValueError:  # invalid settings were already reported as such
        return False
