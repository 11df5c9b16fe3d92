"""What every command shares: the settings and a registry built on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click
from pydantic import ValidationError

from modelport.config import Settings
from modelport.errors import InvalidArgumentError, UnsupportedOperationError

if TYPE_CHECKING:
    # The HTTP SDK, used instead of the database when MODELPORT_REGISTRY_URL is set.
    from modelport.client import RegistryClient
    from modelport.registry.service import RegistryService


class CliState:
    """Settings read once per command, and the registry they configure."""

    def __init__(self) -> None:
        self._settings: Settings | None = None
        self._registry: RegistryService | RegistryClient | None = None

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

    def registry(self) -> RegistryService | RegistryClient:
        """The registry, built on first use and closed when the command ends: the
        control plane at ``MODELPORT_REGISTRY_URL`` over HTTP when it is set, else the
        database and artifact store of the settings."""
        if self._registry is None:
            if self.settings.registry_url is not None:
                from modelport.client import RegistryClient

                self._registry = RegistryClient.from_settings(self.settings)
            else:
                from modelport.bootstrap import build_registry

                self._registry = build_registry(self.settings)
        return self._registry

    def local_registry(self, what: str) -> RegistryService:
        """The registry over the database itself, for ``what`` (a command that needs the
        stores: signing keys on this machine, the metadata tables); refused, saying why,
        when ``MODELPORT_REGISTRY_URL`` points the CLI at a control plane instead."""
        self.require_database(what)
        from modelport.registry.service import RegistryService

        registry = self.registry()
        assert isinstance(registry, RegistryService)  # no URL: built from the database
        return registry

    def require_database(self, what: str) -> None:
        """Refuse ``what`` (a command that works on the metadata database and artifact
        store themselves) when ``MODELPORT_REGISTRY_URL`` points the CLI at a control
        plane, naming why and what to do."""
        url = self.settings.registry_url
        if url is not None:
            raise UnsupportedOperationError(
                f"{what} needs the metadata database and artifact store themselves, and "
                f"MODELPORT_REGISTRY_URL ({url}) points this CLI at a control plane instead: "
                "run it where the database is, without MODELPORT_REGISTRY_URL"
            )

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
