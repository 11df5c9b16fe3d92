"""The CLI's printing: modelport's warnings as one line on stderr."""

from __future__ import annotations

import warnings

import pytest

from modelport.cli.output import warnings_on_stderr
from modelport.errors import MissingSignatureWarning


def test_modelport_warnings_become_warning_lines_and_others_show_as_usual(
    capsys: pytest.CaptureFixture[str], recwarn: pytest.WarningsRecorder
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        with warnings_on_stderr():
            warnings.warn(MissingSignatureWarning("no signature"), stacklevel=1)
            warnings.warn("something else", DeprecationWarning, stacklevel=1)
    assert capsys.readouterr().err == "warning: no signature\n"
    assert [(w.category, str(w.message)) for w in recwarn] == [
        (DeprecationWarning, "something else")  # handed back to Python's warning display
    ]


def warn_then_fail() -> None:
    with warnings_on_stderr():
        warnings.warn(MissingSignatureWarning("first"), stacklevel=1)
        raise RuntimeError("then a failure")


def test_warnings_are_printed_when_the_command_fails(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(RuntimeError):
        warn_then_fail()
    assert capsys.readouterr().err == "warning: first\n"
