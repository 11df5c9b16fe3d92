"""The spool's frames: logged requests as bytes a converter process reads back.

A spool file is a sequence of frames, each ``<u32 length><u8 kind>`` and its payload
(``length`` counts the bytes after itself):

* ``LAYOUT``: ``<u32 id>`` and JSON (the origin: model, version, deployment, arm,
  matrix columns; the protocol; per array its group, name, dtype and shape after the
  rows). Every request of a file refers to a layout written earlier in the same file.
* ``REQUEST``: ``<u32 layout><i32 status><u32 rows><f64 time><f64 latency><u16 n>``, the
  request id (``n`` bytes of UTF-8), then each array's bytes in the layout's order: the
  raw C-order bytes of numbers and fixed-width text, or ``<u32 n>`` and JSON for arrays
  of Python objects.
* ``END``: the writer closed the file; nothing follows.

Numbers go in as their bytes (one copy, no conversion), so spooling a request costs the
request path about what building its log tuple did; decoding is the converter's work.
A file cut short by a killed writer ends in at most one partial frame, which the reader
leaves alone.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from math import prod
from typing import Any, Final

import numpy as np
import orjson

from modelport.monitoring.prediction_log.batches import Logged, Origin, origin

MAGIC: Final = b"MPSPOOL1"
LAYOUT: Final = 1
REQUEST: Final = 2
END: Final = 3
FRAME = struct.Struct("<IB")
LAYOUT_HEAD = struct.Struct("<IBI")
REQUEST_HEAD = struct.Struct("<IBIiIddH")
OBJECT_LENGTH = struct.Struct("<I")
END_FRAME: Final = FRAME.pack(1, END)
# The part of a request's frame length that is not its id or arrays (length excluded).
REQUEST_FIXED = REQUEST_HEAD.size - 4
JSON_DTYPE: Final = "json"
GROUPS: Final = ("in", "out", "id")


@dataclass(frozen=True, slots=True)
class ArraySpec:
    """One array of a layout: which map it belongs to, its name, dtype and row shape."""

    group: str
    name: str
    dtype: str  # numpy's dtype.str, or JSON_DTYPE for arrays of objects
    tail: tuple[int, ...]

    @property
    def row_bytes(self) -> int:
        """Bytes per row of a fixed-size array (0 for JSON ones)."""
        if self.dtype == JSON_DTYPE:
            return 0
        return np.dtype(self.dtype).itemsize * prod(self.tail)


@dataclass(frozen=True, slots=True)
class Layout:
    """What every request of one layout shares: where it was served, how it arrived,
    and its arrays."""

    origin: Origin
    protocol: str
    arrays: tuple[ArraySpec, ...]

    def to_json(self) -> bytes:
        """The layout as written in a ``LAYOUT`` frame."""
        where = self.origin
        return orjson.dumps(
            {
                "model": where.model,
                "version": where.version,
                "deployment": where.deployment,
                "arm": where.arm,
                "matrices": {name: list(cols) for name, cols in where.matrices.items()},
                "protocol": self.protocol,
                "arrays": [[a.group, a.name, a.dtype, list(a.tail)] for a in self.arrays],
            }
        )

    @classmethod
    def from_json(cls, data: bytes) -> Layout:
        """The layout of a ``LAYOUT`` frame's JSON."""
        raw = orjson.loads(data)
        where = origin(raw["model"], raw["version"], raw["deployment"], raw["arm"], raw["matrices"])
        arrays = tuple(
            ArraySpec(group, name, dtype, tuple(tail)) for group, name, dtype, tail in raw["arrays"]
        )
        return cls(where, raw["protocol"], arrays)


def layout_of(request: Logged) -> Layout:
    """The layout of one logged request (its arrays' names, dtypes and row shapes)."""
    specs = []
    for group, arrays in zip(GROUPS, (request[7], request[8], request[9]), strict=True):
        for name, array in arrays.items():
            dtype = JSON_DTYPE if array.dtype.kind == "O" else array.dtype.str
            specs.append(ArraySpec(group, name, dtype, tuple(array.shape[1:])))
    return Layout(request[0], request[3], tuple(specs))


def layout_frame(number: int, layout: Layout) -> bytes:
    """The ``LAYOUT`` frame declaring ``layout`` as ``number`` in a file."""
    data = layout.to_json()
    return LAYOUT_HEAD.pack(LAYOUT_HEAD.size - 4 + len(data), LAYOUT, number) + data


def object_bytes(array: np.ndarray) -> bytes:
    """An array of Python objects (text, dates, None, mixed) as length-prefixed JSON."""
    data = orjson.dumps(
        array.tolist(), option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS, default=str
    )
    return OBJECT_LENGTH.pack(len(data)) + data


_RUN_KEY = struct.Struct("<I4xI16xH")  # a request's layout number, rows and id length
HEAD_DTYPE: Final = np.dtype(
    [
        ("length", "<u4"),
        ("kind", "u1"),
        ("layout", "<u4"),
        ("status", "<i4"),
        ("rows", "<u4"),
        ("time", "<f8"),
        ("latency", "<f8"),
        ("id_length", "<u2"),
    ]
)  # REQUEST_HEAD as a numpy record: a run's heads are read in one call


class Run:
    """The requests of one layout, one number of rows and one length of request id read
    in one pass, as slices of the file's bytes. Such frames all have one size (unless the
    layout has arrays of objects): joined, they are one matrix of bytes whose column
    ranges are the heads, the ids and each array, so ``columns`` reads every request at
    once, with no Python loop per request."""

    __slots__ = ("frames", "id_length", "layout", "matrix", "objects", "rows")

    def __init__(self, layout: Layout, rows: int, id_length: int) -> None:
        self.layout = layout
        self.rows = rows
        self.id_length = id_length
        self.frames: list[memoryview] = []
        self.matrix: np.ndarray | None = None
        self.objects = any(spec.dtype == JSON_DTYPE for spec in layout.arrays)

    def _matrix(self) -> np.ndarray:
        """The frames as rows of one matrix of bytes (joined once)."""
        if self.matrix is None:
            data = np.frombuffer(b"".join(self.frames), np.uint8)
            self.matrix = data.reshape(len(self.frames), -1)
        return self.matrix

    def heads_array(self) -> np.ndarray:
        """The requests' heads as records of ``HEAD_DTYPE``."""
        if self.objects:
            heads = b"".join([frame[: REQUEST_HEAD.size] for frame in self.frames])
            return np.frombuffer(heads, HEAD_DTYPE)
        return self._matrix()[:, : REQUEST_HEAD.size].copy().view(HEAD_DTYPE).reshape(-1)

    def request_ids(self) -> tuple[bytes, np.ndarray]:
        """The ids' UTF-8 bytes, joined, and their offsets (n + 1 of them)."""
        at = REQUEST_HEAD.size
        if self.objects:
            data = b"".join([frame[at : at + self.id_length] for frame in self.frames])
        else:
            data = self._matrix()[:, at : at + self.id_length].tobytes()
        offsets = np.arange(len(self.frames) + 1, dtype=np.int32) * self.id_length
        return data, offsets

    def columns(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Every row of the run's arrays: inputs, outputs and ids by name."""
        specs = self.layout.arrays
        if self.objects:
            arrays = self._decoded()
        else:
            matrix = self._matrix()
            arrays, start = [], REQUEST_HEAD.size + self.id_length
            for spec in specs:
                width = self.rows * spec.row_bytes
                part = np.ascontiguousarray(matrix[:, start : start + width])
                arrays.append(part.view(np.dtype(spec.dtype)).reshape(-1, *spec.tail))
                start += width
            if start != matrix.shape[1]:
                raise ValueError(
                    f"spool request frames have {matrix.shape[1] - start} bytes unread"
                )
        maps: dict[str, dict[str, np.ndarray]] = {group: {} for group in GROUPS}
        for spec, array in zip(specs, arrays, strict=True):
            maps[spec.group][spec.name] = array
        return maps["in"], maps["out"], maps["id"]

    def _decoded(self) -> list[np.ndarray]:
        """The arrays of a layout with arrays of objects (JSON), request by request."""
        parts: list[list[np.ndarray]] = [[] for _ in self.layout.arrays]
        for frame in self.frames:
            at = REQUEST_HEAD.size + self.id_length
            for spec, column in zip(self.layout.arrays, parts, strict=True):
                if spec.dtype == JSON_DTYPE:
                    (length,) = OBJECT_LENGTH.unpack_from(frame, at)
                    at += OBJECT_LENGTH.size
                    values: Sequence[Any] = orjson.loads(frame[at : at + length])
                    array = np.empty(len(values), dtype=object)
                    array[:] = values
                    column.append(array.reshape(self.rows, *spec.tail) if spec.tail else array)
                    at += length
                else:
                    size = spec.row_bytes * self.rows
                    data = np.frombuffer(frame[at : at + size], np.dtype(spec.dtype))
                    column.append(data.reshape(self.rows, *spec.tail))
                    at += size
            if at != len(frame):
                raise ValueError(f"a spool request frame has {len(frame) - at} bytes unread")
        return [np.concatenate(column) for column in parts]


@dataclass
class Frames:
    """The requests read from one spool file, by layout, and where reading stopped."""

    runs: list[Run]
    end: int  # offset just after the last complete frame
    finished: bool  # an END frame was read

    @property
    def rows(self) -> int:
        """Rows of every request read."""
        return sum(int(run.heads_array()["rows"].sum()) for run in self.runs)


def read_frames(
    data: bytes | memoryview,
    base: int,
    layouts: dict[int, Layout],
    requests_from: int = 0,
) -> Frames:
    """Read the complete frames of ``data``, a spool file's bytes from file offset
    ``base`` (a frame boundary; 0 means the file's start, with its ``MAGIC``).
    ``layouts`` (by number) is filled from the LAYOUT frames met and used for requests;
    requests that start before file offset ``requests_from`` (already converted) are
    skipped. A partial frame at the end is left for the next read."""
    view = memoryview(data)
    position = 0
    if base == 0:
        if len(view) < len(MAGIC):
            return Frames([], 0, False)
        if bytes(view[: len(MAGIC)]) != MAGIC:
            raise ValueError("not a modelport spool file (its first bytes are not the marker)")
        position = len(MAGIC)
    runs: dict[tuple[int, ...], Run] = {}
    finished = False
    while position + FRAME.size <= len(view):
        length, kind = FRAME.unpack_from(view, position)
        end = position + 4 + length
        if end > len(view):
            break
        if kind == REQUEST:
            if base + position >= requests_from:
                key = _RUN_KEY.unpack_from(view, position + FRAME.size)
                run = runs.get(key)
                if run is None:
                    run = runs[key] = Run(layouts[key[0]], key[1], key[2])
                run.frames.append(view[position:end])
        elif kind == LAYOUT:
            (number,) = struct.unpack_from("<I", view, position + FRAME.size)
            layouts[number] = Layout.from_json(bytes(view[position + LAYOUT_HEAD.size : end]))
        elif kind == END:
            position = end
            finished = True
            break
        else:
            raise ValueError(f"unknown spool frame kind {kind} at offset {base + position}")
        position = end
    return Frames(list(runs.values()), base + position, finished)
