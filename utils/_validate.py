"""Cheap argument checks shared by every ``utils`` module: Python ints, shapes and dtypes only, never a pass
over a tensor's values. Each raises ``ValueError`` or ``TypeError`` naming the parameter, the bad value and
what is accepted, so that a learner's mistake is reported at the course's API, not deep inside torch/NumPy.
"""
import numbers
import os


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def integer(name: str, value, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an int within ``[minimum, maximum]`` (bools and floats refused)."""
    if not _is_int(value):
        raise TypeError(f"{name} must be an int, got {value!r} ({type(value).__name__})")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        low = "-inf" if minimum is None else minimum
        high = "inf" if maximum is None else maximum
        raise ValueError(f"{name} must be an int in [{low}, {high}], got {value!r}")
    return int(value)


def positive_int(name: str, value) -> int:
    """An int >= 1."""
    return _int_at_least(name, value, 1, "positive")


def non_negative_int(name: str, value) -> int:
    """An int >= 0."""
    return _int_at_least(name, value, 0, "non-negative")


def _int_at_least(name: str, value, minimum: int, kind: str) -> int:
    if not _is_int(value):
        raise TypeError(f"{name} must be a {kind} int, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{name} must be a {kind} int (>= {minimum}), got {value!r}")
    return int(value)


def number(name: str, value, low: float | None = None, high: float | None = None, low_open: bool = False,
           high_open: bool = False) -> float:
    """A real number in the interval given by ``low``/``high`` (open ends when ``*_open``)."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high or value != value:  # value != value: nan
        if high is None:
            accepted = f"be {'>' if low_open else '>='} {low:g}"
        elif low is None:
            accepted = f"be {'<' if high_open else '<='} {high:g}"
        else:
            accepted = f"lie in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"{name} must {accepted}, got {value!r}")
    return float(value)


def probability(name: str, value) -> float:
    """A dropout-like rate in [0, 1)."""
    return number(name, value, 0.0, 1.0, high_open=True)


def one_of(name: str, value, accepted) -> object:
    """``value`` if it is one of ``accepted``."""
    try:
        ok = value in accepted
    except TypeError:  # unhashable value against a set/dict
        ok = False
    if not ok:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, accepted))}, got {value!r}")
    return value


def shape_of(x) -> tuple:
    return tuple(int(s) for s in x.shape)


def tensor(name: str, x, ndim: int | tuple | None = None, spec: str | None = None, floating: bool | None = None,
           integer_dtype: bool = False, bool_dtype: bool = False):
    """Check that ``x`` is a torch tensor with ``ndim`` dims (an int or a tuple of accepted counts) and the
    dtype family asked for; ``spec`` is the expected shape as the docstring writes it, e.g. ``"(B, T, D)"``."""
    import torch

    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor{' of shape ' + spec if spec else ''}, "
                        f"got {type(x).__name__}")
    if ndim is not None:
        accepted = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.dim() not in accepted:
            raise ValueError(f"{name} must have shape {spec or f'with {ndim} dims'}, got {shape_of(x)}")
    if floating and not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor (e.g. float32), got dtype {x.dtype}; "
                        "convert with .float()")
    if integer_dtype and (x.is_floating_point() or x.is_complex() or x.dtype == torch.bool):
        raise TypeError(f"{name} must hold integer ids (int64, e.g. from torch.long), got dtype {x.dtype}")
    if bool_dtype and x.dtype != torch.bool:
        raise TypeError(f"{name} must be a bool tensor, got dtype {x.dtype}")
    return x


def array(name: str, x, ndim: int | tuple | None = None, spec: str | None = None, dtype=None):
    """``np.asarray(x, dtype)`` with ``ndim`` dims; refuses objects that are not numeric arrays."""
    import numpy as np

    try:
        a = np.asarray(x, dtype=dtype)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a numeric array{' of shape ' + spec if spec else ''}, "
                        f"got {type(x).__name__} ({err})") from None
    if a.dtype == object:
        raise TypeError(f"{name} must be a numeric array{' of shape ' + spec if spec else ''} (equal-length "
                        "rows of numbers), got a ragged or non-numeric object array")
    if ndim is not None:
        accepted = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if a.ndim not in accepted:
            raise ValueError(f"{name} must have shape {spec or f'with {ndim} dims'}, got {a.shape}")
    return a


def integer_labels(name: str, y, ndim: int = 1, spec: str = "(N,)"):
    """A NumPy array of integer class labels (bools read as 0/1, whole floats accepted, other floats refused)."""
    import numpy as np

    a = array(name, y, ndim, spec)
    if a.dtype.kind == "b":
        return a.astype(np.int64)  # False/True are the binary labels 0/1 (e.g. predictions ``p > 0.5``)
    if a.dtype.kind not in "iu":
        if a.dtype.kind == "f" and a.size and np.all(a == np.round(a)):
            return a.astype(np.int64)  # whole floats (e.g. labels read from a CSV) are labels
        raise TypeError(f"{name} must hold integer class labels 0..C-1, got dtype {a.dtype}")
    return a


def same_length(names: tuple, *values) -> int:
    lengths = [len(v) for v in values]
    if len(set(lengths)) > 1:
        listed = ", ".join(f"{n} {ln}" for n, ln in zip(names, lengths, strict=True))
        raise ValueError(f"{' and '.join(names)} must have the same length (one entry per example), got {listed}")
    return lengths[0]


def env_int(variable: str, minimum: int = 1) -> int | None:
    """The int in environment variable ``variable`` (``None`` when unset or empty)."""
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"environment variable {variable} must be an int >= {minimum} (or unset), "
                         f"got {raw!r}") from None
    if value < minimum:
        raise ValueError(f"environment variable {variable} must be an int >= {minimum} (or unset), got {raw!r}")
    return value


def state_dict_differences(own: dict, incoming: dict, optional=()) -> list[str]:
    """Every difference between a model's ``state_dict`` (``own``) and ``incoming`` (names -> tensors):
    missing names, unexpected names, shape mismatches. Names in ``optional`` may be missing."""
    lines = []
    missing = [k for k in own if k not in incoming and k not in optional]
    unexpected = [k for k in incoming if k not in own]
    shapes = [f"{k}: file {shape_of(incoming[k])}, model {shape_of(own[k])}"
              for k in incoming if k in own and shape_of(incoming[k]) != shape_of(own[k])]
    if missing:
        lines.append(f"missing from the file ({len(missing)}): {', '.join(missing[:12])}"
                     + (" ..." if len(missing) > 12 else ""))
    if unexpected:
        lines.append(f"in the file but not in the model ({len(unexpected)}): {', '.join(unexpected[:12])}"
                     + (" ..." if len(unexpected) > 12 else ""))
    if shapes:
        lines.append(f"different shapes ({len(shapes)}): " + "; ".join(shapes[:12])
                     + (" ..." if len(shapes) > 12 else ""))
    return lines


def keras_assignments(pairs, what: str) -> None:
    """``pairs`` of (Keras layer, list of arrays for its ``set_weights``): check every shape first, then
    assign them all, so a mismatch (models of different sizes) leaves the Keras model untouched."""
    differences = []
    for layer, values in pairs:
        have = [tuple(w.shape) for w in layer.get_weights()]
        want = [tuple(v.shape) for v in values]
        if have != want:
            differences.append(f"{layer.name}: Keras {have}, PyTorch gives {want}")
    if differences:
        raise ValueError(f"cannot copy {what}: the two models differ (nothing was copied); build both from the same "
                         "sizes. Differences: " + "; ".join(differences))
    for layer, values in pairs:
        layer.set_weights(values)


def torch_assignments(pairs, what: str) -> None:
    """``pairs`` of (destination tensor, source tensor, name): check every shape, then copy them all."""
    differences = [f"{name}: destination {tuple(dest.shape)}, source {tuple(src.shape)}"
                   for dest, src, name in pairs if dest.shape != src.shape]
    if differences:
        raise ValueError(f"cannot copy {what}: shapes differ (nothing was copied); build both with the same sizes. "
                         "Differences: " + "; ".join(differences))
    import torch

    with torch.no_grad():
        for dest, src, _ in pairs:
            dest.copy_(src)
