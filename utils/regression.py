"""Linear, logistic and softmax regression from scratch (NumPy), metrics, and the PyTorch
softmax-regression baseline that later chapters import.

Shapes: N examples, D features (including the bias column when there is one), C classes.
X (N, D), y (N,) targets or integer labels, w (D,) for one output, W (D, C) for C outputs.
"""
import numpy as np
import torch
from torch import nn

from . import _validate as check


def _design(X, y=None, name="X"):
    """X as a float64 (N, D) array and, when given, y as (N,) with the same N."""
    X = check.array(name, X, 2, spec="(N, D)", dtype=np.float64)
    if y is None:
        return X
    y = check.array("y", y, 1, spec="(N,)")
    check.same_length((name, "y"), X, y)
    return X, y


def _weights(w, D: int, name: str = "w", spec: str = "(D,)", ndim: int = 1):
    w = check.array(name, w, ndim, spec=spec, dtype=np.float64)
    if w.shape[0] != D:
        raise ValueError(f"{name} must have shape {spec} with D = {D} (the columns of X), got {w.shape}")
    return w


class Standardizer:
    """z = (x - mean) / std per feature, with mean and std taken from the training set only."""

    def fit(self, X):
        X = _design(X)
        if len(X) == 0:
            raise ValueError("X must hold at least one row (N, D) to take the mean and std of, got 0 rows")
        self.mean_, self.std_ = X.mean(0), X.std(0)
        self.std_[self.std_ == 0] = 1.0  # constant features stay 0 instead of becoming nan
        return self

    def transform(self, X):
        if not hasattr(self, "mean_"):
            raise RuntimeError("call fit(X_train) before transform(X)")
        X = _design(X)
        if X.shape[1] != len(self.mean_):
            raise ValueError(f"X must have shape (N, D) with D = {len(self.mean_)} (as in fit), got {X.shape}")
        return (X - self.mean_) / self.std_


def add_bias_column(X):
    """Prepend a column of ones, so that ``X @ w`` includes the intercept w[0]. (N, D) -> (N, D+1)."""
    X = _design(X)
    return np.hstack([np.ones((len(X), 1)), X])


def polynomial_features(x, degree: int):
    """[x, x^2, ..., x^degree] for a 1-D input. (N,) -> (N, degree)."""
    check.positive_int("degree", degree)
    x = check.array("x", x, 1, spec="(N,)", dtype=np.float64)
    return np.stack([x ** k for k in range(1, degree + 1)], axis=1)


def normal_equation(X, y, l2: float = 0.0):
    """Least squares (ridge when l2 > 0): solve (X^T X + l2 I0) w = X^T y. X (N, D) with bias column 0.

    I0 is the identity with a 0 for the bias, so the intercept is not shrunk (as in scikit-learn's Ridge).
    """
    X, y = _design(X, y)
    check.number("l2", l2, 0.0)
    penalty = l2 * np.eye(X.shape[1])
    penalty[0, 0] = 0.0
    return np.linalg.solve(X.T @ X + penalty, X.T @ y)


def mse(y_pred, y):
    """Mean squared error (1/N) sum (y_pred - y)^2. y_pred and y of the same shape (no broadcasting)."""
    y_pred, y = check.array("y_pred", y_pred), check.array("y", y)
    if y_pred.shape != y.shape or y.size == 0:
        raise ValueError(f"y_pred and y must have the same non-empty shape, e.g. (N,), got {y_pred.shape} and "
                         f"{y.shape} (an (N, 1) column against (N,) would broadcast to (N, N))")
    return float(np.mean((y_pred - y) ** 2))


def mse_loss_and_grad(X, y, w):
    """MSE of ``X @ w`` and its gradient (2/N) X^T (X w - y). Returns (float, (D,))."""
    X, y = _design(X, y)
    w = _weights(w, X.shape[1])
    residual = X @ w - y
    return float(np.mean(residual**2)), 2.0 / len(y) * X.T @ residual


def sigmoid(z):
    """1 / (1 + e^-z), computed without overflow for large |z|."""
    z = np.asarray(z, dtype=np.float64)
    ez = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + ez), ez / (1.0 + ez))


def binary_cross_entropy(p, y, eps: float = 1e-12):
    """-(1/N) sum [y log p + (1 - y) log(1 - p)] for probabilities p (N,) and labels y in {0, 1}."""
    p, y = check.array("p", p, dtype=np.float64), check.array("y", y)
    if p.shape != y.shape or y.size == 0:
        raise ValueError(f"p and y must have the same non-empty shape (N,), got {p.shape} and {y.shape}")
    p = np.clip(p, eps, 1 - eps)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def logistic_loss_and_grad(X, y, w):
    """Binary cross-entropy of sigmoid(X w) and its gradient (1/N) X^T (sigmoid(X w) - y)."""
    X, y = _design(X, y)
    w = _weights(w, X.shape[1])
    p = sigmoid(X @ w)
    return binary_cross_entropy(p, y), X.T @ (p - y) / len(y)


def softmax(Z):
    """Row-wise softmax exp(z_c) / sum_k exp(z_k), shifted by the row max for stability. (N, C) -> (N, C)."""
    Z = check.array("Z", Z, 2, spec="(N, C)", dtype=np.float64)
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


def one_hot(y, num_classes: int):
    """Integer labels (N,) -> one-hot rows (N, C)."""
    check.positive_int("num_classes", num_classes)
    y = check.integer_labels("y", y)
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes - 1}], got range [{y.min()}, {y.max()}]")
    return np.eye(num_classes)[y]


def cross_entropy(P, y, eps: float = 1e-12):
    """-(1/N) sum log P[n, y_n] for probabilities P (N, C) and integer labels y (N,)."""
    P = check.array("P", P, 2, spec="(N, C)", dtype=np.float64)
    y = check.integer_labels("y", y)
    check.same_length(("P", "y"), P, y)
    if y.size == 0 or y.min() < 0 or y.max() >= P.shape[1]:
        raise ValueError(f"y must be a non-empty (N,) array of labels in [0, {P.shape[1] - 1}] (C = P.shape[1])"
                         + (f", got range [{y.min()}, {y.max()}]" if y.size else ", got none"))
    return float(-np.mean(np.log(np.clip(P[np.arange(len(y)), y], eps, None))))


def softmax_loss_and_grad(X, y, W):
    """Cross-entropy of softmax(X W) and its gradient (1/N) X^T (P - Y). W (D, C) -> (float, (D, C))."""
    X = _design(X)
    W = _weights(W, X.shape[1], "W", "(D, C)", 2)
    P = softmax(X @ W)
    return cross_entropy(P, y), X.T @ (P - one_hot(y, W.shape[1])) / len(y)


def gradient_descent(X, y, loss_and_grad, w0, lr: float, epochs: int, batch_size: int | None = None, seed: int = 0):
    """(Mini-batch) gradient descent w <- w - lr * grad. ``batch_size=None`` means full batch.

    Returns the final weights and the full-data loss before each epoch and after the last (epochs + 1,).
    """
    check.number("lr", lr, 0.0, low_open=True)
    check.positive_int("epochs", epochs)
    if batch_size is not None:
        check.positive_int("batch_size", batch_size)
    if not callable(loss_and_grad):
        raise TypeError("loss_and_grad must be a function (X, y, w) -> (loss, grad), got "
                        f"{type(loss_and_grad).__name__}")
    X, y = np.asarray(X), np.asarray(y)
    if len(y) == 0:
        raise ValueError("X and y must hold at least one example, got none")
    check.same_length(("X", "y"), X, y)
    rng = np.random.default_rng(seed)
    w, n = np.array(w0, dtype=np.float64), len(y)
    batch_size = batch_size or n
    losses = [loss_and_grad(X, y, w)[0]]
    for _ in range(epochs):
        order = rng.permutation(n) if batch_size < n else np.arange(n)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            w -= lr * loss_and_grad(X[idx], y[idx], w)[1]
        losses.append(loss_and_grad(X, y, w)[0])
    return w, np.array(losses)


# ---- the PyTorch baseline later chapters import --------------------------------------------------------

class SoftmaxRegression(nn.Module):
    """logits = x W^T + b: one linear layer; softmax lives in the loss (``nn.CrossEntropyLoss``).

    x (B, D) or images (B, ...) that are flattened first -> logits (B, C).
    """

    def __init__(self, in_features: int, num_classes: int):
        super().__init__()
        check.positive_int("in_features", in_features)
        check.positive_int("num_classes", num_classes)
        self.linear = nn.Linear(in_features, num_classes)

    def forward(self, x):
        D = self.linear.in_features
        check.tensor("x", x, spec=f"(B, D={D}) or (B, ...) with D numbers per example", floating=True)
        if x.dim() < 2 or x[0].numel() != D:
            raise ValueError(f"x must be (B, D={D}) or (B, ...) with {D} numbers per example, got {tuple(x.shape)}")
        return self.linear(x.flatten(1))  # (B, ...) -> (B, D) -> (B, C)


def fit_softmax_regression(X, y, num_classes: int, epochs: int = 30, lr: float = 0.3, weight_decay: float = 1e-4,
                           batch_size: int = 64, device="cpu", seed: int = 0, progress: bool = False, log_dir=None):
    """Train :class:`SoftmaxRegression` with mini-batch SGD on arrays X (N, D), y (N,); return (model, history).

    ``weight_decay`` is an L2 penalty in SGD form: each step adds ``weight_decay * w`` to every parameter's
    gradient (the gradient of ``weight_decay / 2 * ||w||^2``), weights and biases alike.
    """
    from .train import fit

    check.positive_int("num_classes", num_classes)
    X = check.array("X", X, spec="(N, D)")
    y = check.integer_labels("y", y)
    if X.ndim < 2:
        raise ValueError(f"X must have shape (N, D) (or (N, ...) images), got {X.shape}")
    check.same_length(("X", "y"), X, y)
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"y must hold labels in [0, num_classes - 1] = [0, {num_classes - 1}], "
                         f"got range [{y.min()}, {y.max()}]")
    torch.manual_seed(seed)
    X_t = torch.as_tensor(X, dtype=torch.float32)
    y_t = torch.as_tensor(y, dtype=torch.long)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X_t, y_t), batch_size=batch_size, shuffle=True)
    model = SoftmaxRegression(X_t[0].numel(), num_classes)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, weight_decay=weight_decay)
    history = fit(model, loader, nn.CrossEntropyLoss(), optimizer, epochs, device=device, progress=progress,
                  log_dir=log_dir)
    return model.cpu().eval(), history
