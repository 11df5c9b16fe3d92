"""Every exception modelport raises, and nothing else.

Each class has one meaning and carries structured fields (``model``, ``version``,
``field``) so that callers, the HTTP layer and the CLI can act on them without
parsing messages. ``code`` is a stable identifier used on the wire::

    ModelportError
    ├── InvalidArgumentError            the caller passed something unusable
    │   ├── InvalidNameError            a model or alias name breaks the naming rules
    │   ├── InvalidReferenceError       a model reference cannot be parsed
    │   ├── InvalidFilterError          a search filter cannot be parsed
    │   ├── InvalidSampleError          a sample input is empty or of an unknown kind
    │   ├── InvalidInputError           a batch does not match the model's signature
    │   │   └── InvalidParameterError   an inference parameter does not match its declaration
    │   ├── InvalidRequestError         a request body or header breaks its protocol
    │   ├── PayloadTooLargeError        a request body is over the size limit
    │   └── UnsupportedMediaTypeError   a request's content type is not one the route reads
    ├── NotFoundError
    │   ├── ModelNotFoundError
    │   ├── VersionNotFoundError
    │   ├── AliasNotFoundError
    │   └── DeploymentNotFoundError     no deployment has this name
    ├── ConflictError
    │   ├── AliasInUseError             a version still has aliases or stages pointing at it
    │   ├── MissingSignatureError       production refuses a version without a signature
    │   ├── PackageExistsError          a package would overwrite a non-empty directory
    │   ├── StaleDeploymentError        a deployment changed since the caller read it
    │   ├── GateFailedError             a promotion gate refused the version
    │   └── SignatureVerificationError  a model signature is missing, broken or untrusted
    ├── UnknownFlavorError              no flavor handles this object, file or name
    ├── UnsupportedOperationError       the model cannot do this (predict_proba, ...)
    │   └── AccuracyLossError           an exported graph strays from the native model
    ├── UnavailableError                the server cannot serve this now; retry later
    │   ├── ModelNotReadyError          the model is loading, swapping or failed to load
    │   └── OverloadedError             the model's queue is full
    ├── DeadlineExceededError           the request's deadline passed before it was answered
    ├── AuthenticationError             no usable API key (missing, bad, revoked, expired)
    ├── PermissionDeniedError           the API key lacks the scope this request needs
    ├── RateLimitedError                a key's or model's rate limit or daily quota is spent
    ├── ModelExecutionError             the model's own code failed on valid input
    ├── MissingDependencyError          an optional extra is not installed
    ├── ImageBuildError                 no container engine, or its image build failed
    ├── PackageError                    a model package cannot be used
    │   ├── MissingStatisticsError      reference statistics a drift test needs are missing
    │   ├── CorruptPackageError         modelport.yaml is missing or malformed
    │   ├── CorruptModelFileError       a model file cannot be parsed (truncated, wrong format)
    │   ├── IntegrityError              a file does not match its recorded digest
    │   ├── UnsafeModelError            a file references code outside the allow-list
    │   └── EnvironmentMismatchError    installed library versions differ from the recorded ones
    └── StoreError
        ├── StoreUnavailableError       the metadata database or artifact store cannot be reached
        └── SchemaMismatchError         the database schema is not the one this release expects

    ModelportWarning (a UserWarning)
    ├── EnvironmentMismatchWarning      library versions differ, loaded anyway
    ├── MissingSignatureWarning         an alias or staging points at a version without one
    ├── ParamsIgnoredWarning            declared inference parameters the model cannot receive
    ├── AccuracyLossWarning             an export beyond its tolerance was written as asked
    └── QuantizationSkippedWarning      an export asked for quantization had nothing to quantize
"""

from __future__ import annotations

from typing import Any


class ModelportError(Exception):
    """Base of every modelport error."""

    code = "MODELPORT_ERROR"

    def __init__(
        self,
        message: str,
        *,
        model: str | None = None,
        version: int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.model = model
        self.version = version
        self.field = field

    def __reduce__(self) -> tuple[Any, ...]:
        # Errors cross process boundaries (batch workers on Dask or Ray send them back to
        # the driver). Exception's own pickling calls ``cls(*args)``, which fails for the
        # subclasses whose fields are required keywords; rebuild from the attributes.
        return (_rebuild_error, (type(self), self.args, self.__dict__))

    def to_dict(self) -> dict[str, Any]:
        """The error as JSON-ready data: code, message and the structured fields that are set."""
        data: dict[str, Any] = {"code": self.code, "message": self.message}
        for key in ("model", "version", "field"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        return data


def _rebuild_error(
    cls: type[ModelportError], args: tuple[Any, ...], state: dict[str, Any]
) -> ModelportError:
    """An unpickled error: its arguments and attributes as they were, ``__init__`` not run."""
    error = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    return error


class InvalidArgumentError(ModelportError):
    """The caller passed an argument modelport cannot use."""

    code = "INVALID_ARGUMENT"


class InvalidNameError(InvalidArgumentError):
    """A model or alias name breaks the naming rules."""

    code = "INVALID_NAME"


class InvalidReferenceError(InvalidArgumentError):
    """A model reference such as ``models:/churn@production`` cannot be parsed."""

    code = "INVALID_REFERENCE"


class InvalidFilterError(InvalidArgumentError):
    """A search filter such as ``metrics.auc > 0.9`` cannot be parsed."""

    code = "INVALID_FILTER"


class InvalidSampleError(InvalidArgumentError):
    """A sample input is empty or not a kind of data modelport understands."""

    code = "INVALID_SAMPLE"


class InvalidInputError(InvalidArgumentError):
    """A batch does not match the model's input signature.

    ``field`` names the column or tensor; ``expected`` and ``received`` say what
    the signature wants and what came.
    """

    code = "INVALID_INPUT"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        expected: str | None = None,
        received: str | None = None,
        model: str | None = None,
        version: int | None = None,
    ) -> None:
        super().__init__(message, model=model, version=version, field=field)
        self.expected = expected
        self.received = received

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        for key in ("expected", "received"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        return data


class InvalidParameterError(InvalidInputError):
    """An inference parameter (MLflow's ``params``) does not fit what the signature
    declares, or a parameter declaration is itself invalid.

    ``field`` names the parameter; ``expected`` and ``received`` say what the signature
    declares and what came.
    """

    code = "INVALID_PARAMETER"


class NotFoundError(ModelportError):
    """Something that was asked for does not exist."""

    code = "NOT_FOUND"


class ModelNotFoundError(NotFoundError):
    """No registered model has this name."""

    code = "MODEL_NOT_FOUND"


class VersionNotFoundError(NotFoundError):
    """The model exists but has no such version."""

    code = "VERSION_NOT_FOUND"


class AliasNotFoundError(NotFoundError):
    """The model exists but no alias or stage of this name points at a version."""

    code = "ALIAS_NOT_FOUND"


class DeploymentNotFoundError(NotFoundError):
    """No deployment has this name."""

    code = "DEPLOYMENT_NOT_FOUND"

    def __init__(self, message: str, *, deployment: str) -> None:
        super().__init__(message)
        self.deployment = deployment

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "deployment": self.deployment}


class ConflictError(ModelportError):
    """The request conflicts with what is stored."""

    code = "CONFLICT"


class AliasInUseError(ConflictError):
    """A version cannot be deleted or archived while aliases or stages point at it."""

    code = "ALIAS_IN_USE"

    def __init__(self, message: str, *, model: str, version: int, aliases: tuple[str, ...]) -> None:
        super().__init__(message, model=model, version=version)
        self.aliases = aliases

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "aliases": list(self.aliases)}


class MissingSignatureError(ConflictError):
    """Production was refused a version that has no signature (nothing would check its
    inputs); register it with a sample input, or force the promotion."""

    code = "MISSING_SIGNATURE"

    def __init__(self, message: str, *, model: str, version: int) -> None:
        super().__init__(message, model=model, version=version)


class PackageExistsError(ConflictError):
    """Saving a package would overwrite a directory that is not empty."""

    code = "PACKAGE_EXISTS"


class StaleDeploymentError(ConflictError):
    """A deployment changed (its revision moved) between the caller reading it and writing
    it back: read it again and retry."""

    code = "STALE_DEPLOYMENT"

    def __init__(self, message: str, *, deployment: str, expected: int, found: int) -> None:
        super().__init__(message)
        self.deployment = deployment
        self.expected = expected
        self.found = found

    def to_dict(self) -> dict[str, Any]:
        return {
            **super().to_dict(),
            "deployment": self.deployment,
            "expected_revision": self.expected,
            "revision": self.found,
        }


class GateFailedError(ConflictError):
    """A promotion gate refused the version; ``report`` holds every gate with its numbers
    (``domain.gates.GateReport.to_dict()``)."""

    code = "GATE_FAILED"

    def __init__(self, message: str, *, model: str, version: int, report: dict[str, Any]) -> None:
        super().__init__(message, model=model, version=version)
        self.report = report

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "report": self.report}


class SignatureVerificationError(ConflictError):
    """A model signature does not hold: the version or package is unsigned, a file differs
    from what was signed, or no trusted public key made the signature. ``field`` names the
    file or signature that failed; ``reason`` is ``unsigned``, ``tampered``, ``untrusted``
    or ``unreadable``. Raised where signed models are required (a stage or alias in
    ``[signing] require_signed``) and by ``modelport version verify``."""

    code = "SIGNATURE_VERIFICATION_FAILED"

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        model: str | None = None,
        version: int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message, model=model, version=version, field=field)
        self.reason = reason

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "reason": self.reason}


class UnknownFlavorError(ModelportError):
    """No flavor handles this model object, file or flavor name."""

    code = "UNKNOWN_FLAVOR"

    def __init__(self, message: str, *, known: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.known = known


class UnsupportedOperationError(ModelportError):
    """The model does not support the operation, e.g. ``predict_proba`` on a regressor."""

    code = "UNSUPPORTED_OPERATION"


class AccuracyLossError(UnsupportedOperationError):
    """An exported graph (quantized, usually) answers too differently from the native
    model on the check rows; ``accuracy`` holds the numbers and their limits."""

    code = "ACCURACY_LOSS"

    def __init__(
        self,
        message: str,
        *,
        accuracy: dict[str, Any],
        model: str | None = None,
        version: int | None = None,
    ) -> None:
        super().__init__(message, model=model, version=version, field="tolerance")
        self.accuracy = accuracy

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "accuracy": self.accuracy}


class InvalidRequestError(InvalidArgumentError):
    """A request body, header or parameter breaks the protocol it was sent in."""

    code = "INVALID_REQUEST"


class PayloadTooLargeError(InvalidArgumentError):
    """A request body (or what it decompresses to) is over the size limit."""

    code = "PAYLOAD_TOO_LARGE"


class UnsupportedMediaTypeError(InvalidArgumentError):
    """A request's content type (or its parameters) is not one this route reads."""

    code = "UNSUPPORTED_MEDIA_TYPE"


class UnavailableError(ModelportError):
    """The server cannot serve the request now; ``retry_after`` says when to try again."""

    code = "UNAVAILABLE"

    def __init__(
        self,
        message: str,
        *,
        retry_after: int = 1,
        model: str | None = None,
        version: int | None = None,
    ) -> None:
        super().__init__(message, model=model, version=version)
        self.retry_after = retry_after


class ModelNotReadyError(UnavailableError):
    """The model is still loading or swapping, or failed to load."""

    code = "MODEL_NOT_READY"


class OverloadedError(UnavailableError):
    """The model's queue is full: the request is refused at once rather than queued."""

    code = "OVERLOADED"


class DeadlineExceededError(ModelportError):
    """The request's deadline passed before it could be answered."""

    code = "DEADLINE_EXCEEDED"


class AuthenticationError(ModelportError):
    """The request carries no usable API key: none, malformed, unknown, revoked or expired.

    The message never says which of these it was beyond what the caller already knows
    (a caller must not learn which key ids exist)."""

    code = "UNAUTHENTICATED"


class PermissionDeniedError(ModelportError):
    """The API key is valid but lacks ``scope``, the scope this request needs."""

    code = "PERMISSION_DENIED"

    def __init__(self, message: str, *, scope: str, model: str | None = None) -> None:
        super().__init__(message, model=model)
        self.scope = scope


class RateLimitedError(ModelportError):
    """A rate limit or quota is spent; ``retry_after`` (seconds) says when to try again,
    ``limit`` which one (``key``, ``model``, ``quota``, ``auth``)."""

    code = "RATE_LIMITED"

    def __init__(
        self, message: str, *, retry_after: int, limit: str, model: str | None = None
    ) -> None:
        super().__init__(message, model=model)
        self.retry_after = retry_after
        self.limit = limit


class ModelExecutionError(ModelportError):
    """The model's own code raised on input that passed validation."""

    code = "MODEL_EXECUTION_ERROR"


class MissingDependencyError(ModelportError):
    """An optional dependency is missing; the message names the ``pip install`` line."""

    code = "MISSING_DEPENDENCY"

    def __init__(self, message: str, *, package: str, extra: str) -> None:
        super().__init__(message)
        self.package = package
        self.extra = extra


class ImageBuildError(ModelportError):
    """``modelport build --build`` found no container engine, or the engine's build failed."""

    code = "IMAGE_BUILD_FAILED"


class PackageError(ModelportError):
    """A model package cannot be used."""

    code = "PACKAGE_ERROR"


class MissingStatisticsError(PackageError):
    """A package lacks the reference statistics a drift test needs (none were computed,
    or they predate the fields the test reads)."""

    code = "MISSING_STATISTICS"


class CorruptPackageError(PackageError):
    """The package's ``modelport.yaml`` is missing, unreadable or malformed."""

    code = "CORRUPT_PACKAGE"


class CorruptModelFileError(PackageError):
    """A model file cannot be parsed: truncated, empty or not of the format it claims."""

    code = "CORRUPT_MODEL_FILE"


class IntegrityError(PackageError):
    """A file is missing, unexpected or does not match its recorded sha256; ``field`` names it."""

    code = "INTEGRITY_ERROR"


class UnsafeModelError(PackageError):
    """A model file references code outside the allow-list; ``offending`` lists what, and
    ``trustable`` says whether trusting those names (``trust=``, ``--trust``) lets it load."""

    code = "UNSAFE_MODEL"

    def __init__(
        self,
        message: str,
        *,
        offending: tuple[str, ...],
        field: str | None = None,
        trustable: bool = False,
    ):
        super().__init__(message, field=field)
        self.offending = offending
        self.trustable = trustable

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "offending": list(self.offending)}


class EnvironmentMismatchError(PackageError):
    """Installed library versions differ from those the model was saved with."""

    code = "ENVIRONMENT_MISMATCH"

    def __init__(self, message: str, *, differences: tuple[str, ...]) -> None:
        super().__init__(message)
        self.differences = differences


class StoreError(ModelportError):
    """A storage back end failed."""

    code = "STORE_ERROR"


class StoreUnavailableError(StoreError):
    """The metadata database or the artifact store cannot be reached."""

    code = "STORE_UNAVAILABLE"


class SchemaMismatchError(StoreError):
    """The database schema is older or newer than this release expects; the message says what
    to do."""

    code = "SCHEMA_MISMATCH"


class ModelportWarning(UserWarning):
    """Base of every warning modelport emits; the CLI prints them as ``warning: ...``."""


class EnvironmentMismatchWarning(ModelportWarning):
    """A model was loaded although its framework's version differs (``version_check='warn'``)."""


class MissingSignatureWarning(ModelportWarning):
    """An alias or the staging stage now points at a version without a signature (it
    would be refused in production unless forced)."""

    def __init__(self, message: str, *, model: str | None = None, version: int | None = None):
        super().__init__(message)
        self.model = model
        self.version = version


class ParamsIgnoredWarning(ModelportWarning):
    """A signature declares inference parameters for a model that cannot receive them
    (its flavor's predict takes no ``params``): requests' params are type-checked, then
    not passed to the model."""


class AccuracyLossWarning(ModelportWarning):
    """An exported graph answers beyond the tolerance, and was written anyway because the
    caller allowed it (``allow_accuracy_loss``, ``--allow-accuracy-loss``)."""


class QuantizationSkippedWarning(ModelportWarning):
    """Quantization was asked for and the graph has no weights it applies to (a tree
    ensemble, a linear model's ``ai.onnx.ml`` operator): it is exported unquantized."""
