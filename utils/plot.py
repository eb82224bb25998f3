"""Plotting helpers: training curves, decision boundaries, image grids. All return the matplotlib Axes."""
import matplotlib.pyplot as plt
import numpy as np

from . import _validate as check


def plot_history(history: dict, keys=None, ax=None, title: str | None = None, logy: bool = False):
    """Plot lists in ``history`` (e.g. from ``utils.train.fit``) against the epoch/step index."""
    if not isinstance(history, dict):
        raise TypeError(f"history must be a dict of lists (e.g. from utils.train.fit), got {type(history).__name__}")
    if isinstance(keys, str):
        raise TypeError(f"keys must be a list of history keys, got the single string {keys!r}: write [{keys!r}]")
    keys = keys or [k for k in history if k.endswith("loss")]
    for key in keys:
        if key not in history:
            raise ValueError(f"keys: history has no {key!r}; accepted: {', '.join(map(repr, history))}")
    ax = ax or plt.subplots()[1]
    for key in keys:
        ax.plot(np.arange(1, len(history[key]) + 1), history[key], label=key)
    ax.set_xlabel("epoch")
    if logy:
        ax.set_yscale("log")
    ax.legend()
    if title:
        ax.set_title(title)
    return ax


def plot_decision_boundary(predict, X, y, ax=None, resolution: int = 200, title: str | None = None):
    """Colour the plane by ``predict(points (M, 2)) -> labels (M,)`` and scatter the data ``X (N, 2)``."""
    X = check.array("X", X, spec="(N, 2)")
    if X.ndim != 2 or X.shape[1] != 2 or len(X) == 0:
        raise ValueError(f"decision boundaries need 2-D inputs: X must have shape (N, 2) with N >= 1, got {X.shape}")
    check.same_length(("X", "y"), X, np.asarray(y).reshape(-1))
    check.positive_int("resolution", resolution)
    if not callable(predict):
        raise TypeError(f"predict must be a function points (M, 2) -> labels (M,), got {type(predict).__name__}")
    ax = ax or plt.subplots()[1]
    pad = 0.1 * (X.max(0) - X.min(0))
    lo, hi = X.min(0) - pad, X.max(0) + pad
    xx, yy = np.meshgrid(np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution))
    zz = np.asarray(predict(np.c_[xx.ravel(), yy.ravel()])).reshape(xx.shape)
    ax.contourf(xx, yy, zz, alpha=0.25, cmap="coolwarm")
    ax.scatter(X[:, 0], X[:, 1], c=y, s=12, cmap="coolwarm", edgecolor="k", linewidth=0.3)
    if title:
        ax.set_title(title)
    return ax


def show_images(images, titles=None, ncols: int = 8, cmap: str = "gray", size: float = 1.2):
    """Show a grid of images ``(N, H, W)`` or ``(N, H, W, C)``, titled by the first N of ``titles``; returns
    the array of Axes."""
    images = check.array("images", images, (3, 4), spec="(N, H, W) or (N, H, W, C)")
    check.positive_int("ncols", ncols)
    n = len(images)
    if titles is not None and len(titles) < n:  # extra titles are ignored (chapter 3 passes one spare)
        raise ValueError(f"titles must hold one title per image ({n}), got {len(titles)}")
    nrows = max(1, -(-n // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i], cmap=cmap)
            if titles is not None:
                ax.set_title(str(titles[i]), fontsize=8)
    fig.tight_layout()
    return axes
