"""What every command shares: the settings and a registry built on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click
from pydantic import ValidationError

from modelport.config import Settings
from modelport.errors import InvalidArgumentError

if TYPE_CHECKING:
    from modelport.registry.service import RegistryService


class CliState:
    """Settings read once per command, and the registry they configure."""

    def __init__(self) -> None:
        self._settings: Settings | None = None
        self._registry: RegistryService | None = None

    @property
    def settings(self) -> Settings:
        """The settings from the ``MODELPORT_*`` environment."""
        if self._settings is None:
            try:
                self._settings = Settings()
            except ValidationError as exc:
                error = exc.errors()[0]
                name = "MODELPORT_" + str(error["loc"][0]).upper() if error["loc"] else "settings"
                raise InvalidArgumentError(f"invalid {name}: {error['msg']}") from None
        return self._settings

    def registry(self) -> RegistryService:
        """The registry, built on first use and closed when the command ends."""
        if self._registry is None:
            from modelport.bootstrap import build_registry

            self._registry = build_registry(self.settings)
        return self._registry

    def close(self) -> None:
        """Release the registry."""
        if self._registry is not None:
            self._registry.close()
            self._registry = None


def state() -> CliState:
    """The current command's state."""
    ctx = click.get_current_context()
    root = ctx.find_root()
    if not isinstance(root.obj, CliState):
        root.obj = CliState()
        root.call_on_close(root.obj.close)
    return root.obj


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
