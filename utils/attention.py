"""Attention and the Transformer, in PyTorch and in Keras 3 (chapter 5; chapter 6's BERT is built from it).

Names follow "Attention Is All You Need" and BERT, one class per box of the paper's diagram, so that
pretrained BERT weights map one-to-one onto these modules.

Shape legend
    B   batch size
    T   sequence length (Tq: queries, Tk: keys/values; T when they are the same)
    D   model width ``d_model``
    H   number of heads;  dk = dv = D // H  the width of one head
    F   hidden width of the feed-forward sublayer ``d_ff``

Masks everywhere in this module are boolean with **True = may attend (keep)** and False = masked, the
convention of ``torch.nn.functional.scaled_dot_product_attention`` and Keras. (``torch.nn.MultiheadAttention``
uses the opposite polarity for its ``key_padding_mask`` and boolean ``attn_mask``: True = ignore.)
A 2-D mask of shape (B, Tk) is a *padding* mask (True = real token); 3-D (B, Tq, Tk) and 4-D masks must
broadcast to (B, H, Tq, Tk): give the (T, T) ``causal_mask(T)`` as ``causal_mask(T)[None, None]`` (the decoder
block adds it itself).

The Keras twins (``KerasMultiHeadAttention``, ``KerasPositionwiseFeedForward``, ``KerasTransformerEncoderBlock``,
``KerasTransformerDecoderBlock``) and copying weights into them are in :mod:`utils.attention_keras`.
Copying these weights into the libraries' own layers (``torch.nn.MultiheadAttention``,
``torch.nn.TransformerEncoderLayer``, ``keras.layers.MultiHeadAttention``...) is in :mod:`utils.attention_interop`.
"""
import contextlib
import math

import torch
import torch.nn.functional as F
from torch import nn

from . import _validate as check

ACTIVATIONS = ("gelu", "gelu_tanh", "relu")  # gelu_tanh: the tanh approximation GPT-2 uses


# ----------------------------------------------------------------------------------------------- masks etc.
def causal_mask(T: int, device=None) -> torch.Tensor:
    """(T, T) bool, True on and below the diagonal: position i may attend to positions j <= i."""
    check.positive_int("T", T)
    return torch.ones(T, T, dtype=torch.bool, device=device).tril()


def sinusoidal_positional_encoding(max_len: int, d_model: int) -> torch.Tensor:
    """(max_len, d_model) float32 table PE[pos, 2i] = sin(pos / 10000^(2i/D)), PE[pos, 2i+1] = cos(same)."""
    check.positive_int("max_len", max_len)
    if check.positive_int("d_model", d_model) < 2 or d_model % 2:
        raise ValueError(f"d_model must be an even d_model >= 2 (sin and cos pairs), got d_model={d_model}")
    position = torch.arange(max_len, dtype=torch.float64)[:, None]                  # (max_len, 1)
    inv_freq = 10000.0 ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)  # (D/2,)
    angles = position * inv_freq                                                    # (max_len, D/2)
    pe = torch.empty(max_len, d_model, dtype=torch.float64)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(angles), torch.cos(angles)
    return pe.float()


MASK_SHAPES = "(B, Tk) padding, (B, Tq, Tk) or (B, 1, Tq, Tk) (each dim may be 1 to broadcast)"


def _check_broadcast_mask(mask: torch.Tensor, target: tuple, name: str = "mask") -> None:
    """Refuse a mask with more dims than ``target`` or a dim that is neither the target's nor 1 (it would
    broadcast to something else, or fail deep inside torch)."""
    shape = tuple(mask.shape)
    if len(shape) > len(target) or any(m not in (1, t) for m, t in zip(shape[::-1], target[::-1], strict=False)):
        raise ValueError(f"{name} must broadcast to (B, H, Tq, Tk) = {tuple(target)}, i.e. {MASK_SHAPES}; "
                         f"got {shape}")


def _expand_mask(mask: torch.Tensor | None, B: int, Tq: int, Tk: int, H: int = 1,
                 name: str = "mask") -> torch.Tensor | None:
    """Padding mask (B, Tk) -> (B, 1, 1, Tk); a mask of 3 dims (B, Tq, Tk) -> (B, 1, Tq, Tk); 4 dims as is.

    A 2-D (T, T) mask that equals ``causal_mask(T)`` while B == T is refused: read as a padding mask it would
    silently mean "sequence b has b + 1 tokens" (pass ``causal_mask(T)[None, None]``, or a padding mask that
    really is triangular as ``mask[:, None, None, :]``). Only shapes are checked otherwise (no pass over values).
    """
    if mask is None:
        return None
    check.tensor(name, mask, spec=MASK_SHAPES)
    if mask.dtype != torch.bool:
        raise TypeError(f"{name} must be a bool tensor (True = may attend), got dtype {mask.dtype}")
    shape = tuple(mask.shape)
    if mask.dim() == 2:
        if shape != (B, Tk):
            hint = " did you mean causal_mask(T)[None, None]?" if shape == (Tq, Tk) else ""
            raise ValueError(f"{name} must be {MASK_SHAPES}; a 2-D mask is a padding mask (B, Tk) = ({B}, {Tk}), "
                             f"got {shape} with B={B}, Tq={Tq}, Tk={Tk}:{hint or ' one True per real key'}")
        if B == Tq == Tk and B > 1 and torch.equal(mask, causal_mask(Tk, device=mask.device)):
            raise ValueError(f"{name} of shape {shape} equals causal_mask({Tk}) but a 2-D mask is read as a padding "
                             f"mask (B, Tk) with B={B}, Tk={Tk}: did you mean causal_mask(T)[None, None]? (A padding "
                             "mask that truly is triangular: pass it as mask[:, None, None, :].)")
        return mask[:, None, None, :]                                               # (B, 1, 1, Tk)
    if mask.dim() == 3:
        _check_broadcast_mask(mask[:, None], (B, H, Tq, Tk), name)
        return mask[:, None]                                                        # (B, 1, Tq, Tk)
    if mask.dim() == 4:
        _check_broadcast_mask(mask, (B, H, Tq, Tk), name)
        return mask
    raise ValueError(f"{name} must be {MASK_SHAPES}, got {mask.dim()} dims: shape {shape}")


# ------------------------------------------------------------------------------------------ PyTorch part
def scaled_dot_product_attention(q, k, v, mask=None, dropout=None):
    """softmax(q k^T / sqrt(dk)) v, the readable way: the arguments checked, then :func:`attend`.

    q (B, H, Tq, dk), k (B, H, Tk, dk), v (B, H, Tk, dv); ``mask`` bool broadcastable to (B, H, Tq, Tk),
    True = may attend. ``dropout`` is None or a callable (e.g. ``nn.Dropout``) applied to the weights.
    Returns ``(out (B, H, Tq, dv), weights (B, H, Tq, Tk))``; the weights are those before dropout.
    """
    for name, t in (("q", q), ("k", k), ("v", v)):
        check.tensor(name, t, spec="(B, H, T, d)", floating=True)
    if (q.dim() < 2 or not q.dim() == k.dim() == v.dim() or q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]
            or q.shape[:-2] != k.shape[:-2] or k.shape[:-2] != v.shape[:-2]):
        raise ValueError(f"shapes do not fit: q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}; need "
                         "q (..., Tq, dk), k (..., Tk, dk), v (..., Tk, dv) with the same leading dims (B, H)")
    if mask is not None:
        check.tensor("mask", mask, spec="broadcastable to (B, H, Tq, Tk)")
        _check_broadcast_mask(mask, (*q.shape[:-1], k.shape[-2]))
        if mask.dtype != torch.bool:
            raise TypeError(f"mask must be a bool tensor (True = may attend), got dtype {mask.dtype}")
    return attend(q, k, v, mask, dropout)


def attend(q, k, v, mask=None, dropout=None):
    """:func:`scaled_dot_product_attention` without the argument checks: what a layer calls on every forward pass,
    its inputs checked once where they entered (``MultiHeadAttention.forward``, ``utils.gpt.GPT.forward``)."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])                     # (B, H, Tq, Tk)
    if mask is not None:
        # the most negative finite number, not -inf: a row with every key masked stays finite (uniform)
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    weights = scores.softmax(dim=-1)                                                 # over the keys
    out = (dropout(weights) if dropout is not None else weights) @ v               # (B, H, Tq, dv)
    return out, weights


class MultiHeadAttention(nn.Module):
    """Multi-head attention: H heads of width D/H, each ``scaled_dot_product_attention``, concatenated.

    ``forward(x (B, Tq, D), context (B, Tk, D) or None, mask) -> (B, Tq, D)``; ``context=None`` is
    self-attention. ``mask``: padding mask (B, Tk) bool (True = real token) or bool broadcastable to
    (B, H, Tq, Tk) (True = may attend). The last attention weights (B, H, Tq, Tk) are kept in
    ``self.last_weights`` (None on the fused path, which never materialises them).
    ``fused=True`` calls ``torch.nn.functional.scaled_dot_product_attention`` (same numbers, faster).
    """

    def __init__(self, d_model: int, num_heads: int, dropout: float = 0.0, bias: bool = True, fused: bool = False):
        super().__init__()
        _check_heads(d_model, num_heads, dropout)
        self.d_model, self.num_heads, self.d_head = d_model, num_heads, d_model // num_heads
        self.query = nn.Linear(d_model, d_model, bias=bias)
        self.key = nn.Linear(d_model, d_model, bias=bias)
        self.value = nn.Linear(d_model, d_model, bias=bias)
        self.output = nn.Linear(d_model, d_model, bias=bias)
        self.dropout = nn.Dropout(dropout)
        self.fused = fused
        self.last_weights = None

    def split_heads(self, x):
        """(B, T, D) -> (B, H, T, dk)."""
        B, T, _ = x.shape
        return x.view(B, T, self.num_heads, self.d_head).transpose(1, 2)

    def forward(self, x, context=None, mask=None):
        context, mask = self.check_inputs(x, context, mask)            # mask: None or 4-D, broadcasts to (B, H, Tq, Tk)
        B, Tq, _ = x.shape
        q = self.split_heads(self.query(x))                                          # (B, H, Tq, dk)
        k = self.split_heads(self.key(context))                                      # (B, H, Tk, dk)
        v = self.split_heads(self.value(context))                                    # (B, H, Tk, dk)
        if self.fused:
            p = self.dropout.p if self.training else 0.0
            heads = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
            self.last_weights = None
        else:
            heads, weights = attend(q, k, v, mask, self.dropout)
            self.last_weights = weights.detach()
        heads = heads.transpose(1, 2).reshape(B, Tq, self.d_model)                    # (B, Tq, H*dk) = (B, Tq, D)
        return self.output(heads)

    def check_inputs(self, x, context=None, mask=None):
        """The checks of :meth:`forward`, the entry of a learner's call: shapes and dtypes, and one look at values
        (a 2-D mask equal to ``causal_mask(T)`` while B == T is refused: see ``_expand_mask``; the course's models
        pass 4-D masks, which skip it). Returns ``(context, mask)``: ``x`` when ``context`` is None, and the mask
        with 4 dims. ``utils.gpt.CausalSelfAttention`` computes without them: its model checked its inputs once."""
        check.tensor("x", x, spec=f"(B, T, D={self.d_model})", floating=True)
        if x.dim() != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"x must have shape (B, T, D={self.d_model}), got {tuple(x.shape)}")
        B, Tq, _ = x.shape
        if context is not None:
            check.tensor("context", context, spec=f"(B, Tk, D={self.d_model})", floating=True)
            if context.dim() != 3 or context.shape[0] != B or context.shape[2] != self.d_model:
                raise ValueError(f"context must have shape (B, Tk, D) = ({B}, Tk, {self.d_model}) (the batch size "
                                 f"of x: no broadcasting), got {tuple(context.shape)}")
        context = x if context is None else context
        return context, _expand_mask(mask, B, Tq, context.shape[1], self.num_heads)


EXERCISES = ("encoder_block_params", "combined_mask", "attention_mib", "bleu2", "no_positions")


def exercise_reference(name: str, model_factory=None, train=None, steps=None):
    """Expected answer of chapter 5's exercise ``name`` (one of :data:`EXERCISES`), from PyTorch's own layers
    and helpers, independently of the learner's formulas, so the notebook's check cell does not display how.

    encoder_block_params: parameters of ``nn.TransformerEncoderLayer(96, 6, 384)`` (int).
    combined_mask: (2, 4, 4) bool, True where query i may attend to key j, for lengths 4 and 2 padded to 4.
    attention_mib: MiB of the float32 weights (2, 12, 256, 256) that ``scaled_dot_product_attention`` returns.
    bleu2: BLEU-2 of "on the mat the cat" against "the cat is on the mat" by ``utils.metrics.bleu``.
    no_positions: the ablation re-run: ``model_factory()`` with its ``positions`` buffer zeroed, trained by
    ``train(model, steps)``, whose result's second item (the generated character accuracy) is returned.
    """
    if name not in EXERCISES:
        raise ValueError(f"name must be one of {', '.join(EXERCISES)}, got {name!r}")
    given = [model_factory is not None, train is not None, steps is not None]
    if any(given) != (name == "no_positions") or (name == "no_positions" and not all(given)):
        raise TypeError("model_factory, train and steps are the inputs of exercise 'no_positions' (all three), "
                        f"of no other; got them for {name!r}")
    if name == "encoder_block_params":
        return sum(p.numel() for p in nn.TransformerEncoderLayer(96, 6, 384).parameters())
    if name == "combined_mask":
        forbidden_future = nn.Transformer.generate_square_subsequent_mask(4) == -torch.inf  # (T, T) True = forbidden
        padding = torch.tensor([[False] * 4, [False, False, True, True]])                  # (B, T) True = padding
        return ~(forbidden_future[None] | padding[:, None, :])
    if name == "attention_mib":
        q = torch.randn(2, 12, 256, 64)
        weights = scaled_dot_product_attention(q, q, q)[1]
        return weights.element_size() * weights.nelement() / 2**20
    if name == "bleu2":
        from .metrics import bleu

        return bleu(["on the mat the cat".split()], ["the cat is on the mat".split()], max_n=2)
    check.positive_int("steps", steps)
    model = model_factory()
    with torch.no_grad():
        model.positions.zero_()  # the same input at every position: attention cannot tell them apart
    return train(model, steps)[1]


def _check_heads(d_model, num_heads, dropout) -> None:
    check.positive_int("d_model", d_model)
    check.positive_int("num_heads", num_heads)
    if d_model % num_heads:
        raise ValueError(f"d_model={d_model} must be divisible by num_heads={num_heads} (each head gets D / H "
                         "features); accepted: a num_heads that divides d_model")
    check.probability("dropout", dropout)


def _check_block(d_model, num_heads, d_ff, dropout, activation, layer_norm_eps) -> None:
    _check_heads(d_model, num_heads, dropout)
    check.positive_int("d_ff", d_ff)
    check.one_of("activation", activation, ACTIVATIONS)
    check.number("layer_norm_eps", layer_norm_eps, 0.0, low_open=True)


def use_fused_attention(model: nn.Module, fused: bool = True) -> nn.Module:
    """Switch every :class:`MultiHeadAttention` inside ``model`` to the fused kernel (True: same numbers to float
    rounding, faster, no weights kept) or to the readable path (False: ``last_weights`` filled). Returns ``model``."""
    if not isinstance(fused, bool):
        raise TypeError(f"fused must be True or False, got {fused!r}")
    for module in model.modules():
        if isinstance(module, MultiHeadAttention):
            module.fused = fused
    return model


@contextlib.contextmanager
def attention_weights_kept(model: nn.Module):
    """``with attention_weights_kept(model): model(...)`` runs the readable path, so each attention layer keeps
    its weights (B, H, Tq, Tk) in ``last_weights``; every layer's previous setting is restored on exit."""
    layers = [m for m in model.modules() if isinstance(m, MultiHeadAttention)]
    if not layers:
        raise ValueError(f"{type(model).__name__} holds no utils.attention.MultiHeadAttention layer")
    before = [layer.fused for layer in layers]
    try:
        for layer in layers:
            layer.fused = False
        yield model
    finally:
        for layer, fused in zip(layers, before, strict=True):
            layer.fused = fused


def _activation(name: str):
    if name == "gelu":
        return nn.GELU()  # exact erf form, as BERT (not the tanh approximation)
    if name == "gelu_tanh":
        return nn.GELU(approximate="tanh")  # GPT-2's "gelu_new"
    if name == "relu":
        return nn.ReLU()
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got {name!r}")


class PositionwiseFeedForward(nn.Module):
    """dense_out(dropout(act(dense_in(x)))), applied to every position on its own. (B, T, D) -> (B, T, D)."""

    def __init__(self, d_model: int, d_ff: int, activation: str = "gelu", dropout: float = 0.0):
        super().__init__()
        check.positive_int("d_model", d_model)
        check.positive_int("d_ff", d_ff)
        check.probability("dropout", dropout)
        self.dense_in = nn.Linear(d_model, d_ff)
        self.activation = _activation(activation)
        self.dropout = nn.Dropout(dropout)
        self.dense_out = nn.Linear(d_ff, d_model)

    def forward(self, x):  # no check here: the block's attention checked the same x (B, T, D) at its entry
        return self.dense_out(self.dropout(self.activation(self.dense_in(x))))


class _Residual(nn.Module):
    """Shared by the blocks: post-LN ``norm(x + drop(f(x)))`` or pre-LN ``x + drop(f(norm(x)))``."""

    def residual(self, x, sublayer, norm):
        if self.norm_first:
            return x + self.residual_dropout(sublayer(norm(x)))
        return norm(x + self.residual_dropout(sublayer(x)))


class TransformerEncoderBlock(_Residual):
    """Self-attention then feed-forward, each wrapped in a residual connection and layer norm.

    ``forward(x (B, T, D), mask) -> (B, T, D)``; ``mask`` as in :class:`MultiHeadAttention`.
    Post-LN (the paper and BERT) when ``norm_first=False``; pre-LN (GPT-2 style) otherwise.
    """

    def __init__(self, d_model: int, num_heads: int, d_ff: int, dropout: float = 0.0, activation: str = "gelu",
                 norm_first: bool = False, layer_norm_eps: float = 1e-5):
        super().__init__()
        _check_block(d_model, num_heads, d_ff, dropout, activation, layer_norm_eps)
        self.norm_first = norm_first
        self.attention = MultiHeadAttention(d_model, num_heads, dropout)
        self.attention_norm = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.feed_forward = PositionwiseFeedForward(d_model, d_ff, activation, dropout)
        self.feed_forward_norm = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.residual_dropout = nn.Dropout(dropout)

    def forward(self, x, mask=None):
        x = self.residual(x, lambda h: self.attention(h, mask=mask), self.attention_norm)
        return self.residual(x, self.feed_forward, self.feed_forward_norm)


class TransformerDecoderBlock(_Residual):
    """Causal self-attention, cross-attention over the encoder ``memory``, feed-forward; each residual + norm.

    ``forward(x (B, T, D), memory (B, S, D), self_mask, memory_mask) -> (B, T, D)``. The causal mask is
    always applied to self-attention (unless ``causal=False``) and combined with ``self_mask`` (e.g. a
    target padding mask (B, T)); ``memory_mask`` is e.g. the source padding mask (B, S).
    """

    def __init__(self, d_model: int, num_heads: int, d_ff: int, dropout: float = 0.0, activation: str = "gelu",
                 norm_first: bool = False, layer_norm_eps: float = 1e-5, causal: bool = True):
        super().__init__()
        _check_block(d_model, num_heads, d_ff, dropout, activation, layer_norm_eps)
        self.norm_first, self.causal = norm_first, causal
        self.self_attention = MultiHeadAttention(d_model, num_heads, dropout)
        self.self_attention_norm = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.cross_attention = MultiHeadAttention(d_model, num_heads, dropout)
        self.cross_attention_norm = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.feed_forward = PositionwiseFeedForward(d_model, d_ff, activation, dropout)
        self.feed_forward_norm = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.residual_dropout = nn.Dropout(dropout)

    def forward(self, x, memory, self_mask=None, memory_mask=None):
        D = self.self_attention.d_model
        check.tensor("x", x, 3, spec=f"(B, T, D={D})", floating=True)
        check.tensor("memory", memory, 3, spec=f"(B, S, D={D})", floating=True)
        B, T, _ = x.shape
        if memory.shape[0] != B or memory.shape[2] != D:
            raise ValueError(f"memory must have shape (B, S, D) = ({B}, S, {D}) (the batch size of x), "
                             f"got {tuple(memory.shape)}")
        mask = _expand_mask(self_mask, B, T, T, name="self_mask")
        _expand_mask(memory_mask, B, T, memory.shape[1], name="memory_mask")  # shape check only
        if self.causal:
            causal = causal_mask(T, device=x.device)[None, None]                        # (1, 1, T, T)
            mask = causal if mask is None else mask & causal
        x = self.residual(x, lambda h: self.self_attention(h, mask=mask), self.self_attention_norm)
        x = self.residual(x, lambda h: self.cross_attention(h, memory, memory_mask), self.cross_attention_norm)
        return self.residual(x, self.feed_forward, self.feed_forward_norm)
