import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from utils import attention as A
from utils import attention_interop as AI
from utils import attention_keras as AK
from utils import metrics as M
from utils import seq2seq

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
    AI.copy_attention_to_torch_mha(mha, ref)
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
    with pytest.raises(ValueError, match=r"shape \(B, T, D=16\)"):
        mha(torch.randn(B, T, D + 1))
    with pytest.raises(ValueError, match="padding mask"):
        mha(torch.randn(B, T, D), mask=A.causal_mask(T))                              # (T, T) is not (B, T)
    with pytest.raises(TypeError, match="bool"):
        mha(torch.randn(B, T, D), mask=torch.ones(B, T))


def test_no_bias_and_gradients_are_the_true_derivatives():
    """Not just "a gradient exists": autograd's gradient equals finite differences (float64), so a detached or
    wrongly scaled branch (attention weights, values, output projection) fails."""
    mha = A.MultiHeadAttention(8, 2, bias=False).double()                  # small: finite differences per input
    assert mha.query.bias is None
    x = torch.randn(2, 3, 8, dtype=torch.float64, requires_grad=True)
    context = torch.randn(2, 4, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, c: mha(a, c), (x, context), fast_mode=True)
    assert torch.autograd.gradcheck(lambda a: mha(a, mask=A.causal_mask(3)[None, None]), (x,), fast_mode=True)


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_block_matches_torch_layer(norm_first):
    block = A.TransformerEncoderBlock(D, H, FF, norm_first=norm_first).eval()
    layer = nn.TransformerEncoderLayer(D, H, FF, dropout=0.0, activation="gelu", batch_first=True,
                                       norm_first=norm_first).eval()
    AI.copy_encoder_block_to_torch_layer(block, layer)
    x, keep = torch.randn(B, T, D), padding_mask([T, 3], T)
    out = block(x, mask=keep)
    expected = layer(x, src_key_padding_mask=~keep)
    np.testing.assert_allclose(out[keep].detach(), expected[keep].detach(), atol=1e-5)  # real positions


def test_decoder_block_matches_torch_layer():
    block = A.TransformerDecoderBlock(D, H, FF, activation="relu").eval()
    layer = nn.TransformerDecoderLayer(D, H, FF, dropout=0.0, activation="relu", batch_first=True).eval()
    AI.copy_decoder_block_to_torch_layer(block, layer)
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
    ours = AK.KerasMultiHeadAttention(D, H)
    AK.copy_attention_to_keras(mha, ours)
    out, w = ours(x.numpy(), ctx.numpy(), mask=keep.numpy(), return_weights=True)
    np.testing.assert_allclose(np.asarray(out), expected, atol=1e-5)
    np.testing.assert_allclose(np.asarray(w), mha.last_weights.numpy(), atol=1e-6)
    lib = keras.layers.MultiHeadAttention(num_heads=H, key_dim=D // H)
    lib(x.numpy(), ctx.numpy())                                                       # build its weights
    AI.copy_attention_to_keras_mha(mha, lib)
    keras_mask = np.broadcast_to(keep.numpy()[:, None, :], (B, T, S))                 # (B, Tq, Tk), True = attend
    np.testing.assert_allclose(np.asarray(lib(x.numpy(), ctx.numpy(), attention_mask=keras_mask)), expected,
                               atol=1e-5)


@pytest.mark.parametrize("norm_first", [False, True])
def test_keras_encoder_block_equals_pytorch_block(norm_first):
    block = A.TransformerEncoderBlock(D, H, FF, norm_first=norm_first).eval()
    keras_block = AK.KerasTransformerEncoderBlock(D, H, FF, norm_first=norm_first)
    AK.copy_encoder_block_to_keras(block, keras_block)
    x, keep = torch.randn(B, T, D), padding_mask([T, 3], T)
    expected = block(x, mask=keep).detach().numpy()
    np.testing.assert_allclose(np.asarray(keras_block(x.numpy(), mask=keep.numpy())), expected, atol=1e-5)


def test_keras_decoder_block_equals_pytorch_block():
    block = A.TransformerDecoderBlock(D, H, FF).eval()
    keras_block = AK.KerasTransformerDecoderBlock(D, H, FF)
    AK.copy_decoder_block_to_keras(block, keras_block)
    x, memory, keep = torch.randn(B, T, D), torch.randn(B, S, D), padding_mask([S, 2], S)
    expected = block(x, memory, memory_mask=keep).detach().numpy()
    out = keras_block(x.numpy(), memory.numpy(), memory_mask=keep.numpy())
    np.testing.assert_allclose(np.asarray(out), expected, atol=1e-5)


def test_keras_layers_bad_input_and_lazy_names():
    with pytest.raises(ValueError, match="divisible"):
        AK.KerasMultiHeadAttention(10, 3)
    with pytest.raises(ValueError, match="activation must be one of"):
        AK.KerasPositionwiseFeedForward(D, FF, activation="swish")
    with pytest.raises(AttributeError, match="no attribute"):
        AK.KerasSomethingElse  # noqa: B018


# ------------------------------------------------------------------------------------- task and models
def test_dates_are_split_by_day_and_encode_round_trip():
    train_days, test_days = seq2seq.split_calendar(2000, 2001, test_fraction=0.2)
    assert len(train_days) + len(test_days) == 731 and not set(train_days) & set(test_days)
    pairs = seq2seq.make_date_pairs(test_days, 50, seed=3)
    assert pairs == seq2seq.make_date_pairs(test_days, 50, seed=3)                           # seeded
    import datetime
    assert all(datetime.date.fromisoformat(iso) in test_days for _, iso in pairs)
    d = datetime.date(2026, 11, 22)
    assert [f(d) for f in seq2seq.DATE_FORMATS][:2] == ["22 November 2026", "November 22, 2026"]
    assert seq2seq.DATE_FORMATS[7](d) == "the 22nd of November, 2026"
    vocab = seq2seq.Seq2SeqVocab([s for s, _ in pairs] + [t for _, t in pairs])
    ids = vocab.encode([t for _, t in pairs], 12, bos=True, eos=True)
    assert ids.shape == (50, 12) and torch.all(ids[:, 0] == vocab.BOS)
    assert vocab.decode(ids[:, 1:]) == [t for _, t in pairs]
    with pytest.raises(ValueError, match="not in the vocabulary"):
        vocab.encode(["~"], 5)
    with pytest.raises(ValueError, match="more than length"):
        vocab.encode(["2026-11-22"], 5)


@pytest.mark.parametrize("kind", ["transformer", "rnn"])
def test_seq2seq_models_shapes_and_greedy_decode(kind):
    V, S_len, T_len = 20, 9, 6
    if kind == "transformer":
        model = seq2seq.Seq2SeqTransformer(V, V, S_len, d_model=16, num_heads=2, d_ff=32, num_encoder_layers=1,
                                     num_decoder_layers=1)
    else:
        model = seq2seq.RNNSeq2Seq(V, V, S_len, embed_dim=8, hidden=16)
    src = torch.randint(3, V, (4, S_len))
    src[1, 5:] = 0                                                                     # padding
    tgt_in = torch.randint(3, V, (4, T_len))
    logits = model(torch.cat([src, tgt_in], 1))
    assert logits.shape == (4, T_len, V)
    # teacher forcing and step-by-step decoding agree: greedy output fed back gives the same logits
    out = seq2seq.greedy_decode(model, src, T_len)
    assert out.shape == (4, T_len)
    memory, mask = model.encode(src)
    again = model.decode(memory, mask, torch.cat([torch.ones(4, 1, dtype=torch.long), out[:, :-1]], 1))
    assert torch.equal(again.argmax(-1), out)


def test_bleu_against_hand_computed_values():
    # Papineni et al.'s example: "the" x7 against "the cat is on the mat": clipped unigram precision 2/7
    cand, ref = "the the the the the the the".split(), "the cat is on the mat".split()
    assert M.bleu([cand], [ref], max_n=1) == pytest.approx(2 / 7)                      # c=7 > r=6: BP=1
    # p1 = 5/6, p2 = 3/5, equal lengths: BLEU-2 = sqrt(1/2)
    assert M.bleu(["the cat sat on the mat".split()], [ref], max_n=2) == pytest.approx(np.sqrt(0.5))
    # a too-short candidate: p1 = p2 = 1, BP = exp(1 - 6/2)
    assert M.bleu(["the cat".split()], [ref], max_n=2) == pytest.approx(np.exp(-2))
    assert M.bleu(["abc"], ["abc"]) == 0.0                                             # no 4-gram at all
    assert M.bleu(["2026-11-22"], ["2026-11-22"]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="as many candidates"):
        M.bleu(["a"], [])
    assert M.exact_match(["a", "b"], ["a", "c"]) == 0.5


def test_additive_attention_weights():
    att = seq2seq.AdditiveAttention(6, 8, 5)
    keys, keep = torch.randn(B, S, 8), padding_mask([S, 3], S)
    context, w = att(torch.randn(B, 6), keys, keep)
    assert context.shape == (B, 8) and w.shape == (B, S)
    np.testing.assert_allclose(w.sum(-1).detach(), torch.ones(B), atol=1e-6)
    assert torch.all(w[1, 3:] == 0)
    np.testing.assert_allclose(context.detach(), (w[:, :, None] * keys).sum(1).detach(), atol=1e-6)


def test_keras_encoder_block_in_a_functional_model_receives_the_embedding_mask():
    import keras

    ids = keras.Input((None,), dtype="int32")
    embedding = keras.layers.Embedding(30, D, mask_zero=True)                          # mask: id != 0
    block = AK.KerasTransformerEncoderBlock(D, H, FF)
    model = keras.Model(ids, block(embedding(ids)))
    x = np.random.default_rng(0).integers(1, 30, (B, T))
    x[1, 3:] = 0
    vectors = np.asarray(embedding(x))                                                 # plain array: no mask attached
    explicit = block(vectors, mask=x != 0)
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(explicit), atol=1e-6)
    unmasked = block(vectors)
    assert np.abs(np.asarray(unmasked)[1, :3] - np.asarray(explicit)[1, :3]).max() > 1e-4  # the mask mattered


def test_exercise_references_match_the_formulas_and_reject_plausible_wrong_answers():
    import math

    from utils.check import check_answer

    D, F_ = 96, 384
    params = A.exercise_reference("encoder_block_params")
    check_answer(4 * D * D + 4 * D + 2 * D * F_ + F_ + D + 4 * D, params)
    with pytest.raises(AssertionError):  # the two layer norms forgotten
        check_answer(4 * D * D + 4 * D + 2 * D * F_ + F_ + D, params)
    mask = A.exercise_reference("combined_mask")
    real = torch.arange(4)[None, :] < torch.tensor([4, 2])[:, None]
    check_answer(A.causal_mask(4)[None] & real[:, None, :], mask)
    with pytest.raises(AssertionError):  # padding masked on the query axis instead of the key axis
        check_answer(A.causal_mask(4)[None] & real[:, :, None], mask)
    check_answer(2 * 12 * 256 * 256 * 4 / 2**20, A.exercise_reference("attention_mib"))
    with pytest.raises(AssertionError):  # megabytes (10**6) instead of MiB
        check_answer(2 * 12 * 256 * 256 * 4 / 1e6, A.exercise_reference("attention_mib"))
    bleu = A.exercise_reference("bleu2")
    check_answer(math.exp(1 - 6 / 5) * math.sqrt(1.0 * 3 / 4), bleu)
    with pytest.raises(AssertionError):  # the brevity penalty forgotten
        check_answer(math.sqrt(1.0 * 3 / 4), bleu)

    def factory():
        return seq2seq.Seq2SeqTransformer(12, 12, 8, d_model=8, num_heads=2, d_ff=16, num_encoder_layers=1,
                                          num_decoder_layers=1)

    def train(model, steps):  # stands in for training: the "accuracy" is what is left of the positions
        return 0.0, float(model.positions.abs().sum()) + steps
    check_answer(5.0, A.exercise_reference("no_positions", model_factory=factory, train=train, steps=5))
    with pytest.raises(AssertionError):  # the positions left in
        check_answer(train(factory(), 5)[1], A.exercise_reference("no_positions", model_factory=factory,
                                                                  train=train, steps=5))
    with pytest.raises(ValueError, match="name must be one of"):
        A.exercise_reference("bleu4")
    with pytest.raises(TypeError, match="no_positions"):
        A.exercise_reference("no_positions", model_factory=factory)
    with pytest.raises(TypeError, match="no_positions"):
        A.exercise_reference("bleu2", steps=3)
