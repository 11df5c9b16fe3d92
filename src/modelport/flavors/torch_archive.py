"""Safety checks on torch model archives, run before torch reads them.

Plain ``torch.save`` checkpoints are never imported: they are pickles, and unpickling
one can run any code. A TorchScript archive (``.pt``/``.pth``) is told apart from a
``torch.save`` zip by its ``code/`` directory. ``.pt2`` archives are checked before
``torch.export.load`` reads them, because it falls back to unrestricted pickle for some
entries (tensor subclasses, opaque constants, sample inputs) and AOTInductor archives
carry native code.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

from modelport.errors import CorruptModelFileError, UnsafeModelError
from modelport.flavors.dependencies import require

_EXTRA = "torch"
_PICKLED_PAYLOAD_PREFIXES = ("custom_obj_", "opaque_obj_")


def check_script_archive(path: Path) -> None:
    """Refuse ``path`` unless it is a TorchScript archive: ``torch.save`` checkpoints are
    unsafe, a torch.export archive needs the ``.pt2`` name, anything else is corrupt."""
    names = _zip_names(path)
    # TorchScript: <root>/code/*.py (the TorchScript source) next to <root>/data.pkl.
    # A torch.save zip has data.pkl without code/.
    parts = [name.split("/") for name in names]
    code_roots = {p[0] for p in parts if len(p) > 2 and p[1] == "code"}
    if any(f"{root}/data.pkl" in names for root in code_roots):
        return
    if any(name.endswith("/archive_format") for name in names):
        raise CorruptModelFileError(f"{path.name} is a torch.export archive: name it *.pt2")
    raise _checkpoint_refused(path)


def _zip_names(path: Path) -> set[str]:
    try:
        with zipfile.ZipFile(path) as archive:
            return set(archive.namelist())
    except zipfile.BadZipFile:
        with path.open("rb") as stream:
            is_pickle = stream.read(1) == b"\x80"  # PROTO opcode: a legacy torch.save file
        if is_pickle:
            raise _checkpoint_refused(path) from None
        raise CorruptModelFileError(
            f"{path.name} is not a torch model archive (truncated or another format)"
        ) from None


def _checkpoint_refused(path: Path) -> UnsafeModelError:
    return UnsafeModelError(
        f"{path.name} is a torch.save checkpoint: a pickle, and loading one can run any "
        "code. Export the model instead: torch.export.save(torch.export.export(model, "
        "(example,)), 'model.pt2'), or save a TorchScript module with torch.jit.save",
        offending=("torch.save checkpoint",),
    )


def check_export_archive(path: Path) -> None:
    """Refuse ``path`` unless it is a torch.export archive holding no entries that
    ``torch.export.load`` would unpickle unrestricted or run as native code."""
    try:
        with zipfile.ZipFile(path) as archive:
            offending = _unsafe_entries(archive, path)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise CorruptModelFileError(
            f"{path.name} is not a torch.export archive (truncated or another format): {exc}"
        ) from None
    if offending:
        raise UnsafeModelError(
            f"{path.name} holds entries torch.export.load would unpickle or run as native "
            f"code: {', '.join(offending[:5])}; re-export the model without tensor "
            "subclasses, opaque constants or AOTInductor code",
            offending=tuple(offending),
        )


def _unsafe_entries(archive: zipfile.ZipFile, path: Path) -> list[str]:
    formats = [n for n in archive.namelist() if n.count("/") == 1 and n.endswith("/archive_format")]
    if not formats or archive.read(formats[0]) != b"pt2":
        raise CorruptModelFileError(f"{path.name} is not a torch.export archive")
    root = formats[0].removesuffix("archive_format")
    offending = []
    for name in archive.namelist():
        entry = name.removeprefix(root)
        if entry.startswith("data/aotinductor/"):
            offending.append(f"{entry} (AOTInductor native code)")
        elif entry.startswith(("data/weights/", "data/constants/")) and entry.endswith(".pt"):
            offending.append(f"{entry} (pickled weights)")
        elif entry.startswith(("data/weights/", "data/constants/")) and entry.endswith(".json"):
            offending += _pickled_payloads(json.loads(archive.read(name)), entry)
        elif entry.startswith("data/sample_inputs/") and not _plain_tensors(archive.read(name)):
            offending.append(f"{entry} (pickled sample inputs)")
    return offending


def _pickled_payloads(config: Any, entry: str) -> list[str]:
    payloads = config.get("config", {}) if isinstance(config, dict) else {}
    return [
        f"{entry}: {fqn} (pickled)"
        for fqn, meta in payloads.items()
        if not isinstance(meta, dict)
        or meta.get("use_pickle")
        or str(meta.get("path_name", "")).startswith(_PICKLED_PAYLOAD_PREFIXES)
    ]


def _plain_tensors(data: bytes) -> bool:
    """Whether torch's weights-only unpickler (tensors and containers only) reads ``data``."""
    torch = require("torch", extra=_EXTRA)
    try:
        torch.load(io.BytesIO(data), weights_only=True)
    except Exception:  # weights-only refusals and damaged data alike
        return False
    return True
