"""Values between the trusted grader and the student's kernel, as plain JSON data.

Used on both sides: by the grader (outside the sandbox) and by the kernel runner (inside it, as a
file of its own: this module imports nothing of the course). What crosses is data only:

* ``None``, bools, ints, floats, strings; numpy numbers and arrays; torch tensors (dtype, shape,
  the raw numbers, ``requires_grad``); torch dtypes; lists, tuples and dicts of these;
* ``{"t": "returning", ...}``: a callable that ignores its arguments and returns copies of a value
  (the only callable a hidden test may hand to student code, :class:`autograder.checks.returning`);
* ``{"t": "ref", ...}``: an object that stays in the kernel (a function, an ``nn.Module``...),
  named by a number; the grader calls it or reads its attributes through more requests.

The grader decodes what the kernel sends with :func:`decode` and nothing else: whatever the
student's process sends, the grader gets plain tensors, numbers and containers, within the limits
below, or a :class:`WireError`.
"""
from __future__ import annotations

import base64
import json
import math

MAX_ELEMENTS = 262_144            # per tensor or array (2 MB of float64)
MAX_ITEMS = 10_000                # per list, tuple or dict
MAX_DEPTH = 12                    # nesting of containers
MAX_STRING = 100_000
MAX_MESSAGE_BYTES = 6 * 1024 * 1024   # a reply, before base64

# dtype name -> numpy dtype string of the bytes sent (bfloat16 travels as float32).
TENSOR_DTYPES = {"float64": "<f8", "float32": "<f4", "float16": "<f2", "bfloat16": "<f4", "int64": "<i8",
                 "int32": "<i4", "int16": "<i2", "int8": "|i1", "uint8": "|u1", "bool": "|b1"}
ARRAY_DTYPES = {"<f8", "<f4", "<f2", "<i8", "<i4", "<i2", "|i1", "<u8", "<u4", "<u2", "|u1", "|b1"}


class WireError(ValueError):
    """What was received is not a value this protocol carries."""


class Returning:
    """Kernel side of :class:`autograder.checks.returning`: returns copies of ``value``."""

    def __init__(self, value, copy):
        self._value, self._copy = value, copy

    def __call__(self, *args, **kwargs):
        return self._copy(self._value)


def _float(value: float):
    return value if math.isfinite(value) else {"t": "float", "v": repr(value)}


def encode(value, torch, np, keep=None, depth: int = 0):
    """``value`` as JSON-able data. ``keep(obj) -> int`` stores an object that is not data and
    returns its number (kernel side); without it such an object is an error (grader side)."""
    if depth > MAX_DEPTH:
        raise WireError("nested too deeply")
    if value is None or isinstance(value, (bool, str)):
        if isinstance(value, str) and len(value) > MAX_STRING:
            raise WireError(f"a string of {len(value)} characters")
        return value if not isinstance(value, str) else {"t": "str", "v": value}
    if isinstance(value, int) and not isinstance(value, bool) and type(value).__module__ == "builtins":
        return {"t": "int", "v": str(value)}
    if isinstance(value, float) and type(value).__module__ == "builtins":
        return {"t": "py", "v": _float(float(value))}
    if isinstance(value, torch.Tensor):
        return _encode_tensor(value, torch, np)
    if isinstance(value, np.ndarray):
        array = np.ascontiguousarray(value)
        if array.dtype.str not in ARRAY_DTYPES or array.size > MAX_ELEMENTS:
            raise WireError(f"an array of dtype {array.dtype} and size {array.size}")
        return {"t": "ndarray", "dtype": array.dtype.str, "shape": list(array.shape),
                "data": base64.b64encode(array.tobytes()).decode("ascii")}
    if isinstance(value, np.generic):
        array = np.asarray(value)
        if array.dtype.str not in ARRAY_DTYPES:
            raise WireError(f"a numpy number of dtype {array.dtype}")
        return {"t": "npnumber", "dtype": array.dtype.str, "data": base64.b64encode(array.tobytes()).decode("ascii")}
    if isinstance(value, torch.dtype):
        return {"t": "dtype", "v": str(value).replace("torch.", "")}
    if keep is None and getattr(type(value), "_wire_returning", False):
        return {"t": "returning", "v": encode(value.value, torch, np, None, depth + 1)}
    if keep is None and isinstance(getattr(type(value), "_wire_ref", None), property):
        return {"t": "ref", "id": value._wire_ref}
    if isinstance(value, (list, tuple, torch.Size)) and (keep is None or type(value) in (list, tuple, torch.Size)):
        if len(value) > MAX_ITEMS:
            raise WireError(f"a sequence of {len(value)} items")
        kind = "list" if isinstance(value, list) else "tuple"
        return {"t": kind, "v": [encode(v, torch, np, keep, depth + 1) for v in value]}
    if isinstance(value, dict) and (keep is None or type(value) is dict):
        if len(value) > MAX_ITEMS:
            raise WireError(f"a dict of {len(value)} items")
        return {"t": "dict", "v": [[encode(k, torch, np, keep, depth + 1), encode(v, torch, np, keep, depth + 1)]
                                   for k, v in value.items()]}
    if keep is None:
        raise WireError(f"hidden tests may pass only data and autograder.checks.returning(...) to student code, "
                        f"not {type(value).__name__}")
    return {"t": "ref", "id": keep(value), "cls": f"{type(value).__module__}.{type(value).__qualname__}"[:200],
            "callable": callable(value)}


def _encode_tensor(tensor, torch, np):
    cls = f"{type(tensor).__module__}.{type(tensor).__qualname__}"[:200]
    dtype = str(tensor.dtype).replace("torch.", "")
    if dtype not in TENSOR_DTYPES:
        raise WireError(f"a tensor of dtype {dtype}")
    if tensor.numel() > MAX_ELEMENTS:
        raise WireError(f"a tensor of {tensor.numel()} elements (at most {MAX_ELEMENTS})")
    plain = torch.Tensor._make_subclass(torch.Tensor, tensor.detach()) if type(tensor) is not torch.Tensor else tensor
    plain = plain.detach().cpu().resolve_conj().resolve_neg()
    if dtype == "bfloat16":
        plain = plain.to(torch.float32)
    array = np.ascontiguousarray(plain.numpy())
    return {"t": "tensor", "dtype": dtype, "shape": list(tensor.shape), "grad": bool(tensor.requires_grad),
            "cls": cls, "data": base64.b64encode(array.tobytes()).decode("ascii")}


def decode(data, torch, np, deref=None, copy=None, depth: int = 0):
    """The value ``data`` stands for. ``deref(number)`` gives back a kept object (kernel side);
    without it a ``ref`` becomes ``make_ref(data)`` by the caller's :func:`decode` wrapper."""
    if depth > MAX_DEPTH:
        raise WireError("nested too deeply")
    if data is None or isinstance(data, bool):
        return data
    if not isinstance(data, dict) or not isinstance(data.get("t"), str):
        raise WireError(f"not a value: {str(data)[:80]}")
    kind, v = data["t"], data.get("v")
    if kind == "str" and isinstance(v, str):
        return v
    if kind == "int" and isinstance(v, str) and len(v) < 400:
        return int(v)
    if kind == "py":
        if isinstance(v, dict) and v.get("t") == "float" and v.get("v") in ("nan", "inf", "-inf"):
            return float(v["v"])
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
    if kind == "tensor":
        return _decode_tensor(data, torch, np)
    if kind == "ndarray":
        return _array(data, data.get("shape"), np).copy()
    if kind == "npnumber":
        return _array(data, [], np)[()]
    if kind == "dtype" and v in TENSOR_DTYPES:
        return getattr(torch, v)
    if kind in ("list", "tuple") and isinstance(v, list) and len(v) <= MAX_ITEMS:
        items = [decode(item, torch, np, deref, copy, depth + 1) for item in v]
        return items if kind == "list" else tuple(items)
    if kind == "dict" and isinstance(v, list) and len(v) <= MAX_ITEMS:
        out = {}
        for pair in v:
            if not (isinstance(pair, list) and len(pair) == 2):
                raise WireError("a dict item is not a pair")
            key = decode(pair[0], torch, np, deref, copy, depth + 1)
            if not isinstance(key, (str, int, float, bool, type(None), tuple)):
                raise WireError(f"a dict key of type {type(key).__name__}")
            out[key] = decode(pair[1], torch, np, deref, copy, depth + 1)
        return out
    if kind == "returning" and copy is not None:
        return Returning(decode(v, torch, np, deref, copy, depth + 1), copy)
    if kind == "ref" and isinstance(data.get("id"), int):
        if deref is None:
            raise WireError("an object reference where data was expected")
        return deref(data)
    raise WireError(f"not a value of this protocol: {kind!r}")


def _array(data, shape, np):
    dtype = data.get("dtype")
    if dtype not in ARRAY_DTYPES or not isinstance(shape, list) or not all(
            isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= MAX_ELEMENTS for n in shape):
        raise WireError("an array with a bad dtype or shape")
    size = 1
    for n in shape:
        size *= n
    if size > MAX_ELEMENTS or not isinstance(data.get("data"), str):
        raise WireError("an array too large")
    raw = base64.b64decode(data["data"], validate=True)
    if len(raw) != size * np.dtype(dtype).itemsize:
        raise WireError("an array whose bytes do not match its shape")
    return np.frombuffer(raw, dtype=np.dtype(dtype)).reshape(shape)


def _decode_tensor(data, torch, np):
    dtype = data.get("dtype")
    if dtype not in TENSOR_DTYPES:
        raise WireError(f"a tensor of dtype {dtype!r}")
    array = _array(dict(data, dtype=TENSOR_DTYPES[dtype]), data.get("shape"), np)
    tensor = torch.from_numpy(array.copy()).to(getattr(torch, dtype))
    if data.get("grad") is True and tensor.is_floating_point():
        tensor.requires_grad_(True)
    return tensor


def tensors_in(value, torch, found: list | None = None) -> list:
    """The tensors in ``value`` (nested lists, tuples, dicts), in the same order on both sides:
    the kernel reports them after a call, the grader updates its own arguments from them."""
    found = [] if found is None else found
    if isinstance(value, torch.Tensor):
        found.append(value)
    elif isinstance(value, (list, tuple)):
        for v in value:
            tensors_in(v, torch, found)
    elif isinstance(value, dict):
        for v in value.values():
            tensors_in(v, torch, found)
    return found


def dumps(message: dict) -> str:
    return base64.b64encode(json.dumps(message).encode()).decode("ascii")


def loads(text: str) -> dict:
    if len(text) > MAX_MESSAGE_BYTES * 4 // 3 + 8:
        raise WireError("a message over the size limit")
    try:
        message = json.loads(base64.b64decode(text, validate=True))
    except (ValueError, RecursionError) as error:
        raise WireError(f"a garbled message ({type(error).__name__})") from None
    if not isinstance(message, dict):
        raise WireError("a message that is not a JSON object")
    return message
