"""The V2 (Open Inference Protocol) codec: what real clients send decodes, what we send
parses in tritonclient, and no malformed body gets anything but a 400 or 413 error."""

from __future__ import annotations

import struct
import time
from typing import Any

import numpy as np
import orjson
import pytest
import tritonclient.http as triton
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from tritonclient.http._utils import _get_inference_request

from modelport.errors import (
    InvalidArgumentError,
    InvalidRequestError,
    PayloadTooLargeError,
    UnsupportedOperationError,
)
from modelport.server.http.v2_binary import NATIVE_DTYPES
from modelport.server.http.v2_codec import (
    DecodedInput,
    RequestedOutput,
    V2Limits,
    V2Request,
    decode_request,
)
from modelport.server.http.v2_response import EncodedOutput, datatype_of, encode_response

LIMITS = V2Limits()
REJECTED = (InvalidRequestError, PayloadTooLargeError)


def _extremes(dtype: Any) -> np.ndarray:
    info = np.iinfo(dtype)
    return np.array([[info.min, info.max], [0, 1]], dtype=dtype)


# One 2x2 sample per datatype, with each integer type's extremes.
SAMPLES: dict[str, np.ndarray] = {
    "BOOL": np.array([[True, False], [False, True]]),
    **{
        name: _extremes(dtype)
        for name, dtype in [
            ("UINT8", np.uint8),
            ("UINT16", np.uint16),
            ("UINT32", np.uint32),
            ("UINT64", np.uint64),
            ("INT8", np.int8),
            ("INT16", np.int16),
            ("INT32", np.int32),
            ("INT64", np.int64),
        ]
    },
    "FP16": np.array([[1.5, -2.0], [65504.0, 0.0]], dtype=np.float16),
    "FP32": np.array([[1.5, -2.25e30], [3.4e38, 0.1]], dtype=np.float32),
    "FP64": np.array([[1.5, -2.25e300], [1e-300, 0.1]], dtype=np.float64),
    "BYTES": np.array([[b"a", b""], [b"\xff\x00binary", "é".encode()]], dtype=object),
}
TEXTS = np.array([["a", ""], ["é", "two words"]], dtype=object)


def triton_request(
    inputs: list[triton.InferInput],
    outputs: list[triton.InferRequestedOutput] | None = None,
    *,
    request_id: str = "",
    timeout: int | None = None,
    parameters: dict[str, Any] | None = None,
) -> tuple[bytes, str | None]:
    """The body and Inference-Header-Content-Length exactly as tritonclient sends them."""
    body, json_size = _get_inference_request(
        inputs=inputs,
        request_id=request_id,
        outputs=outputs,
        sequence_id=0,
        sequence_start=False,
        sequence_end=False,
        priority=0,
        timeout=timeout,
        custom_parameters=parameters,
    )
    return body, None if json_size is None else str(json_size)


def triton_input(name: str, array: np.ndarray, datatype: str, *, binary: bool) -> Any:
    tensor = triton.InferInput(name, list(array.shape), datatype)
    tensor.set_data_from_numpy(array, binary_data=binary)
    return tensor


def decode(document: Any, limits: V2Limits = LIMITS) -> V2Request:
    return decode_request(orjson.dumps(document), None, limits)


def with_chunks(document: dict[str, Any], *chunks: bytes) -> tuple[bytes, str]:
    header = orjson.dumps(document)
    return header + b"".join(chunks), str(len(header))


def one_input(**fields: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": "x", "shape": [2], "datatype": "FP32", "data": [1.0, 2.0]}
    entry.update(fields)
    return {"inputs": [{k: v for k, v in entry.items() if v is not ...}]}


def rejected(
    body: bytes, header: str | None = None, limits: V2Limits = LIMITS
) -> InvalidArgumentError:
    with pytest.raises(REJECTED) as info:
        decode_request(body, header, limits)
    return info.value


def only(request: V2Request) -> DecodedInput:
    assert len(request.inputs) == 1
    return request.inputs[0]


# --- requests that real clients send -------------------------------------------------


@pytest.mark.parametrize("datatype", [name for name in SAMPLES if name != "FP16"])
def test_tritonclient_json_inputs_decode_for_every_datatype(datatype: str) -> None:
    sample = TEXTS if datatype == "BYTES" else SAMPLES[datatype]
    body, header = triton_request([triton_input("x", sample, datatype, binary=False)])
    assert header is None
    got = only(decode_request(body, header, LIMITS))
    assert (got.name, got.datatype, got.shape) == ("x", datatype, (2, 2))
    assert got.array.dtype == (object if datatype == "BYTES" else sample.dtype)
    assert got.array.tolist() == sample.tolist()


@pytest.mark.parametrize("datatype", list(SAMPLES))
def test_tritonclient_binary_inputs_decode_for_every_datatype(datatype: str) -> None:
    sample = SAMPLES[datatype]
    body, header = triton_request([triton_input("x", sample, datatype, binary=True)])
    assert header is not None
    got = only(decode_request(body, header, LIMITS))
    assert (got.datatype, got.shape, got.array.dtype) == (datatype, (2, 2), sample.dtype)
    assert got.array.tolist() == sample.tolist()
    # A copy, not a read-only view of the body: models may write to their inputs.
    assert got.array.flags.writeable


def test_mixed_binary_and_json_inputs_decode_in_order() -> None:
    inputs = [
        triton_input("a", np.arange(6, dtype=np.float32).reshape(2, 3), "FP32", binary=True),
        triton_input("b", np.array([[1, 2]], dtype=np.int64), "INT64", binary=False),
        triton_input("c", np.array([b"xy", b"\x00"], dtype=object), "BYTES", binary=True),
        triton_input("d", np.array([True]), "BOOL", binary=True),
    ]
    request = decode_request(*triton_request(inputs), LIMITS)
    assert [i.name for i in request.inputs] == ["a", "b", "c", "d"]
    assert request.inputs[0].array.tolist() == [[0, 1, 2], [3, 4, 5]]
    assert request.inputs[1].array.tolist() == [[1, 2]]
    assert request.inputs[2].array.tolist() == [b"xy", b"\x00"]
    assert request.inputs[3].array.tolist() == [True]


@pytest.mark.parametrize(
    ("datatype", "shape", "binary"),
    [("FP32", [0], True), ("BYTES", [0], True), ("INT32", [2, 0], False), ("FP64", [], False)],
)
def test_empty_and_scalar_tensors(datatype: str, shape: list[int], binary: bool) -> None:
    dtype = object if datatype == "BYTES" else SAMPLES[datatype].dtype
    sample = np.ones(shape, dtype=dtype)
    body, header = triton_request([triton_input("x", sample, datatype, binary=binary)])
    got = only(decode_request(body, header, LIMITS))
    assert got.array.shape == tuple(shape)
    assert got.array.size == sample.size


def test_request_fields_from_tritonclient() -> None:
    tensor = triton_input("x", np.zeros(2, dtype=np.float32), "FP32", binary=True)
    outputs = [
        triton.InferRequestedOutput("y", binary_data=False),
        triton.InferRequestedOutput("z"),
    ]
    body, header = triton_request(
        [tensor], outputs, request_id="42", timeout=2_500_000, parameters={"custom": "v"}
    )
    request = decode_request(body, header, LIMITS)
    assert request.id == "42"
    assert request.outputs == (RequestedOutput("y", False), RequestedOutput("z", True))
    assert request.binary_data_output is False
    assert request.timeout_s == 2.5
    assert request.parameters["custom"] == "v"


def test_no_outputs_means_all_outputs_in_binary_as_tritonclient_asks() -> None:
    tensor = triton_input("x", np.zeros(2, dtype=np.float32), "FP32", binary=True)
    request = decode_request(*triton_request([tensor]), LIMITS)
    assert request.outputs is None
    assert request.binary_data_output is True
    assert request.id is None
    assert request.timeout_s is None


def test_defaults_unknown_parameters_and_null_members() -> None:
    document = one_input()
    document.update(id=None, outputs=[], parameters={"unknown": [1, {"deep": True}]})
    request = decode(document)
    assert request.id is None
    assert request.outputs is None  # [] asks for all outputs, as in Triton
    assert request.binary_data_output is False
    assert request.parameters == {"unknown": [1, {"deep": True}]}
    document["parameters"] = {"timeout": 0, "binary_data_output": None}
    assert decode(document).timeout_s is None  # Triton: 0 means no timeout
    assert decode(one_input(parameters=None)).inputs[0].array.tolist() == [1.0, 2.0]


@pytest.mark.parametrize(
    ("shape", "data"),
    [
        ([2, 2], [[1, 2], [3, 4]]),  # nested as the shape
        ([2, 2], [1, 2, 3, 4]),  # flat, as tritonclient sends
        ([2, 2, 1], [[1, 2], [3, 4]]),  # partly nested
        ([2, 2], [[1, 2, 3], [4]]),  # ragged: only the count is checked, as in Triton
    ],
)
def test_nested_or_flat_data_is_read_row_major(shape: list[int], data: list[Any]) -> None:
    got = only(decode(one_input(shape=shape, datatype="INT32", data=data)))
    assert got.array.dtype == np.int32
    assert got.array.reshape(-1).tolist() == [1, 2, 3, 4]
    assert got.array.shape == tuple(shape)


def test_fp_inputs_accept_integers_and_bytes_json_gives_str() -> None:
    assert only(decode(one_input(data=[1, 2.5]))).array.tolist() == [1.0, 2.5]
    got = only(decode(one_input(datatype="BYTES", data=["é", ""])))
    assert got.array.tolist() == ["é", ""]


def test_large_flat_json_input_is_fast() -> None:
    data = [float(i) for i in range(200_000)]
    started = time.perf_counter()
    got = only(decode(one_input(shape=[1000, 200], data=data)))
    assert time.perf_counter() - started < 2.0
    assert got.array[999, 199] == 199_999.0


# --- responses that tritonclient reads ---------------------------------------------


def parse(body: bytes, header_length: int | None) -> Any:
    return triton.InferResult.from_response_body(body, verbose=False, header_length=header_length)


@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize("datatype", list(SAMPLES))
def test_tritonclient_reads_every_datatype(datatype: str, binary: bool) -> None:
    sample = TEXTS if datatype == "BYTES" and not binary else SAMPLES[datatype]
    body, header_length = encode_response(
        model_name="m",
        model_version="3",
        request_id="r1",
        outputs=[EncodedOutput("y", datatype, sample, binary)],
    )
    assert (header_length is not None) == binary
    result = parse(body, header_length)
    assert result.get_response()["model_version"] == "3"
    assert result.get_response()["id"] == "r1"
    got = result.as_numpy("y")
    assert got.shape == (2, 2)
    assert got.tolist() == sample.tolist()


def test_mixed_outputs_keep_their_order_and_form() -> None:
    outputs = [
        EncodedOutput("a", "FP32", np.arange(4, dtype=np.float32).reshape(2, 2), True),
        EncodedOutput("b", "INT64", np.array([7, 8]), False),
        EncodedOutput("c", "BYTES", np.array([b"p", b"qq"], dtype=object), True),
        EncodedOutput("d", "BOOL", np.array([True, False]), True),
    ]
    body, header_length = encode_response(
        model_name="m", model_version=None, request_id=None, outputs=outputs
    )
    result = parse(body, header_length)
    response = result.get_response()
    assert "model_version" not in response
    assert "id" not in response
    assert [o["name"] for o in response["outputs"]] == ["a", "b", "c", "d"]
    assert "data" not in response["outputs"][0]
    assert response["outputs"][1]["data"] == [7, 8]
    assert result.as_numpy("a").tolist() == [[0, 1], [2, 3]]
    assert result.as_numpy("c").tolist() == [b"p", b"qq"]
    assert result.as_numpy("d").tolist() == [True, False]


def test_json_response_is_plain_json_without_header_length() -> None:
    body, header_length = encode_response(
        model_name="m",
        model_version=None,
        request_id="7",
        outputs=[EncodedOutput("y", "FP32", np.array([[0.5, 1.0]], dtype=np.float32), False)],
    )
    assert header_length is None
    assert orjson.loads(body) == {
        "model_name": "m",
        "id": "7",
        "outputs": [{"name": "y", "datatype": "FP32", "shape": [1, 2], "data": [0.5, 1.0]}],
    }


def test_empty_binary_output_still_sets_header_length() -> None:
    empty = EncodedOutput("y", "FP32", np.zeros((0, 3), dtype=np.float32), True)
    body, header_length = encode_response(
        model_name="m", model_version=None, request_id=None, outputs=[empty]
    )
    assert header_length == len(body)
    assert parse(body, header_length).as_numpy("y").shape == (0, 3)


def test_non_utf8_bytes_output_goes_binary_even_when_json_was_asked() -> None:
    outputs = [EncodedOutput("y", "BYTES", np.array([b"\xff\xfe", b"ok"], dtype=object), False)]
    body, header_length = encode_response(
        model_name="m", model_version=None, request_id=None, outputs=outputs
    )
    assert header_length is not None
    assert parse(body, header_length).as_numpy("y").tolist() == [b"\xff\xfe", b"ok"]


@pytest.mark.parametrize("datatype", ["FP16", "FP32", "FP64"])
def test_non_finite_floats_round_trip_in_json_and_in_binary(datatype: str) -> None:
    # Triton's qa/L0_nan_inf: NaN and ±Infinity come back from JSON outputs as they were.
    values = np.array([np.nan, np.inf, -np.inf, 0.1, 1.0], dtype=NATIVE_DTYPES[datatype])
    body, _ = encode_response(
        model_name="m",
        model_version=None,
        request_id=None,
        outputs=[EncodedOutput("y", datatype, values, False)],
    )
    assert b'"data":[NaN,Infinity,-Infinity,' in body
    np.testing.assert_array_equal(parse(body, None).as_numpy("y"), values)
    values = values.astype(np.float32)
    body, header_length = encode_response(
        model_name="m",
        model_version=None,
        request_id=None,
        outputs=[EncodedOutput("y", "FP32", values, True)],
    )
    np.testing.assert_array_equal(parse(body, header_length).as_numpy("y"), values)


@pytest.mark.parametrize("binary", [False, True])
def test_outputs_are_cast_to_their_datatype_whatever_the_layout(binary: bool) -> None:
    strided = np.arange(12, dtype=">f8").reshape(3, 4)[:, ::2]  # big-endian, not contiguous
    body, header_length = encode_response(
        model_name="m",
        model_version=None,
        request_id=None,
        outputs=[EncodedOutput("y", "FP32", strided, binary)],
    )
    got = parse(body, header_length).as_numpy("y")
    assert got.dtype == np.float32
    assert got.tolist() == [[0, 2], [4, 6], [8, 10]]


@pytest.mark.parametrize(
    ("datatype", "array"),
    [("INT32", np.array([1.5])), ("FP32", np.array(["a"], dtype=object)), ("BF16", np.ones(1))],
)
def test_an_output_that_cannot_be_sent_as_its_datatype_is_refused(
    datatype: str, array: np.ndarray
) -> None:
    with pytest.raises(UnsupportedOperationError, match="'y'"):
        encode_response(
            model_name="m",
            model_version=None,
            request_id=None,
            outputs=[EncodedOutput("y", datatype, array, False)],
        )


@pytest.mark.parametrize(
    ("dtype", "datatype"),
    [
        (np.bool_, "BOOL"),
        (np.uint8, "UINT8"),
        (np.uint64, "UINT64"),
        (np.int16, "INT16"),
        (np.dtype(">i4"), "INT32"),
        (np.float16, "FP16"),
        (np.float32, "FP32"),
        (np.float64, "FP64"),
        (object, "BYTES"),
        (np.str_, "BYTES"),
        (np.bytes_, "BYTES"),
    ],
)
def test_datatype_of(dtype: Any, datatype: str) -> None:
    assert datatype_of(np.zeros(1, dtype=dtype)) == datatype


def test_datatype_of_refuses_dtypes_v2_cannot_carry() -> None:
    with pytest.raises(UnsupportedOperationError, match="complex128"):
        datatype_of(np.zeros(1, dtype=np.complex128))


# --- malformed requests ------------------------------------------------------------

DEEP_LIST = orjson.loads(b"[" * 40 + b"1" + b"]" * 40)  # deeper than max_rank, not orjson's cap
TOO_MANY = "over the limit of"
NOT_BOOL = "must be true or false"
TIMEOUT = ("timeout must be a non-negative integer", "parameters.timeout")
NAME = "name must be a non-empty string"
# Members merged over a valid one-input request: (members, message, field).
REQUEST_CASES: list[tuple[dict[str, Any], str, str]] = [
    ({"id": 5}, "id must be a string", "id"),
    ({"parameters": [1]}, "parameters must be an object", "parameters"),
    ({"parameters": {"binary_data_output": "yes"}}, NOT_BOOL, "parameters.binary_data_output"),
    *[({"parameters": {"timeout": value}}, *TIMEOUT) for value in (-1, 1.5, "10", True)],
    ({"inputs": ...}, "inputs must be a non-empty list", "inputs"),
    ({"inputs": []}, "inputs must be a non-empty list", "inputs"),
    ({"inputs": {"name": "x"}}, "inputs must be a non-empty list", "inputs"),
    ({"inputs": [1]}, "each input must be an object", "inputs[0]"),
    ({"inputs": one_input()["inputs"] * 2}, "duplicate input name 'x'", "inputs"),
    ({"outputs": {"name": "y"}}, "outputs must be a list", "outputs"),
    ({"outputs": ["y"]}, "each output must be an object", "outputs[0]"),
    ({"outputs": [{"name": 1}]}, NAME, "outputs[0].name"),
    ({"outputs": [{"name": "y"}, {"name": "y"}]}, "duplicate output name 'y'", "outputs"),
    (
        {"outputs": [{"name": "y", "parameters": {"binary_data": 1}}]},
        "binary_data must be true or false",
        "outputs[0].parameters.binary_data",
    ),
    (
        {"outputs": [{"name": "y", "parameters": {"classification": 3}}]},
        "classification outputs are not supported",
        "outputs[0].parameters.classification",
    ),
]
# Fields of the one input: (fields, message, field under inputs[0]).
INPUT_CASES: list[tuple[dict[str, Any], str, str]] = [
    ({"name": ...}, NAME, "name"),
    ({"name": ""}, NAME, "name"),
    ({"name": 3}, NAME, "name"),
    ({"datatype": ...}, "datatype None is not one of", "datatype"),
    ({"datatype": "fp32"}, "datatype 'fp32' is not one of", "datatype"),
    ({"datatype": "BF16"}, "BF16 is not supported", "datatype"),
    ({"shape": ...}, "shape must be a list", "shape"),
    ({"shape": [-1]}, "shape dimensions must be non-negative integers, got -1", "shape"),
    ({"shape": [2.0]}, "non-negative integers, got 2.0", "shape"),
    ({"shape": [True, 2]}, "non-negative integers, got True", "shape"),
    ({"shape": [1] * 33}, f"33 dimensions, {TOO_MANY} 32", "shape"),
    ({"parameters": {"binary_data_size": 8}}, "exactly one of data or", "data"),
    ({"data": ...}, "exactly one of data or parameters.binary_data_size", "data"),
    ({"data": None}, "exactly one of data or parameters.binary_data_size", "data"),
    ({"parameters": "x"}, "parameters must be an object", "parameters"),
    (
        {"data": ..., "parameters": {"binary_data_size": -4}},
        "binary_data_size must be a non-negative integer",
        "parameters.binary_data_size",
    ),
    (
        {"data": ..., "parameters": {"shared_memory_region": "r"}},
        "shared memory is not supported",
        "parameters.shared_memory_region",
    ),
]
# JSON data of the one input, shape [2]: (datatype, data, message).
DATA_CASES: list[tuple[str, Any, str]] = [
    ("BOOL", [0, 1], "BOOL data must be true or false, got 0"),
    ("INT32", [1, 1.5], "INT32 data must be integers, got 1.5"),
    ("INT64", [1, True], "INT64 data must be integers, got True"),
    ("UINT8", [1, 300], "data holds a value out of range for UINT8"),
    ("INT8", [-129, 0], "out of range for INT8"),
    ("UINT64", [-1, 0], "out of range for UINT64"),
    ("INT64", [2**63, 0], "out of range for INT64"),
    ("FP32", [1e39, 0.0], "out of range for FP32"),
    ("FP32", ["1.5", 2.0], "FP32 data must be numbers, got '1.5'"),
    ("FP64", [True, 2.0], "FP64 data must be numbers, got True"),
    ("FP32", [None, 2.0], "FP32 data must be numbers, got None"),
    ("FP32", [{}, 2.0], "FP32 data must be numbers, got {}"),
    ("BYTES", ["a", 5], "BYTES data must be strings, got 5"),
    ("FP16", [1.0, 2.0], "FP16 cannot be sent as JSON; send FP16 as binary"),
    ("FP32", [1.0, 2.0, 3.0], "data has 3 elements but shape [2] needs 2"),
    ("FP32", [[[1.0, 2.0]]], "data is nested deeper than the shape's 1 dimensions"),
    ("FP32", DEEP_LIST, "nested deeper"),
    ("FP32", 1.0, "data must be a list, got 1.0"),
]


def check_rejected(document: Any, message: str, field: str) -> None:
    error = rejected(orjson.dumps(document))
    assert isinstance(error, InvalidRequestError)
    assert message in str(error)
    assert error.field == field


@pytest.mark.parametrize(("members", "message", "field"), REQUEST_CASES)
def test_malformed_requests_are_400_naming_the_field(
    members: dict[str, Any], message: str, field: str
) -> None:
    document = {**one_input(), **members}
    check_rejected({k: v for k, v in document.items() if v is not ...}, message, field)


@pytest.mark.parametrize(("fields", "message", "field"), INPUT_CASES)
def test_malformed_inputs_are_400_naming_the_field(
    fields: dict[str, Any], message: str, field: str
) -> None:
    check_rejected(one_input(**fields), message, f"inputs[0].{field}")


@pytest.mark.parametrize(("datatype", "data", "message"), DATA_CASES)
def test_json_data_that_does_not_fit_its_datatype_is_400(
    datatype: str, data: Any, message: str
) -> None:
    check_rejected(one_input(datatype=datatype, data=data), message, "inputs[0].data")


def test_the_specs_own_example_is_400_for_its_missing_elements() -> None:
    # inference_rest.md sends input1 with shape [3] and a single element.
    body = b"""{"id":"42","inputs":[
        {"name":"input0","shape":[2,2],"datatype":"UINT32","data":[1,2,3,4]},
        {"name":"input1","shape":[3],"datatype":"BOOL","data":[true]}],
        "outputs":[{"name":"output0"}]}"""
    error = rejected(body)
    assert str(error) == "input 'input1': data has 1 elements but shape [3] needs 3"
    assert error.field == "inputs[1].data"


def test_the_request_must_be_a_json_object() -> None:
    assert "must be an object" in str(rejected(b"[1]"))


def test_integers_beyond_64_bits_are_400() -> None:
    # orjson reads them as floats, so they fail as "not integers" for integer datatypes.
    body = (
        b'{"inputs":[{"name":"x","shape":[1],"datatype":"UINT64","data":[18446744073709551616]}]}'
    )
    assert "UINT64 data must be integers" in str(rejected(body))


def test_input_messages_name_the_input() -> None:
    error = rejected(orjson.dumps(one_input(name="pixels", shape=[-3])))
    assert str(error).startswith("input 'pixels': ")


@pytest.mark.parametrize(
    "body", [b"", b"{", b"\xff\xfe", b"null", b'"inputs"', b"NaN", b'{"inputs": [1e999]}']
)
def test_unparseable_json_is_400(body: bytes) -> None:
    assert isinstance(rejected(body), InvalidRequestError)


def test_250000_deep_nested_body_is_rejected_quickly() -> None:
    body = b'{"inputs":' + b"[" * 250_000 + b"]" * 250_000 + b"}"
    started = time.perf_counter()
    error = rejected(body)
    assert time.perf_counter() - started < 1.0
    assert "not valid" in str(error)


NEAR_ORJSON_LIMIT = "[" * 1020 + "]" * 1020


@pytest.mark.parametrize(
    "template",
    [
        '{"id": %s, "inputs": []}',
        '{"inputs": %s}',
        '{"inputs": [%s]}',
        '{"inputs": [{"name": %s}]}',
        '{"inputs": [{"name": "x", "datatype": %s}]}',
        '{"inputs": [{"name": "x", "datatype": "FP32", "shape": %s}]}',
        '{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": %s}]}',
        '{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [%s]}]}',
        '{"parameters": {"timeout": %s}, "inputs": []}',
        '{"outputs": [{"name": "y", "parameters": {"binary_data": %s}}], "inputs": []}',
    ],
)
def test_deeply_nested_values_anywhere_are_400(template: str) -> None:
    # Echoing such a value in a message must not hit Python's recursion limit.
    assert isinstance(rejected((template % NEAR_ORJSON_LIMIT).encode()), InvalidRequestError)


@pytest.mark.parametrize(
    ("limits", "document", "message"),
    [
        (V2Limits(max_inputs=1), {"inputs": [one_input()["inputs"][0], {}]}, "max_inputs"),
        (
            V2Limits(max_outputs=1),
            {**one_input(), "outputs": [{"name": "a"}, {"name": "b"}]},
            "max_outputs",
        ),
        (V2Limits(max_rank=2), one_input(shape=[1, 1, 2]), "over the limit of 2"),
    ],
)
def test_count_limits_are_400(limits: V2Limits, document: Any, message: str) -> None:
    error = rejected(orjson.dumps(document), limits=limits)
    assert isinstance(error, InvalidRequestError)
    assert message in str(error)


def test_element_limit_is_413_per_shape_and_summed_over_inputs() -> None:
    small = V2Limits(max_elements=10)
    error = rejected(orjson.dumps(one_input(shape=[11], data=[0.0] * 11)), limits=small)
    assert isinstance(error, PayloadTooLargeError)
    assert "max_elements" in str(error)
    two = {"inputs": [one_input(name=n, shape=[6], data=[0.0] * 6)["inputs"][0] for n in "ab"]}
    error = rejected(orjson.dumps(two), limits=small)
    assert isinstance(error, PayloadTooLargeError)
    assert "12 elements, over the limit of 10 (max_elements)" in str(error)


@pytest.mark.parametrize("shape", [[16, 2**60 + 2], [0, 2**62, 2**62], [2**64 - 1]])
def test_overflowing_shapes_are_refused_not_crashed_on(shape: list[int]) -> None:
    # Triton's test_buffer_size_overflow; a zero dimension must not hide the others.
    document = one_input(shape=shape, data=..., parameters={"binary_data_size": 0})
    body, header = with_chunks(document)
    assert isinstance(rejected(body, header), PayloadTooLargeError)


def test_bytes_element_limit_is_413_in_json_and_binary() -> None:
    limits = V2Limits(max_bytes_element=4)
    document = one_input(shape=[1], datatype="BYTES", data=["12345"])
    assert isinstance(rejected(orjson.dumps(document), limits=limits), PayloadTooLargeError)
    chunk = struct.pack("<I", 5) + b"12345"
    document = one_input(shape=[1], datatype="BYTES", data=..., parameters={"binary_data_size": 9})
    body, header = with_chunks(document, chunk)
    error = rejected(body, header, limits)
    assert isinstance(error, PayloadTooLargeError)
    assert "max_bytes_element" in str(error)


# --- binary framing -----------------------------------------------------------------

VALID_BODY, _VALID_HEADER = triton_request(
    [
        triton_input("a", np.arange(4, dtype=np.float32), "FP32", binary=True),
        triton_input("b", np.array([b"xy", b""], dtype=object), "BYTES", binary=True),
    ]
)
assert _VALID_HEADER is not None
VALID_HEADER: str = _VALID_HEADER


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("99999999999", "out of range"),  # Triton's out-of-range test
        ("2147483648", "out of range"),
        ("0" * 20 + "1" * 11, "out of range"),
        ("-1", "decimal integer"),
        ("abc", "decimal integer"),
        ("1e3", "decimal integer"),
        ("\u0663", "decimal integer"),  # a digit, but not an ASCII one
        ("", "decimal integer"),
        (str(len(VALID_BODY) + 1), "the body has only"),
        (
            "0",
            "raw binary requests (Inference-Header-Content-Length: 0) are not supported; "
            "send a JSON header",
        ),
    ],
)
def test_bad_header_length_is_400(header: str, message: str) -> None:
    error = rejected(VALID_BODY, header)
    assert isinstance(error, InvalidRequestError)
    assert message in str(error)
    assert error.field == "Inference-Header-Content-Length"


def test_header_length_may_carry_surrounding_spaces() -> None:
    assert len(decode_request(VALID_BODY, f" {VALID_HEADER} ", LIMITS).inputs) == 2


def binary_input(datatype: str, shape: list[int], size: int) -> dict[str, Any]:
    entry = {"name": "x", "shape": shape, "datatype": datatype}
    return {"inputs": [{**entry, "parameters": {"binary_data_size": size}}]}


@pytest.mark.parametrize(
    ("document", "chunk", "message"),
    [
        (binary_input("FP32", [2], 8), b"\0" * 9, "add up to 8 bytes but the body has 9"),
        (
            binary_input("FP32", [2], 12),
            b"\0" * 12,
            "binary_data_size is 12 bytes but 2 FP32 elements take 8",
        ),
        (binary_input("INT64", [1], 8), b"", "add up to 8 bytes but the body has 0"),
        (binary_input("BYTES", [2], 6), b"\0" * 6, "too small for 2 BYTES elements"),
        (
            binary_input("BYTES", [1], 6),
            struct.pack("<I", 3) + b"ab",
            "runs past the end of its chunk",
        ),
        (
            binary_input("BYTES", [1], 7),
            struct.pack("<I", 2) + b"abc",
            "1 bytes left after its 1 elements",
        ),
        (
            binary_input("BYTES", [2], 8),
            struct.pack("<I", 2) + b"ab" + b"\0\0",
            "ends inside the length of element 1",
        ),
        (binary_input("BYTES", [1], 4), struct.pack("<I", 2**32 - 1), "runs past the end"),
        (binary_input("BOOL", [2], 2), b"\x01\x02", "BOOL bytes must be 0 or 1"),
    ],
)
def test_bad_binary_chunks_are_400(document: dict[str, Any], chunk: bytes, message: str) -> None:
    body, header = with_chunks(document, chunk)
    error = rejected(body, header)
    assert isinstance(error, InvalidRequestError)
    assert message in str(error)


def test_binary_size_without_the_header_is_400() -> None:
    body = orjson.dumps(binary_input("FP32", [1], 4))
    assert "add up to 4 bytes but the body has 0" in str(rejected(body))


def test_trailing_bytes_after_a_json_only_request_are_400() -> None:
    body, header = with_chunks(one_input(), b"junk")
    assert "add up to 0 bytes but the body has 4" in str(rejected(body, header))


def test_limits_refuse_impossible_settings() -> None:
    with pytest.raises(InvalidArgumentError, match="max_rank"):
        V2Limits(max_rank=65)
    with pytest.raises(InvalidArgumentError, match="max_elements"):
        V2Limits(max_elements=0)


# --- fuzz: nothing but 400 / 413, and fast ------------------------------------------

KEYS = ["inputs", "outputs", "id", "parameters", "name", "shape", "datatype", "data"]
KEYS += ["binary_data_size", "binary_data", "binary_data_output", "timeout", "classification"]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["FP32", "BYTES", "BOOL", "UINT8", "INT64", "FP16", "BF16", "x", ""]),
    st.text(max_size=8),
)
JSONISH = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=4)), inner, max_size=6),
    ),
    max_leaves=40,
)
LEAVES = st.one_of(
    st.booleans(),
    st.integers(min_value=-300, max_value=300),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=3),
)
FUZZ_DATATYPES = st.sampled_from(["FP32", "FP64", "INT8", "UINT64", "BOOL", "BYTES", "FP16", "x"])


@st.composite
def plausible_input(draw: st.DrawFn) -> dict[str, Any]:
    """An input entry that is often valid, so the fuzz reaches the tensor decoders."""
    leaves = draw(st.lists(LEAVES, max_size=6) | st.lists(st.lists(LEAVES, max_size=3), max_size=3))
    shapes = st.just([len(leaves)]) | st.lists(st.integers(min_value=-1, max_value=4), max_size=3)
    entry: dict[str, Any] = {
        "name": draw(st.sampled_from(["a", "b"])),
        "shape": draw(shapes),
        "datatype": draw(FUZZ_DATATYPES),
        "data": draw(st.just(leaves) | JSONISH),
    }
    if draw(st.booleans()):
        size = draw(st.integers(min_value=-1, max_value=40))
        entry["parameters"] = {"binary_data_size": size}
        if draw(st.booleans()):
            del entry["data"]
    return entry


OUTPUT_ENTRIES = st.lists(
    st.fixed_dictionaries(
        {"name": st.sampled_from(["y", "z"])},
        optional={"parameters": st.dictionaries(st.sampled_from(KEYS), SCALARS, max_size=2)},
    ),
    max_size=3,
)
PLAUSIBLE = st.fixed_dictionaries(
    {"inputs": st.lists(plausible_input(), min_size=1, max_size=3)},
    optional={
        "outputs": OUTPUT_ENTRIES | JSONISH,
        "id": st.text(max_size=3) | SCALARS,
        "parameters": st.dictionaries(st.sampled_from(KEYS), SCALARS, max_size=3),
    },
)
HEADERS = st.one_of(
    st.none(), st.integers(min_value=-2, max_value=300).map(str), st.text(max_size=6)
)


def fuzz(examples: int) -> settings:
    return settings(
        deadline=None,
        max_examples=examples,
        suppress_health_check=[HealthCheck.too_slow],
        database=None,
    )


def decodes_or_rejects(body: bytes, header: str | None) -> None:
    started = time.perf_counter()
    try:
        request = decode_request(body, header, LIMITS)
    except REJECTED:
        pass
    else:
        assert isinstance(request, V2Request)
        for tensor in request.inputs:
            assert tensor.array.shape == tensor.shape
    assert time.perf_counter() - started < 1.0


@fuzz(60)
@given(body=st.binary(max_size=200), header=HEADERS)
def test_fuzz_arbitrary_bytes(body: bytes, header: str | None) -> None:
    decodes_or_rejects(body, header)


@fuzz(100)
@given(
    document=st.one_of(JSONISH, PLAUSIBLE),
    tail=st.binary(max_size=48),
    header_mode=st.sampled_from(["none", "exact", "random"]),
    header=HEADERS,
)
def test_fuzz_json_structures(
    document: Any, tail: bytes, header_mode: str, header: str | None
) -> None:
    json_part = orjson.dumps(document)
    if header_mode == "none":
        decodes_or_rejects(json_part, None)
    else:
        exact = str(len(json_part))
        decodes_or_rejects(json_part + tail, exact if header_mode == "exact" else header)


@fuzz(60)
@given(
    position=st.integers(min_value=0, max_value=len(VALID_BODY) - 1),
    replacement=st.binary(max_size=4),
    cut=st.integers(min_value=0, max_value=len(VALID_BODY)),
    shift=st.integers(min_value=-8, max_value=8),
)
def test_fuzz_mutated_tritonclient_requests(
    position: int, replacement: bytes, cut: int, shift: int
) -> None:
    mutated = VALID_BODY[:position] + replacement + VALID_BODY[position + 1 :]
    decodes_or_rejects(mutated, VALID_HEADER)
    decodes_or_rejects(VALID_BODY[:cut], VALID_HEADER)
    decodes_or_rejects(VALID_BODY, str(int(VALID_HEADER) + shift))


NUMERIC = [name for name in SAMPLES if name != "BYTES"]
SHAPES_FOR_ARRAYS = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)


def random_array(data: st.DataObject, datatype: str, *, finite: bool) -> np.ndarray:
    dtype = SAMPLES[datatype].dtype
    elements = hnp.from_dtype(dtype, allow_nan=not finite, allow_infinity=not finite)
    return data.draw(hnp.arrays(dtype, SHAPES_FOR_ARRAYS, elements=elements))


@fuzz(40)
@given(data=st.data(), datatype=st.sampled_from(NUMERIC), binary=st.booleans())
def test_property_tritonclient_requests_round_trip(
    data: st.DataObject, datatype: str, binary: bool
) -> None:
    binary = binary or datatype == "FP16"
    array = random_array(data, datatype, finite=False)  # NaN/Infinity: bare tokens in JSON
    body, header = triton_request([triton_input("x", array, datatype, binary=binary)])
    got = only(decode_request(body, header, LIMITS))
    assert got.array.dtype == array.dtype
    np.testing.assert_array_equal(got.array, array)


@fuzz(40)
@given(data=st.data(), datatype=st.sampled_from(NUMERIC), binary=st.booleans())
def test_property_responses_round_trip_through_tritonclient(
    data: st.DataObject, datatype: str, binary: bool
) -> None:
    array = random_array(data, datatype, finite=False)
    body, header_length = encode_response(
        model_name="m",
        model_version=None,
        request_id=None,
        outputs=[EncodedOutput("y", datatype, array, binary)],
    )
    got = parse(body, header_length).as_numpy("y")
    assert got.dtype == array.dtype
    np.testing.assert_array_equal(got, array)
