"""The only channel between a student's code and the grader: plain data, framed, size-capped.

Student code runs in a separate process; what comes back from it is *data* — numbers,
strings, tuples, lists, dicts, tensors as raw bytes — never objects with behaviour. The
grader decodes it with its own code (no pickle), so a submission cannot return a value that
"equals anything", and nothing it sends can run in the grader. Anything else comes back as an
:class:`Opaque` description, which compares unequal to every expected value.

Frames are a 4-byte big-endian length followed by UTF-8 JSON.
"""

from __future__ import annotations

import base64
import json
import math
import select
import socket
import struct
import time
from dataclasses import dataclass

MAX_FRAME = 64 * 2**20  # bytes of one JSON frame
MAX_ELEMENTS = 4 * 2**20  # elements of one tensor or array
MAX_DEPTH = 32

_DTYPES = ("float64", "float32", "float16", "bfloat16", "int64", "int32", "int16", "int8",
           "uint8", "bool")


class WireError(ValueError):
    """A value that cannot cross the channel, or bytes that are not a valid frame."""


@dataclass(frozen=True)
class Opaque:
    """Something that is not data (a module, a custom object…): kept as its type and repr."""

    type: str
    repr: str

    def __eq__(self, other: object) -> bool:  # never equal, not even to itself
        return False

    __hash__ = object.__hash__

    def __str__(self) -> str:
        return f"<{self.type} object: {self.repr}>"


# --- encoding (runs in the sandbox on results, and in the grader on arguments) ---------------
def encode(value: object, depth: int = 0) -> object:
    """A JSON-ready description of ``value``; raises :class:`WireError` when it is too big."""
    if depth > MAX_DEPTH:
        raise WireError(f"the value is nested more than {MAX_DEPTH} levels deep")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        if abs(value) > 2**63:
            raise WireError("an integer larger than 2**63")
        return int(value)
    if isinstance(value, float):
        return _encode_float(value)
    if isinstance(value, tuple):  # torch.Size is a tuple too
        return {"t": [encode(v, depth + 1) for v in value]}
    if isinstance(value, list):
        return [encode(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {"d": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in value.items()]}
    array = _as_array(value)
    if array is not None:
        return array
    return {"o": [_type_name(value), _safe_repr(value)]}


def _encode_float(x: float) -> object:
    if math.isfinite(x):
        return float(x)
    return {"f": "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")}


def _type_name(value: object) -> str:
    cls = type(value)
    return f"{cls.__module__}.{cls.__qualname__}"


def _safe_repr(value: object) -> str:
    try:
        text = repr(value)
    except Exception as error:  # a broken __repr__ is the submission's problem, not ours
        text = f"<repr failed: {type(error).__name__}>"
    return text if len(text) <= 200 else text[:197] + "..."


def _as_array(value: object) -> dict | None:
    """Tensors and numpy arrays/scalars as dtype, shape and raw little-endian bytes."""
    kind = None
    try:
        import torch

        if isinstance(value, torch.Tensor):
            kind = "tensor"
            tensor = torch.Tensor.detach(value).cpu().contiguous()
            if tensor.is_complex() or str(tensor.dtype).split(".")[-1] not in _DTYPES:
                return None
            dtype = str(tensor.dtype).split(".")[-1]
            shape = list(tensor.shape)
            if tensor.numel() > MAX_ELEMENTS:
                raise WireError(f"a tensor with {tensor.numel()} elements (limit {MAX_ELEMENTS})")
            if dtype == "bfloat16":
                raw = tensor.view(torch.int16).numpy().tobytes()
            else:
                raw = tensor.numpy().tobytes()
            return {"a": [kind, dtype, shape, base64.b64encode(raw).decode("ascii")]}
    except ImportError:
        pass
    try:
        import numpy as np
    except ImportError:
        return None
    if isinstance(value, np.generic) and not isinstance(value, np.ndarray):
        item = value.item()
        return encode(item) if isinstance(item, (bool, int, float)) else None
    if isinstance(value, np.ndarray):
        dtype = value.dtype.name
        if dtype not in _DTYPES or value.dtype.byteorder == ">":
            return None
        if value.size > MAX_ELEMENTS:
            raise WireError(f"an array with {value.size} elements (limit {MAX_ELEMENTS})")
        raw = np.ascontiguousarray(value).tobytes()
        return {"a": ["ndarray", dtype, list(value.shape), base64.b64encode(raw).decode("ascii")]}
    return None


# --- decoding (runs in the grader on results: must accept any bytes without harm) ------------
def decode(data: object, depth: int = 0) -> object:
    """Rebuild a value from :func:`encode`'s description; raises :class:`WireError` if invalid."""
    if depth > MAX_DEPTH + 1:
        raise WireError("nested too deeply")
    if data is None or isinstance(data, (bool, str, int, float)):
        return data
    if isinstance(data, list):
        return [decode(v, depth + 1) for v in data]
    if not isinstance(data, dict) or len(data) != 1:
        raise WireError(f"unexpected {type(data).__name__} in a frame")
    (tag, body), = data.items()
    if tag == "t" and isinstance(body, list):
        return tuple(decode(v, depth + 1) for v in body)
    if tag == "d" and isinstance(body, list):
        pairs = [decode(p, depth + 1) for p in body]
        if not all(isinstance(p, list) and len(p) == 2 for p in pairs):
            raise WireError("a malformed dict")
        try:
            return dict(pairs)
        except TypeError as error:
            raise WireError(f"a dict with an unhashable key: {error}") from None
    if tag == "f" and body in ("nan", "inf", "-inf"):
        return float(body)
    if tag == "o" and isinstance(body, list) and len(body) == 2:
        return Opaque(str(body[0])[:200], str(body[1])[:200])
    if tag == "a" and isinstance(body, list) and len(body) == 4:
        return _decode_array(*body)
    raise WireError(f"unknown tag {tag!r}")


def _decode_array(kind: object, dtype: object, shape: object, b64: object) -> object:
    import numpy as np

    if dtype not in _DTYPES or kind not in ("tensor", "ndarray") or not isinstance(b64, str):
        raise WireError(f"an array of unsupported dtype {dtype!r}")
    if not (isinstance(shape, list) and all(isinstance(n, int) and 0 <= n for n in shape)):
        raise WireError(f"an invalid shape {shape!r}")
    numel = math.prod(shape)
    if numel > MAX_ELEMENTS:
        raise WireError(f"an array with {numel} elements")
    try:
        raw = base64.b64decode(b64, validate=True)
    except ValueError:
        raise WireError("invalid base64 array data") from None
    np_dtype = np.dtype("int16" if dtype == "bfloat16" else dtype)
    if len(raw) != numel * np_dtype.itemsize:
        raise WireError(f"array data of {len(raw)} bytes does not fit shape {shape}")
    array = np.frombuffer(raw, dtype=np_dtype).reshape(shape).copy()
    if kind == "ndarray":
        return array
    import torch

    tensor = torch.from_numpy(array)
    return tensor.view(torch.bfloat16) if dtype == "bfloat16" else tensor


def roundtrip(value: object) -> object:
    """What the grader would receive for ``value`` (used by the in-notebook self-check)."""
    return decode(json.loads(json.dumps(encode(value))))


# --- framing ------------------------------------------------------------------------------------
class ChannelClosed(ConnectionError):
    """The other side closed the channel (or died)."""


class ChannelTimeout(TimeoutError):
    """No complete frame arrived before the deadline."""


def send(sock: socket.socket, message: object) -> None:
    body = json.dumps(message, allow_nan=False).encode("utf-8")
    if len(body) > MAX_FRAME:
        raise WireError(f"a message of {len(body)} bytes (limit {MAX_FRAME})")
    sock.sendall(struct.pack(">I", len(body)) + body)


def receive(sock: socket.socket, deadline: float | None = None, limit: int = MAX_FRAME,
            over=None) -> object:
    """One frame, parsed; ``deadline`` is a ``time.monotonic()`` value or None (wait forever).

    ``over``, if given, is polled every 50 ms while waiting; when it returns True the wait
    ends with :class:`ChannelTimeout` (the caller's CPU budget is spent).
    """
    (size,) = struct.unpack(">I", _read(sock, 4, deadline, over))
    if size > limit:
        raise WireError(f"a frame of {size} bytes (limit {limit})")
    # Once the header has come, the student has answered: the rest is transfer, which the
    # grader's own speed sets (a loaded grader reads slowly while the sandbox waits to write).
    # Polling the budget now would bill that wait to the student as idle time.
    body = _read(sock, size, deadline)
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise WireError(f"a frame that is not valid JSON ({type(error).__name__})") from None


def _read(sock: socket.socket, n: int, deadline: float | None, over=None) -> bytes:
    chunks, got = [], 0
    while got < n:
        while deadline is not None or over is not None:
            left = 3600.0 if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise ChannelTimeout("no answer before the deadline")
            if select.select([sock], [], [], min(left, 0.05) if over else left)[0]:
                break
            if over is not None and over():
                raise ChannelTimeout("the CPU time budget is spent")
        try:
            chunk = sock.recv(min(n - got, 2**20))
        except (ConnectionResetError, BrokenPipeError):
            chunk = b""
        if not chunk:
            raise ChannelClosed("the other side closed the channel")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)
