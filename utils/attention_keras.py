"""The Keras 3 twins of chapter 5's attention and Transformer blocks, and copying PyTorch weights into them.

``KerasMultiHeadAttention``, ``KerasPositionwiseFeedForward``, ``KerasTransformerEncoderBlock`` and
``KerasTransformerDecoderBlock`` mirror :mod:`utils.attention`'s classes sublayer for sublayer (same names, same
shapes, masks with True = may attend), so ``copy_*_to_keras`` can move every weight across and the chapters
can check that the outputs are equal. The classes are created on first access (PEP 562), so importing this
module never starts TensorFlow; Keras itself is imported inside the functions.
"""
import math

import torch
from torch import nn

from . import _validate as check
from .attention import (
    ACTIVATIONS,
    MASK_SHAPES,
    MultiHeadAttention,
    TransformerDecoderBlock,
    TransformerEncoderBlock,
    _check_block,
    _check_heads,
)
from .device import lazy_keras_classes
from .rnn import linear_to_keras


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
            _check_heads(d_model, num_heads, dropout)
            super().__init__(**kwargs)
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
            # static shapes only (symbolic dims are None): the same refusals as the PyTorch class
            if len(x.shape) != 3 or x.shape[-1] not in (None, self.d_model):
                raise ValueError(f"x must have shape (B, T, D={self.d_model}), got {tuple(x.shape)}")
            if len(context.shape) != 3 or context.shape[-1] not in (None, self.d_model) or None not in (
                    x.shape[0], context.shape[0]) and x.shape[0] != context.shape[0]:
                raise ValueError(f"context must have shape (B, Tk, D) = ({x.shape[0]}, Tk, {self.d_model}) (the batch "
                                 f"size of x: no broadcasting), got {tuple(context.shape)}")
            if mask is not None and len(mask.shape) == 2 and None not in (x.shape[0], mask.shape[0]) and (
                    mask.shape[0] != x.shape[0] or mask.shape[1] not in (None, context.shape[1])):
                raise ValueError(f"mask must be {MASK_SHAPES}; a 2-D mask is a padding mask (B, Tk) = "
                                 f"({x.shape[0]}, {context.shape[1]}), got {tuple(mask.shape)}: did you mean "
                                 "causal_mask(T)[None, None]?")
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
            check.positive_int("d_model", d_model)
            check.positive_int("d_ff", d_ff)
            check.one_of("activation", activation, ACTIVATIONS)
            check.probability("dropout", dropout)
            super().__init__(**kwargs)
            # PyTorch's and BERT's GELU is the exact erf form. keras.activations.gelu is exact by default, but
            # keras.ops.gelu defaults to the tanh approximation: say which form, so neither can be mistaken
            # (GPT-2's is the tanh form: "gelu_tanh")
            act = {"gelu": lambda z: keras.activations.gelu(z, approximate=False),
                   "gelu_tanh": lambda z: keras.activations.gelu(z, approximate=True), "relu": "relu"}[activation]
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
            _check_block(d_model, num_heads, d_ff, dropout, activation, layer_norm_eps)
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
            _check_block(d_model, num_heads, d_ff, dropout, activation, layer_norm_eps)
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


# PEP 562: the Keras classes are built on first access, so importing this module never starts TensorFlow
__getattr__ = lazy_keras_classes(__name__, ("KerasMultiHeadAttention", "KerasPositionwiseFeedForward",
                                            "KerasTransformerEncoderBlock", "KerasTransformerDecoderBlock"),
                                 _keras_layer_classes)


# ------------------------------------------------------------------------------------ weights across
def _norm_values(norm: nn.LayerNorm) -> list:
    return [norm.weight.detach().cpu().numpy(), norm.bias.detach().cpu().numpy()]  # Keras' [gamma, beta]


def copy_linear_to_keras(linear: nn.Linear, dense) -> None:
    """torch Linear weight (out, in) -> Keras Dense kernel (in, out); bias as is (chapter 4's ``linear_to_keras``)."""
    check.keras_assignments([(dense, linear_to_keras(linear))], "a Linear layer")


def copy_norm_to_keras(norm: nn.LayerNorm, keras_norm) -> None:
    """torch LayerNorm weight/bias -> Keras LayerNormalization gamma/beta."""
    check.keras_assignments([(keras_norm, _norm_values(norm))], "a LayerNorm")


def _build(keras_layer, d_model: int, n_inputs: int) -> None:
    """Call a Keras layer once on zeros so its weights exist (Keras creates them on first call)."""
    if keras_layer.built:
        return
    import numpy as np

    xs = [np.zeros((1, 2, d_model), dtype="float32") for _ in range(n_inputs)]
    keras_layer(*xs)


def _attention_pairs(torch_attention, keras_attention) -> list:
    return [(getattr(keras_attention, keras_name), linear_to_keras(getattr(torch_attention, torch_name)))
            for torch_name, keras_name in [("query", "query"), ("key", "key"), ("value", "value"),
                                           ("output", "output_dense")]]


def _feed_forward_pairs(torch_ff, keras_ff) -> list:
    return [(keras_ff.dense_in, linear_to_keras(torch_ff.dense_in)),
            (keras_ff.dense_out, linear_to_keras(torch_ff.dense_out))]


def _build_checked(keras_layer, d_model: int, n_inputs: int, what: str) -> None:
    keras_d_model = getattr(keras_layer, "d_model", None) or getattr(getattr(keras_layer, "attention", None),
                                                                    "d_model", None) or getattr(
        getattr(keras_layer, "self_attention", None), "d_model", None)
    if keras_d_model is not None and keras_d_model != d_model:
        raise ValueError(f"cannot copy {what}: the PyTorch one has d_model={d_model}, the Keras one "
                         f"d_model={keras_d_model} (nothing was copied); build both with the same sizes")
    _build(keras_layer, d_model, n_inputs)


def copy_attention_to_keras(torch_attention: MultiHeadAttention, keras_attention) -> None:
    """Copy the four projections of a PyTorch :class:`MultiHeadAttention` into a ``KerasMultiHeadAttention``."""
    _build_checked(keras_attention, torch_attention.d_model, 1, "attention")
    check.keras_assignments(_attention_pairs(torch_attention, keras_attention), "attention")


def encoder_block_pairs(torch_block: TransformerEncoderBlock, keras_block) -> list:
    """(Keras layer, values) for every weight of an encoder block (for ``_validate.keras_assignments``)."""
    _build_checked(keras_block, torch_block.attention.d_model, 1, "an encoder block")
    return [*_attention_pairs(torch_block.attention, keras_block.attention),
            (keras_block.attention_norm, _norm_values(torch_block.attention_norm)),
            *_feed_forward_pairs(torch_block.feed_forward, keras_block.feed_forward),
            (keras_block.feed_forward_norm, _norm_values(torch_block.feed_forward_norm))]


def copy_encoder_block_to_keras(torch_block: TransformerEncoderBlock, keras_block) -> None:
    """Copy every weight of a PyTorch encoder block into a ``KerasTransformerEncoderBlock`` of the same sizes."""
    check.keras_assignments(encoder_block_pairs(torch_block, keras_block), "an encoder block")


def copy_decoder_block_to_keras(torch_block: TransformerDecoderBlock, keras_block) -> None:
    """Copy every weight of a PyTorch decoder block into a ``KerasTransformerDecoderBlock`` of the same sizes."""
    _build_checked(keras_block, torch_block.self_attention.d_model, 2, "a decoder block")
    pairs = []
    for name in ("self_attention", "cross_attention"):
        pairs += _attention_pairs(getattr(torch_block, name), getattr(keras_block, name))
        pairs.append((getattr(keras_block, name + "_norm"), _norm_values(getattr(torch_block, name + "_norm"))))
    pairs += _feed_forward_pairs(torch_block.feed_forward, keras_block.feed_forward)
    pairs.append((keras_block.feed_forward_norm, _norm_values(torch_block.feed_forward_norm)))
    check.keras_assignments(pairs, "a decoder block")
