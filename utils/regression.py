"""Linear, logistic and softmax regression from scratch (NumPy), metrics, and the PyTorch
softmax-regression baseline that later chapters import.

Shapes: N examples, D features (including the bias column when there is one), C classes.
X (N, D), y (N,) targets or integer labels, w (D,) for one output, W (D, C) for C outputs.
"""
import numpy as np
import torch
from torch import nn


class Standardizer:
    """z = (x - mean) / std per feature, with mean and std taken from the training set only."""

    def fit(self, X):
        X = np.asarray(X, dtype=np.float64)
        self.mean_, self.std_ = X.mean(0), X.std(0)
        self.std_[self.std_ == 0] = 1.0  # constant features stay 0 instead of becoming nan
        return self

    def transform(self, X):
        if not hasattr(self, "mean_"):
            raise RuntimeError("call fit(X_train) before transform(X)")
        return (np.asarray(X, dtype=np.float64) - self.mean_) / self.std_


def add_bias_column(X):
    """Prepend a column of ones, so that ``X @ w`` includes the intercept w[0]. (N, D) -> (N, D+1)."""
    X = np.asarray(X, dtype=np.float64)
    return np.hstack([np.ones((len(X), 1)), X])


def polynomial_features(x, degree: int):
    """[x, x^2, ..., x^degree] for a 1-D input. (N,) -> (N, degree)."""
    if degree < 1:
        raise ValueError(f"degree must be >= 1, got {degree}")
    return np.stack([np.asarray(x, dtype=np.float64) ** k for k in range(1, degree + 1)], axis=1)


def normal_equation(X, y, l2: float = 0.0):
    """Least squares (ridge when l2 > 0): solve (X^T X + l2 I0) w = X^T y. X (N, D) with bias column 0.

    I0 is the identity with a 0 for the bias, so the intercept is not shrunk (as in scikit-learn's Ridge).
    """
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
    penalty = l2 * np.eye(X.shape[1])
    penalty[0, 0] = 0.0
    return np.linalg.solve(X.T @ X + penalty, X.T @ y)


def mse(y_pred, y):
    """Mean squared error (1/N) sum (y_pred - y)^2."""
    return float(np.mean((np.asarray(y_pred) - np.asarray(y)) ** 2))


def mse_loss_and_grad(X, y, w):
    """MSE of ``X @ w`` and its gradient (2/N) X^T (X w - y). Returns (float, (D,))."""
    residual = X @ w - y
    return float(np.mean(residual**2)), 2.0 / len(y) * X.T @ residual


def sigmoid(z):
    """1 / (1 + e^-z), computed without overflow for large |z|."""
    z = np.asarray(z, dtype=np.float64)
    ez = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + ez), ez / (1.0 + ez))


def binary_cross_entropy(p, y, eps: float = 1e-12):
    """-(1/N) sum [y log p + (1 - y) log(1 - p)] for probabilities p (N,) and labels y in {0, 1}."""
    p = np.clip(np.asarray(p, dtype=np.float64), eps, 1 - eps)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def logistic_loss_and_grad(X, y, w):
    """Binary cross-entropy of sigmoid(X w) and its gradient (1/N) X^T (sigmoid(X w) - y)."""
    p = sigmoid(X @ w)
    return binary_cross_entropy(p, y), X.T @ (p - y) / len(y)


def softmax(Z):
    """Row-wise softmax exp(z_c) / sum_k exp(z_k), shifted by the row max for stability. (N, C) -> (N, C)."""
    Z = np.asarray(Z, dtype=np.float64)
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


def one_hot(y, num_classes: int):
    """Integer labels (N,) -> one-hot rows (N, C)."""
    y = np.asarray(y)
    if y.min() < 0 or y.max() >= num_classes:
        raise ValueError(f"labels must lie in [0, {num_classes - 1}], got range [{y.min()}, {y.max()}]")
    return np.eye(num_classes)[y]


def cross_entropy(P, y, eps: float = 1e-12):
    """-(1/N) sum log P[n, y_n] for probabilities P (N, C) and integer labels y (N,)."""
    P = np.asarray(P, dtype=np.float64)
    return float(-np.mean(np.log(np.clip(P[np.arange(len(y)), y], eps, None))))


def softmax_loss_and_grad(X, y, W):
    """Cross-entropy of softmax(X W) and its gradient (1/N) X^T (P - Y). W (D, C) -> (float, (D, C))."""
    P = softmax(X @ W)
    return cross_entropy(P, y), X.T @ (P - one_hot(y, W.shape[1])) / len(y)


def gradient_descent(X, y, loss_and_grad, w0, lr: float, epochs: int, batch_size: int | None = None, seed: int = 0):
    """(Mini-batch) gradient descent w <- w - lr * grad. ``batch_size=None`` means full batch.

    Returns the final weights and the full-data loss before each epoch and after the last (epochs + 1,).
    """
    if lr <= 0 or epochs < 1:
        raise ValueError(f"need lr > 0 and epochs >= 1, got lr={lr}, epochs={epochs}")
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
        self.linear = nn.Linear(in_features, num_classes)

    def forward(self, x):
        return self.linear(x.flatten(1))  # (B, ...) -> (B, D) -> (B, C)


def fit_softmax_regression(X, y, num_classes: int, epochs: int = 30, lr: float = 0.3, weight_decay: float = 1e-4,
                           batch_size: int = 64, device="cpu", seed: int = 0, progress: bool = False, log_dir=None):
    """Train :class:`SoftmaxRegression` with mini-batch SGD on arrays X (N, D), y (N,); return (model, history).

    ``weight_decay`` is an L2 penalty in SGD form: each step adds ``weight_decay * w`` to every parameter's
    gradient (the gradient of ``weight_decay / 2 * ||w||^2``), weights and biases alike.
    """
    from .train import fit

    torch.manual_seed(seed)
    X_t = torch.as_tensor(np.asarray(X), dtype=torch.float32)
    y_t = torch.as_tensor(np.asarray(y), dtype=torch.long)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X_t, y_t), batch_size=batch_size, shuffle=True)
    model = SoftmaxRegression(X_t[0].numel(), num_classes)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, weight_decay=weight_decay)
    history = fit(model, loader, nn.CrossEntropyLoss(), optimizer, epochs, device=device, progress=progress,
                  log_dir=log_dir)
    return model.cpu().eval(), history
