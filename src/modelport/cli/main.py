"""The ``modelport`` command: noun-verb sub-commands, one readable error line on failure.

Sub-commands are imported when they run, not when the program starts: ``modelport
serve`` must not pay for the registry CLI's imports (its cold start is measured).
"""

from __future__ import annotations

import importlib
import sys

import click

from modelport import __version__
from modelport.cli.output import print_error
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
    "monitor": "modelport.cli.monitor:monitor",
    "quickstart": "modelport.cli.quickstart:quickstart",
    "feedback": "modelport.cli.feedback:feedback",
    "log": "modelport.cli.log:log",
    "webhooks": "modelport.cli.webhooks:webhooks",
    "ci": "modelport.cli.ci:ci",
    "deploy": "modelport.cli.deploy:deploy",
    "keys": "modelport.cli.keys:keys",
    "key": "modelport.cli.key:key",
    "batch": "modelport.cli.batch:batch",
    "export": "modelport.cli.export:export",
    "k8s": "modelport.cli.k8s:k8s",
    "build": "modelport.cli.build:build",
    "ray": "modelport.cli.ray_serve:ray",
    "ui": "modelport.cli.ui:ui",
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
    """Run the CLI; errors become one line on stderr (a JSON object under ``--json``)
    and a non-zero exit code."""
    args = sys.argv[1:] if argv is None else list(argv)
    as_json = wants_json(args)
    try:
        code = cli.main(args=args, prog_name="modelport", standalone_mode=False)
    except click.exceptions.Abort:
        print_error("aborted", "ABORTED", as_json=as_json)
        code = 1
    except click.ClickException as exc:
        code = _click_error(exc, as_json=as_json)
    except ModelportError as exc:
        details = exc.to_dict()
        message, error_code = details.pop("message"), details.pop("code")
        print_error(message, error_code, as_json=as_json, **details)
        code = 1
    except KeyboardInterrupt:
        if as_json:
            print_error("interrupted", "INTERRUPTED", as_json=True)
        code = 130
    except Exception as exc:
        if _debug():
            raise
        message = f"unexpected {type(exc).__name__}: {exc}"
        if not as_json:
            message += " (set MODELPORT_DEBUG=1 to see the traceback)"
        print_error(message, "INTERNAL_ERROR", as_json=as_json)
        code = 1
    sys.exit(code if isinstance(code, int) else 0)


def wants_json(args: list[str]) -> bool:
    """Whether the command line asks for ``--json`` (before any ``--``): errors are then
    JSON too, even those found before the command's options were parsed."""
    options = args[: args.index("--")] if "--" in args else args
    return "--json" in options


def _click_error(exc: click.ClickException, *, as_json: bool) -> int:
    """Usage errors (exit 2) and click's other errors (exit 1)."""
    if not as_json:
        exc.show()
    else:
        code = "USAGE_ERROR" if isinstance(exc, click.UsageError) else "INVALID_ARGUMENT"
        print_error(exc.format_message(), code, as_json=True)
    return exc.exit_code


def _debug() -> bool:
    try:
        return Settings().debug
    except ValueError:  # invalid settings were already reported as such
        return False
