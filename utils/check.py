"""Assertions used by the notebooks, and self-checks for exercises.

``assert_close`` compares numbers across NumPy, PyTorch and TensorFlow with a stated tolerance and, on
failure, names the worst element. ``check_answer`` tells a learner *what* is wrong with an exercise
answer (type, shape, dtype, values) without printing the expected answer.
"""
import numpy as np


def to_numpy(x) -> np.ndarray:
    """A NumPy copy of a NumPy array, PyTorch tensor, TensorFlow/Keras tensor or Python number/list."""
    if hasattr(x, "detach"):  # torch.Tensor
        x = x.detach().cpu().numpy()
    elif hasattr(x, "numpy") and not isinstance(x, np.ndarray):  # tf.Tensor / tf.Variable
        x = x.numpy()
    return np.asarray(x)


def max_abs_diff(a, b) -> float:
    """Largest absolute element-wise difference between two array-likes of the same shape."""
    a, b = to_numpy(a), to_numpy(b)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0


def assert_close(actual, expected, atol: float = 1e-5, rtol: float = 0.0, name: str = "values") -> float:
    """Assert ``|actual - expected| <= atol + rtol * |expected|`` element-wise; return the max abs diff.

    The error message shows the worst element: its index, both values and the tolerance.
    """
    _check_tolerances(atol, rtol)
    a, e = to_numpy(actual).astype(np.float64), to_numpy(expected).astype(np.float64)
    if a.shape != e.shape:
        raise AssertionError(f"{name}: shape {a.shape} differs from expected shape {e.shape}")
    if not np.all(np.isfinite(a)):
        raise AssertionError(f"{name}: {int(np.sum(~np.isfinite(a)))} non-finite values (nan/inf)")
    excess = np.abs(a - e) - (atol + rtol * np.abs(e))
    worst = np.unravel_index(np.argmax(excess), a.shape) if a.size else ()
    if a.size and excess[worst] > 0:
        raise AssertionError(
            f"{name}: {int(np.sum(excess > 0))} of {a.size} elements differ beyond atol={atol:g}, rtol={rtol:g}; "
            f"worst at index {tuple(int(i) for i in worst)}: {a[worst]:.8g} vs expected {e[worst]:.8g} "
            f"(diff {abs(a[worst] - e[worst]):.3g})")
    return max_abs_diff(a, e)


def _check_tolerances(atol, rtol) -> None:
    from ._validate import number

    number("atol", atol, 0.0)
    number("rtol", rtol, 0.0)


def relative_diff(a, b) -> float:
    """``||a - b|| / ||b||`` (Frobenius norms): scale-free distance between two solutions of the same shape."""
    a, b = to_numpy(a).astype(np.float64), to_numpy(b).astype(np.float64)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {a.shape} vs {b.shape}")
    if not np.any(b):
        raise ValueError("b must not be all zeros (its norm is the denominator); compare with max_abs_diff instead")
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def check_answer(answer, expected, name: str = "answer", atol: float = 1e-6, rtol: float = 1e-6) -> None:
    """Exercise self-check: raise ``AssertionError`` saying what is wrong, without revealing ``expected``.

    Prints a short confirmation when the answer is right.
    """
    _check_tolerances(atol, rtol)
    if answer is None:
        raise AssertionError(f"{name}: no answer yet (got None) - fill in the exercise cell and run it")
    try:
        a = to_numpy(answer)
    except Exception as err:  # noqa: BLE001 - any unconvertible object is a wrong type
        raise AssertionError(f"{name}: expected a number or an array, got {type(answer).__name__}") from err
    e = to_numpy(expected)
    if a.shape != e.shape:
        raise AssertionError(f"{name}: wrong shape {a.shape}; expected shape {e.shape}")
    if a.dtype.kind not in "biuf":
        raise AssertionError(f"{name}: wrong dtype {a.dtype}; expected a numeric array")
    if not np.all(np.isfinite(a)):
        raise AssertionError(f"{name}: contains nan or inf")
    wrong = ~np.isclose(a.astype(np.float64), e.astype(np.float64), atol=atol, rtol=rtol)
    if wrong.any():
        where = "the value is" if a.size == 1 else f"{int(wrong.sum())} of {a.size} values are"
        raise AssertionError(f"{name}: right shape, but {where} wrong (tolerance atol={atol:g}, rtol={rtol:g})")
    print(f"✓ {name}: correct")


def check_property(answer, holds, name: str = "answer", requirement: str = "the exercise's requirement") -> None:
    """Exercise self-check for an answer judged by what it does, not by equality with a hidden value.

    ``holds(answer)`` must return True; the message names ``requirement`` without revealing how to meet it.
    Use it when many answers are right (a model, a function) or when the expected value would give the answer away.
    """
    if answer is None:
        raise AssertionError(f"{name}: no answer yet (got None) - fill in the exercise cell and run it")
    if not callable(holds):
        raise TypeError(f"holds must be a function of the answer returning True or False; got {type(holds).__name__}")
    try:
        ok = bool(holds(answer))
    except Exception as err:  # noqa: BLE001 - any failure while checking means the answer is not usable yet
        raise AssertionError(f"{name}: could not be checked ({type(err).__name__}: {err})") from err
    if not ok:
        raise AssertionError(f"{name}: does not meet the requirement: {requirement}")
    print(f"✓ {name}: correct")
