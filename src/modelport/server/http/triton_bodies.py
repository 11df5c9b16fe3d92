"""The JSON bodies of Triton's extensions, in Triton's shapes: a model's configuration
(``model_config.proto``'s ``ModelConfig`` as JSON), its statistics and the repository
index.

What the configuration says about a served model version:

* ``platform`` is the V2 metadata's (``sklearn_onnxruntime``: the flavor, and the
  runtime when another one runs it); ``backend`` is what runs it (``onnxruntime`` for
  an ONNX graph, else the flavor's library: ``sklearn``, ``xgboost``, ...).
* ``max_batch_size`` is the model's ``max_batch_size`` batching setting when every input
  and output has a variable first dimension (rows), and then ``dims`` leave that
  dimension out, as Triton's do; otherwise 0 and ``dims`` are the whole shape. A
  per-row scalar (V2 shape ``[-1]``) has ``dims: []``.
* ``dynamic_batching`` carries ``max_wait_ms`` in microseconds, ``max_queue`` and the
  request timeout; ``preferred_batch_size`` is empty because batches grow up to
  ``max_batch_size`` while requests wait, which is what Triton does without one.
* ``version_policy`` is ``latest`` for a served name that follows the latest version,
  else ``specific`` with the version served (a package directory has none).
"""

from __future__ import annotations

from typing import Any

from modelport.monitoring.inference_stats import VersionTotals
from modelport.serving.interface import IOSpec, Layout, ModelIO
from modelport.serving.route import Route
from modelport.serving.served import ServedModel

READY, UNAVAILABLE, LOADING = "READY", "UNAVAILABLE", "LOADING"
_NS = 1_000_000_000


def config_type(datatype: str) -> str:
    """The model configuration's name of a V2 datatype (``FP32`` -> ``TYPE_FP32``; BYTES
    is ``TYPE_STRING`` there)."""
    return "TYPE_STRING" if datatype == "BYTES" else f"TYPE_{datatype}"


def model_config(served: ServedModel, request_timeout_s: float) -> dict[str, Any]:
    """The model configuration of a served version."""
    io = served.io
    batched = _batched(io)
    optional = {c.name for c in io.columns if not c.required} if io.layout is Layout.COLUMNS else ()
    config: dict[str, Any] = {
        "name": served.name,
        "platform": served.platform,
        "backend": served.runtime,
        "version_policy": _version_policy(served),
        "max_batch_size": served.options.batching.max_batch_size if batched else 0,
        "input": [
            {**_tensor(spec, batched), "optional": spec.name in optional} for spec in io.inputs
        ],
        "output": [_tensor(spec, batched) for spec in io.outputs],
        "model_transaction_policy": {"decoupled": False},
        "response_cache": {"enable": False},
        "parameters": {
            "source": {"string_value": served.source.ref or "package"},
            "flavor": {"string_value": served.loaded.flavor},
            "layout": {"string_value": io.layout.value},
        },
    }
    if batched:
        config["dynamic_batching"] = _dynamic_batching(served, request_timeout_s)
    return config


def _batched(io: ModelIO) -> bool:
    return all(spec.shape[:1] == (-1,) for spec in (*io.inputs, *io.outputs))


def _tensor(spec: IOSpec, batched: bool) -> dict[str, Any]:
    dims = spec.shape[1:] if batched else spec.shape
    return {"name": spec.name, "data_type": config_type(spec.datatype), "dims": list(dims)}


def _version_policy(served: ServedModel) -> dict[str, Any]:
    source = served.source
    if source.ref is not None and source.model_ref.is_latest:
        return {"latest": {"num_versions": 1}}
    versions = [served.version] if served.version is not None else []
    return {"specific": {"versions": versions}}


def _dynamic_batching(served: ServedModel, request_timeout_s: float) -> dict[str, Any]:
    batching = served.options.batching
    return {
        "preferred_batch_size": [],
        "max_queue_delay_microseconds": round(batching.max_wait_ms * 1000),
        "preserve_ordering": False,
        "default_queue_policy": {
            "timeout_action": "REJECT",  # a request past its deadline gets 504
            "default_timeout_microseconds": round(request_timeout_s * 1_000_000),
            "allow_timeout_override": True,  # the V2 ``timeout`` parameter shortens it
            "max_queue_size": batching.max_queue,
        },
    }


def _duration(count: float, seconds: float) -> dict[str, int]:
    return {"count": int(count), "ns": round(seconds * _NS)}


def model_stat(totals: VersionTotals) -> dict[str, Any]:
    """One ``$model_stat`` of the statistics response.

    ``compute_infer`` is the model call, including its input's preparation (a DataFrame
    built for a native model) and its outputs' extraction; ``compute_input`` and
    ``compute_output`` are not timed apart and report 0 ns. There is no response cache.
    """
    counts = totals.counts
    computed = counts["compute_count"]
    return {
        "name": totals.model,
        "version": totals.version,
        "last_inference": round(totals.last * 1000),
        "inference_count": int(counts["inference_count"]),
        "execution_count": int(counts["execution_count"]),
        "inference_stats": {
            "success": _duration(counts["success_count"], counts["success_s"]),
            "fail": _duration(counts["fail_count"], counts["fail_s"]),
            "queue": _duration(counts["queue_count"], counts["queue_s"]),
            "compute_input": _duration(computed, 0.0),
            "compute_infer": _duration(computed, counts["compute_s"]),
            "compute_output": _duration(computed, 0.0),
            "cache_hit": _duration(0, 0.0),
            "cache_miss": _duration(0, 0.0),
        },
        "response_stats": {},
        "batch_stats": [
            {
                "batch_size": rows,
                "compute_input": _duration(calls, 0.0),
                "compute_infer": _duration(calls, seconds),
                "compute_output": _duration(calls, 0.0),
            }
            for rows, (calls, seconds) in sorted(totals.batches.items())
        ],
        "memory_usage": [],
    }


def index_entries(route: Route) -> list[dict[str, str]]:
    """A served name's repository index entries: the version serving it (READY, or why
    none does) and, when its reference points elsewhere, that version (LOADING while
    it loads, UNAVAILABLE with the reason it is not served)."""
    name, served = route.source.name, route.current
    if served is not None:
        entries = [_entry(name, served.version_label, READY, "")]
    elif route.error:
        entries = [_entry(name, _label(route.wanted_version), UNAVAILABLE, route.error)]
    else:
        entries = [_entry(name, _label(route.wanted_version), LOADING, "loading")]
    if served is None:
        return entries
    wanted, stale = route.wanted_version, route.stale
    if route.swapping and wanted != served.version:
        replacing = f"loading to replace version {served.version_label}"
        entries.append(_entry(name, _label(wanted), LOADING, replacing))
    elif stale is not None and stale.version is not None and stale.version != served.version:
        entries.append(_entry(name, str(stale.version), UNAVAILABLE, stale.detail))
    return entries


def _label(version: int | None) -> str:
    return str(version) if version is not None else ""


def _entry(name: str, version: str, state: str, reason: str) -> dict[str, str]:
    # ``version`` is optional in Triton's index: a package directory has none.
    entry = {"name": name, "version": version, "state": state, "reason": reason}
    if not version:
        del entry["version"]
    return entry
