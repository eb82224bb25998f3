import os

import numpy as np
import pytest
import torch

from utils import decoding, gpt, gpt_interop, lm_eval
from utils.attention import TransformerEncoderBlock

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TINY = gpt.GPTConfig(vocab_size=61, context_length=24, d_model=32, num_heads=4, num_layers=2)


@pytest.fixture(autouse=True)
def seeded():
    torch.manual_seed(0)


def hf_pair(activation="gelu_new"):
    """A random transformers.GPT2LMHeadModel and our GPT carrying its weights."""
    import transformers

    config = transformers.GPT2Config(vocab_size=61, n_positions=24, n_embd=32, n_layer=2, n_head=4,
                                     activation_function=activation, resid_pdrop=0.0, embd_pdrop=0.0,
                                     attn_pdrop=0.0, bos_token_id=0, eos_token_id=0)
    hf = transformers.GPT2LMHeadModel(config).eval()
    return hf, gpt_interop.from_hf_model(hf)


def test_shapes_and_parameter_formula():
    model = gpt.GPT(TINY)
    logits = model(torch.randint(0, 61, (3, 9)))
    assert logits.shape == (3, 9, 61)
    assert sum(p.numel() for p in model.parameters()) == TINY.num_parameters()


def test_output_layer_is_the_token_embedding_table():
    """Tied: changing the row of a token that is NOT in the input changes that token's logit, by exactly
    final_norm(x) · delta, and nothing else; and the loss sends a gradient to that row. An untied output layer
    leaves both at zero. (A constant added to a row would not show: the final LayerNorm's output has mean zero
    when its weight is 1 and bias 0, so it is orthogonal to a constant vector.)"""
    model = gpt.GPT(TINY).eval()
    ids = torch.randint(0, 61, (2, 7))
    ids[ids == 5] = 6                                                  # token 5 is only ever an output
    delta = torch.randn(TINY.d_model)                                 # not a constant: it shows after LayerNorm
    features = {}
    hook = model.final_norm.register_forward_hook(lambda module, args, out: features.update(h=out))
    with torch.no_grad():
        before = model(ids)
        model.token_embedding.weight[5] += delta
        after = model(ids)
    hook.remove()
    np.testing.assert_allclose(after[..., 5] - before[..., 5], features["h"] @ delta, rtol=1e-4, atol=1e-5)
    others = [v for v in range(61) if v != 5]
    np.testing.assert_allclose(after[..., others], before[..., others], atol=1e-6)
    model.zero_grad()
    gpt.next_token_loss(model(ids), ids).backward()
    assert model.token_embedding.weight.grad[5].abs().sum() > 0, "no gradient reaches the row of an output-only token"


@pytest.mark.parametrize("activation", ["gelu_new", "gelu"])
def test_equals_transformers_gpt2_and_the_fused_path(activation):
    hf, ours = hf_pair(activation)
    ids = torch.randint(0, 61, (2, 13))
    with torch.no_grad():
        expected = hf(ids).logits
        np.testing.assert_allclose(ours(ids), expected, atol=1e-5)
        np.testing.assert_allclose(ours.set_fused(True)(ids), expected, atol=1e-5)


def test_block_is_chapter_5s_pre_ln_encoder_block_with_a_causal_mask():
    """GPTBlock composes its own attention, yet on the same weights it computes what chapter 5's encoder block with
    norm_first=True computes under the causal mask: same parameter names, same numbers."""
    block = gpt.GPTBlock(TINY).eval()
    encoder = TransformerEncoderBlock(TINY.d_model, TINY.num_heads, TINY.d_ff, activation=TINY.activation,
                                      norm_first=True).eval()
    encoder.load_state_dict(block.state_dict())                     # strict: every name and shape the same
    x, mask = torch.randn(2, 7, TINY.d_model), gpt.causal_attention_mask(7)
    with torch.no_grad():
        np.testing.assert_allclose(block(x, mask), encoder(x, mask), atol=1e-6)


@pytest.mark.parametrize("fused", [False, True])
def test_decoding_steps_run_no_argument_check_below_the_model_entry(monkeypatch, fused):
    """The checks of chapter 5's attention run where a learner's call enters it, never inside GPT's blocks:
    a generation (cached and uncached) calls none of them."""
    from utils import attention

    def refuse(*args, **kwargs):
        raise AssertionError("an argument check ran inside the model's forward pass")

    model = gpt.GPT(TINY).eval().set_fused(fused)
    prompt = torch.randint(0, 61, (2, 5))
    expected = {use_cache: decoding.generate(model, prompt, 6, use_cache=use_cache) for use_cache in (True, False)}
    for name in ("_expand_mask", "_check_broadcast_mask", "scaled_dot_product_attention"):
        monkeypatch.setattr(attention, name, refuse)
    monkeypatch.setattr(attention.MultiHeadAttention, "check_inputs", refuse)
    for use_cache in (True, False):
        assert torch.equal(decoding.generate(model, prompt, 6, use_cache=use_cache), expected[use_cache])


def test_causal_a_later_token_never_changes_earlier_logits():
    model = gpt.GPT(TINY).eval()
    ids = torch.randint(0, 61, (1, 10))
    changed = ids.clone()
    changed[0, 7] = (ids[0, 7] + 1) % 61
    with torch.no_grad():
        a, b = model(ids), model(changed)
    np.testing.assert_allclose(a[0, :7], b[0, :7], atol=1e-6)
    assert (a[0, 7:] - b[0, 7:]).abs().max() > 1e-4


def test_kv_cache_equals_recomputation_and_its_size_the_formula():
    model = gpt.GPT(TINY).eval()
    ids = torch.randint(0, 61, (2, 15))
    cache = decoding.KVCache()
    with torch.no_grad():
        full = model(ids)
        parts = [model(ids[:, :6], cache=cache)] + [model(ids[:, t:t + 1], cache=cache) for t in range(6, 15)]
    np.testing.assert_allclose(torch.cat(parts, 1), full, atol=1e-5)
    assert cache.length == 15 and cache.nbytes() == decoding.kv_cache_bytes(TINY, 15, batch_size=2)
    with pytest.raises(ValueError, match="context_length"):
        model(torch.zeros(2, 10, dtype=torch.long), cache=cache)


def test_generate_greedy_equals_transformers_also_with_left_padding():
    hf, ours = hf_pair()
    prompt = torch.randint(1, 61, (2, 5))
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    prompt[0, :2] = 0
    expected = hf.generate(prompt, attention_mask=mask, max_new_tokens=8, do_sample=False, pad_token_id=0)
    for use_cache in (True, False):
        assert torch.equal(decoding.generate(ours, prompt, 8, attention_mask=mask, use_cache=use_cache), expected)


def test_generate_past_the_context_slides_a_window_of_the_last_context_length_tokens():
    model = gpt.GPT(gpt.GPTConfig(vocab_size=61, context_length=8, d_model=32, num_heads=4, num_layers=2)).eval()
    prompt = torch.randint(0, 61, (2, 5))
    expected = prompt
    with torch.no_grad():
        for _ in range(12):  # by hand: the model reads at most its last 8 tokens, at positions 0..7
            expected = torch.cat([expected, model(expected[:, -8:])[:, -1].argmax(-1, keepdim=True)], dim=1)
    for use_cache in (True, False):
        assert torch.equal(decoding.generate(model, prompt, 12, use_cache=use_cache), expected)
    long_prompt = torch.randint(0, 61, (1, 11))  # a prompt longer than the context is read by its last 8 tokens
    assert torch.equal(decoding.generate(model, long_prompt, 3)[:, 11:],
                       decoding.generate(model, long_prompt[:, 3:], 3)[:, 8:])


def test_filters_equal_transformers_processors():
    from transformers import (
        RepetitionPenaltyLogitsProcessor,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    logits, ids = torch.randn(5, 61) * 3, torch.randint(0, 61, (5, 9))
    assert torch.equal(decoding.top_k_filter(logits, 4), TopKLogitsWarper(4)(ids, logits.clone()))
    assert torch.equal(decoding.top_p_filter(logits, 0.7), TopPLogitsWarper(0.7)(ids, logits.clone()))
    assert torch.equal(decoding.apply_temperature(logits, 0.6), TemperatureLogitsWarper(0.6)(ids, logits.clone()))
    assert torch.equal(decoding.apply_repetition_penalty(logits, ids, 1.4),
                       RepetitionPenaltyLogitsProcessor(1.4)(ids, logits.clone()))
    assert torch.isfinite(decoding.top_p_filter(logits, 1e-9)).sum(-1).eq(1).all()  # the best token always survives
    chained = TopPLogitsWarper(0.8)(ids, TopKLogitsWarper(7)(ids, TemperatureLogitsWarper(0.5)(ids, logits.clone())))
    probs = decoding.sampling_distribution(logits, temperature=0.5, top_k=7, top_p=0.8)
    assert torch.allclose(probs, chained.softmax(-1)) and probs.gt(0).sum(-1).le(7).all()


def test_bad_input_raises_clear_errors():
    with pytest.raises(ValueError, match="divisible"):
        gpt.GPTConfig(d_model=30, num_heads=4)
    with pytest.raises(ValueError, match="activation"):
        gpt.GPTConfig(activation="swish")
    with pytest.raises(ValueError, match="d_ff"):
        gpt.GPTConfig(d_ff=0)
    with pytest.raises(ValueError, match="layer_norm_eps"):
        gpt.GPTConfig(layer_norm_eps=0.0)
    with pytest.raises(ValueError, match="temperature"):
        decoding.apply_temperature(torch.zeros(1, 3), 0.0)
    with pytest.raises(ValueError, match="top_k"):
        decoding.top_k_filter(torch.zeros(1, 3), 0)
    with pytest.raises(ValueError, match="top_p"):
        decoding.top_p_filter(torch.zeros(1, 3), 1.5)
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        gpt.GPT(TINY)(torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="attention_mask"):
        gpt.GPT(TINY)(torch.zeros(1, 4, dtype=torch.long), attention_mask=torch.ones(1, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="order"):
        lm_eval.WittenBellNgram(0)


def test_gpt2_state_dict_round_trip_and_shape_check():
    hf, ours = hf_pair()
    sd = {k.removeprefix("transformer."): v for k, v in hf.state_dict().items() if k != "lm_head.weight"}
    config = gpt_interop.config_from_gpt2_state_dict(sd, num_heads=4)
    assert config == ours.config
    wrong = gpt.GPT(gpt.GPTConfig(vocab_size=61, context_length=24, d_model=32, num_heads=4, num_layers=1))
    with pytest.raises(ValueError, match="more blocks"):
        gpt_interop.load_gpt2_weights(wrong, sd)


def test_next_token_loss_shifts_and_bits_per_byte_of_a_uniform_model():
    logits = torch.zeros(2, 6, 61)
    ids = torch.randint(0, 61, (2, 6))
    assert abs(gpt.next_token_loss(logits, ids).item() - np.log(61)) < 1e-6
    model = gpt.GPT(TINY)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    rng = np.random.default_rng(0)
    ids, sizes = rng.integers(0, 61, 100), rng.integers(1, 4, 100)
    for stride in (None, 10, 1):                                      # every token after the first scored once
        bpb = lm_eval.bits_per_byte(model, ids, sizes, stride=stride, batch_size=3)
        assert abs(bpb - np.log2(61) * 99 / sizes[1:].sum()) < 1e-5   # a token counted twice: off by > 1e-2
    with pytest.raises(ValueError, match="stride"):
        lm_eval.bits_per_byte(model, ids, sizes, stride=25)


def test_witten_bell_ngram_is_a_distribution_and_learns():
    rng = np.random.default_rng(0)
    text = rng.choice(list(b"abc"), 3000).astype(np.uint8).tobytes()   # bytes(int64 array) would be 7/8 zeros
    counts = {b: text.count(bytes([b])) for b in set(text)}            # order 1: no context, P_0 = 1/256 below it
    expected = np.mean([-np.log2((counts[b] + len(counts) / 256) / (len(text) + len(counts))) for b in b"abcabc"])
    assert abs(expected - np.log2(3)) < 0.01                            # three equally likely bytes: log2 3 bits
    assert abs(lm_eval.WittenBellNgram(1).fit(text).bits_per_byte(b"abcabc") - expected) < 1e-9
    periodic = b"abcd" * 500
    order_3, order_1 = lm_eval.WittenBellNgram(3).fit(periodic), lm_eval.WittenBellNgram(1).fit(periodic)
    assert order_3.bits_per_byte(b"abcdabcd") < order_1.bits_per_byte(b"abcdabcd")
    model = lm_eval.WittenBellNgram(3).fit(text)
    history = b"ab"
    total = 0.0                                                        # P(w | "ab") summed over all 256 bytes
    for w in range(256):
        total += 2.0 ** (-3 * model.bits_per_byte(history + bytes([w])) + 2 * model.bits_per_byte(history))
    assert abs(total - 1.0) < 1e-9


def test_keras_twin_has_equal_logits():
    import keras  # pinned in requirements.txt: a missing or broken install fails, never skips

    from utils import gpt_keras

    model = gpt.GPT(TINY).eval()
    keras_model = gpt_keras.KerasGPT(TINY)
    gpt_keras.copy_gpt_to_keras(model, keras_model)
    ids = torch.randint(0, 61, (2, 11))
    with torch.no_grad():
        expected = model(ids)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(keras_model(ids.numpy())), expected, atol=1e-5)


def test_to_hf_model_is_the_inverse_of_from_hf_model():
    ours = gpt.GPT(TINY).eval()
    with torch.no_grad():
        for p in ours.parameters():
            p.add_(torch.randn_like(p) * 0.1)  # every tensor non-trivial, so a transposed or swapped one shows
    assert gpt_interop.config_from_hf(gpt_interop.config_to_hf(TINY)) == TINY
    hf = gpt_interop.to_hf_model(ours)
    ids = torch.randint(0, 61, (2, 11))
    with torch.no_grad():
        np.testing.assert_allclose(hf(ids).logits, ours(ids), atol=1e-5)
    back = gpt_interop.from_hf_model(hf).state_dict()
    for name, tensor in ours.state_dict().items():
        assert torch.equal(back[name], tensor), name


def test_exercise_references_match_the_formulas_and_reject_plausible_wrong_answers():
    from utils.check import check_answer

    logits = torch.randn(4, 61) * 3
    probs = logits.softmax(-1)
    kept = decoding.exercise_reference("min_p_kept", logits)
    check_answer(probs >= 0.1 * probs.max(-1, keepdim=True).values, kept)
    with pytest.raises(AssertionError):  # the threshold applied to logits instead of probabilities
        check_answer(logits >= 0.1 * logits.max(-1, keepdim=True).values, kept)
    top = decoding.exercise_reference("top_k_probs", logits)
    check_answer(decoding.sampling_distribution(logits[:1], temperature=0.5, top_k=5)[0], top)
    with pytest.raises(AssertionError):  # the temperature forgotten
        check_answer(decoding.sampling_distribution(logits[:1], temperature=1.0, top_k=5)[0], top)
    with pytest.raises(ValueError, match="name must be one of"):
        decoding.exercise_reference("beam", logits)
    with pytest.raises(ValueError, match="logits must be"):
        decoding.exercise_reference("min_p_kept", logits[0])
