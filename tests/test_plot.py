import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
from utils.plot import plot_decision_boundary, plot_history, show_images  # noqa: E402


def test_plot_history_draws_one_line_per_key():
    ax = plot_history({"train_loss": [3, 2, 1], "val_loss": [3, 2.5, 2], "val_metric": [0.1, 0.2, 0.3]})
    assert [line.get_label() for line in ax.get_lines()] == ["train_loss", "val_loss"]
    with pytest.raises(ValueError, match="accepted"):
        plot_history({"train_loss": [1]}, keys=["val_loss"])


def test_decision_boundary_needs_2d_inputs():
    X = np.random.default_rng(0).normal(size=(20, 2))
    ax = plot_decision_boundary(lambda P: (P[:, 0] > 0).astype(int), X, (X[:, 0] > 0).astype(int))
    assert ax.collections
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        plot_decision_boundary(lambda P: P[:, 0], np.zeros((5, 3)), np.zeros(5))


def test_show_images_grid():
    axes = show_images(np.zeros((5, 8, 8)), titles=list("abcde"), ncols=3)
    assert axes.shape == (2, 3)
