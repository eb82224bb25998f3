"""Answer key of chapter 1 (regression): each exercise's expected value, from scikit-learn."""
import numpy as np

from .. import _validate as check
from ..regression import _design, _weights, sigmoid  # the input checks regression.py applies to X, y and w

EXERCISES = ("mae", "ridge", "log_loss", "macro_recall")
_EXERCISE_INPUTS = {"mae": ("X", "y", "w"), "ridge": ("X", "y", "lam"), "log_loss": ("X", "y", "w"),
                    "macro_recall": ("y", "predictions")}


def exercise_reference(name: str, **inputs):
    """Expected answer of chapter 1's exercise ``name`` (one of :data:`EXERCISES`), computed with scikit-learn,
    independently of the learner's code, so the notebook's check cell compares without displaying how.

    mae: X (N, D), y (N,), w (D,) -> the mean absolute error of ``X @ w`` (float).
    ridge: X (N, D) with a bias column first, y (N,), lam -> weights (D,) minimising
    ``||Xw - y||^2 + lam ||w[1:]||^2`` (the intercept unpenalised), by ``sklearn.linear_model.Ridge``.
    log_loss: X (N, D), y (N,) in {0, 1}, w (D,) -> the mean binary cross-entropy of ``sigmoid(X @ w)`` (float).
    macro_recall: y (N,) true labels, predictions (N,) -> the mean over classes of per-class recall (float).
    """
    from sklearn import linear_model
    from sklearn import metrics as sk_metrics

    if name not in EXERCISES:
        raise ValueError(f"name must be one of {', '.join(EXERCISES)}, got {name!r}")
    needed = _EXERCISE_INPUTS[name]
    if set(inputs) != set(needed):
        raise TypeError(f"exercise {name!r} takes the inputs {', '.join(needed)}, got {', '.join(inputs) or 'none'}")
    if name == "macro_recall":
        return float(sk_metrics.recall_score(inputs["y"], inputs["predictions"], average="macro"))
    X, y = _design(inputs["X"], inputs["y"])
    if name == "ridge":
        ridge = linear_model.Ridge(alpha=check.number("lam", inputs["lam"], 0.0)).fit(X[:, 1:], y)
        return np.r_[ridge.intercept_, ridge.coef_]
    w = _weights(inputs["w"], X.shape[1])
    if name == "mae":
        return float(sk_metrics.mean_absolute_error(y, X @ w))
    return float(sk_metrics.log_loss(y, sigmoid(X @ w), labels=[0, 1]))
