"""Id columns in a signature: stored, read back, checked; old signatures read as before."""

from __future__ import annotations

import pytest

from modelport.domain.signature import ColumnSchema, ColumnSpec, Signature
from modelport.errors import InvalidArgumentError

SIGNATURE = Signature(ColumnSchema((ColumnSpec("age", "int64"), ColumnSpec("plan", "string"))))


def test_id_columns_round_trip_and_old_signatures_have_none() -> None:
    marked = SIGNATURE.with_id_columns(["customer_id", "account"])
    data = marked.to_dict()
    assert data["id_columns"] == ["customer_id", "account"]
    assert Signature.from_dict(data) == marked
    assert "id_columns" not in SIGNATURE.to_dict()  # packages without ids are unchanged
    assert Signature.from_dict(SIGNATURE.to_dict()).id_columns == ()


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["age"], "id column 'age' is also an input of the model"),
        (["x", "x"], "id column 'x' is given twice"),
        ([""], "is not a column name"),
    ],
)
def test_bad_id_columns_are_refused(names: list[str], message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message) as info:
        SIGNATURE.with_id_columns(names)
    assert info.value.field == "id_columns"
