"""Answer key of chapter 3 (convolutional networks): each exercise's expected value, from PyTorch's layers."""
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import _validate as check
from ..cnn import count_parameters

EXERCISES = ("output_shape", "parameter_counts", "overlapping_pool", "vgg_stack")


def exercise_reference(name: str, x=None):
    """Expected answer of chapter 3's exercise ``name`` (one of :data:`EXERCISES`), measured on real PyTorch
    layers independently of the learner's formulas, so the notebook's check cell does not display how.

    output_shape: (C, H, W) after Conv2d(1, 8, 3), MaxPool2d(2), Conv2d(8, 16, 3, stride=2, padding=1) on 28x28.
    parameter_counts: [Conv2d(3, 32, 5), a Linear from a flattened 32x32x3 image to 32x28x28] parameter counts.
    overlapping_pool: ``F.max_pool2d(x, 3, stride=2)`` of ``x`` (B, C, H, W) -> array (B, C, H', W').
    vgg_stack: [receptive field of three 3x3 convolutions, by a gradient probe; parameters of that stack of
    16 -> 16 channels without bias; parameters of one 7x7 16 -> 16 convolution without bias].
    """
    if name not in EXERCISES:
        raise ValueError(f"name must be one of {', '.join(EXERCISES)}, got {name!r}")
    if (x is None) != (name != "overlapping_pool"):
        raise TypeError(f"x (B, C, H, W) is an input of exercise 'overlapping_pool' only, not of {name!r}")
    if name == "output_shape":
        layers = nn.Sequential(nn.Conv2d(1, 8, 3), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, stride=2, padding=1))
        return tuple(layers(torch.zeros(1, 1, 28, 28)).shape[1:])
    if name == "parameter_counts":  # the dense layer on the meta device: shapes only, no 300 MB allocation
        return [count_parameters(nn.Conv2d(3, 32, 5)),
                count_parameters(nn.Linear(32 * 32 * 3, 28 * 28 * 32, device="meta"))]
    if name == "overlapping_pool":
        x = check.array("x", x, 4, spec="(B, C, H, W)", dtype=np.float64)
        return F.max_pool2d(torch.from_numpy(x), kernel_size=3, stride=2).numpy()
    stack = nn.Sequential(*[nn.Conv2d(16, 16, 3, bias=False) for _ in range(3)])
    for conv in stack:
        nn.init.ones_(conv.weight)  # positive weights: every connected pixel gets a non-zero gradient
    probe = torch.zeros(1, 16, 15, 15, requires_grad=True)
    stack(probe)[0, 0, 4, 4].backward()
    rows = torch.nonzero(probe.grad[0, 0].abs().sum(1)).flatten()
    return [int(rows.max() - rows.min() + 1), count_parameters(stack),
            count_parameters(nn.Conv2d(16, 16, 7, bias=False))]
