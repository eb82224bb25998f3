"""Attention and the Transformer, in PyTorch and in Keras 3 (chapter 4; chapter 5's BERT is built from it).

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

The Keras classes (``KerasMultiHeadAttention``, ``KerasPositionwiseFeedForward``, ``KerasTransformerEncoderBlock``,
``KerasTransformerDecoderBlock``) are created on first access, so importing this module for its PyTorch part
never starts TensorFlow.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from .rnn import linear_to_keras

ACTIVATIONS = ("gelu", "relu")


# ----------------------------------------------------------------------------------------------- masks etc.
def causal_mask(T: int, device=None) -> torch.Tensor:
    """(T, T) bool, True on and below the diagonal: position i may attend to positions j <= i."""
    if not isinstance(T, int) or T < 1:
        raise ValueError(f"T must be a positive int, got {T!r}")
    return torch.ones(T, T, dtype=torch.bool, device=device).tril()


def sinusoidal_positional_encoding(max_len: int, d_model: int) -> torch.Tensor:
    """(max_len, d_model) float32 table PE[pos, 2i] = sin(pos / 10000^(2i/D)), PE[pos, 2i+1] = cos(same)."""
    if max_len < 1 or d_model < 2 or d_model % 2:
        raise ValueError(f"need max_len >= 1 and an even d_model >= 2, got max_len={max_len}, d_model={d_model}")
    position = torch.arange(max_len, dtype=torch.float64)[:, None]                  # (max_len, 1)
    inv_freq = 10000.0 ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)  # (D/2,)
    angles = position * inv_freq                                                    # (max_len, D/2)
    pe = torch.empty(max_len, d_model, dtype=torch.float64)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(angles), torch.cos(angles)
    return pe.float()


def _expand_mask(mask: torch.Tensor | None, B: int, Tq: int, Tk: int) -> torch.Tensor | None:
    """Padding mask (B, Tk) -> (B, 1, 1, Tk); a mask of 3 dims (B, Tq, Tk) -> (B, 1, Tq, Tk); 4 dims as is."""
    if mask is None:
        return None
    if mask.dtype != torch.bool:
        raise TypeError(f"mask must be a bool tensor (True = may attend), got dtype {mask.dtype}")
    if mask.dim() == 2:
        if tuple(mask.shape) != (B, Tk):
            raise ValueError(f"a 2-D mask is a padding mask of shape (B, Tk) = ({B}, {Tk}), got {tuple(mask.shape)};"
                             " give a (Tq, Tk) mask such as causal_mask(T) as mask[None, None]")
        return mask[:, None, None, :]                                               # (B, 1, 1, Tk)
    if mask.dim() == 3:
        return mask[:, None]                                                        # (B, 1, Tq, Tk)
    if mask.dim() == 4:
        return mask
    raise ValueError(f"mask must have 2, 3 or 4 dims, got shape {tuple(mask.shape)}")


# ------------------------------------------------------------------------------------------ PyTorch part
def scaled_dot_product_attention(q, k, v, mask=None, dropout=None):
    """softmax(q k^T / sqrt(dk)) v, the readable way.

    q (B, H, Tq, dk), k (B, H, Tk, dk), v (B, H, Tk, dv); ``mask`` bool broadcastable to (B, H, Tq, Tk),
    True = may attend. ``dropout`` is None or a callable (e.g. ``nn.Dropout``) applied to the weights.
    Returns ``(out (B, H, Tq, dv), weights (B, H, Tq, Tk))``; the weights are those before dropout.
    """
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(f"shapes do not fit: q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}; need "
                         "q (..., Tq, dk), k (..., Tk, dk), v (..., Tk, dv)")
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])                     # (B, H, Tq, Tk)
    if mask is not None:
        if mask.dtype != torch.bool:
            raise TypeError(f"mask must be a bool tensor (True = may attend), got dtype {mask.dtype}")
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
        if d_model % num_heads:
            raise ValueError(f"d_model={d_model} must be divisible by num_heads={num_heads}")
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
        if x.dim() != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"x must have shape (B, T, {self.d_model}), got {tuple(x.shape)}")
        context = x if context is None else context
        B, Tq, _ = x.shape
        mask = _expand_mask(mask, B, Tq, context.shape[1])
        q = self.split_heads(self.query(x))                                          # (B, H, Tq, dk)
        k = self.split_heads(self.key(context))                                      # (B, H, Tk, dk)
        v = self.split_heads(self.value(context))                                    # (B, H, Tk, dk)
        if self.fused:
            p = self.dropout.p if self.training else 0.0
            heads = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
            self.last_weights = None
        else:
            heads, weights = scaled_dot_product_attention(q, k, v, mask, self.dropout)
            self.last_weights = weights.detach()
        heads = heads.transpose(1, 2).reshape(B, Tq, self.d_model)                    # (B, Tq, H*dk) = (B, Tq, D)
        return self.output(heads)


def _activation(name: str):
    if name == "gelu":
        return nn.GELU()  # exact erf form, as BERT (not the tanh approximation)
    if name == "relu":
        return nn.ReLU()
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got {name!r}")


class PositionwiseFeedForward(nn.Module):
    """dense_out(dropout(act(dense_in(x)))), applied to every position on its own. (B, T, D) -> (B, T, D)."""

    def __init__(self, d_model: int, d_ff: int, activation: str = "gelu", dropout: float = 0.0):
        super().__init__()
        self.dense_in = nn.Linear(d_model, d_ff)
        self.activation = _activation(activation)
        self.dropout = nn.Dropout(dropout)
        self.dense_out = nn.Linear(d_ff, d_model)

    def forward(self, x):
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
        self.norm_first, self.causal = norm_first, causal
        self.self_attention = MultiHeadAttention(d_model, num_heads, dropout)
        self.self_attention_norm = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.cross_attention = MultiHeadAttention(d_model, num_heads, dropout)
        self.cross_attention_norm = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.feed_forward = PositionwiseFeedForward(d_model, d_ff, activation, dropout)
        self.feed_forward_norm = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.residual_dropout = nn.Dropout(dropout)

    def forward(self, x, memory, self_mask=None, memory_mask=None):
        B, T, _ = x.shape
        mask = _expand_mask(self_mask, B, T, T)
        if self.causal:
            causal = causal_mask(T, device=x.device)[None, None]                        # (1, 1, T, T)
            mask = causal if mask is None else mask & causal
        x = self.residual(x, lambda h: self.self_attention(h, mask=mask), self.self_attention_norm)
        x = self.residual(x, lambda h: self.cross_attention(h, memory, memory_mask), self.cross_attention_norm)
        return self.residual(x, self.feed_forward, self.feed_forward_norm)


# -------------------------------------------------------------------------------------------- Keras part
# Keras is imported lazily (inside the functions below and on first use of a Keras class), so that
# importing this module for the PyTorch part never starts TensorFlow.
def _keras():
    import keras

    return keras


def _keras_expand_mask(mask):
    """Keras twin of ``_expand_mask`` (the batch size is not checked: it may be symbolic)."""
    from keras import ops

    if mask is None:
        return None
    mask = ops.cast(mask, "bool")
    rank = len(mask.shape)
    if rank == 2:
        return mask[:, None, None, :]                                               # (B, 1, 1, Tk)
    if rank == 3:
        return mask[:, None]                                                        # (B, 1, Tq, Tk)
    if rank == 4:
        return mask
    raise ValueError(f"mask must have 2, 3 or 4 dims, got shape {tuple(mask.shape)}")


def _keras_layer_classes():
    """Define the Keras layers on first use (the class bodies need ``keras.layers.Layer``)."""
    keras = _keras()
    from keras import ops

    class KerasMultiHeadAttention(keras.layers.Layer):
        """Keras twin of :class:`MultiHeadAttention`: sublayers ``query``, ``key``, ``value``, ``output_dense``
        (``Dense``, kernels (in, out); not ``output``: Keras reserves ``Layer.output`` for the symbolic output).
        ``call(x, context=None, mask=None, training=None, return_weights=False)``; mask as in PyTorch
        (True = may attend / real token)."""

        def __init__(self, d_model, num_heads, dropout=0.0, bias=True, **kwargs):
            super().__init__(**kwargs)
            if d_model % num_heads:
                raise ValueError(f"d_model={d_model} must be divisible by num_heads={num_heads}")
            self.d_model, self.num_heads, self.d_head = d_model, num_heads, d_model // num_heads
            self.query = keras.layers.Dense(d_model, use_bias=bias, name="query")
            self.key = keras.layers.Dense(d_model, use_bias=bias, name="key")
            self.value = keras.layers.Dense(d_model, use_bias=bias, name="value")
            self.output_dense = keras.layers.Dense(d_model, use_bias=bias, name="output")
            self.dropout = keras.layers.Dropout(dropout)
            self.supports_masking = True

        def split_heads(self, x):
            x = ops.reshape(x, (ops.shape(x)[0], -1, self.num_heads, self.d_head))      # (B, T, H, dk)
            return ops.transpose(x, (0, 2, 1, 3))                                      # (B, H, T, dk)

        def call(self, x, context=None, mask=None, training=None, return_weights=False):
            context = x if context is None else context
            q = self.split_heads(self.query(x))                                        # (B, H, Tq, dk)
            k = self.split_heads(self.key(context))                                    # (B, H, Tk, dk)
            v = self.split_heads(self.value(context))                                  # (B, H, Tk, dk)
            scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) / math.sqrt(self.d_head)  # (B, H, Tq, Tk)
            mask = _keras_expand_mask(mask)
            if mask is not None:
                scores = ops.where(mask, scores, ops.full_like(scores, float(torch.finfo(torch.float32).min)))
            weights = ops.softmax(scores, axis=-1)
            heads = ops.matmul(self.dropout(weights, training=training), v)            # (B, H, Tq, dk)
            heads = ops.transpose(heads, (0, 2, 1, 3))                                 # (B, Tq, H, dk)
            out = self.output_dense(ops.reshape(heads, (ops.shape(heads)[0], -1, self.d_model)))  # (B, Tq, D)
            return (out, weights) if return_weights else out

        def compute_mask(self, x, mask=None):
            return mask

    class KerasPositionwiseFeedForward(keras.layers.Layer):
        """Keras twin of :class:`PositionwiseFeedForward` (sublayers ``dense_in``, ``dense_out``)."""

        def __init__(self, d_model, d_ff, activation="gelu", dropout=0.0, **kwargs):
            super().__init__(**kwargs)
            if activation not in ACTIVATIONS:
                raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
            # Keras' gelu defaults to the tanh approximation; PyTorch's and BERT's is the exact erf form
            act = (lambda z: keras.activations.gelu(z, approximate=False)) if activation == "gelu" else "relu"
            self.dense_in = keras.layers.Dense(d_ff, activation=act, name="dense_in")
            self.dropout = keras.layers.Dropout(dropout)
            self.dense_out = keras.layers.Dense(d_model, name="dense_out")

        def call(self, x, training=None):
            return self.dense_out(self.dropout(self.dense_in(x), training=training))

    class _KerasResidual(keras.layers.Layer):
        def residual(self, x, sublayer, norm, training):
            if self.norm_first:
                return x + self.residual_dropout(sublayer(norm(x)), training=training)
            return norm(x + self.residual_dropout(sublayer(x), training=training))

    class KerasTransformerEncoderBlock(_KerasResidual):
        """Keras twin of :class:`TransformerEncoderBlock`; ``call(x, mask=None, training=None)``,
        mask (B, T) bool padding (True = real token) or broadcastable to (B, H, T, T)."""

        def __init__(self, d_model, num_heads, d_ff, dropout=0.0, activation="gelu", norm_first=False,
                     layer_norm_eps=1e-5, **kwargs):
            super().__init__(**kwargs)
            self.norm_first = norm_first
            self.attention = KerasMultiHeadAttention(d_model, num_heads, dropout, name="attention")
            # Keras' LayerNormalization defaults to epsilon=1e-3, PyTorch's LayerNorm to 1e-5
            self.attention_norm = keras.layers.LayerNormalization(epsilon=layer_norm_eps, name="attention_norm")
            self.feed_forward = KerasPositionwiseFeedForward(d_model, d_ff, activation, dropout, name="feed_forward")
            self.feed_forward_norm = keras.layers.LayerNormalization(epsilon=layer_norm_eps,
                                                                     name="feed_forward_norm")
            self.residual_dropout = keras.layers.Dropout(dropout)
            self.supports_masking = True

        def call(self, x, mask=None, training=None):
            x = self.residual(x, lambda h: self.attention(h, mask=mask, training=training), self.attention_norm,
                              training)
            return self.residual(x, lambda h: self.feed_forward(h, training=training), self.feed_forward_norm,
                                 training)

        def compute_mask(self, x, mask=None):
            return mask

    class KerasTransformerDecoderBlock(_KerasResidual):
        """Keras twin of :class:`TransformerDecoderBlock`; ``call(x, memory, self_mask=None,
        memory_mask=None, training=None)``."""

        def __init__(self, d_model, num_heads, d_ff, dropout=0.0, activation="gelu", norm_first=False,
                     layer_norm_eps=1e-5, causal=True, **kwargs):
            super().__init__(**kwargs)
            self.norm_first, self.causal = norm_first, causal
            self.self_attention = KerasMultiHeadAttention(d_model, num_heads, dropout, name="self_attention")
            self.self_attention_norm = keras.layers.LayerNormalization(epsilon=layer_norm_eps)
            self.cross_attention = KerasMultiHeadAttention(d_model, num_heads, dropout, name="cross_attention")
            self.cross_attention_norm = keras.layers.LayerNormalization(epsilon=layer_norm_eps)
            self.feed_forward = KerasPositionwiseFeedForward(d_model, d_ff, activation, dropout, name="feed_forward")
            self.feed_forward_norm = keras.layers.LayerNormalization(epsilon=layer_norm_eps)
            self.residual_dropout = keras.layers.Dropout(dropout)

        def call(self, x, memory, self_mask=None, memory_mask=None, training=None):
            T = ops.shape(x)[1]
            mask = _keras_expand_mask(self_mask)
            if self.causal:
                causal = ops.tril(ops.ones((T, T), dtype="bool"))[None, None]                 # (1, 1, T, T)
                mask = causal if mask is None else ops.logical_and(mask, causal)
            x = self.residual(x, lambda h: self.self_attention(h, mask=mask, training=training),
                              self.self_attention_norm, training)
            x = self.residual(x, lambda h: self.cross_attention(h, memory, mask=memory_mask, training=training),
                              self.cross_attention_norm, training)
            return self.residual(x, lambda h: self.feed_forward(h, training=training), self.feed_forward_norm,
                                 training)

    return {cls.__name__: cls for cls in (KerasMultiHeadAttention, KerasPositionwiseFeedForward,
                                          KerasTransformerEncoderBlock, KerasTransformerDecoderBlock)}


_KERAS_CLASSES = {}
_KERAS_NAMES = ("KerasMultiHeadAttention", "KerasPositionwiseFeedForward", "KerasTransformerEncoderBlock",
                "KerasTransformerDecoderBlock")


def __getattr__(name):  # module-level lazy attributes (PEP 562): the Keras classes are built on first access
    if name in _KERAS_NAMES:
        if not _KERAS_CLASSES:
            _KERAS_CLASSES.update(_keras_layer_classes())
        return _KERAS_CLASSES[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ------------------------------------------------------------------------------------ weights across
def copy_linear_to_keras(linear: nn.Linear, dense) -> None:
    """torch Linear weight (out, in) -> Keras Dense kernel (in, out); bias as is (chapter 3's ``linear_to_keras``)."""
    dense.set_weights(linear_to_keras(linear))


def copy_norm_to_keras(norm: nn.LayerNorm, keras_norm) -> None:
    """torch LayerNorm weight/bias -> Keras LayerNormalization gamma/beta."""
    keras_norm.gamma.assign(norm.weight.detach().cpu().numpy())
    keras_norm.beta.assign(norm.bias.detach().cpu().numpy())


def _build(keras_layer, d_model: int, n_inputs: int) -> None:
    """Call a Keras layer once on zeros so its weights exist (Keras creates them on first call)."""
    if keras_layer.built:
        return
    import numpy as np

    xs = [np.zeros((1, 2, d_model), dtype="float32") for _ in range(n_inputs)]
    keras_layer(*xs)


def copy_attention_to_keras(torch_attention: MultiHeadAttention, keras_attention) -> None:
    """Copy the four projections of a PyTorch :class:`MultiHeadAttention` into a ``KerasMultiHeadAttention``."""
    _build(keras_attention, torch_attention.d_model, 1)
    for torch_name, keras_name in [("query", "query"), ("key", "key"), ("value", "value"), ("output", "output_dense")]:
        copy_linear_to_keras(getattr(torch_attention, torch_name), getattr(keras_attention, keras_name))


def _copy_feed_forward(torch_ff, keras_ff) -> None:
    copy_linear_to_keras(torch_ff.dense_in, keras_ff.dense_in)
    copy_linear_to_keras(torch_ff.dense_out, keras_ff.dense_out)


def copy_encoder_block_to_keras(torch_block: TransformerEncoderBlock, keras_block) -> None:
    """Copy every weight of a PyTorch encoder block into a ``KerasTransformerEncoderBlock`` of the same sizes."""
    _build(keras_block, torch_block.attention.d_model, 1)
    copy_attention_to_keras(torch_block.attention, keras_block.attention)
    copy_norm_to_keras(torch_block.attention_norm, keras_block.attention_norm)
    _copy_feed_forward(torch_block.feed_forward, keras_block.feed_forward)
    copy_norm_to_keras(torch_block.feed_forward_norm, keras_block.feed_forward_norm)


def copy_decoder_block_to_keras(torch_block: TransformerDecoderBlock, keras_block) -> None:
    """Copy every weight of a PyTorch decoder block into a ``KerasTransformerDecoderBlock`` of the same sizes."""
    _build(keras_block, torch_block.self_attention.d_model, 2)
    for name in ("self_attention", "cross_attention"):
        copy_attention_to_keras(getattr(torch_block, name), getattr(keras_block, name))
        copy_norm_to_keras(getattr(torch_block, name + "_norm"), getattr(keras_block, name + "_norm"))
    _copy_feed_forward(torch_block.feed_forward, keras_block.feed_forward)
    copy_norm_to_keras(torch_block.feed_forward_norm, keras_block.feed_forward_norm)


# ------------------------------------------------------------------------- library layouts (for checks)
def copy_attention_to_torch_mha(attention: MultiHeadAttention, mha: nn.MultiheadAttention) -> None:
    """Copy into ``torch.nn.MultiheadAttention``, which packs W_q, W_k, W_v into one ``in_proj_weight`` (3D, D)."""
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.cat([attention.query.weight, attention.key.weight, attention.value.weight]))
        mha.out_proj.weight.copy_(attention.output.weight)
        if attention.query.bias is not None:
            mha.in_proj_bias.copy_(torch.cat([attention.query.bias, attention.key.bias, attention.value.bias]))
            mha.out_proj.bias.copy_(attention.output.bias)


def copy_attention_to_keras_mha(attention: MultiHeadAttention, keras_mha) -> None:
    """Copy into ``keras.layers.MultiHeadAttention`` (built), whose EinsumDense kernels keep the heads apart:
    query/key/value kernel (D, H, dk), bias (H, dk); output kernel (H, dk, D), bias (D,)."""
    H, dk, D = attention.num_heads, attention.d_head, attention.d_model
    for name, dense in (("query", keras_mha._query_dense), ("key", keras_mha._key_dense),
                        ("value", keras_mha._value_dense)):
        linear = getattr(attention, name)
        dense.kernel.assign(linear.weight.detach().cpu().numpy().T.reshape(D, H, dk))
        if linear.bias is not None:
            dense.bias.assign(linear.bias.detach().cpu().numpy().reshape(H, dk))
    keras_mha._output_dense.kernel.assign(attention.output.weight.detach().cpu().numpy().T.reshape(H, dk, D))
    if attention.output.bias is not None:
        keras_mha._output_dense.bias.assign(attention.output.bias.detach().cpu().numpy())


# ------------------------------------------------------------------------- a task: dates -> ISO dates
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


# each takes a datetime.date; numeric formats are always day-first, so every string has one meaning
DATE_FORMATS = (
    lambda d: f"{d.day} {MONTHS[d.month - 1]} {d.year}",                       # 25 November 2026
    lambda d: f"{MONTHS[d.month - 1]} {d.day}, {d.year}",                      # November 25, 2026
    lambda d: f"{MONTHS[d.month - 1][:3]} {d.day} {d.year}",                   # Nov 25 2026
    lambda d: f"{d.day:02d} {MONTHS[d.month - 1][:3].lower()} {d.year}",       # 25 nov 2026
    lambda d: f"{d.day}/{d.month}/{d.year}",                                   # 25/11/2026
    lambda d: f"{d.day:02d}.{d.month:02d}.{d.year}",                           # 25.11.2026
    lambda d: f"{WEEKDAYS[d.weekday()]}, {d.day} {MONTHS[d.month - 1]} {d.year}",  # Wednesday, 25 November 2026
    lambda d: f"the {_ordinal(d.day)} of {MONTHS[d.month - 1]}, {d.year}",      # the 25th of November, 2026
    lambda d: f"{MONTHS[d.month - 1].upper()} {d.day} {d.year}",               # NOVEMBER 25 2026
    lambda d: f"{d.year}/{d.month}/{d.day}",                                   # 2026/11/25
)


def split_calendar(first_year: int = 1950, last_year: int = 2049, test_fraction: float = 0.1, seed: int = 0):
    """All days of the years ``first_year..last_year``, split at random into (train_days, test_days) lists,
    so that no test *date* is ever seen in training (in any format)."""
    import datetime
    import random

    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    first, last = datetime.date(first_year, 1, 1), datetime.date(last_year, 12, 31)
    days = [first + datetime.timedelta(days=i) for i in range((last - first).days + 1)]
    random.Random(seed).shuffle(days)
    n_test = int(len(days) * test_fraction)
    return days[n_test:], days[:n_test]


def make_date_pairs(days, n: int, seed: int = 0, formats=None):
    """``n`` pairs (human-written date, ISO date) with days and formats drawn at random (seeded).
    ``formats``: indices into ``DATE_FORMATS`` (default: all)."""
    import random

    rng = random.Random(seed)
    formats = range(len(DATE_FORMATS)) if formats is None else formats
    pairs = []
    for _ in range(n):
        d = rng.choice(days)
        pairs.append((DATE_FORMATS[rng.choice(formats)](d), d.isoformat()))
    return pairs


class Seq2SeqVocab:
    """Characters <-> ids for padded sequence-to-sequence batches: ``pad`` = 0, ``bos`` = 1 (start of output),
    ``eos`` = 2 (end of output). (Chapter 3's ``utils.rnn.CharVocab`` serves a language model instead: one long
    text, id 0 for characters never seen.)"""

    PAD, BOS, EOS = 0, 1, 2

    def __init__(self, texts):
        self.chars = ["<pad>", "<s>", "</s>"] + sorted(set("".join(texts)))
        self.index = {c: i for i, c in enumerate(self.chars)}

    def __len__(self):
        return len(self.chars)

    def encode(self, texts, length: int, bos: bool = False, eos: bool = False) -> torch.Tensor:
        """(N, length) int64 ids, right-padded with ``PAD``; raises ValueError on an unknown character."""
        out = torch.full((len(texts), length), self.PAD, dtype=torch.long)
        for row, text in enumerate(texts):
            unknown = set(text) - self.index.keys()
            if unknown:
                raise ValueError(f"characters {sorted(unknown)} of {text!r} are not in the vocabulary")
            ids = [self.BOS] * bos + [self.index[c] for c in text] + [self.EOS] * eos
            if len(ids) > length:
                raise ValueError(f"{text!r} needs {len(ids)} positions, more than length={length}")
            out[row, :len(ids)] = torch.tensor(ids)
        return out

    def decode(self, ids) -> list[str]:
        """(N, T) ids -> strings, stopping at the first ``EOS`` and skipping ``PAD``/``BOS``."""
        texts = []
        for row in ids.tolist():
            chars = []
            for i in row:
                if i == self.EOS:
                    break
                if i > self.EOS:
                    chars.append(self.chars[i])
            texts.append("".join(chars))
        return texts


# ------------------------------------------------------------------------------- sequence-to-sequence
class Seq2SeqTransformer(nn.Module):
    """Encoder-decoder Transformer: token embeddings * sqrt(D) + sinusoidal positions, N encoder blocks,
    N decoder blocks, a linear layer to the output vocabulary.

    ``forward(packed (B, S + T))`` -> logits (B, T, V_tgt): the source ids (B, S) and the decoder input ids
    (B, T) side by side in one tensor, because ``utils.train.fit`` hands a model one tensor. Padding id 0 is
    masked in the source. ``encode(src)`` and ``decode(memory, src_mask, tgt_in)`` do the two halves.
    """

    def __init__(self, src_vocab: int, tgt_vocab: int, src_len: int, d_model: int = 64, num_heads: int = 4,
                 d_ff: int = 256, num_encoder_layers: int = 2, num_decoder_layers: int = 2, dropout: float = 0.0,
                 max_len: int = 64, norm_first: bool = True, fused: bool = False):
        super().__init__()
        self.src_len, self.d_model = src_len, d_model
        self.src_embedding = nn.Embedding(src_vocab, d_model)
        self.tgt_embedding = nn.Embedding(tgt_vocab, d_model)
        self.register_buffer("positions", sinusoidal_positional_encoding(max_len, d_model), persistent=False)
        self.encoder = nn.ModuleList(TransformerEncoderBlock(d_model, num_heads, d_ff, dropout, norm_first=norm_first)
                                     for _ in range(num_encoder_layers))
        self.decoder = nn.ModuleList(TransformerDecoderBlock(d_model, num_heads, d_ff, dropout, norm_first=norm_first)
                                     for _ in range(num_decoder_layers))
        # pre-LN leaves the last block's output un-normalised: one final norm on each side (as GPT-2 does)
        self.encoder_norm = nn.LayerNorm(d_model) if norm_first else nn.Identity()
        self.decoder_norm = nn.LayerNorm(d_model) if norm_first else nn.Identity()
        self.generator = nn.Linear(d_model, tgt_vocab)
        for module in self.modules():
            if isinstance(module, MultiHeadAttention):
                module.fused = fused
        # embeddings start at std 1/sqrt(D), so that after the * sqrt(D) below tokens and positions have the
        # same scale; nn.Embedding's default std 1 would drown the positions (the model could not copy digits)
        for embedding in (self.src_embedding, self.tgt_embedding):
            nn.init.normal_(embedding.weight, std=d_model**-0.5)

    def embed(self, embedding, ids):
        return embedding(ids) * math.sqrt(self.d_model) + self.positions[: ids.shape[1]]   # (B, T, D)

    def encode(self, src):
        """src (B, S) ids -> (memory (B, S, D), src_mask (B, S) bool, True = real token)."""
        src_mask = src != 0
        h = self.embed(self.src_embedding, src)
        for block in self.encoder:
            h = block(h, mask=src_mask)
        return self.encoder_norm(h), src_mask

    def decode(self, memory, src_mask, tgt_in):
        """tgt_in (B, T) ids -> logits (B, T, V_tgt), each position seeing only itself and earlier ones."""
        h = self.embed(self.tgt_embedding, tgt_in)
        for block in self.decoder:
            h = block(h, memory, memory_mask=src_mask)
        return self.generator(self.decoder_norm(h))

    def forward(self, packed):
        src, tgt_in = packed[:, : self.src_len], packed[:, self.src_len:]
        return self.decode(*self.encode(src), tgt_in)


@torch.no_grad()
def greedy_decode(model, src, max_len: int, bos: int = 1, batch_size: int = 512) -> torch.Tensor:
    """Generate (N, max_len) output ids one position at a time, each step taking the arg-max token.

    ``model`` has ``encode(src) -> (memory, src_mask)`` and ``decode(memory, src_mask, tgt_in) -> logits``.
    """
    model.eval()
    outputs = []
    for start in range(0, len(src), batch_size):
        chunk = src[start:start + batch_size]
        memory, src_mask = model.encode(chunk)
        ys = torch.full((len(chunk), 1), bos, dtype=torch.long, device=chunk.device)      # (b, 1)
        for _ in range(max_len):
            next_id = model.decode(memory, src_mask, ys)[:, -1].argmax(-1, keepdim=True)  # (b, 1)
            ys = torch.cat([ys, next_id], dim=1)
        outputs.append(ys[:, 1:])
    return torch.cat(outputs)


class AdditiveAttention(nn.Module):
    """Bahdanau (additive) attention: score(s, h_j) = v^T tanh(W_q s + W_k h_j), weights = softmax over j.

    ``forward(query (B, Dq), keys (B, S, Dk), mask (B, S) bool, True = real)`` -> (context (B, Dk),
    weights (B, S)); the context is the weighted sum of the keys (they are also the values).
    """

    def __init__(self, query_dim: int, key_dim: int, hidden: int):
        super().__init__()
        self.query_proj = nn.Linear(query_dim, hidden, bias=False)
        self.key_proj = nn.Linear(key_dim, hidden)
        self.score = nn.Linear(hidden, 1, bias=False)                                     # v^T

    def forward(self, query, keys, mask=None, projected_keys=None):
        projected_keys = self.key_proj(keys) if projected_keys is None else projected_keys   # (B, S, A)
        scores = self.score(torch.tanh(self.query_proj(query)[:, None] + projected_keys))[..., 0]  # (B, S)
        if mask is not None:
            scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        weights = scores.softmax(dim=-1)                                                     # (B, S)
        return (weights[:, :, None] * keys).sum(1), weights                                  # (B, Dk), (B, S)


class RNNSeq2Seq(nn.Module):
    """RNN encoder-decoder with additive attention (Bahdanau et al., 2015).

    Encoder: embedding + bidirectional GRU -> memory (B, S, 2H). Decoder: a GRU cell whose input at step t
    is [embedding of y_(t-1); context_t], the context being additive attention over the memory with the
    previous decoder state as the query. Same interface as :class:`Seq2SeqTransformer` (``forward(packed)``,
    ``encode``, ``decode``), so ``greedy_decode`` works for both; ``last_weights`` holds (B, T, S).
    """

    def __init__(self, src_vocab: int, tgt_vocab: int, src_len: int, embed_dim: int = 32, hidden: int = 64):
        super().__init__()
        self.src_len = src_len
        self.src_embedding = nn.Embedding(src_vocab, embed_dim, padding_idx=0)
        self.tgt_embedding = nn.Embedding(tgt_vocab, embed_dim)
        self.encoder = nn.GRU(embed_dim, hidden, batch_first=True, bidirectional=True)
        self.init_state = nn.Linear(2 * hidden, hidden)
        self.attention = AdditiveAttention(hidden, 2 * hidden, hidden)
        self.cell = nn.GRUCell(embed_dim + 2 * hidden, hidden)
        self.generator = nn.Linear(hidden + 2 * hidden, tgt_vocab)
        self.last_weights = None

    def encode(self, src):
        """src (B, S) -> (memory (B, S, 2H), src_mask (B, S)); padding is skipped by packing."""
        src_mask = src != 0
        packed = nn.utils.rnn.pack_padded_sequence(self.src_embedding(src), src_mask.sum(1).cpu(),
                                                   batch_first=True, enforce_sorted=False)
        memory, _ = self.encoder(packed)
        memory, _ = nn.utils.rnn.pad_packed_sequence(memory, batch_first=True, total_length=src.shape[1])
        return memory, src_mask

    def decode(self, memory, src_mask, tgt_in):
        """tgt_in (B, T) -> logits (B, T, V_tgt), one GRU-cell step per output position."""
        lengths = src_mask.sum(1)
        hidden = memory.shape[-1] // 2
        last_forward = memory[torch.arange(len(memory)), lengths - 1, :hidden]            # (B, H)
        state = torch.tanh(self.init_state(torch.cat([last_forward, memory[:, 0, hidden:]], -1)))
        projected = self.attention.key_proj(memory)                                       # once, not per step
        logits, weights = [], []
        for y_prev in self.tgt_embedding(tgt_in).unbind(1):                                # (B, E) per step
            context, w = self.attention(state, memory, src_mask, projected)
            state = self.cell(torch.cat([y_prev, context], -1), state)
            logits.append(self.generator(torch.cat([state, context], -1)))
            weights.append(w)
        self.last_weights = torch.stack(weights, 1).detach()                               # (B, T, S)
        return torch.stack(logits, 1)                                                      # (B, T, V)

    def forward(self, packed):
        src, tgt_in = packed[:, : self.src_len], packed[:, self.src_len:]
        return self.decode(*self.encode(src), tgt_in)


def exact_match(predictions, references) -> float:
    """Fraction of predicted strings equal to their reference string."""
    if len(predictions) != len(references) or not references:
        raise ValueError(f"need as many predictions as references (> 0), got {len(predictions)} and "
                         f"{len(references)}")
    return sum(p == r for p, r in zip(predictions, references, strict=True)) / len(references)


# ----------------------------------------------------------------------------------------------- BLEU
def ngram_counts(tokens, n: int) -> dict:
    """{n-gram tuple: count} of a token sequence."""
    counts = {}
    for i in range(len(tokens) - n + 1):
        gram = tuple(tokens[i:i + n])
        counts[gram] = counts.get(gram, 0) + 1
    return counts


def bleu(candidates, references, max_n: int = 4) -> float:
    """Corpus BLEU (Papineni et al., 2002) with one reference per candidate, uniform weights 1/max_n, no smoothing.

    BLEU = BP * exp(sum_n log(p_n) / max_n), p_n = sum of clipped n-gram matches / sum of candidate n-grams over
    the corpus, BP = 1 if c > r else exp(1 - r / c) (c, r: total candidate and reference lengths).
    ``candidates``, ``references``: lists of token sequences (a string is a sequence of character tokens).
    """
    if len(candidates) != len(references) or not candidates:
        raise ValueError(f"need as many candidates as references (> 0), got {len(candidates)} and "
                         f"{len(references)}")
    matches, totals = [0] * max_n, [0] * max_n
    for cand, ref in zip(candidates, references, strict=True):
        for n in range(1, max_n + 1):
            cand_counts, ref_counts = ngram_counts(cand, n), ngram_counts(ref, n)
            # clipping: a candidate n-gram counts at most as often as it occurs in the reference
            matches[n - 1] += sum(min(c, ref_counts.get(g, 0)) for g, c in cand_counts.items())
            totals[n - 1] += max(len(cand) - n + 1, 0)
    if min(matches) == 0:
        return 0.0
    c, r = sum(len(x) for x in candidates), sum(len(x) for x in references)
    brevity_penalty = 1.0 if c > r else math.exp(1 - r / c)
    return brevity_penalty * math.exp(sum(math.log(m / t) for m, t in zip(matches, totals, strict=True)) / max_n)


# ----------------------------------------------------------------- weights into torch.nn's own layers
def _copy_pairs(pairs) -> None:
    with torch.no_grad():
        for mine, theirs in pairs:
            theirs.weight.copy_(mine.weight)
            theirs.bias.copy_(mine.bias)


def copy_encoder_block_to_torch_layer(block: TransformerEncoderBlock, layer: nn.TransformerEncoderLayer) -> None:
    """Copy into ``torch.nn.TransformerEncoderLayer`` (names: self_attn, linear1, linear2, norm1, norm2)."""
    copy_attention_to_torch_mha(block.attention, layer.self_attn)
    _copy_pairs(((block.feed_forward.dense_in, layer.linear1), (block.feed_forward.dense_out, layer.linear2),
                 (block.attention_norm, layer.norm1), (block.feed_forward_norm, layer.norm2)))


def copy_decoder_block_to_torch_layer(block: TransformerDecoderBlock, layer: nn.TransformerDecoderLayer) -> None:
    """Copy into ``torch.nn.TransformerDecoderLayer`` (self_attn, multihead_attn, linear1/2, norm1/2/3)."""
    copy_attention_to_torch_mha(block.self_attention, layer.self_attn)
    copy_attention_to_torch_mha(block.cross_attention, layer.multihead_attn)
    _copy_pairs(((block.feed_forward.dense_in, layer.linear1), (block.feed_forward.dense_out, layer.linear2),
                 (block.self_attention_norm, layer.norm1), (block.cross_attention_norm, layer.norm2),
                 (block.feed_forward_norm, layer.norm3)))
