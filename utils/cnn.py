"""Convolutional networks: conv2d from scratch (loop and im2col), its gradient, batch norm, a LeNet-style
CNN in PyTorch and Keras with weight copying, a residual block, augmentation and the image sets chapter 3 uses.

Shapes (PyTorch's NCHW order unless a name says ``nhwc``):
    B batch, C / C_in / C_out channels, H, W height and width, kh, kw kernel height and width,
    p padding, s stride, H_out = floor((H + 2p - kh) / s) + 1 (same for W_out), L = H_out * W_out.
    x (B, C_in, H, W), PyTorch kernel w (C_out, C_in, kh, kw), bias b (C_out,), output (B, C_out, H_out, W_out).
    Keras stores images as (B, H, W, C) and kernels as (kh, kw, C_in, C_out).
"""
import gzip
import pathlib
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import _validate as check

# ---- sizes --------------------------------------------------------------------------------------------


def conv_output_size(n: int, k: int, padding: int = 0, stride: int = 1) -> int:
    """floor((n + 2p - k) / s) + 1: the output length of a convolution or pooling along one axis."""
    for name, value in (("n", n), ("k", k), ("padding", padding), ("stride", stride)):
        check.integer(name, value)
    if min(n, k, stride) < 1 or padding < 0:
        raise ValueError(f"need n, k, stride >= 1 and padding >= 0, got n={n}, k={k}, padding={padding}, "
                         f"stride={stride}")
    if n + 2 * padding < k:
        raise ValueError(f"kernel {k} is larger than the padded input {n} + 2*{padding} = {n + 2 * padding}")
    return (n + 2 * padding - k) // stride + 1


def receptive_field(layers) -> int:
    """Receptive field of one output unit of a stack of ``layers`` = [(kernel, stride), ...], first layer first.

    r = 1 + sum_l (k_l - 1) * (s_1 * ... * s_{l-1}): each layer widens the field by k - 1 steps of the
    product of the strides below it.
    """
    r, jump = 1, 1
    for layer in layers:
        if not isinstance(layer, tuple | list) or len(layer) != 2:
            raise TypeError(f"layers must be a list of (kernel, stride) pairs, got the item {layer!r}")
        k, s = layer
        check.integer("kernel", k)
        check.integer("stride", s)
        if k < 1 or s < 1:
            raise ValueError(f"kernel and stride must be >= 1, got (k={k}, s={s})")
        r += (k - 1) * jump
        jump *= s
    return r


def count_parameters(model) -> int:
    """Number of trainable numbers in a PyTorch module."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# ---- conv2d from scratch (NumPy, NCHW) ---------------------------------------------------------------


def _check_conv(x, w, b, stride, padding):
    x = check.array("x", x, spec="(B, C_in, H, W)", dtype=np.float64)
    w = check.array("w", w, spec="(C_out, C_in, kh, kw)", dtype=np.float64)
    if x.ndim != 4 or w.ndim != 4:
        raise ValueError(f"x must be (B, C_in, H, W) and w (C_out, C_in, kh, kw); got x {x.shape}, w {w.shape}")
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"x has {x.shape[1]} channels but the kernel expects C_in={w.shape[1]} "
                         f"(w is (C_out, C_in, kh, kw) = {w.shape})")
    if b is not None and np.shape(b) != (w.shape[0],):
        raise ValueError(f"bias must have shape (C_out,) = ({w.shape[0]},), got {np.shape(b)}")
    check.positive_int("stride", stride)
    check.non_negative_int("padding", padding)
    for axis, n, k in (("height", x.shape[2], w.shape[2]), ("width", x.shape[3], w.shape[3])):
        if n + 2 * padding < k or min(n, k) < 1:
            raise ValueError(f"the kernel ({k}) must fit in the padded input {axis} ({n} + 2*{padding} = "
                             f"{n + 2 * padding}) and both must be >= 1: x {x.shape}, w {w.shape}")
    return x, w


def _pad(x, padding: int):
    return np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))


def conv2d_loop(x, w, b=None, stride: int = 1, padding: int = 0):
    """Cross-correlation, one output number at a time (clear, slow).

    out[n, o, i, j] = b[o] + sum_{c, u, v} w[o, c, u, v] * x_pad[n, c, i*s + u, j*s + v].
    x (B, C_in, H, W), w (C_out, C_in, kh, kw), b (C_out,) or None -> (B, C_out, H_out, W_out), float64.
    """
    x, w = _check_conv(x, w, b, stride, padding)
    (B, _, H, W), (C_out, _, kh, kw) = x.shape, w.shape
    H_out, W_out = conv_output_size(H, kh, padding, stride), conv_output_size(W, kw, padding, stride)
    xp = _pad(x, padding)
    out = np.zeros((B, C_out, H_out, W_out))
    for n in range(B):
        for o in range(C_out):
            for i in range(H_out):
                for j in range(W_out):
                    patch = xp[n, :, i * stride:i * stride + kh, j * stride:j * stride + kw]  # (C_in, kh, kw)
                    out[n, o, i, j] = np.sum(patch * w[o])
            if b is not None:
                out[n, o] += b[o]
    return out


def im2col(x, kh: int, kw: int, stride: int = 1, padding: int = 0):
    """Every kh x kw patch of every channel as one row: (B, C, H, W) -> (B, L, C*kh*kw).

    Built from strided *views* (no copy until the final reshape): row l = i * W_out + j holds the patch
    whose top-left corner is (i*s, j*s) of the padded input, ordered (c, u, v) like a flattened kernel.
    """
    x = check.array("x", x, 4, spec="(B, C, H, W)", dtype=np.float64)
    check.positive_int("kh", kh)
    check.positive_int("kw", kw)
    check.positive_int("stride", stride)
    check.non_negative_int("padding", padding)
    B, C, H, W = x.shape
    H_out, W_out = conv_output_size(H, kh, padding, stride), conv_output_size(W, kw, padding, stride)
    windows = np.lib.stride_tricks.sliding_window_view(_pad(x, padding), (kh, kw), axis=(2, 3))
    windows = windows[:, :, ::stride, ::stride][:, :, :H_out, :W_out]  # (B, C, H_out, W_out, kh, kw)
    return windows.transpose(0, 2, 3, 1, 4, 5).reshape(B, H_out * W_out, C * kh * kw)


def conv2d_im2col(x, w, b=None, stride: int = 1, padding: int = 0):
    """The same cross-correlation as one matrix product: (B, L, C_in*kh*kw) @ (C_in*kh*kw, C_out).

    x (B, C_in, H, W), w (C_out, C_in, kh, kw), b (C_out,) or None -> (B, C_out, H_out, W_out), float64.
    """
    x, w = _check_conv(x, w, b, stride, padding)
    (B, _, H, W), (C_out, _, kh, kw) = x.shape, w.shape
    H_out, W_out = conv_output_size(H, kh, padding, stride), conv_output_size(W, kw, padding, stride)
    out = im2col(x, kh, kw, stride, padding) @ w.reshape(C_out, -1).T  # (B, L, C_out)
    if b is not None:
        out = out + np.asarray(b)
    return out.transpose(0, 2, 1).reshape(B, C_out, H_out, W_out)  # (B, L, C_out) -> (B, C_out, H_out, W_out)


def conv2d(x, w, b=None, stride: int = 1, padding: int = 0, fast: bool = True):
    """From-scratch conv2d: ``fast=True`` uses :func:`conv2d_im2col`, ``False`` the readable :func:`conv2d_loop`."""
    if not isinstance(fast, bool):
        raise TypeError(f"fast must be True (im2col) or False (loop), got {fast!r}")
    return (conv2d_im2col if fast else conv2d_loop)(x, w, b, stride, padding)


def conv2d_backward(x, w, grad_out, stride: int = 1, padding: int = 0):
    """Gradients of L through out = conv2d(x, w, b), given dL/dout (B, C_out, H_out, W_out).

    Returns (dL/dx (B, C_in, H, W), dL/dw (C_out, C_in, kh, kw), dL/db (C_out,)).
    dL/dx is itself a convolution: spread dL/dout back to stride 1 (zeros between entries), pad it by
    k - 1 and cross-correlate it with the kernel flipped in space and with C_in and C_out swapped.
    dL/dw[o, c] is the cross-correlation of the padded input with dL/dout[:, o].
    """
    x, w = _check_conv(x, w, None, stride, padding)
    g = check.array("grad_out", grad_out, spec="(B, C_out, H_out, W_out)", dtype=np.float64)
    (B, _, H, W), (C_out, _, kh, kw) = x.shape, w.shape
    H_out, W_out = conv_output_size(H, kh, padding, stride), conv_output_size(W, kw, padding, stride)
    if g.shape != (B, C_out, H_out, W_out):
        raise ValueError(f"grad_out must have the output's shape {(B, C_out, H_out, W_out)}, got {g.shape}")
    grad_b = g.sum(axis=(0, 2, 3))
    cols = im2col(x, kh, kw, stride, padding)  # (B, L, C_in*kh*kw)
    grad_w = np.einsum("bol,blk->ok", g.reshape(B, C_out, -1), cols).reshape(w.shape)
    spread = np.zeros((B, C_out, (H_out - 1) * stride + 1, (W_out - 1) * stride + 1))
    spread[:, :, ::stride, ::stride] = g
    # rows/columns of the padded input that no window reached (when s does not divide n + 2p - k) get 0
    rest_h = H + 2 * padding - ((H_out - 1) * stride + kh)
    rest_w = W + 2 * padding - ((W_out - 1) * stride + kw)
    spread = np.pad(spread, ((0, 0), (0, 0), (kh - 1, kh - 1 + rest_h), (kw - 1, kw - 1 + rest_w)))
    w_flipped = w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)  # (C_in, C_out, kh, kw)
    grad_xp = conv2d_im2col(spread, w_flipped)  # (B, C_in, H + 2p, W + 2p)
    grad_x = grad_xp[:, :, padding:padding + H, padding:padding + W]
    return grad_x, grad_w, grad_b


def max_pool2d(x, size: int = 2):
    """Non-overlapping max pooling (kernel = stride = ``size``): (B, C, H, W) -> (B, C, H // size, W // size)."""
    x = check.array("x", x, 4, spec="(B, C, H, W)")
    check.positive_int("size", size)
    B, C, H, W = x.shape
    if size > min(H, W):
        raise ValueError(f"size must be between 1 and the image's height and width (H, W) = ({H}, {W}), got {size}")
    Ho, Wo = H // size, W // size
    return x[:, :, :Ho * size, :Wo * size].reshape(B, C, Ho, size, Wo, size).max(axis=(3, 5))


# ---- batch normalisation from scratch ----------------------------------------------------------------


def batch_norm(x, gamma, beta, running_mean, running_var, training: bool, momentum: float = 0.1, eps: float = 1e-5):
    """Batch norm over (B, H, W) per channel, PyTorch conventions. x (B, C, H, W); the rest (C,).

    y = gamma * (x - mu) / sqrt(var + eps) + beta. Training: mu, var are this batch's (biased) statistics and
    running <- (1 - momentum) * running + momentum * batch stat (the *unbiased* variance, as PyTorch keeps).
    Evaluation: mu, var are the running estimates and nothing is updated.
    Returns (y, new_running_mean, new_running_var).
    """
    x = check.array("x", x, 4, spec="(B, C, H, W)", dtype=np.float64)
    C = x.shape[1]
    for name, value in (("gamma", gamma), ("beta", beta), ("running_mean", running_mean),
                        ("running_var", running_var)):
        if np.shape(value) != (C,):
            raise ValueError(f"{name} must have shape (C,) = ({C},) (one per channel of x {x.shape}), "
                             f"got {np.shape(value)}")
    if not isinstance(training, bool):
        raise TypeError(f"training must be True or False, got {training!r}")
    check.number("momentum", momentum, 0.0, 1.0)
    check.number("eps", eps, 0.0, low_open=True)
    if training:
        mu, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
        m = x.size // x.shape[1]  # numbers per channel
        if m < 2:
            raise ValueError("batch norm in training mode needs more than one value per channel, "
                             f"got x of shape {x.shape}")
        running_mean = (1 - momentum) * running_mean + momentum * mu
        running_var = (1 - momentum) * running_var + momentum * var * m / (m - 1)
    else:
        mu, var = np.asarray(running_mean), np.asarray(running_var)
    per_channel = (1, -1, 1, 1)
    x_hat = (x - mu.reshape(per_channel)) / np.sqrt(var.reshape(per_channel) + eps)
    return np.reshape(gamma, per_channel) * x_hat + np.reshape(beta, per_channel), running_mean, running_var


# ---- layouts: PyTorch (NCHW, (C_out, C_in, kh, kw)) <-> Keras (NHWC, (kh, kw, C_in, C_out)) ------------


def nchw_to_nhwc(x):
    """Images (B, C, H, W) -> (B, H, W, C); works for NumPy arrays and torch tensors."""
    if np.ndim(x) != 4:
        raise ValueError(f"x must be images (B, C, H, W), got shape {tuple(np.shape(x))}")
    return x.permute(0, 2, 3, 1) if isinstance(x, torch.Tensor) else np.transpose(x, (0, 2, 3, 1))


def torch_kernel_to_keras(w):
    """Conv kernel (C_out, C_in, kh, kw) -> (kh, kw, C_in, C_out)."""
    check.array("w", w, 4, spec="(C_out, C_in, kh, kw)")
    return np.transpose(np.asarray(w), (2, 3, 1, 0))


def keras_kernel_to_torch(w):
    """Conv kernel (kh, kw, C_in, C_out) -> (C_out, C_in, kh, kw)."""
    check.array("w", w, 4, spec="(kh, kw, C_in, C_out)")
    return np.transpose(np.asarray(w), (3, 2, 0, 1))


def dense_after_flatten_to_keras(weight, chw):
    """First dense layer after a flatten: PyTorch weight (D_out, C*H*W) -> Keras kernel (H*W*C, D_out).

    PyTorch flattens (C, H, W) in that order, Keras flattens (H, W, C), so the input rows are reordered.
    """
    if not isinstance(chw, tuple | list) or len(chw) != 3:
        raise ValueError(f"chw must be the (C, H, W) of the flattened features, got {chw!r}")
    C, H, W = chw
    weight = check.array("weight", weight, 2, spec="(D_out, C*H*W)")
    if weight.shape[1] != C * H * W:
        raise ValueError(f"weight has {weight.shape[1]} inputs but C*H*W = {C}*{H}*{W} = {C * H * W}")
    return weight.reshape(-1, C, H, W).transpose(2, 3, 1, 0).reshape(H * W * C, -1)  # (D_out,C,H,W)->(H,W,C,D_out)


# ---- LeNet-style CNN -----------------------------------------------------------------------------------


@dataclass
class LeNetConfig:
    in_channels: int = 1        # 1 for grey images, 3 for colour
    image_size: int = 16        # input height = width
    num_classes: int = 10
    channels: tuple = (6, 16)   # output channels of conv1 and conv2
    kernel_size: int = 5        # conv1 pads to keep the size ("same"), conv2 does not ("valid")
    hidden: tuple = (120, 84)   # widths of the two hidden dense layers
    batch_norm: bool = False    # BatchNorm after each conv (the conv bias is then dropped: BN's beta replaces it)

    def __post_init__(self):
        for name in ("in_channels", "image_size", "num_classes", "kernel_size"):
            check.positive_int(name, getattr(self, name))
        for name in ("channels", "hidden"):
            value = getattr(self, name)
            if not isinstance(value, tuple | list) or len(value) != 2:
                raise ValueError(f"{name} must be a pair of positive ints, e.g. {getattr(LeNetConfig, name)}, "
                                 f"got {value!r}")
            for i, v in enumerate(value):
                check.positive_int(f"{name}[{i}]", v)
            setattr(self, name, tuple(value))
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (conv1 pads k // 2 on each side to keep the size, which "
                             f"only an odd kernel does), got {self.kernel_size}")
        if not isinstance(self.batch_norm, bool):
            raise TypeError(f"batch_norm must be True or False, got {self.batch_norm!r}")
        try:
            self.feature_shape()
        except ValueError:
            raise ValueError(f"image_size={self.image_size} is too small for kernel_size={self.kernel_size}: "
                             "conv1 (same) -> pool 2 -> conv2 (valid) -> pool 2 needs image_size >= "
                             f"{2 * (self.kernel_size + 1)}") from None

    def feature_shape(self) -> tuple:
        """(C, H, W) after conv1 -> pool -> conv2 -> pool, from the output-size formula."""
        k = self.kernel_size
        n = conv_output_size(self.image_size, k, padding=k // 2)
        n = conv_output_size(n, 2, stride=2)
        n = conv_output_size(n, k)
        n = conv_output_size(n, 2, stride=2)
        return (self.channels[1], n, n)


class LeNet(nn.Module):
    """conv(5x5, same) -> [BN] -> ReLU -> maxpool 2 -> conv(5x5, valid) -> [BN] -> ReLU -> maxpool 2
    -> flatten -> dense -> ReLU -> dense -> ReLU -> dense (logits). x (B, C_in, S, S) -> logits (B, classes)."""

    def __init__(self, cfg: LeNetConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or LeNetConfig()
        k, (c1, c2), bn = cfg.kernel_size, cfg.channels, cfg.batch_norm
        self.features = nn.Sequential(
            nn.Conv2d(cfg.in_channels, c1, k, padding=k // 2, bias=not bn), *([nn.BatchNorm2d(c1)] if bn else []),
            nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, k, bias=not bn), *([nn.BatchNorm2d(c2)] if bn else []),
            nn.ReLU(), nn.MaxPool2d(2))
        C, H, W = cfg.feature_shape()
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(C * H * W, cfg.hidden[0]), nn.ReLU(),
            nn.Linear(cfg.hidden[0], cfg.hidden[1]), nn.ReLU(), nn.Linear(cfg.hidden[1], cfg.num_classes))

    def forward(self, x):
        expected = (self.cfg.in_channels, self.cfg.image_size, self.cfg.image_size)
        check.tensor("x", x, spec=f"(B, {', '.join(map(str, expected))})", floating=True)
        if tuple(x.shape[1:]) != expected or x.dim() != 4:
            raise ValueError(f"LeNet was built for inputs (B, {', '.join(map(str, expected))}), got "
                             f"{tuple(x.shape)}; build it with LeNetConfig(image_size=...) for this size")
        return self.classifier(self.features(x))  # (B, C, S, S) -> (B, C2, h, h) -> (B, classes)


def build_keras_lenet(cfg: LeNetConfig | None = None):
    """The same architecture in Keras, for NHWC inputs (B, S, S, C_in); returns an uncompiled ``keras.Sequential``.

    Batch norm uses PyTorch's conventions: epsilon 1e-5 and momentum 0.9 (Keras' momentum is the weight
    of the *old* running value, PyTorch's the weight of the new batch: 0.9 here = 0.1 there).
    """
    import keras  # imported here so that importing utils.cnn stays cheap
    from keras import layers

    cfg = cfg or LeNetConfig()
    k, (c1, c2), bn = cfg.kernel_size, cfg.channels, cfg.batch_norm
    norm = (lambda: [layers.BatchNormalization(momentum=0.9, epsilon=1e-5)]) if bn else (lambda: [])
    return keras.Sequential([
        keras.Input((cfg.image_size, cfg.image_size, cfg.in_channels)),
        layers.Conv2D(c1, k, padding="same", use_bias=not bn), *norm(), layers.ReLU(), layers.MaxPooling2D(2),
        layers.Conv2D(c2, k, padding="valid", use_bias=not bn), *norm(), layers.ReLU(), layers.MaxPooling2D(2),
        layers.Flatten(), layers.Dense(cfg.hidden[0], activation="relu"),
        layers.Dense(cfg.hidden[1], activation="relu"), layers.Dense(cfg.num_classes)])


def copy_lenet_to_keras(model: LeNet, keras_model) -> None:
    """Copy every weight of a PyTorch :class:`LeNet` into the Keras model from :func:`build_keras_lenet`."""
    torch_layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.Linear))]
    keras_layers = [la for la in keras_model.layers if la.weights]
    if len(torch_layers) != len(keras_layers):
        raise ValueError(f"{len(torch_layers)} PyTorch layers with weights but {len(keras_layers)} Keras ones: "
                         "were both built from the same LeNetConfig?")
    first_dense, pairs = True, []
    for t, k in zip(torch_layers, keras_layers, strict=True):
        if isinstance(t, nn.Conv2d):
            values = [torch_kernel_to_keras(t.weight.detach().cpu())]
        elif isinstance(t, nn.BatchNorm2d):
            values = [t.weight.detach().cpu(), t.bias.detach().cpu(), t.running_mean.cpu(), t.running_var.cpu()]
        elif first_dense:  # rows reordered from PyTorch's (C, H, W) flatten to Keras' (H, W, C) flatten
            values = [dense_after_flatten_to_keras(t.weight.detach().cpu(), model.cfg.feature_shape())]
            first_dense = False
        else:
            values = [t.weight.detach().cpu().numpy().T]  # (out, in) -> (in, out)
        if isinstance(t, (nn.Conv2d, nn.Linear)) and t.bias is not None:
            values.append(t.bias.detach().cpu())
        pairs.append((k, [np.asarray(v, dtype=np.float32) for v in values]))
    check.keras_assignments(pairs, "a LeNet (both built from the same LeNetConfig?)")


# ---- residual block ------------------------------------------------------------------------------------


class ResidualBlock(nn.Module):
    """y = ReLU(x + BN(conv3x3(ReLU(BN(conv3x3(x)))))): the block learns a correction to the identity.

    x (B, C, H, W) -> (B, C, H, W). ``zero_init`` sets the last BN's gamma to 0, so a new block is exactly
    ReLU(x) and a deep stack starts as (almost) the identity.
    """

    def __init__(self, channels: int, zero_init: bool = False):
        super().__init__()
        check.positive_int("channels", channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        if zero_init:
            nn.init.zeros_(self.bn2.weight)

    def forward(self, x):
        C = self.conv1.in_channels
        check.tensor("x", x, 4, spec=f"(B, C={C}, H, W)", floating=True)
        if x.shape[1] != C:
            raise ValueError(f"x must have shape (B, C={C}, H, W), got {tuple(x.shape)}")
        return F.relu(x + self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))


# ---- data ----------------------------------------------------------------------------------------------


def random_shift(images: torch.Tensor, max_shift: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Translate each image by its own random (dy, dx) in [-max_shift, max_shift], filling with zeros.

    images (B, C, H, W) -> (B, C, H, W). A digit moved by a pixel or two is still the same digit.
    """
    check.tensor("images", images, 4, spec="(B, C, H, W)")
    check.non_negative_int("max_shift", max_shift)
    if images.ndim != 4 or max_shift < 0:
        raise ValueError(f"need images (B, C, H, W) and max_shift >= 0, got {tuple(images.shape)}, {max_shift}")
    if max_shift == 0:
        return images
    B, _, H, W = images.shape
    m = max_shift
    padded = F.pad(images, (m, m, m, m))
    offsets = torch.randint(0, 2 * m + 1, (B, 2), generator=generator)
    return torch.stack([padded[i, :, dy:dy + H, dx:dx + W] for i, (dy, dx) in enumerate(offsets.tolist())])


class ShiftedImages(torch.utils.data.Dataset):
    """A dataset of (image, label) that shifts each image at random every time it is read (augmentation)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, max_shift: int):
        check.tensor("images", images, 4, spec="(N, C, H, W)")
        check.non_negative_int("max_shift", max_shift)
        check.same_length(("images", "labels"), images, labels)
        self.images, self.labels, self.max_shift = images, labels, max_shift

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return random_shift(self.images[i:i + 1], self.max_shift)[0], self.labels[i]


def resize_images(images, size: int) -> np.ndarray:
    """Bilinear resize of (N, C, H, W) images to (N, C, size, size), float32 (a no-op at the same size)."""
    check.positive_int("size", size)
    x = torch.as_tensor(check.array("images", images, 4, spec="(N, C, H, W)"), dtype=torch.float32)
    if x.shape[-1] == size and x.shape[-2] == size:
        return x.numpy()
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).numpy()


def read_idx(path) -> np.ndarray:
    """Read an IDX file (the MNIST / Fashion-MNIST format), gzipped or not, into a NumPy array.

    Header: two zero bytes, a type code (0x08 = uint8), the number of dimensions d, then d big-endian
    uint32 sizes; the data follow in C order.
    """
    path = pathlib.Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path.name} is not an unsigned-byte IDX file: header {data[:4].hex()} "
                         "(expected 0000 08 then the number of dimensions)")
    ndim = data[3]
    shape = tuple(int(v) for v in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise ValueError(f"{path.name}: header says shape {shape} ({int(np.prod(shape))} bytes) "
                         f"but the file holds {body.size} bytes of data")
    return body.reshape(shape)


# Fashion-MNIST (Zalando Research, MIT licence): checksums as pinned by tensorflow-datasets
# (tensorflow_datasets/url_checksums/fashion_mnist.txt). Primary host first, then mirrors of the same files.
FASHION_MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
}
FASHION_MNIST_HOSTS = [
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
]
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                         "Bag", "Ankle boot"]


def load_fashion_mnist(cache_dir=None):
    """Download (once, checksummed) and read Fashion-MNIST. Returns (X_train, y_train, X_test, y_test):
    uint8 images (60000, 28, 28) and (10000, 28, 28), int64 labels."""
    from .data import download  # only the full profile needs the network

    arrays = {}
    for name, sha in FASHION_MNIST_FILES.items():
        path = download("fashion_mnist", [host + name for host in FASHION_MNIST_HOSTS], sha, filename=name,
                        cache_dir=cache_dir)
        arrays[name] = read_idx(path)
    return (arrays["train-images-idx3-ubyte.gz"], arrays["train-labels-idx1-ubyte.gz"].astype(np.int64),
            arrays["t10k-images-idx3-ubyte.gz"], arrays["t10k-labels-idx1-ubyte.gz"].astype(np.int64))
