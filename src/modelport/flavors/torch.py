"""PyTorch models: exported with ``torch.export`` (``model.pt2``) or TorchScript (``model.pt``).

A live ``nn.Module`` is exported with its sample as the example input, in eval mode,
with a dynamic batch dimension (every other dimension is fixed to the sample's). The
sample may be float64 numpy while the parameters are float32: floating examples are
cast to the parameters' dtype, which is recorded so that floating inputs are cast the
same way at predict time.

Plain ``torch.save`` checkpoints are never imported, and ``.pt2`` archives are checked
before ``torch.export.load`` reads them: ``modelport.flavors.torch_archive`` says why.

TorchScript is deprecated in torch 2.13 but still the only way to run ``.pt`` files;
its DeprecationWarnings are silenced around the calls that need it (``catch_warnings``
changes process-wide filters, so another thread may briefly see them silenced too).
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from modelport.domain.predictor import Batch, ModelPredictor
from modelport.domain.signature import (
    TENSOR_DTYPES,
    Signature,
    TensorSchema,
    TensorSpec,
    tensor_schema_of,
)
from modelport.errors import (
    CorruptModelFileError,
    CorruptPackageError,
    InvalidArgumentError,
    InvalidInputError,
    InvalidSampleError,
    UnsupportedOperationError,
)
from modelport.flavors.base import LoadContext, SaveContext, SavedFlavor
from modelport.flavors.dependencies import require
from modelport.flavors.frames import is_frame
from modelport.flavors.torch_archive import check_export_archive, check_script_archive

_EXTRA = "torch"
_EXPORT_FILE = "model.pt2"
_SCRIPT_FILE = "model.pt"


class TorchFlavor:
    """``nn.Module``, ``ExportedProgram`` and ``ScriptModule`` objects; ``.pt2``/``.pt`` files."""

    @property
    def name(self) -> str:
        return "torch"

    @property
    def framework(self) -> str:
        return "torch"

    @property
    def extra(self) -> str:
        return _EXTRA

    @property
    def suffixes(self) -> tuple[str, ...]:
        return (".pt", ".pth", ".pt2")

    def owns(self, obj: Any) -> bool:
        """Whether ``obj`` is an ``nn.Module`` or an ``ExportedProgram`` (checked by class name)."""
        return any(
            (cls.__module__, cls.__qualname__)
            in {
                ("torch.nn.modules.module", "Module"),
                ("torch.export.exported_program", "ExportedProgram"),
            }
            for cls in type(obj).__mro__
        )

    def reads(self, path: Path) -> bool:
        """Any existing file with a torch suffix: ``import_file`` explains what it refuses."""
        return path.suffix.lower() in self.suffixes and path.is_file()

    def save(self, obj: Any, directory: Path, context: SaveContext) -> SavedFlavor:
        """Write a ScriptModule as TorchScript, anything else as a torch.export archive."""
        torch = require("torch", extra=_EXTRA)
        if isinstance(obj, torch.jit.ScriptModule):
            with _torchscript_allowed():
                torch.jit.save(obj, str(directory / _SCRIPT_FILE))
            return _script_saved(obj, context.sample)
        program = obj if isinstance(obj, torch.export.ExportedProgram) else _export(obj, context)
        torch.export.save(program, str(directory / _EXPORT_FILE))
        return _program_saved(program, context.sample)

    def import_file(self, source: Path, directory: Path, context: SaveContext) -> SavedFlavor:
        """Check ``source`` (TorchScript ``.pt``/``.pth`` or torch.export ``.pt2``) and copy it."""
        if source.suffix.lower() == ".pt2":
            program = _load_program(source)
            shutil.copyfile(source, directory / _EXPORT_FILE)
            return _program_saved(program, context.sample)
        module = _load_script(source)
        shutil.copyfile(source, directory / _SCRIPT_FILE)
        return _script_saved(module, context.sample)

    def load(
        self, directory: Path, spec: Mapping[str, Any], context: LoadContext
    ) -> ModelPredictor:
        """Load the saved program or TorchScript module for CPU inference."""
        torch = require("torch", extra=_EXTRA)
        kind = spec.get("format")
        if kind == "export":
            module = _load_program(directory / str(spec.get("file", _EXPORT_FILE))).module()
        elif kind == "torchscript":
            module = _load_script(directory / str(spec.get("file", _SCRIPT_FILE))).eval()
        else:
            raise CorruptPackageError(
                f"unknown torch format {kind!r}; expected export or torchscript"
            )
        dtype = getattr(torch, str(spec.get("float_dtype", "float32")), None)
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise CorruptPackageError(f"unknown torch float dtype {spec.get('float_dtype')!r}")
        positional, keyword = list(spec.get("positional", [])), list(spec.get("keyword", []))
        return TorchPredictor(module, dtype, positional, keyword)


# ----------------------------------------------------------------------------- saving


def _export(module: Any, context: SaveContext) -> Any:
    """``torch.export`` the module with the sample as example input and a dynamic batch."""
    torch = require("torch", extra=_EXTRA)
    if context.sample is None:
        raise InvalidSampleError(
            "saving a torch nn.Module needs a sample input: torch.export traces the module "
            "with an example batch (pass sample=...), or pass a torch.export.ExportedProgram"
        )
    args, kwargs = _example_inputs(context.sample, _parameter_dtype(module))
    batch = torch.export.Dim("batch")
    dynamic: Any = (
        {name: {0: batch} for name in kwargs} if kwargs else tuple({0: batch} for _ in args)
    )
    modes = {submodule: submodule.training for submodule in module.modules()}
    module.eval()  # export bakes in the mode: dropout / batch-norm must behave as at inference
    try:
        return torch.export.export(module, args, kwargs=kwargs, dynamic_shapes=dynamic)
    except Exception as exc:  # user code and the tracer raise anything
        raise InvalidArgumentError(
            f"torch.export could not export the module with a dynamic batch dimension: {exc}"
        ) from exc
    finally:
        for submodule, training in modes.items():
            submodule.training = training


def _example_inputs(sample: Any, dtype: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if isinstance(sample, dict):
        return (), {name: _example_tensor(array, dtype, name) for name, array in sample.items()}
    return (_example_tensor(sample, dtype, "input"),), {}


def _example_tensor(values: Any, dtype: Any, name: str) -> Any:
    array = _numeric_array(values, name, InvalidSampleError)
    if len(array) == 1:
        # torch.export treats size-1 dimensions as constants, so one row cannot stand
        # for a batch of any size: repeat it.
        array = np.concatenate([array, array])
    return _to_tensor(require("torch", extra=_EXTRA), array, dtype)


def _parameter_dtype(module: Any) -> Any:
    torch = require("torch", extra=_EXTRA)
    tensors = [*module.parameters(), *module.buffers()]
    return next((t.dtype for t in tensors if t.is_floating_point()), torch.float32)


def _program_saved(program: Any, sample: Any) -> SavedFlavor:
    positional, keyword = _call_names(program)
    spec = {
        "format": "export",
        "file": _EXPORT_FILE,
        "float_dtype": _dtype_name(_program_dtype(program)),
        "positional": positional,
        "keyword": keyword,
    }
    signature = _sample_signature(sample) if sample is not None else _program_signature(program)
    return SavedFlavor(spec=spec, libraries=("torch",), signature=signature)


def _script_saved(module: Any, sample: Any) -> SavedFlavor:
    spec = {
        "format": "torchscript",
        "file": _SCRIPT_FILE,
        "float_dtype": _dtype_name(_parameter_dtype(module)),
        "positional": [],
        "keyword": [],
    }
    signature = _sample_signature(sample)
    return SavedFlavor(spec=spec, libraries=("torch",), signature=signature)


def _dtype_name(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.")


def _user_placeholders(program: Any) -> Iterator[Any]:
    names = set(program.graph_signature.user_inputs)
    return (n for n in program.graph.nodes if n.op == "placeholder" and n.name in names)


def _call_names(program: Any) -> tuple[list[str], list[str]]:
    """The program's positional and keyword input names, in call order."""
    names = list(program.graph_signature.user_inputs)
    try:
        args_spec, kwargs_spec = program.call_spec.in_spec.children()
        count, keyword = args_spec.num_children, [str(k) for k in kwargs_spec.context or ()]
    except Exception:  # an unexpected pytree layout: treat every input as positional
        return names, []
    return names[:count], keyword


def _program_dtype(program: Any) -> Any:
    torch = require("torch", extra=_EXTRA)
    values = [node.meta.get("val") for node in _user_placeholders(program)]
    tensors = [v for v in values if isinstance(v, torch.Tensor)]
    tensors += [t for t in program.state_dict.values() if isinstance(t, torch.Tensor)]
    return next((t.dtype for t in tensors if t.is_floating_point()), torch.float32)


def _sample_signature(sample: Any) -> Signature | None:
    """The tensors of an array sample; None for a table, whose column signature the package
    writer infers (with pandas, which a flavor does not import)."""
    if isinstance(sample, np.ndarray | Mapping):
        return Signature(inputs=tensor_schema_of(sample))
    return None


def _program_signature(program: Any) -> Signature | None:
    """The inputs as the program declares them (symbolic dimensions are -1)."""
    torch = require("torch", extra=_EXTRA)
    specs = []
    for node in _user_placeholders(program):
        value = node.meta.get("val")
        if not isinstance(value, torch.Tensor) or _dtype_name(value.dtype) not in TENSOR_DTYPES:
            return None
        shape = tuple(d if isinstance(d, int) else -1 for d in value.shape)
        specs.append(TensorSpec(node.name, _dtype_name(value.dtype), shape))
    return Signature(inputs=TensorSchema(tuple(specs))) if specs else None


# ---------------------------------------------------------------------------- reading


@contextmanager
def _torchscript_allowed() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"`torch\.jit\.\w+` is deprecated", category=DeprecationWarning
        )
        yield


def _load_script(path: Path) -> Any:
    """A TorchScript module from ``path``; refuses ``torch.save`` pickles."""
    torch = require("torch", extra=_EXTRA)
    check_script_archive(path)
    try:
        with _torchscript_allowed():
            return torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:  # TorchScript raises RuntimeError for most damage
        raise CorruptModelFileError(
            f"{path.name} is not a loadable TorchScript file: {exc}"
        ) from None


def _load_program(path: Path) -> Any:
    """An ExportedProgram from ``path``, after checking the archive holds no pickles."""
    torch = require("torch", extra=_EXTRA)
    check_export_archive(path)
    try:
        return torch.export.load(str(path))
    except Exception as exc:  # the deserializer raises many kinds of errors
        raise CorruptModelFileError(
            f"{path.name} is not a loadable torch.export archive: {exc}"
        ) from None


# --------------------------------------------------------------------------- predicting


class TorchPredictor:
    """Runs a loaded module under ``torch.inference_mode`` on numpy batches."""

    def __init__(self, module: Any, float_dtype: Any, positional: list[str], keyword: list[str]):
        self._torch = require("torch", extra=_EXTRA)
        self._module = module
        self._float_dtype = float_dtype
        self._positional = positional
        self._keyword = keyword

    @property
    def supports_proba(self) -> bool:
        return False

    def predict(self, batch: Batch) -> Batch:
        """The module's output as an ndarray; tuple outputs as ``{"output_0": ...}``."""
        args, kwargs = self._arguments(batch)
        with self._torch.inference_mode():
            return _to_numpy(self._module(*args, **kwargs))

    def predict_proba(self, batch: Batch) -> Batch:
        raise UnsupportedOperationError(
            "torch models have no predict_proba: predict returns the module's output"
        )

    def close(self) -> None:
        """Drop the module; torch frees its tensors when it is garbage collected."""
        self._module = None

    def _arguments(self, batch: Batch) -> tuple[list[Any], dict[str, Any]]:
        if not isinstance(batch, Mapping):
            tensor = self._tensor(batch, "input")
            if self._keyword and not self._positional:
                return [], {self._keyword[0]: tensor}
            return [tensor], {}
        tensors = {str(k): self._tensor(v, str(k)) for k, v in batch.items()}
        missing = [name for name in self._positional if name not in tensors]
        if missing:
            raise InvalidInputError(
                f"missing input tensor {missing[0]!r}", field=missing[0], received="no such tensor"
            )
        args = [tensors.pop(name) for name in self._positional]
        return args, tensors

    def _tensor(self, values: Any, name: str) -> Any:
        array = _numeric_array(values, name, InvalidInputError)
        return _to_tensor(self._torch, array, self._float_dtype)


def _numeric_array(values: Any, name: str, error: type[InvalidArgumentError]) -> np.ndarray:
    """``values`` as a C-contiguous, writable numeric ndarray (``torch.from_numpy`` warns
    on the read-only arrays pandas' copy-on-write hands out)."""
    array = values.to_numpy() if is_frame(values) else np.asarray(values)
    if array.dtype.kind not in "biuf":
        raise error(
            f"tensor {name!r} holds {array.dtype} values; torch models take numeric tensors",
            field=name,
        )
    if not array.flags.writeable or not array.flags.c_contiguous:
        array = np.array(array)
    return array


def _to_tensor(torch: Any, array: np.ndarray, float_dtype: Any) -> Any:
    tensor = torch.from_numpy(array)
    return tensor.to(float_dtype) if tensor.is_floating_point() else tensor


def _to_numpy(output: Any) -> Any:
    if isinstance(output, tuple | list):
        return {f"output_{i}": _to_numpy(value) for i, value in enumerate(output)}
    if isinstance(output, Mapping):
        return {str(k): _to_numpy(v) for k, v in output.items()}
    if hasattr(output, "detach"):
        return output.detach().cpu().numpy()
    return np.asarray(output)
