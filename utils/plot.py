"""Plotting helpers: training curves, decision boundaries, image grids. All return the matplotlib Axes."""
import matplotlib.pyplot as plt
import numpy as np


def plot_history(history: dict, keys=None, ax=None, title: str | None = None, logy: bool = False):
    """Plot lists in ``history`` (e.g. from ``utils.train.fit``) against the epoch/step index."""
    ax = ax or plt.subplots()[1]
    keys = keys or [k for k in history if k.endswith("loss")]
    for key in keys:
        if key not in history:
            raise KeyError(f"history has no {key!r}; available: {', '.join(history)}")
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
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"decision boundaries need 2-D inputs: X must have shape (N, 2), got {X.shape}")
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
    """Show a grid of images ``(N, H, W)`` or ``(N, H, W, C)``; returns the array of Axes."""
    images = np.asarray(images)
    n = len(images)
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
