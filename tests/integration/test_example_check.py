"""A registered version always predicts on its own input example: ``pd.DataFrame(X)``
(integer column labels) registers and predicts, and a version whose signature refuses
its example is not registered at all."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelport.domain.signature import ColumnSchema, ColumnSpec, Signature
from modelport.errors import PackageError
from modelport.package.options import PackageOptions
from modelport.registry.service import RegistryService

X = np.random.default_rng(11).normal(size=(40, 3))
Y = (X[:, 0] + X[:, 2] > 0).astype(int)


@pytest.mark.parametrize("accelerate", [False, True])
def test_a_frame_with_integer_labels_predicts_on_itself_and_its_example(
    registry: RegistryService, accelerate: bool
) -> None:
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame(X)  # columns 0, 1, 2
    model = LogisticRegression().fit(frame, Y)
    options = PackageOptions(sample_input=frame, accelerate=accelerate)
    version = registry.register(model, "unnamed", options)
    with registry.load(version.ref, accelerate=accelerate) as loaded:
        assert [c.name for c in loaded.signature.inputs.columns] == ["0", "1", "2"]  # type: ignore[union-attr]
        np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))
        example = loaded.input_example()
        np.testing.assert_array_equal(loaded.predict(example), model.predict(frame.head(5)))
        np.testing.assert_allclose(
            loaded.predict_proba(frame.rename(columns=str)), model.predict_proba(frame)
        )


def test_a_version_that_cannot_predict_on_its_example_is_not_registered(
    registry: RegistryService,
) -> None:
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    model = LogisticRegression().fit(frame, Y)
    wrong = Signature(ColumnSchema(tuple(ColumnSpec(n, "float64") for n in ("a", "b", "d"))))
    options = PackageOptions(sample_input=frame, signature=wrong)
    with pytest.raises(PackageError, match="does not accept its own input example") as raised:
        registry.register(model, "churn", options)
    assert "missing required column 'd'" in str(raised.value)
    assert registry.list_models() == []
    assert registry.artifacts.keys() == []
