"""Running ``modelport ui`` (the control plane) as a real process in tests: the same
start, wait and stop as ``modelport serve`` (``testing_process.serving``)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from testing_process import ServerProcess, serving


@contextmanager
def control_plane(
    home: Path, args: Sequence[str] = (), *, startup_s: float = 60, **env: str
) -> Iterator[ServerProcess]:
    """``modelport ui --port 0 ARGS`` over ``home`` until the block ends (then SIGTERM,
    or SIGKILL after 30 s)."""
    home.mkdir(parents=True, exist_ok=True)
    with serving(home, args, startup_s=startup_s, command="ui", **env) as server:
        yield server
