"""Multilayer perceptrons: activation functions, a small reverse-mode autograd engine on NumPy arrays (for
teaching), initialisation schemes with per-layer statistics, and the PyTorch MLP with its Keras twin.

Shapes: B examples in a batch, D input features, H hidden units, C classes.
x (B, D) -> hidden (B, H) -> ... -> logits (B, C). A PyTorch ``nn.Linear`` stores ``weight`` (out, in); a Keras
``Dense`` stores ``kernel`` (in, out) = weight^T.
"""
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

ACTIVATIONS = ("sigmoid", "tanh", "relu", "gelu")


def _check_activation(name):
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {name!r}")


def activation(name: str, z):
    """sigmoid 1/(1+e^-z), tanh, relu max(0, z), gelu z * Phi(z) (the exact, erf form). Any shape -> same."""
    _check_activation(name)
    z = np.asarray(z, dtype=np.float64)
    if name == "sigmoid":
        return 0.5 * (1 + np.tanh(z / 2))  # = 1 / (1 + e^-z), without overflow
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0.0)
    from scipy.special import erf

    return z * 0.5 * (1 + erf(z / math.sqrt(2)))


def activation_derivative(name: str, z):
    """d activation / dz: s(1-s), 1 - tanh^2, 1[z > 0] (0 at z = 0, as PyTorch), Phi(z) + z phi(z)."""
    _check_activation(name)
    z = np.asarray(z, dtype=np.float64)
    if name == "sigmoid":
        s = activation("sigmoid", z)
        return s * (1 - s)
    if name == "tanh":
        return 1 - np.tanh(z) ** 2
    if name == "relu":
        return (z > 0).astype(np.float64)
    from scipy.special import erf

    return 0.5 * (1 + erf(z / math.sqrt(2))) + z * np.exp(-z * z / 2) / math.sqrt(2 * math.pi)


# ---- reverse-mode automatic differentiation on arrays ---------------------------------------------------

def _unbroadcast(grad, shape):
    """Sum ``grad`` over the axes that broadcasting added or stretched, back to ``shape``."""
    while grad.ndim > len(shape):
        grad = grad.sum(axis=0)
    for axis, size in enumerate(shape):
        if size == 1 and grad.shape[axis] != 1:
            grad = grad.sum(axis=axis, keepdims=True)
    return grad


class Tensor:
    """A NumPy array that remembers how it was computed, so ``backward()`` can apply the chain rule.

    Each operation returns a new Tensor holding its inputs (``parents``) and a function that adds
    d(loss)/d(input) = d(loss)/d(output) * d(output)/d(input) to each input's ``grad``.
    ``backward()`` visits the graph in reverse topological order, so every node's ``grad`` is complete
    before it is passed on.
    """

    def __init__(self, data, parents=(), op: str = "", label: str = ""):
        self.data = np.asarray(data, dtype=np.float64)
        self.grad = np.zeros_like(self.data)
        self.parents, self.op, self.label = tuple(parents), op, label
        self._backward = lambda: None

    def __repr__(self):
        return f"Tensor(shape={self.data.shape}, op={self.op or 'leaf'!r})"

    @staticmethod
    def _wrap(other):
        return other if isinstance(other, Tensor) else Tensor(other)

    def __add__(self, other):
        other = self._wrap(other)
        out = Tensor(self.data + other.data, (self, other), "+")

        def backward():  # d(a + b)/da = 1, summed over broadcast axes
            self.grad += _unbroadcast(out.grad, self.data.shape)
            other.grad += _unbroadcast(out.grad, other.data.shape)
        out._backward = backward
        return out

    def __mul__(self, other):
        other = self._wrap(other)
        out = Tensor(self.data * other.data, (self, other), "*")

        def backward():  # d(a b)/da = b
            self.grad += _unbroadcast(out.grad * other.data, self.data.shape)
            other.grad += _unbroadcast(out.grad * self.data, other.data.shape)
        out._backward = backward
        return out

    def __matmul__(self, other):
        other = self._wrap(other)
        out = Tensor(self.data @ other.data, (self, other), "@")

        def backward():  # Y = A B (N, K)(K, M): dA = dY B^T, dB = A^T dY
            self.grad += out.grad @ other.data.T
            other.grad += self.data.T @ out.grad
        out._backward = backward
        return out

    def __neg__(self):
        return self * -1.0

    def __sub__(self, other):
        return self + (-self._wrap(other))

    __radd__ = __add__
    __rmul__ = __mul__

    def _unary(self, value, local_grad, op):
        out = Tensor(value, (self,), op)

        def backward():
            self.grad += out.grad * local_grad
        out._backward = backward
        return out

    def relu(self):
        return self._unary(np.maximum(self.data, 0), (self.data > 0).astype(np.float64), "relu")

    def tanh(self):
        t = np.tanh(self.data)
        return self._unary(t, 1 - t * t, "tanh")

    def exp(self):
        e = np.exp(self.data)
        return self._unary(e, e, "exp")

    def sum(self):
        out = Tensor(self.data.sum(), (self,), "sum")

        def backward():  # every element contributes with weight 1
            self.grad += np.broadcast_to(out.grad, self.data.shape)
        out._backward = backward
        return out

    def cross_entropy(self, labels):
        """Mean softmax cross-entropy of these logits (B, C) against integer ``labels`` (B,) -> scalar."""
        labels = np.asarray(labels)
        if self.data.ndim != 2 or labels.shape != (self.data.shape[0],):
            raise ValueError(f"need logits (B, C) and labels (B,), got {self.data.shape} and {labels.shape}")
        shifted = self.data - self.data.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        rows = np.arange(len(labels))
        out = Tensor(-log_probs[rows, labels].mean(), (self,), "cross_entropy")

        def backward():  # d/dz = (softmax(z) - onehot(y)) / B
            delta = np.exp(log_probs)
            delta[rows, labels] -= 1
            self.grad += out.grad * delta / len(labels)
        out._backward = backward
        return out

    def topological_order(self) -> list:
        """Every node this one depends on, each after all of its parents (inputs first)."""
        order, seen = [], set()

        def visit(node):
            if id(node) not in seen:
                seen.add(id(node))
                for parent in node.parents:
                    visit(parent)
                order.append(node)
        visit(self)
        return order

    def backward(self):
        """Fill ``grad`` of every node this scalar depends on with d(self)/d(node)."""
        if self.data.size != 1:
            raise ValueError(f"backward() starts from a scalar (a loss), got shape {self.data.shape}")
        order = self.topological_order()
        for node in order:
            node.grad = np.zeros_like(node.data)
        self.grad = np.ones_like(self.data)
        for node in reversed(order):
            node._backward()


class TensorMLP:
    """The MLP on :class:`Tensor`: x (B, D) -> [x W + b -> relu] * len(hidden) -> logits (B, C).

    Weights are (in, out) as in Keras; ``from_torch`` copies a :class:`MLP`'s weights (transposing them).
    """

    def __init__(self, weights, biases):
        self.weights = [Tensor(w) for w in weights]
        self.biases = [Tensor(b) for b in biases]

    @classmethod
    def from_torch(cls, model):
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        return cls([m.weight.detach().double().numpy().T.copy() for m in linears],
                   [m.bias.detach().double().numpy().copy() for m in linears])

    def parameters(self):
        return [p for pair in zip(self.weights, self.biases, strict=True) for p in pair]

    def __call__(self, x):
        h = Tensor(x)
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = h @ w + b
            if i < len(self.weights) - 1:
                h = h.relu()
        return h

    def sgd_step(self, lr: float):
        for p in self.parameters():
            p.data -= lr * p.grad


# ---- the PyTorch MLP and its Keras twin -----------------------------------------------------------------

@dataclass
class MLPConfig:
    in_features: int                 # D: input features (images are flattened)
    num_classes: int                 # C: output logits
    hidden: list = field(default_factory=lambda: [128])  # widths of the hidden layers, input side first
    activation: str = "relu"         # one of ACTIVATIONS
    dropout: float = 0.0             # drop probability after each hidden activation (0: no dropout layers)

    def __post_init__(self):
        _check_activation(self.activation)
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout!r}")
        for name in ("in_features", "num_classes"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive int, got {getattr(self, name)!r}")
        if not all(isinstance(h, int) and h >= 1 for h in self.hidden):
            raise ValueError(f"hidden must be a list of positive ints, got {self.hidden!r}")


TORCH_ACTIVATIONS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU, "gelu": nn.GELU}


class MLP(nn.Module):
    """x (B, ...) flattened to (B, D) -> [Linear -> activation -> Dropout] per hidden layer -> Linear -> (B, C)."""

    def __init__(self, config: MLPConfig):
        super().__init__()
        self.config = config
        layers, width = [], config.in_features
        for h in config.hidden:
            layers += [nn.Linear(width, h), TORCH_ACTIVATIONS[config.activation]()]
            if config.dropout:
                layers.append(nn.Dropout(config.dropout))
            width = h
        layers.append(nn.Linear(width, config.num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x.flatten(1))  # (B, ...) -> (B, D) -> (B, C)


def keras_mlp(config: MLPConfig):
    """The same network in Keras (``Dense`` layers producing logits); ``copy_torch_mlp_to_keras`` gives it the
    weights of an :class:`MLP` built from the same config."""
    import keras

    layers = [keras.Input((config.in_features,))]
    for h in config.hidden:
        layers.append(keras.layers.Dense(h, activation=config.activation))  # Keras gelu is exact by default, as nn.GELU
        if config.dropout:
            layers.append(keras.layers.Dropout(config.dropout))
    layers.append(keras.layers.Dense(config.num_classes))
    return keras.Sequential(layers)


def copy_torch_mlp_to_keras(torch_model: MLP, keras_model) -> None:
    """Copy each ``nn.Linear`` (weight (out, in), bias) into the matching ``Dense`` (kernel = weight^T, bias)."""
    import keras

    linears = [m for m in torch_model.modules() if isinstance(m, nn.Linear)]
    denses = [layer for layer in keras_model.layers if isinstance(layer, keras.layers.Dense)]
    if len(linears) != len(denses):
        raise ValueError(f"the PyTorch model has {len(linears)} linear layers, the Keras model {len(denses)} Dense")
    for linear, dense in zip(linears, denses, strict=True):
        kernel = linear.weight.detach().cpu().numpy().T
        if tuple(dense.kernel.shape) != kernel.shape:
            raise ValueError(f"shape mismatch: Dense kernel {tuple(dense.kernel.shape)} vs weight^T {kernel.shape}")
        dense.set_weights([kernel, linear.bias.detach().cpu().numpy()])


# ---- initialisation and what it does to each layer --------------------------------------------------------

INIT_SCHEMES = ("xavier", "he", "torch_default")


def init_std(scheme: str, fan_in: int, fan_out: int) -> float:
    """Standard deviation of the weights under ``scheme``: Xavier/Glorot sqrt(2 / (fan_in + fan_out)),
    He/Kaiming sqrt(2 / fan_in), PyTorch's ``nn.Linear`` default U(-1/sqrt(fan_in), 1/sqrt(fan_in)):
    1/sqrt(3 fan_in)."""
    if scheme == "xavier":
        return math.sqrt(2 / (fan_in + fan_out))
    if scheme == "he":
        return math.sqrt(2 / fan_in)
    if scheme == "torch_default":
        return 1 / math.sqrt(3 * fan_in)
    raise ValueError(f"scheme must be one of {', '.join(INIT_SCHEMES)}, got {scheme!r}")


@torch.no_grad()
def init_mlp_(model: nn.Module, scheme, seed: int = 0) -> nn.Module:
    """Re-draw every ``nn.Linear`` weight from a zero-mean normal with std ``init_std(scheme, ...)`` (or with the
    given std when ``scheme`` is a number), and set biases to zero. In place; returns ``model``."""
    if not isinstance(scheme, (int, float)) and scheme not in INIT_SCHEMES:
        raise ValueError(f"scheme must be a standard deviation or one of {', '.join(INIT_SCHEMES)}, got {scheme!r}")
    if isinstance(scheme, (int, float)) and scheme <= 0:
        raise ValueError(f"a standard deviation must be > 0, got {scheme!r}")
    generator = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.Linear):
            fan_out, fan_in = m.weight.shape
            std = scheme if isinstance(scheme, (int, float)) else init_std(scheme, fan_in, fan_out)
            m.weight.copy_(torch.randn(m.weight.shape, generator=generator, dtype=m.weight.dtype) * std)
            m.bias.zero_()
    return model


def layer_statistics(model: nn.Module, x, y, loss_fn=None) -> dict:
    """Per ``nn.Linear`` layer, input side first: the std of its output (pre-activation, ``"z_std"``), the mean
    square of its input (``"input_ms"``) and the std of the loss gradient w.r.t. its weight (``"grad_std"``),
    from one forward and backward pass on the batch x (B, D), y (B,). Leaves no gradient on ``model``."""
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    records, hooks = [], []
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    for m in linears:
        hooks.append(m.register_forward_hook(
            lambda mod, inputs, out: records.append((inputs[0].pow(2).mean().item(), out.std().item()))))
    try:
        model.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
    finally:
        for h in hooks:
            h.remove()
    stats = {"input_ms": [r[0] for r in records], "z_std": [r[1] for r in records],
             "grad_std": [m.weight.grad.std().item() for m in linears]}
    model.zero_grad(set_to_none=True)
    return stats
