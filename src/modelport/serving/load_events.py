"""Where the runtime reports what happens to the served versions (metrics, by default
nothing): loads, failures, refused swaps, retirements, and what each route follows."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelport.serving.route import Route
    from modelport.serving.served import ServedModel
    from modelport.serving.sources import ModelSource


class LoadEvents:
    """The runtime's reports; every method does nothing here."""

    def loaded(self, served: ServedModel, kind: str) -> None:
        """``served`` is ready after a ``start`` or ``swap`` load."""

    def failed(self, source: ModelSource, kind: str, version: int | None, reason: str) -> None:
        """Loading ``version`` of ``source`` failed."""

    def refused(self, source: ModelSource, version: int | None, reason: str) -> None:
        """``version`` loaded but was not switched to: it would break current clients."""

    def retired(self, served: ServedModel) -> None:
        """``served`` no longer serves."""

    def followed(self, route: Route) -> None:
        """The version ``route`` wants, or why it does not serve it, changed."""

    def registry(self, reachable: bool) -> None:
        """The last check of the registry succeeded (or not)."""
