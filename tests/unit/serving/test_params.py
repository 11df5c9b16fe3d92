"""Resolving a request's params for one served version: what the model gets, what the
client is told, and what the log says (once per name)."""

from __future__ import annotations

import logging

import pytest

from modelport.domain.params import ParamSchema, ParamSpec
from modelport.errors import InvalidParameterError
from modelport.serving.params import MAX_LOGGED_NAMES, ParamResolver

SCHEMA = ParamSchema((ParamSpec("scale", "double", 1.0),))


def test_a_model_that_takes_params_gets_defaults_and_converted_values() -> None:
    resolver = ParamResolver(SCHEMA, model="m", passes=True)
    assert resolver.defaults == {"scale": 1.0}
    assert resolver.resolve(None) == (SCHEMA.defaults, ())
    params, warnings = resolver.resolve({"scale": 2})
    assert params == {"scale": 2.0} and warnings == ()
    with pytest.raises(InvalidParameterError, match="'scale' expects double"):
        resolver.resolve({"scale": "x"})


def test_a_model_that_cannot_take_params_gets_none_after_the_check() -> None:
    resolver = ParamResolver(SCHEMA, model="m", passes=False)
    assert resolver.defaults is None
    assert resolver.resolve({"scale": 2}) == (None, ())
    with pytest.raises(InvalidParameterError):
        resolver.resolve({"scale": "x"})


def test_ignored_names_are_logged_once_each_and_the_log_is_bounded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="modelport.serving.params")
    resolver = ParamResolver(None, model="m", passes=False)
    for _ in range(3):
        params, warnings = resolver.resolve({"a": 1, "b": 2})
        assert params is None
        assert warnings[0].endswith("Ignoring provided params: ['a', 'b']")
    resolver.resolve({"b": 1, "c": 1})
    assert [r.getMessage().rsplit(": ", 1)[1] for r in caplog.records] == [
        "['a', 'b']",
        "['c']",
    ]
    caplog.clear()
    for i in range(2 * MAX_LOGGED_NAMES):
        resolver.resolve({f"name{i}": 1})
    assert len(caplog.records) == MAX_LOGGED_NAMES - 3 + 1  # the rest fit, then one notice
    assert "further ones are not" in caplog.records[-1].getMessage()
