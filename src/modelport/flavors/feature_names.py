"""Checking a sample's columns against the features a model was fitted on.

scikit-learn estimators fitted on a DataFrame remember its columns
(``feature_names_in_``) and refuse any other set with a ``ValueError`` ("Feature names
unseen at fit time"). A sample with another set of columns is a mistake in the sample
(a target column left in, pandas' index written to a CSV file, a column missing or out
of order), so it is refused before the model is asked, naming the columns and the fix.
"""

from __future__ import annotations

from typing import Any

from modelport.errors import InvalidSampleError

# How pandas names a column whose header is empty: "Unnamed: 0" for the first.
_UNNAMED = "Unnamed: "


def check_sample_columns(model: Any, sample: Any) -> None:
    """Refuse a DataFrame ``sample`` whose columns are not the ones ``model`` was fitted
    on (``InvalidSampleError``); anything else passes (the model decides)."""
    fitted = getattr(model, "feature_names_in_", None)
    columns = getattr(sample, "columns", None)
    if fitted is None or columns is None:
        return
    expected = [str(name) for name in fitted]
    given = [str(name) for name in columns]
    if given == expected:
        return
    extra = [name for name in given if name not in frozenset(expected)]
    missing = [name for name in expected if name not in frozenset(given)]
    if not extra and not missing:
        raise InvalidSampleError(
            "the sample's columns are in another order than the model was fitted on "
            f"({_names(expected)}); put them in that order (sample[model.feature_names_in_])",
            field="sample",
        )
    problems = []
    if extra:
        problems.append(f"columns the model was not fitted on: {_names(extra)}")
    if missing:
        problems.append(f"no column for the features {_names(missing)}")
    fix = "pass the model's input features only (without the target)"
    if any(name.startswith(_UNNAMED) for name in extra):
        fix += (
            f"; {_names([n for n in extra if n.startswith(_UNNAMED)])} is a column without "
            "a name, such as the row index pandas writes to a CSV file unless "
            "to_csv(..., index=False)"
        )
    raise InvalidSampleError(
        f"the sample does not match the model: it has {' and '.join(problems)}; {fix}",
        field="sample",
    )


def _names(names: list[str]) -> str:
    shown = ", ".join(repr(name) for name in names[:10])
    return shown + (f" and {len(names) - 10} more" if len(names) > 10 else "")
