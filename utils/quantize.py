"""Symmetric per-channel int8 weight quantisation, from its formula, and PyTorch's dynamic int8 ``Linear``.

For each output row ``o`` of a weight W (O, I):

    s_o = max_i |W_oi| / 127,    q_oi = clamp(round(W_oi / s_o), -127, 127),    W_oi ~ s_o q_oi

so each weight is off by at most s_o / 2. Storing q (1 byte) and s (one float per row) instead of W (4 bytes)
makes the layer about 4x smaller; :class:`Int8Linear` multiplies with the dequantised weight, so it saves memory
and disk, not time. PyTorch's dynamic quantisation also quantises the *activations* on the fly and multiplies in
int8, which is what makes it faster on a CPU.

Shape legend
    O, I  out_features and in_features of a Linear weight
    ...   any leading dimensions of the input
"""
import warnings

import torch
from torch import nn

from . import _validate as check

QMAX = 127  # symmetric: -127..127, so 0 is exact and the range is the same on both sides


def quantize_per_channel(weight: torch.Tensor, axis: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(q int8, same shape; scale float32, one per index along ``axis``) with ``weight ~ q * scale``.

    ``axis=0`` gives one scale per output row of a Linear (O, I); ``axis=None`` one scale for the whole tensor
    (per-tensor quantisation)."""
    check.tensor("weight", weight, 2, spec="(O, I)", floating=True)
    if axis not in (0, 1, None):
        raise ValueError(f"axis must be 0, 1 or None (one scale for the tensor), got {axis!r}")
    w = weight.detach().float()
    peak = w.abs().amax() if axis is None else w.abs().amax(dim=1 - axis, keepdim=True)  # (O, 1), (1, I) or ()
    scale = torch.where(peak > 0, peak / QMAX, torch.ones_like(peak))  # an all-zero row keeps scale 1
    q = torch.clamp(torch.round(w / scale), -QMAX, QMAX).to(torch.int8)
    return q, scale


def dequantize(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """float32 ``q * scale`` (``scale`` broadcast as returned by :func:`quantize_per_channel`)."""
    check.tensor("q", q, spec="int8")
    if q.dtype != torch.int8:
        raise TypeError(f"q must be an int8 tensor from quantize_per_channel, got dtype {q.dtype}")
    return q.float() * scale


class Int8Linear(nn.Module):
    """A ``Linear`` whose weight is stored as int8 + one float32 scale per output row; x (..., I) -> (..., O)."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"linear must be a torch.nn.Linear, got {type(linear).__name__}")
        q, scale = quantize_per_channel(linear.weight)
        self.register_buffer("weight_int8", q)                      # (O, I) int8
        self.register_buffer("scale", scale)                        # (O, 1) float32
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().clone())
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def forward(self, x):
        return nn.functional.linear(x, dequantize(self.weight_int8, self.scale).to(x.dtype), self.bias)


def quantize_linears(model: nn.Module, skip=("classifier",)) -> list[str]:
    """Replace (in place) every ``nn.Linear`` of ``model`` whose name does not start with one of ``skip`` by an
    :class:`Int8Linear`; returns the replaced names. Embeddings and LayerNorms stay float32."""
    if isinstance(skip, str):
        raise TypeError(f"skip must be a tuple of name prefixes such as ('classifier',), got the str {skip!r}")
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and not n.startswith(tuple(skip))]
    for name in names:
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, child, Int8Linear(model.get_submodule(name)))
    return names


def dynamic_int8(model: nn.Module, skip=("classifier",)) -> nn.Module:
    """PyTorch's dynamic int8 quantisation of every ``nn.Linear`` whose name does not start with one of ``skip``
    (a quantised copy; ``model`` is unchanged), with symmetric **per-channel** weight scales
    (``per_channel_dynamic_qconfig``): the same layers and the same kind of scales as :func:`quantize_linears`,
    so the two differ only in how they multiply.

    ``torch.ao.quantization`` is deprecated in favour of the separate ``torchao`` package; its deprecation
    warning is silenced here because this course pins torch and the function still works in that version."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(skip, str):
        raise TypeError(f"skip must be a tuple of name prefixes such as ('classifier',), got the str {skip!r}")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
        qconfig = torch.ao.quantization.per_channel_dynamic_qconfig
        spec = {n: qconfig for n, m in model.named_modules()
                if isinstance(m, nn.Linear) and not n.startswith(tuple(skip))}
        return torch.ao.quantization.quantize_dynamic(model, spec, dtype=torch.qint8)
