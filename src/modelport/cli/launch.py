"""The ``modelport`` program's entry point.

``modelport serve`` spawns its first worker here, before the CLI imports click and
the settings (``modelport.server.process.prespawn``): the worker's imports then run beside the
CLI's instead of after them, which is most of a cold start.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Run ``modelport`` with the process's arguments."""
    from modelport.server.process import prespawn

    prespawn.start(sys.argv[1:])
    from modelport.cli.main import main as cli_main

    cli_main()
