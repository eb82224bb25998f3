"""Recurrent networks: RNN, GRU and LSTM cells from scratch, the models of the forecasting and language tasks,
and the weight conversion that makes PyTorch and Keras compute the same numbers.

Shapes: B batch, T time steps, D input features, H hidden units, V vocabulary size, G gates per cell
(1 for the plain RNN, 3 for the GRU, 4 for the LSTM). Sequences are batch-first, x (B, T, D), as with
PyTorch's ``batch_first=True`` and Keras (whose only layout this is); a state h or c is (B, H) inside a cell
and (1, B, H) (layers first) where PyTorch's layers take or return it.
Weights of one layer, PyTorch: weight_ih (G*H, D), weight_hh (G*H, H), bias_ih (G*H,), bias_hh (G*H,).
Keras: kernel (D, G*H), recurrent_kernel (H, G*H), bias (G*H,), or (2, G*H) for GRU(reset_after=True).
"""
import math

import numpy as np
import torch
from torch import nn

from . import _validate as check

CELLS = ("rnn", "gru", "lstm")
GATES = {"rnn": 1, "gru": 3, "lstm": 4}  # blocks of H rows stacked in weight_ih / weight_hh
PARAM_NAMES = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")  # PyTorch's names, layer 0


def check_cell(cell: str) -> str:
    """``cell`` if it is one of :data:`CELLS`, else ``ValueError``."""
    if not isinstance(cell, str) or cell not in CELLS:
        raise ValueError(f"unknown cell {cell!r}; accepted: {', '.join(CELLS)}")
    return cell


# ---- the three cells: one time step each ----------------------------------------------------------------

def _check_step(cell: str, x, state, weight_ih, weight_hh, bias_ih, bias_hh) -> None:
    """Shapes of one cell step: x (B, D), h (and c) (B, H), weight_ih (G*H, D), weight_hh (G*H, H), biases (G*H,)."""
    G = GATES[cell]
    check.tensor("weight_hh", weight_hh, 2, spec=f"(G*H, H) with G={G}", floating=True)
    H = weight_hh.shape[1]
    check.tensor("x", x, 2, spec="(B, D)", floating=True)
    check.tensor("weight_ih", weight_ih, 2, spec=f"(G*H, D) = ({G * H}, D)", floating=True)
    B, D = x.shape
    expected = {"weight_ih": (G * H, D), "weight_hh": (G * H, H), "bias_ih": (G * H,), "bias_hh": (G * H,)}
    for name, t in zip(expected, (weight_ih, weight_hh, bias_ih, bias_hh), strict=True):
        check.tensor(name, t, spec=str(expected[name]), floating=True)
        if tuple(t.shape) != expected[name]:
            raise ValueError(f"{name} must have shape {expected[name]} for a {cell.upper()} cell with x (B, D) = "
                             f"{(B, D)} and H={H} (G={G} gate blocks of H rows), got {tuple(t.shape)}")
    states = state if cell == "lstm" else (state,)
    names = ("h", "c") if cell == "lstm" else ("h",)
    if cell == "lstm" and not (isinstance(state, tuple | list) and len(state) == 2):
        raise TypeError(f"state must be a tuple (h, c) of two (B, H) = {(B, H)} tensors, got {type(state).__name__}")
    for name, t in zip(names, states, strict=True):
        check.tensor(name, t, spec=f"(B, H) = {(B, H)}", floating=True)
        if tuple(t.shape) != (B, H):
            raise ValueError(f"{name} must have shape (B, H) = {(B, H)} (B from x, H from weight_hh), "
                             f"got {tuple(t.shape)}")


def rnn_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    """h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh). x (B, D), h (B, H) -> h' (B, H)."""
    _check_step("rnn", x, h, weight_ih, weight_hh, bias_ih, bias_hh)
    return _rnn_step(x, h, weight_ih, weight_hh, bias_ih, bias_hh)


def _rnn_step(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    return torch.tanh(x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh)


def gru_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    """GRU step with PyTorch's gate order r, z, n. x (B, D), h (B, H) -> h' (B, H).

    r = sigmoid(x W_ir^T + b_ir + h W_hr^T + b_hr)      reset gate
    z = sigmoid(x W_iz^T + b_iz + h W_hz^T + b_hz)      update gate
    n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn))   candidate (reset applied *after* the product)
    h' = (1 - z) * n + z * h
    """
    _check_step("gru", x, h, weight_ih, weight_hh, bias_ih, bias_hh)
    return _gru_step(x, h, weight_ih, weight_hh, bias_ih, bias_hh)


def _gru_step(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    i_r, i_z, i_n = (x @ weight_ih.T + bias_ih).chunk(3, dim=1)  # (B, 3H) -> 3 x (B, H)
    h_r, h_z, h_n = (h @ weight_hh.T + bias_hh).chunk(3, dim=1)
    r = torch.sigmoid(i_r + h_r)
    z = torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    return (1 - z) * n + z * h


def lstm_cell(x, state, weight_ih, weight_hh, bias_ih, bias_hh):
    """LSTM step with gate order i, f, g, o. x (B, D), state (h, c) each (B, H) -> (h', c').

    [i, f, g, o] = x W_ih^T + b_ih + h W_hh^T + b_hh, then sigmoid on i, f, o and tanh on g;
    c' = f * c + i * g,  h' = o * tanh(c').
    """
    _check_step("lstm", x, state, weight_ih, weight_hh, bias_ih, bias_hh)
    return _lstm_step(x, state, weight_ih, weight_hh, bias_ih, bias_hh)


def _lstm_step(x, state, weight_ih, weight_hh, bias_ih, bias_hh):
    h, c = state
    i, f, g, o = (x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh).chunk(4, dim=1)  # 4 x (B, H)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c = f * c + i * g
    return o * torch.tanh(c), c


STEPS = {"rnn": rnn_cell, "gru": gru_cell, "lstm": lstm_cell}
_UNCHECKED_STEPS = {"rnn": _rnn_step, "gru": _gru_step, "lstm": _lstm_step}  # ScratchRNN checks once, not per step


class ScratchRNN(nn.Module):
    """One recurrent layer unrolled in a Python loop over time; drop-in for ``nn.RNN/GRU/LSTM(batch_first=True)``.

    Its parameters have PyTorch's names and shapes, so ``load_state_dict`` works in both directions.
    forward: x (B, T, D), state None or h (1, B, H) or, for the LSTM, (h, c) -> outputs (B, T, H), final state.
    """

    def __init__(self, cell: str, input_size: int, hidden_size: int):
        super().__init__()
        check.positive_int("input_size", input_size)
        check.positive_int("hidden_size", hidden_size)
        self.cell, self.input_size, self.hidden_size = check_cell(cell), input_size, hidden_size
        rows = GATES[cell] * hidden_size
        self.weight_ih_l0 = nn.Parameter(torch.empty(rows, input_size))
        self.weight_hh_l0 = nn.Parameter(torch.empty(rows, hidden_size))
        self.bias_ih_l0 = nn.Parameter(torch.empty(rows))
        self.bias_hh_l0 = nn.Parameter(torch.empty(rows))
        bound = 1 / math.sqrt(hidden_size)  # PyTorch's default: U(-1/sqrt(H), 1/sqrt(H)) for every tensor
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def initial_state(self, x, state):
        B, H = x.shape[0], self.hidden_size
        expected = (1, B, H)
        if state is None:
            zeros = x.new_zeros(B, H)
            return (zeros, zeros) if self.cell == "lstm" else zeros
        if self.cell == "lstm" and not (isinstance(state, tuple | list) and len(state) == 2):
            raise ValueError(f"an LSTM state is a tuple (h, c) of two tensors of shape {expected}, "
                             f"got {type(state).__name__}")
        if self.cell != "lstm" and not isinstance(state, torch.Tensor):
            raise ValueError(f"a {self.cell.upper()} state is one tensor of shape {expected}, "
                             f"got {type(state).__name__}")
        parts = state if self.cell == "lstm" else (state,)
        for s in parts:
            check.tensor("state", s, spec=str(expected), floating=True)
            if tuple(s.shape) != expected:
                raise ValueError(f"state tensors must have shape (layers, B, H) = {expected}, got {tuple(s.shape)}")
        return tuple(s[0] for s in parts) if self.cell == "lstm" else state[0]  # (1, B, H) -> (B, H)

    def forward(self, x, state=None):
        check.tensor("x", x, spec=f"(B, T, D={self.input_size})", floating=True)
        if x.ndim != 3 or x.shape[2] != self.input_size:
            raise ValueError(f"x must have shape (B, T, D={self.input_size}) (batch first), got {tuple(x.shape)}")
        if x.shape[1] == 0:
            raise ValueError(f"x must hold at least one time step: shape (B, T, D) with T >= 1, got {tuple(x.shape)}")
        state = self.initial_state(x, state)
        params = [getattr(self, name) for name in PARAM_NAMES]
        outputs = []
        for t in range(x.shape[1]):  # the same weights at every step: parameter sharing over time
            state = _UNCHECKED_STEPS[self.cell](x[:, t], state, *params)
            outputs.append(state[0] if self.cell == "lstm" else state)
        final = tuple(s.unsqueeze(0) for s in state) if self.cell == "lstm" else state.unsqueeze(0)
        return torch.stack(outputs, dim=1), final  # (B, T, H), state with a leading layer axis


def make_recurrent(cell: str, input_size: int, hidden_size: int, impl: str = "torch") -> nn.Module:
    """A batch-first recurrent layer: PyTorch's fused one (``impl='torch'``) or :class:`ScratchRNN`.

    Both have the same parameters and the same call: x (B, T, D) -> (outputs (B, T, H), final state).
    """
    check_cell(cell)
    check.positive_int("input_size", input_size)
    check.positive_int("hidden_size", hidden_size)
    if impl == "scratch":
        return ScratchRNN(cell, input_size, hidden_size)
    if impl != "torch":
        raise ValueError(f"unknown impl {impl!r}; accepted: torch, scratch")
    layer = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[cell]
    return layer(input_size, hidden_size, batch_first=True)


def input_gradient_norms(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """How much the last output depends on each input step: ||d sum(h_T) / d x_t|| for t = 1..T.

    x (B, T, D) -> (T,) gradient norms over the batch and features (back-propagation through time).
    """
    check.tensor("x", x, 3, spec="(B, T, D)", floating=True)
    x = x.detach().clone().requires_grad_(True)
    outputs, _ = layer(x)
    outputs[:, -1].sum().backward()  # a loss that reads only the last step
    return x.grad.norm(dim=(0, 2))


# ---- PyTorch -> Keras ----------------------------------------------------------------------------------

def torch_to_keras_weights(cell: str, layer: nn.Module, index: int = 0) -> list:
    """Convert layer ``index`` of a PyTorch recurrent module to the list ``keras_layer.set_weights`` expects.

    RNN and LSTM: transpose, and add the two biases into Keras' one (LSTM gate order i, f, g, o is Keras'
    i, f, c, o under another name). GRU: reorder the gates from PyTorch's r, z, n to Keras' z, r, h and keep
    the two biases as rows of a (2, 3H) array (Keras' ``reset_after=True``, which is PyTorch's formula).
    """
    check_cell(cell)
    layers = getattr(layer, "num_layers", 1)
    check.integer("index", index, 0, layers - 1)
    if getattr(layer, "bidirectional", False):
        raise ValueError("layer must be unidirectional: Keras' recurrent layers here have one direction")
    names = [name.replace("_l0", f"_l{index}") for name in PARAM_NAMES]
    if not all(hasattr(layer, name) for name in names):
        raise TypeError(f"layer must be nn.RNN/GRU/LSTM or ScratchRNN (parameters {', '.join(names)}), "
                        f"got {type(layer).__name__}")
    rows = getattr(layer, names[1]).shape[0]
    if rows != GATES[cell] * getattr(layer, names[1]).shape[1]:
        raise ValueError(f"cell={cell!r} does not match the layer: weight_hh has {rows} rows, not "
                         f"{GATES[cell]} x hidden size; accepted: the layer's own cell type")
    W_ih, W_hh, b_ih, b_hh = (getattr(layer, name).detach().cpu().numpy() for name in names)
    if cell != "gru":
        return [W_ih.T, W_hh.T, b_ih + b_hh]  # (D, G*H), (H, G*H), (G*H,)
    H = W_hh.shape[1]

    def z_r_n(a):  # rows r | z | n -> z | r | n
        return np.concatenate([a[H:2 * H], a[:H], a[2 * H:]], axis=0)

    return [z_r_n(W_ih).T, z_r_n(W_hh).T, np.stack([z_r_n(b_ih), z_r_n(b_hh)])]


def linear_to_keras(linear: nn.Linear) -> list:
    """nn.Linear's weight (out, in) and bias -> Keras Dense's [kernel (in, out), bias]: y = x W^T + b = x K + b.
    (Without a bias: just [kernel].) The list is what ``Dense.set_weights`` takes."""
    bias = [] if linear.bias is None else [linear.bias.detach().cpu().numpy()]
    return [linear.weight.detach().cpu().numpy().T, *bias]


def keras_recurrent(cell: str, hidden_size: int, return_sequences: bool = False, return_state: bool = False):
    """The Keras layer that computes what ``make_recurrent(cell, ...)`` computes (tanh, sigmoid gates)."""
    import keras

    check.positive_int("hidden_size", hidden_size)
    layer = {"rnn": keras.layers.SimpleRNN, "gru": keras.layers.GRU, "lstm": keras.layers.LSTM}[check_cell(cell)]
    extra = {"reset_after": True} if cell == "gru" else {}
    return layer(hidden_size, return_sequences=return_sequences, return_state=return_state, **extra)


# ---- task 1: forecasting a series ----------------------------------------------------------------------

def make_windows(series, window: int):
    """Sliding windows: X[n] = series[n : n + window], y[n] = series[n + window]. (N,) -> X (N-w, w), y (N-w,)."""
    series = check.array("series", series, spec="(N,)", dtype=np.float64)
    check.positive_int("window", window)
    if series.ndim != 1 or not 1 <= window < len(series):
        raise ValueError(f"need a 1-D series longer than the window; got shape {series.shape}, window {window}")
    X = np.lib.stride_tricks.sliding_window_view(series[:-1], window)  # (N - w, w)
    return X.copy(), series[window:].copy()


class Forecaster(nn.Module):
    """Many-to-one: a window of past values x (B, T) -> the next value (B,), from the last hidden state."""

    def __init__(self, hidden_size: int = 32, cell: str = "lstm", impl: str = "torch"):
        super().__init__()
        self.rnn = make_recurrent(cell, 1, hidden_size, impl)
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x):
        check.tensor("x", x, 2, spec="(B, T): one window of past values per row", floating=True)
        outputs, _ = self.rnn(x.unsqueeze(-1))  # (B, T) -> (B, T, 1) -> (B, T, H)
        return self.head(outputs[:, -1]).squeeze(-1)  # last step (B, H) -> (B, 1) -> (B,)


def keras_forecaster(window: int, hidden_size: int = 32, cell: str = "lstm"):
    """The Keras twin of :class:`Forecaster`: input (B, T, 1) -> output (B, 1)."""
    import keras

    check.positive_int("window", window)
    return keras.Sequential([keras.Input((window, 1)), keras_recurrent(cell, hidden_size), keras.layers.Dense(1)])


def copy_forecaster_to_keras(model: Forecaster, keras_model) -> None:
    """Copy a :class:`Forecaster`'s weights into :func:`keras_forecaster`'s model (same cell and sizes)."""
    cell = {nn.RNN: "rnn", nn.GRU: "gru", nn.LSTM: "lstm"}.get(type(model.rnn)) or model.rnn.cell
    if len(keras_model.layers) != 2:
        raise ValueError(f"keras_model must be keras_forecaster(...)'s [recurrent, Dense] model, got "
                         f"{len(keras_model.layers)} layers")
    recurrent, dense = keras_model.layers
    pairs = [(recurrent, torch_to_keras_weights(cell, model.rnn)), (dense, linear_to_keras(model.head))]
    check.keras_assignments(pairs, "a Forecaster (same cell and hidden_size?)")


# ---- task 2: a character-level language model ----------------------------------------------------------

class CharVocab:
    """Characters <-> integer ids. Id 0 is ``unk`` (U+FFFD) for characters not seen when building."""

    unk = "\ufffd"

    def __init__(self, text: str):
        if not isinstance(text, str) or not text:
            raise TypeError(f"text must be a non-empty str (the training text), got {type(text).__name__} "
                            f"{text!r:.40}")
        self.chars = [self.unk] + sorted(set(text) - {self.unk})
        self.index = {ch: i for i, ch in enumerate(self.chars)}

    def __len__(self):
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """str of length N -> int64 ids (N,)."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        return np.array([self.index.get(ch, 0) for ch in text], dtype=np.int64)

    def decode(self, ids) -> str:
        """ids (N,) -> str of length N."""
        ids = [int(i) for i in np.asarray(ids).reshape(-1)]
        bad = [i for i in ids if not 0 <= i < len(self.chars)]
        if bad:
            raise ValueError(f"ids {bad[:5]} are outside this vocabulary: accepted ids 0..{len(self.chars) - 1}")
        return "".join(self.chars[i] for i in ids)


def next_char_pairs(ids, seq_len: int):
    """Cut ids (N,) into non-overlapping inputs X (M, T) and targets Y (M, T) = the next character of each."""
    check.positive_int("seq_len", seq_len)
    ids = torch.as_tensor(check.integer_labels("ids", ids), dtype=torch.long)
    m = (len(ids) - 1) // seq_len
    if m < 1:
        raise ValueError(f"need more than seq_len + 1 = {seq_len + 1} ids, got {len(ids)}")
    return ids[:m * seq_len].view(m, seq_len), ids[1:m * seq_len + 1].view(m, seq_len)


class CharLM(nn.Module):
    """Many-to-many: ids (B, T) -> logits (B, T, V) for the next character at every position."""

    def __init__(self, vocab_size: int, embed_dim: int = 32, hidden_size: int = 256, num_layers: int = 1,
                 cell: str = "lstm", dropout: float = 0.0):
        super().__init__()
        for name, value in (("vocab_size", vocab_size), ("embed_dim", embed_dim), ("hidden_size", hidden_size),
                            ("num_layers", num_layers)):
            check.positive_int(name, value)
        check.probability("dropout", dropout)
        layer = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[check_cell(cell)]
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.rnn = layer(embed_dim, hidden_size, num_layers, batch_first=True, dropout=dropout if num_layers > 1 else 0)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward_with_state(self, ids, state=None):
        """ids (B, T), state None or what the last call returned -> (logits (B, T, V), new state)."""
        check.tensor("ids", ids, 2, spec="(B, T)", integer_dtype=True)
        if state is not None:
            expected = (self.rnn.num_layers, ids.shape[0], self.rnn.hidden_size)
            parts = state if isinstance(state, tuple | list) else (state,)
            shapes = [tuple(getattr(s, "shape", ())) for s in parts]
            if len(parts) != (2 if isinstance(self.rnn, nn.LSTM) else 1) or any(sh != expected for sh in shapes):
                kind = "(h, c), each" if isinstance(self.rnn, nn.LSTM) else "h"
                raise ValueError(f"state must be {kind} of shape (layers, B, H) = {expected} (what the last call "
                                 f"returned for this batch size), got {shapes}")
        outputs, state = self.rnn(self.embed(ids), state)  # (B, T, E) -> (B, T, H)
        return self.head(outputs), state

    def forward(self, ids):
        return self.forward_with_state(ids)[0]


def keras_char_lm(vocab_size: int, embed_dim: int = 32, hidden_size: int = 256, num_layers: int = 1,
                  cell: str = "lstm"):
    """The Keras twin of :class:`CharLM` (without state passing): ids (B, T) -> logits (B, T, V)."""
    import keras

    check.positive_int("vocab_size", vocab_size)
    check.positive_int("embed_dim", embed_dim)
    check.positive_int("num_layers", num_layers)
    recurrent = [keras_recurrent(cell, hidden_size, return_sequences=True) for _ in range(num_layers)]
    return keras.Sequential([keras.Input((None,), dtype="int32"), keras.layers.Embedding(vocab_size, embed_dim),
                             *recurrent, keras.layers.Dense(vocab_size)])


def copy_char_lm_to_keras(model: CharLM, keras_model) -> None:
    """Copy a :class:`CharLM`'s weights into :func:`keras_char_lm`'s model (same sizes)."""
    cell = {nn.RNN: "rnn", nn.GRU: "gru", nn.LSTM: "lstm"}[type(model.rnn)]
    if len(keras_model.layers) != model.rnn.num_layers + 2:
        raise ValueError(f"keras_model has {len(keras_model.layers) - 2} recurrent layers, the CharLM "
                         f"num_layers={model.rnn.num_layers} (nothing was copied); build both with the same num_layers")
    embed, *recurrent, dense = keras_model.layers
    pairs = [(embed, [model.embed.weight.detach().cpu().numpy()])]
    pairs += [(layer, torch_to_keras_weights(cell, model.rnn, index)) for index, layer in enumerate(recurrent)]
    pairs.append((dense, linear_to_keras(model.head)))
    check.keras_assignments(pairs, "a CharLM (same cell and sizes?)")


def detach_state(state):
    """Cut the graph behind a hidden state (truncated back-propagation through time); keeps its values."""
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


@torch.no_grad()
def perplexity(model: CharLM, ids, seq_len: int = 128, streams: int = 16, device="cpu") -> float:
    """exp(mean cross-entropy) of predicting ids[1:] from the text before, reading ``streams`` slices of the
    text in parallel and carrying the state from one chunk of ``seq_len`` to the next."""
    check.positive_int("seq_len", seq_len)
    check.positive_int("streams", streams)
    model.eval()
    ids = torch.as_tensor(check.integer_labels("ids", ids), dtype=torch.long)
    per = (len(ids) - 1) // streams
    if per < 1:
        raise ValueError(f"need more than {streams} + 1 ids for {streams} streams, got {len(ids)}")
    x = ids[:streams * per].view(streams, per).to(device)  # (S, N/S): one row per stream
    y = ids[1:streams * per + 1].view(streams, per).to(device)
    total, state = 0.0, None
    for start in range(0, per, seq_len):
        logits, state = model.forward_with_state(x[:, start:start + seq_len], state)
        total += nn.functional.cross_entropy(logits.flatten(0, 1), y[:, start:start + seq_len].flatten(),
                                             reduction="sum").item()
    return math.exp(total / y.numel())


@torch.no_grad()
def sample(model: CharLM, vocab: CharVocab, prompt: str, length: int, temperature: float = 1.0,
           generator: torch.Generator | None = None) -> str:
    """Continue ``prompt`` by ``length`` characters drawn from softmax(logits / temperature)."""
    check.number("temperature", temperature, 0.0, low_open=True)
    check.non_negative_int("length", length)
    if not isinstance(prompt, str) or not prompt:
        raise ValueError("prompt must hold at least one character")
    model.eval()
    device = next(model.parameters()).device
    ids = torch.as_tensor(vocab.encode(prompt), device=device)[None]  # (1, T)
    logits, state = model.forward_with_state(ids)
    out = []
    for _ in range(length):
        probs = torch.softmax(logits[0, -1] / temperature, dim=-1).cpu()  # (V,)
        nxt = int(torch.multinomial(probs, 1, generator=generator))
        out.append(nxt)
        logits, state = model.forward_with_state(torch.tensor([[nxt]], device=device), state)
    return prompt + vocab.decode(out)
