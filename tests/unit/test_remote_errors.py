"""An error a registry route answers with comes back from the HTTP client as the same
class with the same attributes, through real JSON."""

from __future__ import annotations

import orjson
import pytest

from modelport import errors
from modelport.remote.errors import error_from_answer
from modelport.server.http.errors import error_document, status_of

CASES = [
    errors.ModelNotFoundError("model 'x' does not exist", model="x"),
    errors.VersionNotFoundError("no version 9", model="x", version=9),
    errors.AliasInUseError("in use", model="x", version=1, aliases=("staging", "champion")),
    errors.GateFailedError(
        "holdout: accuracy",
        model="x",
        version=2,
        report={"exit_code": 1, "results": [{"gate": "holdout"}]},
    ),
    errors.StaleDeploymentError("moved", deployment="d", expected=3, found=4),
    errors.DeploymentNotFoundError("none", deployment="d"),
    errors.PermissionDeniedError("lacks deploy:x", scope="deploy:x", model="x"),
    errors.AuthenticationError("no key"),
    errors.RateLimitedError("slow down", retry_after=3, limit="key"),
    errors.InvalidFilterError("bad filter"),
    errors.InvalidInputError("bad", field="a", expected="float64", received="str"),
    errors.IntegrityError("differs", field="model/model.skops"),
    errors.UnsafeModelError("unsafe", offending=("os.system",), trustable=False),
    errors.SignatureVerificationError("unsigned", reason="unsigned", model="x", version=1),
    errors.UnsupportedOperationError("no registry here"),
]


@pytest.mark.parametrize("error", CASES, ids=lambda e: type(e).__name__)
def test_errors_round_trip_through_json(error: errors.ModelportError) -> None:
    status, _ = status_of(error)
    body = orjson.loads(orjson.dumps(error_document(error), default=str))
    rebuilt = error_from_answer(status, body, "http://registry")
    assert type(rebuilt) is type(error)
    assert vars(rebuilt) == vars(error)
    assert str(rebuilt) == str(error)


def test_an_answer_without_kind_falls_back_on_code_then_status() -> None:
    by_code = error_from_answer(404, {"error": "gone", "code": "MODEL_NOT_FOUND"}, "u")
    assert isinstance(by_code, errors.ModelNotFoundError)
    by_status = error_from_answer(409, {"error": "conflict"}, "u")
    assert type(by_status) is errors.ConflictError
    proxy = error_from_answer(502, "<html>bad gateway</html>", "u")
    assert isinstance(proxy, errors.StoreUnavailableError) and "502" in proxy.message
