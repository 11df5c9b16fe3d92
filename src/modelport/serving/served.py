"""One model version ready to serve: its wire description, input binding, runner and batcher.

``ServedModel`` is the innermost ``InferenceTarget`` (``serving.target``): it binds a
request's inputs to its own signature, checks the outputs asked for, and waits for its
rows' share of a batch.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from modelport.config import BatchingSettings
from modelport.domain.predictor import accepts_params
from modelport.errors import InvalidInputError, InvalidRequestError, ModelportError
from modelport.package.loaded import LoadedModel
from modelport.serving.batch_observer import BatchObserver
from modelport.serving.batcher import Batcher
from modelport.serving.binding import Bound, InputBinder, Tensor
from modelport.serving.ids import split_ids
from modelport.serving.interface import PROBABILITIES, IOSpec, ModelIO
from modelport.serving.params import ParamResolver
from modelport.serving.runner import ModelRunner
from modelport.serving.sources import ModelSource
from modelport.serving.target import InferenceRequest, InferenceResult

_WARM_ROUNDS = 3


@dataclass(frozen=True)
class ServeOptions:
    """The server settings a served model needs."""

    batching: BatchingSettings
    allow_non_finite: bool = False
    allow_signature_change: bool = False  # switch to versions that break current clients


class ServedModel:
    """A loaded, warmed model version and the only way requests reach it."""

    def __init__(
        self,
        source: ModelSource,
        loaded: LoadedModel,
        version: int | None,
        options: ServeOptions,
    ) -> None:
        self.source = source
        self.name = source.name
        self.version = version
        self.loaded = loaded
        self.runtime = loaded.runtime
        self.io = ModelIO.from_signature(
            loaded.signature, supports_proba=loaded.supports_proba, n_classes=None
        )
        self.binder = InputBinder(self.io, allow_non_finite=options.allow_non_finite)
        signature = loaded.signature
        self.id_columns = signature.id_columns if signature is not None else ()
        self._id_names = frozenset(self.id_columns)
        self._runner = ModelRunner(loaded, self.io)
        self.params = ParamResolver(
            signature.params if signature is not None else None,
            model=self.name,
            passes=accepts_params(loaded.predictor),
        )
        self._all_outputs = tuple(spec.name for spec in self.io.outputs)
        # The batcher takes frozensets; the common requests reuse one made here.
        self._wanted: dict[tuple[str, ...], frozenset[str]] = {
            (name,): frozenset({name}) for name in self._all_outputs
        }
        self._wanted[self._all_outputs] = frozenset(self._all_outputs)
        self._options = options
        # The reference statistics drift compares with (set by the runtime as it loads
        # the version: recomputed ones are preferred to the package's; None: none).
        self.reference_stats: dict[str, Any] | None = None
        self._seconds: float | None = None
        self.batcher: Batcher | None = None
        # Requests that picked this version and have not finished with it: a retiring
        # version waits for them, so a swap never fails a request caught half-way.
        self._holders = 0
        self._released: asyncio.Event | None = None

    @property
    def options(self) -> ServeOptions:
        """The settings this version is served with."""
        return self._options

    @property
    def platform(self) -> str:
        """V2's informational ``<project>_<format>``: the flavor, and the runtime when
        another one runs it (``sklearn_onnxruntime``)."""
        flavor, runtime = self.loaded.flavor, self.runtime
        return f"{flavor}_{runtime}" if runtime != flavor else flavor

    @property
    def version_label(self) -> str:
        """The version as V2 reports it ("" for an unversioned package)."""
        return str(self.version) if self.version is not None else ""

    def warm(self) -> None:
        """Run the package's input example through the same path requests take, so the
        first request pays no start-up cost and the batcher knows how fast the model is.
        Raises if the model cannot answer its own example."""
        bound = self._example()
        if bound is None:
            return
        outputs = frozenset(spec.name for spec in self.io.outputs)
        timings = []
        for _ in range(_WARM_ROUNDS):
            started = time.perf_counter()
            result = self._runner(bound.batch, outputs, self.params.defaults)
            timings.append(time.perf_counter() - started)
        self._seconds = min(timings)
        self._learn_classes(result)

    def start(self, observer: BatchObserver) -> None:
        """Start batching (on the server's event loop)."""
        self.batcher = Batcher(
            self._runner,
            self._options.batching,
            name=self.name,
            observer=observer,
            expected_seconds=self._seconds,
        )
        self.batcher.start()

    async def infer(self, request: InferenceRequest) -> InferenceResult:
        """Bind the request's inputs and resolve its params, then predict the requested
        outputs for its rows."""
        assert self.batcher is not None, "start() the model before serving it"
        inputs, ids = request.inputs, None
        if self._id_names:
            inputs, ids = split_ids(inputs, self._id_names)
        bound = self.binder.bind(inputs)
        if ids:
            self._check_ids(ids, bound.rows)
        names = self._all_outputs if request.outputs is None else self._checked(request.outputs)
        wanted = self._wanted.get(names) or frozenset(names)
        warnings: tuple[str, ...] = ()
        if request.params is None:
            params = self.params.defaults
        else:
            params, warnings = self.params.resolve(request.params)
        outputs = await self.batcher.submit(
            bound.batch, bound.rows, wanted, request.deadline, params
        )
        if len(names) > 1:  # in the order asked for
            outputs = {name: outputs[name] for name in names}
        return InferenceResult(
            outputs, self.name, self.version, bound.rows, self.io, bound, warnings, ids or None
        )

    def _check_ids(self, ids: dict[str, np.ndarray], rows: int) -> None:
        for name, values in ids.items():
            if len(values) != rows:
                raise InvalidInputError(
                    f"id column {name!r} has {len(values)} values for {rows} rows",
                    field=name,
                    expected=f"{rows} values",
                    received=f"{len(values)} values",
                )

    def _checked(self, names: tuple[str, ...]) -> tuple[str, ...]:
        for name in names:
            if self.io.output(name) is None:
                known = ", ".join(spec.name for spec in self.io.outputs)
                raise InvalidRequestError(
                    f"unknown output {name!r}; the model's outputs are {known}", field=name
                )
        return names

    def acquire(self) -> None:
        """Keep this version serving until ``release`` (call it right after picking the
        version, with no ``await`` between, so a swap cannot retire it in between)."""
        self._holders += 1

    def release(self) -> None:
        """End an ``acquire``."""
        self._holders -= 1
        if self._holders == 0 and self._released is not None:
            self._released.set()

    async def retire(self) -> None:
        """Wait for the requests holding this version, finish the queued ones, then
        release the model."""
        if self._holders:
            self._released = asyncio.Event()
            await self._released.wait()
        if self.batcher is not None:
            await self.batcher.close()
        self.loaded.close()

    def metadata(self) -> dict[str, Any]:
        """The V2 model metadata response."""
        data: dict[str, Any] = {
            "name": self.name,
            "platform": self.platform,
            # Id columns are optional inputs: accepted, logged and returned, never predicted on.
            "inputs": [spec.to_dict() for spec in self.io.inputs]
            + [{"name": name, "datatype": "BYTES", "shape": [-1]} for name in self.id_columns],
            "outputs": [spec.to_dict() for spec in self.io.outputs],
        }
        if self.version is not None:
            data["versions"] = [self.version_label]
        signature = self.loaded.signature
        if signature is not None and signature.params:
            # Not in the Open Inference Protocol's metadata (clients ignore unknown keys);
            # keyed by name like a request's ``parameters``, as MLServer's metadata is.
            data["parameters"] = {
                spec.name: {k: v for k, v in spec.to_dict().items() if k != "name"}
                for spec in signature.params.params
            }
        return data

    def _example(self) -> Bound | None:
        manifest = self.loaded.manifest
        if manifest.input_example is None:
            return None
        path = self.loaded.directory / manifest.input_example
        data = json.loads(path.read_text(encoding="utf-8"))
        if data["format"] == "dataframe_split":
            # pandas writes a frame's default integer labels as JSON numbers; the
            # signature names those columns "0", "1", ... (as MLflow's decoder does too).
            columns = [str(name) for name in data["columns"]]
            rows = np.array(data["data"], dtype=object).reshape(-1, len(columns))
            return self.binder.bind_table(columns, rows)
        tensors = {
            name: Tensor(np.asarray(t["data"], dtype=_example_dtype(t["dtype"])))
            for name, t in data["tensors"].items()
        }
        return self.binder.bind_named(tensors)

    def _learn_classes(self, result: dict[str, np.ndarray]) -> None:
        probabilities = result.get(PROBABILITIES)
        spec = self.io.output(PROBABILITIES)
        if probabilities is None or spec is None or probabilities.ndim != 2:
            return
        shaped = IOSpec(PROBABILITIES, spec.datatype, (-1, int(probabilities.shape[1])))
        outputs = tuple(shaped if s.name == PROBABILITIES else s for s in self.io.outputs)
        self.io = replace(self.io, outputs=outputs)


def _example_dtype(dtype: str) -> Any:
    return "float64" if np.dtype(dtype).kind == "f" else (object if dtype == "object" else dtype)


def describe_failure(exc: BaseException) -> str:
    """One line for logs and readiness reports."""
    if isinstance(exc, ModelportError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"
