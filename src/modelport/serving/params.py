"""A request's inference parameters, resolved for one served version.

The signature's ``ParamSchema`` (``domain.params``) converts and type-checks the
declared ones (``InvalidParameterError``, 400) and fills in defaults. What a request
sends that the model does not declare is ignored, as MLflow ignores it: the answer
carries a warning (the HTTP layer puts it in a header) and the server logs each such
name once per version, not once per request, so that a client repeating a typo cannot
flood the log. Resolved values reach the model only when its predictor takes them
(``domain.predictor.accepts_params``); for other models they are checked and dropped,
and the batcher can then merge their requests as if they had none.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from modelport.domain.params import ParamSchema, ignored_warning

logger = logging.getLogger(__name__)

# Distinct ignored names logged per version; past this, one line says the rest are not.
MAX_LOGGED_NAMES = 100

Params = Mapping[str, Any]


class ParamResolver:
    """Turns the params a request sent into those the model receives, plus warnings."""

    def __init__(self, schema: ParamSchema | None, *, model: str, passes: bool) -> None:
        self._schema = schema
        self._model = model
        self._passes = passes
        self._logged: set[str] = set()
        # What a request without params gives the model: every default, or nothing.
        self.defaults: Params | None = schema.defaults if schema and passes else None

    def resolve(self, given: Params | None) -> tuple[Params | None, tuple[str, ...]]:
        """The params to pass to the model (None: none) and the warnings to answer with."""
        if not given:
            return self.defaults, ()
        schema = self._schema
        if schema is None:
            return None, (self._warning(list(given)),)
        resolved = schema.resolve(given)
        warnings = (self._warning(list(resolved.ignored)),) if resolved.ignored else ()
        return (resolved.values if self._passes else None), warnings

    def _warning(self, names: list[str]) -> str:
        self._log_new(names)
        return ignored_warning(names, self._schema)

    def _log_new(self, names: list[str]) -> None:
        room = MAX_LOGGED_NAMES - len(self._logged)
        new = [name for name in dict.fromkeys(names) if name not in self._logged][: max(room, 0)]
        if not new:
            return
        self._logged.update(new)
        logger.warning("model %s: %s", self._model, ignored_warning(new, self._schema))
        if len(self._logged) >= MAX_LOGGED_NAMES:
            logger.warning(
                "model %s: %d distinct unrecognized params logged; further ones are not",
                self._model,
                MAX_LOGGED_NAMES,
            )
