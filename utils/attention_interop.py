"""The course's attention and Transformer blocks copied into the libraries' own layers (chapter 5's checks).

``torch.nn.MultiheadAttention`` packs W_q, W_k, W_v into one ``in_proj_weight``, ``torch.nn.TransformerEncoderLayer``
and ``TransformerDecoderLayer`` name their parts ``self_attn``, ``linear1``, ``norm1``..., and
``keras.layers.MultiHeadAttention`` keeps the heads apart in (D, H, dk) kernels. The functions here copy the weights of
:mod:`utils.attention`'s modules into those layouts, so that the course's code can be checked against the libraries'
own implementations on the same weights. (Copying into the course's own Keras twins lives in :mod:`utils.attention`.)
"""
import torch
from torch import nn

from . import _validate as check
from .attention import MultiHeadAttention, TransformerDecoderBlock, TransformerEncoderBlock


# ------------------------------------------------------------------------- library layouts (for checks)
def _torch_mha_pairs(attention: MultiHeadAttention, mha: nn.MultiheadAttention, prefix: str) -> list:
    """Into ``torch.nn.MultiheadAttention``, which packs W_q, W_k, W_v into one ``in_proj_weight`` (3D, D)."""
    if mha.in_proj_weight is None:
        raise ValueError(f"cannot copy into {prefix}: torch MultiheadAttention with separate kdim/vdim has no "
                         "packed in_proj_weight; accepted: nn.MultiheadAttention(D, H) with kdim = vdim = D")
    pairs = [(mha.in_proj_weight, torch.cat([attention.query.weight, attention.key.weight, attention.value.weight]),
              prefix + "in_proj_weight"),
             (mha.out_proj.weight, attention.output.weight, prefix + "out_proj.weight")]
    has_bias, theirs = attention.query.bias is not None, mha.in_proj_bias is not None
    if has_bias != theirs:
        raise ValueError(f"cannot copy into {prefix}: bias={has_bias} in the course's attention but bias={theirs} "
                         "in torch's; build both with the same bias setting")
    if has_bias:
        pairs += [(mha.in_proj_bias, torch.cat([attention.query.bias, attention.key.bias, attention.value.bias]),
                   prefix + "in_proj_bias"),
                  (mha.out_proj.bias, attention.output.bias, prefix + "out_proj.bias")]
    return pairs


def copy_attention_to_torch_mha(attention: MultiHeadAttention, mha: nn.MultiheadAttention) -> None:
    """Copy into ``torch.nn.MultiheadAttention``, which packs W_q, W_k, W_v into one ``in_proj_weight`` (3D, D)."""
    if mha.num_heads != attention.num_heads:
        raise ValueError(f"cannot copy attention: num_heads={attention.num_heads} here, {mha.num_heads} in torch's "
                         "MultiheadAttention (nothing was copied); build both with the same num_heads")
    check.torch_assignments(_torch_mha_pairs(attention, mha, ""), "attention into torch.nn.MultiheadAttention")


def copy_attention_to_keras_mha(attention: MultiHeadAttention, keras_mha) -> None:
    """Copy into ``keras.layers.MultiHeadAttention`` (built), whose EinsumDense kernels keep the heads apart:
    query/key/value kernel (D, H, dk), bias (H, dk); output kernel (H, dk, D), bias (D,).

    Uses the public ``set_weights``, whose order is query, key, value, output, each kernel then bias (bias only
    when the layer has one): private sublayer names differ between Keras versions.
    """
    H, dk, D = attention.num_heads, attention.d_head, attention.d_model
    weights = []
    head_in, head_out = ((D, H, dk), (H, dk)), ((H, dk, D), (D,))   # (kernel, bias) shapes
    for linear, (kernel_shape, bias_shape) in ((attention.query, head_in), (attention.key, head_in),
                                               (attention.value, head_in), (attention.output, head_out)):
        weights.append(linear.weight.detach().cpu().numpy().T.reshape(kernel_shape))
        if linear.bias is not None:
            weights.append(linear.bias.detach().cpu().numpy().reshape(bias_shape))
    expected = [tuple(w.shape) for w in keras_mha.get_weights()]
    if [w.shape for w in weights] != expected:
        raise ValueError(f"keras MultiHeadAttention weights {expected} do not match the course's attention "
                         f"(D={D}, H={H}, dk={dk}, biases: {attention.output.bias is not None}): build it with "
                         f"num_heads={H}, key_dim={dk} and call it once before copying")
    keras_mha.set_weights(weights)


# ----------------------------------------------------------------- weights into torch.nn's own layers
def _linear_norm_pairs(pairs, prefix_names) -> list:
    out = []
    for (mine, theirs), name in zip(pairs, prefix_names, strict=True):
        out += [(theirs.weight, mine.weight, name + ".weight"), (theirs.bias, mine.bias, name + ".bias")]
    return out


def copy_encoder_block_to_torch_layer(block: TransformerEncoderBlock, layer: nn.TransformerEncoderLayer) -> None:
    """Copy into ``torch.nn.TransformerEncoderLayer`` (names: self_attn, linear1, linear2, norm1, norm2)."""
    pairs = _torch_mha_pairs(block.attention, layer.self_attn, "self_attn.")
    pairs += _linear_norm_pairs(((block.feed_forward.dense_in, layer.linear1),
                                 (block.feed_forward.dense_out, layer.linear2),
                                 (block.attention_norm, layer.norm1), (block.feed_forward_norm, layer.norm2)),
                                ("linear1", "linear2", "norm1", "norm2"))
    check.torch_assignments(pairs, "an encoder block into torch.nn.TransformerEncoderLayer")


def copy_decoder_block_to_torch_layer(block: TransformerDecoderBlock, layer: nn.TransformerDecoderLayer) -> None:
    """Copy into ``torch.nn.TransformerDecoderLayer`` (self_attn, multihead_attn, linear1/2, norm1/2/3)."""
    pairs = _torch_mha_pairs(block.self_attention, layer.self_attn, "self_attn.")
    pairs += _torch_mha_pairs(block.cross_attention, layer.multihead_attn, "multihead_attn.")
    pairs += _linear_norm_pairs(((block.feed_forward.dense_in, layer.linear1),
                                 (block.feed_forward.dense_out, layer.linear2),
                                 (block.self_attention_norm, layer.norm1), (block.cross_attention_norm, layer.norm2),
                                 (block.feed_forward_norm, layer.norm3)),
                                ("linear1", "linear2", "norm1", "norm2", "norm3"))
    check.torch_assignments(pairs, "a decoder block into torch.nn.TransformerDecoderLayer")
