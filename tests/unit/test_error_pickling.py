"""Errors cross process boundaries (batch workers on Dask and Ray send them back to the
driver): each comes back whole, of its class, with its fields."""

from __future__ import annotations

import pickle

from modelport.batch.scoring import BatchRowError
from modelport.errors import InvalidArgumentError, MissingDependencyError


def test_an_error_with_required_fields_comes_back_whole() -> None:
    error = BatchRowError("a.csv, row 7, column 'x': bad", file="a.csv", row=7, column="x")

    back = pickle.loads(pickle.dumps(error))

    assert type(back) is BatchRowError
    assert str(back) == "a.csv, row 7, column 'x': bad"
    assert (back.file, back.row, back.column, back.field) == ("a.csv", 7, "x", "x")
    assert back.to_dict() == error.to_dict()


def test_other_errors_keep_their_fields() -> None:
    missing = pickle.loads(pickle.dumps(MissingDependencyError("m", package="p", extra="e")))
    invalid = pickle.loads(pickle.dumps(InvalidArgumentError("bad", field="keep", model="m")))

    assert (missing.package, missing.extra, str(missing)) == ("p", "e", "m")
    assert (invalid.field, invalid.model, invalid.args) == ("keep", "m", ("bad",))
