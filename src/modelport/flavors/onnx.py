"""ONNX models: saved and imported as one ``model.onnx`` file, run with onnxruntime.

The graph declares its own signature (input and output names, element types and
shapes), so an ONNX model needs no sample. Classifiers converted by skl2onnx have a
label output and a probabilities output, named ``label`` / ``probabilities`` or, with
ZipMap, ``output_label`` / ``output_probability`` (a list of ``{class: p}`` dicts that
the predictor turns back into a 2-D array ordered by class).

Sessions come from the factory the accelerated graphs use (``flavors.onnx_runtime``): one
thread per call, no spinning. A model computes the same outputs with it (tree ensembles
up to the last float32 bits, which the default pool, sized by the machine, already let
vary); one large call uses one core, and the server's workers provide the parallelism.

Models whose tensors live in external data files are refused: the package holds the
one ``.onnx`` file, and external-data locations are paths the file chooses, a known
path-traversal route.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from modelport.domain.predictor import Batch, ModelPredictor
from modelport.domain.signature import Signature, TensorSchema, TensorSpec
from modelport.errors import (
    CorruptModelFileError,
    CorruptPackageError,
    InvalidArgumentError,
    InvalidInputError,
    UnsupportedOperationError,
)
from modelport.flavors.base import LoadContext, SaveContext, SavedFlavor
from modelport.flavors.dependencies import require
from modelport.flavors.frames import is_frame
from modelport.flavors.onnx_runtime import (
    cast_input,
    import_onnxruntime,
    input_dtypes,
    new_session,
    output_names,
)

_EXTRA = "onnx"
_FILE_NAME = "model.onnx"
_LABEL_NAMES = ("label", "output_label")
_PROBABILITY_NAMES = ("probabilities", "output_probability")

# ONNX TensorProto element types (fixed by the ONNX spec) -> signature dtype names.
_ELEM_TYPES = {
    1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64",
    8: "string", 9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64",
}  # fmt: skip


class OnnxFlavor:
    """ONNX ``ModelProto`` objects and ``.onnx`` files, run with onnxruntime on CPU."""

    @property
    def name(self) -> str:
        return "onnx"

    @property
    def framework(self) -> str:
        return "onnxruntime"

    @property
    def extra(self) -> str:
        return _EXTRA

    @property
    def suffixes(self) -> tuple[str, ...]:
        return (".onnx",)

    def owns(self, obj: Any) -> bool:
        """Whether ``obj`` is an ``onnx.ModelProto`` (checked by class, without importing onnx)."""
        return any(
            cls.__module__.split(".")[0] == "onnx" and cls.__name__ == "ModelProto"
            for cls in type(obj).__mro__
        )

    def reads(self, path: Path) -> bool:
        """Any existing ``.onnx`` file: ``import_file`` then says precisely what is wrong."""
        return path.suffix.lower() in self.suffixes and path.is_file()

    def save(self, obj: Any, directory: Path, context: SaveContext) -> SavedFlavor:
        """Check the live model and write it to ``model.onnx``."""
        onnx = require("onnx", extra=_EXTRA)
        _refuse_external_data(obj, "the ONNX model")
        try:
            onnx.checker.check_model(obj)
        except onnx.checker.ValidationError as exc:
            raise InvalidArgumentError(f"the ONNX model is not valid: {exc}") from None
        onnx.save_model(obj, str(directory / _FILE_NAME))
        return _saved(obj)

    def import_file(self, source: Path, directory: Path, context: SaveContext) -> SavedFlavor:
        """Parse and check ``source`` (without following external data), then copy it."""
        model = _read_model(source)
        shutil.copyfile(source, directory / _FILE_NAME)
        return _saved(model)

    def load(
        self, directory: Path, spec: Mapping[str, Any], context: LoadContext
    ) -> ModelPredictor:
        """Open an onnxruntime CPU session on the saved file (one thread per call, as
        every session: ``flavors.onnx_runtime`` says what that changes)."""
        ort = import_onnxruntime(_EXTRA)
        path = directory / str(spec.get("file", _FILE_NAME))
        try:
            session = new_session(ort, str(path))
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise CorruptModelFileError(f"onnxruntime cannot load {path.name}: {exc}") from None
        return OnnxPredictor(session, spec.get("label_output"), spec.get("probability_output"))


def _read_model(source: Path) -> Any:
    """The ModelProto in ``source``, checked; CorruptModelFileError when it is not one."""
    onnx = require("onnx", extra=_EXTRA)
    try:
        model = onnx.load(str(source), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise CorruptModelFileError(
            f"{source.name} is not a readable ONNX model (truncated or another format): {exc}"
        ) from None
    _refuse_external_data(model, source.name)
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise CorruptModelFileError(f"{source.name} is not a valid ONNX model: {exc}") from None
    return model


def _refuse_external_data(model: Any, what: str) -> None:
    external = [t.name or "<unnamed>" for t in _all_tensors(model.graph) if t.data_location == 1]
    if external:
        shown = ", ".join(repr(n) for n in external[:5])
        raise InvalidArgumentError(
            f"{what} keeps tensors in external data files ({shown}); modelport packages one "
            "self-contained .onnx file: re-save it with onnx.save_model(model, path, "
            "save_as_external_data=False) (models under 2 GB)"
        )


def _all_tensors(graph: Any) -> Iterator[Any]:
    """Every TensorProto in ``graph`` and its subgraphs (If / Loop / Scan bodies)."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            if attribute.HasField("g"):
                yield from _all_tensors(attribute.g)
            for subgraph in attribute.graphs:
                yield from _all_tensors(subgraph)


def _saved(model: Any) -> SavedFlavor:
    graph = model.graph
    outputs = [o.name for o in graph.output]
    label = next((name for name in outputs if name in _LABEL_NAMES), None)
    probability = next(
        (o.name for o in graph.output if o.name in _PROBABILITY_NAMES or _is_zipmap(o)), None
    )
    spec = {
        "file": _FILE_NAME,
        "inputs": [i.name for i in _graph_inputs(graph)],
        "outputs": outputs,
        "label_output": label,
        "probability_output": probability,
    }
    return SavedFlavor(spec=spec, libraries=("onnxruntime",), signature=_signature(graph))


def _graph_inputs(graph: Any) -> list[Any]:
    # Before IR version 4 initializers were also listed as inputs; they are not fed.
    initializers = {t.name for t in graph.initializer}
    return [i for i in graph.input if i.name not in initializers]


def _is_zipmap(value_info: Any) -> bool:
    if value_info.type.WhichOneof("value") != "sequence_type":
        return False
    return bool(value_info.type.sequence_type.elem_type.HasField("map_type"))


def _signature(graph: Any) -> Signature | None:
    """Inputs and outputs as declared by the graph; None when an input is not a plain tensor."""
    inputs = _tensor_schema(_graph_inputs(graph))
    if inputs is None:
        return None
    return Signature(inputs=inputs, outputs=_tensor_schema(list(graph.output)))


def _tensor_schema(values: list[Any]) -> TensorSchema | None:
    specs = [_tensor_spec(value) for value in values]
    tensors = tuple(spec for spec in specs if spec is not None)
    return TensorSchema(tensors) if tensors and len(tensors) == len(specs) else None


def _tensor_spec(value_info: Any) -> TensorSpec | None:
    if _is_zipmap(value_info):  # the predictor returns it as a (rows, classes) array
        value_type = value_info.type.sequence_type.elem_type.map_type.value_type
        dtype = _ELEM_TYPES.get(value_type.tensor_type.elem_type)
        return TensorSpec(value_info.name, dtype, (-1, -1)) if dtype else None
    if value_info.type.WhichOneof("value") != "tensor_type":
        return None
    tensor_type = value_info.type.tensor_type
    dtype = _ELEM_TYPES.get(tensor_type.elem_type)
    if dtype is None or not tensor_type.HasField("shape"):
        return None
    # Symbolic (dim_param) and unknown dimensions are "any size".
    shape = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tensor_type.shape.dim)
    return TensorSpec(value_info.name, dtype, shape)


class OnnxPredictor:
    """Feeds batches to an onnxruntime session and returns the label (or first) output."""

    def __init__(self, session: Any, label: str | None, probability: str | None) -> None:
        self._session = session
        self._inputs = input_dtypes(session)
        names = output_names(session)
        for wanted in (label, probability):
            if wanted is not None and wanted not in names:
                raise CorruptPackageError(f"the ONNX model has no output {wanted!r}")
        self._prediction = label if label is not None else names[0]
        self._probability = probability

    @property
    def supports_proba(self) -> bool:
        return self._probability is not None

    def predict(self, batch: Batch) -> Batch:
        """The label output for classifiers, else the first output, as an ndarray."""
        (result,) = self._session.run([self._prediction], self._feed(batch))
        return np.asarray(result)

    def predict_proba(self, batch: Batch) -> Batch:
        """Class probabilities as a (rows, classes) array, classes in sorted order."""
        if self._probability is None:
            raise UnsupportedOperationError("this ONNX model has no probabilities output")
        (result,) = self._session.run([self._probability], self._feed(batch))
        return _probability_matrix(result)

    def close(self) -> None:
        """Drop the session; onnxruntime frees it when it is garbage collected."""
        self._session = None

    def _feed(self, batch: Batch) -> dict[str, Any]:
        if isinstance(batch, Mapping):
            missing = [name for name, _ in self._inputs if name not in batch]
            if missing:
                raise InvalidInputError(
                    f"missing input tensor {missing[0]!r}",
                    field=missing[0],
                    received="no such tensor",
                )
            return {name: cast_input(batch[name], dtype, name) for name, dtype in self._inputs}
        if is_frame(batch) and len(self._inputs) > 1:
            return {name: _column(batch, name, dtype) for name, dtype in self._inputs}
        if len(self._inputs) > 1:
            names = ", ".join(repr(name) for name, _ in self._inputs)
            raise InvalidInputError(
                f"the ONNX model takes the inputs {names}: pass a mapping of name to array "
                "or a DataFrame with those columns",
                expected="mapping of input name to array",
                received=type(batch).__name__,
            )
        name, dtype = self._inputs[0]
        if is_frame(batch):
            batch = batch.to_numpy()
        return {name: cast_input(batch, dtype, name)}


def _column(frame: Any, name: str, dtype: Any) -> np.ndarray:
    """One DataFrame column as the (rows, 1) tensor skl2onnx's per-column inputs take."""
    if name not in frame.columns:
        raise InvalidInputError(
            f"missing column {name!r}: the ONNX model takes one input per column",
            field=name,
            received="no such column",
        )
    return cast_input(frame[name].to_numpy(dtype=dtype), dtype, name).reshape(-1, 1)


def _probability_matrix(result: Any) -> np.ndarray:
    """ZipMap's list of ``{class: p}`` dicts -> a 2-D array; tensors pass through."""
    if isinstance(result, list):
        if not result:
            return np.empty((0, 0), dtype=np.float32)
        classes = sorted(result[0])
        return np.array([[row[c] for c in classes] for row in result], dtype=np.float32)
    return np.asarray(result)
