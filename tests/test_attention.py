import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from utils import attention as A

B, T, S, D, H, FF = 2, 5, 7, 16, 4, 32


@pytest.fixture(autouse=True)
def seeded():
    torch.manual_seed(0)


def padding_mask(lengths, T):
    """(B, T) bool, True = real token."""
    return torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]


def test_sdpa_matches_torch_fused_kernel_with_masks():
    q, k, v = torch.randn(B, H, T, 8), torch.randn(B, H, S, 8), torch.randn(B, H, S, 6)
    mask = padding_mask([S, 3], S)[:, None, None, :]                                  # (B, 1, 1, S)
    out, w = A.scaled_dot_product_attention(q, k, v, mask)
    np.testing.assert_allclose(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), atol=1e-6)
    assert w.shape == (B, H, T, S)
    np.testing.assert_allclose(w.sum(-1), torch.ones(B, H, T), atol=1e-6)
    assert torch.all(w[1, :, :, 3:] == 0)                                            # masked keys get no weight
    qc = torch.randn(B, H, T, 8)
    out, _ = A.scaled_dot_product_attention(qc, qc, qc, A.causal_mask(T))
    np.testing.assert_allclose(out, F.scaled_dot_product_attention(qc, qc, qc, is_causal=True), atol=1e-6)
    with pytest.raises(TypeError, match="bool"):
        A.scaled_dot_product_attention(q, k, v, mask.float())
    with pytest.raises(ValueError, match="shapes do not fit"):
        A.scaled_dot_product_attention(q, k[..., :5], v)


def test_causal_mask_and_positional_encoding():
    m = A.causal_mask(4)
    assert m.dtype == torch.bool and m[2, 2] and m[3, 0] and not m[0, 1]
    pe = A.sinusoidal_positional_encoding(50, 16)
    assert pe.shape == (50, 16) and pe.dtype == torch.float32
    np.testing.assert_allclose(pe[:, 0], np.sin(np.arange(50)), atol=1e-6)
    np.testing.assert_allclose(pe[7, 3], np.cos(7 / 10000 ** (2 / 16)), atol=1e-6)
    with pytest.raises(ValueError, match="even d_model"):
        A.sinusoidal_positional_encoding(10, 7)
    with pytest.raises(ValueError, match="positive int"):
        A.causal_mask(0)


@pytest.mark.parametrize("fused", [False, True])
def test_multihead_attention_matches_torch_module(fused):
    mha = A.MultiHeadAttention(D, H, fused=fused).eval()
    ref = nn.MultiheadAttention(D, H, batch_first=True).eval()
    A.copy_attention_to_torch_mha(mha, ref)
    x, ctx = torch.randn(B, T, D), torch.randn(B, S, D)
    keep = padding_mask([S, 4], S)
    out = mha(x, ctx, mask=keep)
    expected, avg_weights = ref(x, ctx, ctx, key_padding_mask=~keep)                   # torch: True = ignore
    np.testing.assert_allclose(out.detach(), expected.detach(), atol=1e-5)
    if fused:
        assert mha.last_weights is None
    else:
        assert mha.last_weights.shape == (B, H, T, S)
        np.testing.assert_allclose(mha.last_weights.mean(1), avg_weights.detach(), atol=1e-6)
    causal = A.causal_mask(T)
    out = mha(x, mask=causal[None, None])
    expected = ref(x, x, x, attn_mask=~causal)[0]
    np.testing.assert_allclose(out.detach(), expected.detach(), atol=1e-5)


def test_multihead_attention_bad_input():
    mha = A.MultiHeadAttention(D, H)
    with pytest.raises(ValueError, match="divisible"):
        A.MultiHeadAttention(10, 3)
    with pytest.raises(ValueError, match=r"shape \(B, T, 16\)"):
        mha(torch.randn(B, T, D + 1))
    with pytest.raises(ValueError, match="padding mask"):
        mha(torch.randn(B, T, D), mask=A.causal_mask(T))                              # (T, T) is not (B, T)
    with pytest.raises(TypeError, match="bool"):
        mha(torch.randn(B, T, D), mask=torch.ones(B, T))


def test_no_bias_and_gradients_flow():
    mha = A.MultiHeadAttention(D, H, bias=False)
    assert mha.query.bias is None
    x = torch.randn(B, T, D, requires_grad=True)
    mha(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def copy_pairs(pairs):
    """Copy weight and bias of each (ours, torch's) pair of Linear/LayerNorm modules."""
    with torch.no_grad():
        for mine, theirs in pairs:
            theirs.weight.copy_(mine.weight)
            theirs.bias.copy_(mine.bias)


def copy_block_to_torch_layer(block, layer):
    A.copy_attention_to_torch_mha(block.attention, layer.self_attn)
    ff = block.feed_forward
    copy_pairs(((ff.dense_in, layer.linear1), (ff.dense_out, layer.linear2),
                (block.attention_norm, layer.norm1), (block.feed_forward_norm, layer.norm2)))


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_block_matches_torch_layer(norm_first):
    block = A.TransformerEncoderBlock(D, H, FF, norm_first=norm_first).eval()
    layer = nn.TransformerEncoderLayer(D, H, FF, dropout=0.0, activation="gelu", batch_first=True,
                                       norm_first=norm_first).eval()
    copy_block_to_torch_layer(block, layer)
    x, keep = torch.randn(B, T, D), padding_mask([T, 3], T)
    out = block(x, mask=keep)
    expected = layer(x, src_key_padding_mask=~keep)
    np.testing.assert_allclose(out[keep].detach(), expected[keep].detach(), atol=1e-5)  # real positions


def test_decoder_block_matches_torch_layer():
    block = A.TransformerDecoderBlock(D, H, FF, activation="relu").eval()
    layer = nn.TransformerDecoderLayer(D, H, FF, dropout=0.0, activation="relu", batch_first=True).eval()
    A.copy_attention_to_torch_mha(block.self_attention, layer.self_attn)
    A.copy_attention_to_torch_mha(block.cross_attention, layer.multihead_attn)
    copy_pairs(((block.feed_forward.dense_in, layer.linear1), (block.feed_forward.dense_out, layer.linear2),
                (block.self_attention_norm, layer.norm1), (block.cross_attention_norm, layer.norm2),
                (block.feed_forward_norm, layer.norm3)))
    x, memory, keep = torch.randn(B, T, D), torch.randn(B, S, D), padding_mask([S, 2], S)
    out = block(x, memory, memory_mask=keep)
    expected = layer(x, memory, tgt_mask=~A.causal_mask(T), memory_key_padding_mask=~keep)
    np.testing.assert_allclose(out.detach(), expected.detach(), atol=1e-5)
    # causal: changing a later target position leaves earlier outputs unchanged
    x2 = x.clone()
    x2[:, -1] += 1.0
    np.testing.assert_allclose(block(x2, memory, memory_mask=keep)[:, :-1].detach(), out[:, :-1].detach(), atol=1e-6)


def test_feed_forward_activation_check():
    ff = A.PositionwiseFeedForward(D, FF)
    x = torch.randn(B, T, D)
    np.testing.assert_allclose(ff(x).detach(), ff.dense_out(F.gelu(ff.dense_in(x))).detach(), atol=1e-6)
    with pytest.raises(ValueError, match="activation must be one of"):
        A.PositionwiseFeedForward(D, FF, activation="swish")


# ------------------------------------------------------------------------------------------------ Keras
def test_keras_multihead_attention_matches_pytorch_and_keras_library():
    import keras

    mha = A.MultiHeadAttention(D, H).eval()
    x, ctx, keep = torch.randn(B, T, D), torch.randn(B, S, D), padding_mask([S, 4], S)
    expected = mha(x, ctx, mask=keep).detach().numpy()
    ours = A.KerasMultiHeadAttention(D, H)
    A.copy_attention_to_keras(mha, ours)
    out, w = ours(x.numpy(), ctx.numpy(), mask=keep.numpy(), return_weights=True)
    np.testing.assert_allclose(np.asarray(out), expected, atol=1e-5)
    np.testing.assert_allclose(np.asarray(w), mha.last_weights.numpy(), atol=1e-6)
    lib = keras.layers.MultiHeadAttention(num_heads=H, key_dim=D // H)
    lib(x.numpy(), ctx.numpy())                                                       # build its weights
    A.copy_attention_to_keras_mha(mha, lib)
    keras_mask = np.broadcast_to(keep.numpy()[:, None, :], (B, T, S))                 # (B, Tq, Tk), True = attend
    np.testing.assert_allclose(np.asarray(lib(x.numpy(), ctx.numpy(), attention_mask=keras_mask)), expected,
                               atol=1e-5)


@pytest.mark.parametrize("norm_first", [False, True])
def test_keras_encoder_block_equals_pytorch_block(norm_first):
    block = A.TransformerEncoderBlock(D, H, FF, norm_first=norm_first).eval()
    keras_block = A.KerasTransformerEncoderBlock(D, H, FF, norm_first=norm_first)
    A.copy_encoder_block_to_keras(block, keras_block)
    x, keep = torch.randn(B, T, D), padding_mask([T, 3], T)
    expected = block(x, mask=keep).detach().numpy()
    np.testing.assert_allclose(np.asarray(keras_block(x.numpy(), mask=keep.numpy())), expected, atol=1e-5)


def test_keras_decoder_block_equals_pytorch_block():
    block = A.TransformerDecoderBlock(D, H, FF).eval()
    keras_block = A.KerasTransformerDecoderBlock(D, H, FF)
    A.copy_decoder_block_to_keras(block, keras_block)
    x, memory, keep = torch.randn(B, T, D), torch.randn(B, S, D), padding_mask([S, 2], S)
    expected = block(x, memory, memory_mask=keep).detach().numpy()
    out = keras_block(x.numpy(), memory.numpy(), memory_mask=keep.numpy())
    np.testing.assert_allclose(np.asarray(out), expected, atol=1e-5)


def test_keras_layers_bad_input_and_lazy_names():
    with pytest.raises(ValueError, match="divisible"):
        A.KerasMultiHeadAttention(10, 3)
    with pytest.raises(ValueError, match="activation must be one of"):
        A.KerasPositionwiseFeedForward(D, FF, activation="swish")
    with pytest.raises(AttributeError, match="no attribute"):
        A.KerasSomethingElse  # noqa: B018
