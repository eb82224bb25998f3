import os

import numpy as np
import pytest
import torch

from utils import decoding as D
from utils import gpt as G

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TINY = G.GPTConfig(vocab_size=61, context_length=24, d_model=32, num_heads=4, num_layers=2)


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
    return hf, G.from_hf_model(hf)


def test_shapes_parameter_formula_and_tied_output():
    model = G.GPT(TINY)
    logits = model(torch.randint(0, 61, (3, 9)))
    assert logits.shape == (3, 9, 61)
    assert sum(p.numel() for p in model.parameters()) == TINY.num_parameters()
    with torch.no_grad():
        model.token_embedding.weight[5] += 1.0                       # the output layer moves with the input table
    assert not torch.allclose(model(torch.zeros(1, 1, dtype=torch.long))[0, 0, 5], logits.new_tensor(0.0))


@pytest.mark.parametrize("activation", ["gelu_new", "gelu"])
def test_equals_transformers_gpt2_and_the_fused_path(activation):
    hf, ours = hf_pair(activation)
    ids = torch.randint(0, 61, (2, 13))
    with torch.no_grad():
        expected = hf(ids).logits
        np.testing.assert_allclose(ours(ids), expected, atol=1e-5)
        np.testing.assert_allclose(ours.set_fused(True)(ids), expected, atol=1e-5)


def test_causal_a_later_token_never_changes_earlier_logits():
    model = G.GPT(TINY).eval()
    ids = torch.randint(0, 61, (1, 10))
    changed = ids.clone()
    changed[0, 7] = (ids[0, 7] + 1) % 61
    with torch.no_grad():
        a, b = model(ids), model(changed)
    np.testing.assert_allclose(a[0, :7], b[0, :7], atol=1e-6)
    assert (a[0, 7:] - b[0, 7:]).abs().max() > 1e-4


def test_kv_cache_equals_recomputation_and_its_size_the_formula():
    model = G.GPT(TINY).eval()
    ids = torch.randint(0, 61, (2, 15))
    cache = D.KVCache()
    with torch.no_grad():
        full = model(ids)
        parts = [model(ids[:, :6], cache=cache)] + [model(ids[:, t:t + 1], cache=cache) for t in range(6, 15)]
    np.testing.assert_allclose(torch.cat(parts, 1), full, atol=1e-5)
    assert cache.length == 15 and cache.nbytes() == D.kv_cache_bytes(TINY, 15, batch_size=2)
    with pytest.raises(ValueError, match="context_length"):
        model(torch.zeros(2, 10, dtype=torch.long), cache=cache)


def test_generate_greedy_equals_transformers_also_with_left_padding():
    hf, ours = hf_pair()
    prompt = torch.randint(1, 61, (2, 5))
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    prompt[0, :2] = 0
    expected = hf.generate(prompt, attention_mask=mask, max_new_tokens=8, do_sample=False, pad_token_id=0)
    for use_cache in (True, False):
        assert torch.equal(D.generate(ours, prompt, 8, attention_mask=mask, use_cache=use_cache), expected)


def test_generate_past_the_context_slides_a_window_of_the_last_context_length_tokens():
    model = G.GPT(G.GPTConfig(vocab_size=61, context_length=8, d_model=32, num_heads=4, num_layers=2)).eval()
    prompt = torch.randint(0, 61, (2, 5))
    expected = prompt
    with torch.no_grad():
        for _ in range(12):  # by hand: the model reads at most its last 8 tokens, at positions 0..7
            expected = torch.cat([expected, model(expected[:, -8:])[:, -1].argmax(-1, keepdim=True)], dim=1)
    for use_cache in (True, False):
        assert torch.equal(D.generate(model, prompt, 12, use_cache=use_cache), expected)
    long_prompt = torch.randint(0, 61, (1, 11))  # a prompt longer than the context is read by its last 8 tokens
    assert torch.equal(D.generate(model, long_prompt, 3)[:, 11:], D.generate(model, long_prompt[:, 3:], 3)[:, 8:])


def test_filters_equal_transformers_processors():
    from transformers import (
        RepetitionPenaltyLogitsProcessor,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    logits, ids = torch.randn(5, 61) * 3, torch.randint(0, 61, (5, 9))
    assert torch.equal(D.top_k_filter(logits, 4), TopKLogitsWarper(4)(ids, logits.clone()))
    assert torch.equal(D.top_p_filter(logits, 0.7), TopPLogitsWarper(0.7)(ids, logits.clone()))
    assert torch.equal(D.apply_temperature(logits, 0.6), TemperatureLogitsWarper(0.6)(ids, logits.clone()))
    assert torch.equal(D.apply_repetition_penalty(logits, ids, 1.4),
                       RepetitionPenaltyLogitsProcessor(1.4)(ids, logits.clone()))
    assert torch.isfinite(D.top_p_filter(logits, 1e-9)).sum(-1).eq(1).all()  # the best token always survives
    chained = TopPLogitsWarper(0.8)(ids, TopKLogitsWarper(7)(ids, TemperatureLogitsWarper(0.5)(ids, logits.clone())))
    probs = D.sampling_distribution(logits, temperature=0.5, top_k=7, top_p=0.8)
    assert torch.allclose(probs, chained.softmax(-1)) and probs.gt(0).sum(-1).le(7).all()


def test_bad_input_raises_clear_errors():
    with pytest.raises(ValueError, match="divisible"):
        G.GPTConfig(d_model=30, num_heads=4)
    with pytest.raises(ValueError, match="activation"):
        G.GPTConfig(activation="swish")
    with pytest.raises(ValueError, match="temperature"):
        D.apply_temperature(torch.zeros(1, 3), 0.0)
    with pytest.raises(ValueError, match="top_k"):
        D.top_k_filter(torch.zeros(1, 3), 0)
    with pytest.raises(ValueError, match="top_p"):
        D.top_p_filter(torch.zeros(1, 3), 1.5)
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        G.GPT(TINY)(torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="attention_mask"):
        G.GPT(TINY)(torch.zeros(1, 4, dtype=torch.long), attention_mask=torch.ones(1, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="order"):
        G.WittenBellNgram(0)


def test_gpt2_state_dict_round_trip_and_shape_check():
    hf, ours = hf_pair()
    sd = {k.removeprefix("transformer."): v for k, v in hf.state_dict().items() if k != "lm_head.weight"}
    config = G.config_from_gpt2_state_dict(sd, num_heads=4)
    assert config == ours.config
    wrong = G.GPT(G.GPTConfig(vocab_size=61, context_length=24, d_model=32, num_heads=4, num_layers=1))
    with pytest.raises(ValueError, match="more blocks"):
        G.load_gpt2_weights(wrong, sd)


def test_next_token_loss_shifts_and_bits_per_byte_of_a_uniform_model():
    logits = torch.zeros(2, 6, 61)
    ids = torch.randint(0, 61, (2, 6))
    assert abs(G.next_token_loss(logits, ids).item() - np.log(61)) < 1e-6
    model = G.GPT(TINY)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    rng = np.random.default_rng(0)
    ids, sizes = rng.integers(0, 61, 100), rng.integers(1, 4, 100)
    for stride in (None, 10, 1):                                      # every token after the first scored once
        bpb = G.bits_per_byte(model, ids, sizes, stride=stride, batch_size=3)
        assert abs(bpb - np.log2(61) * 99 / sizes[1:].sum()) < 1e-5   # a token counted twice: off by > 1e-2
    with pytest.raises(ValueError, match="stride"):
        G.bits_per_byte(model, ids, sizes, stride=25)


def test_witten_bell_ngram_is_a_distribution_and_learns():
    rng = np.random.default_rng(0)
    text = bytes(rng.choice(list(b"abc"), 3000))
    uniform = G.WittenBellNgram(1).fit(text)
    assert uniform.bits_per_byte(b"abcabc") < 8
    periodic = b"abcd" * 500
    assert G.WittenBellNgram(3).fit(periodic).bits_per_byte(b"abcdabcd") < G.WittenBellNgram(1).fit(periodic) \
        .bits_per_byte(b"abcdabcd")
    model = G.WittenBellNgram(3).fit(text)
    history = b"ab"
    total = 0.0                                                        # P(w | "ab") summed over all 256 bytes
    for w in range(256):
        total += 2.0 ** (-3 * model.bits_per_byte(history + bytes([w])) + 2 * model.bits_per_byte(history))
    assert abs(total - 1.0) < 1e-9


def test_keras_twin_has_equal_logits():
    keras = pytest.importorskip("keras")
    model = G.GPT(TINY).eval()
    keras_model = G.KerasGPT(TINY)
    G.copy_gpt_to_keras(model, keras_model)
    ids = torch.randint(0, 61, (2, 11))
    with torch.no_grad():
        expected = model(ids)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(keras_model(ids.numpy())), expected, atol=1e-5)


def test_to_hf_model_is_the_inverse_of_from_hf_model():
    ours = G.GPT(TINY).eval()
    with torch.no_grad():
        for p in ours.parameters():
            p.add_(torch.randn_like(p) * 0.1)  # every tensor non-trivial, so a transposed or swapped one shows
    assert G.GPTConfig.from_hf(TINY.to_hf()) == TINY
    hf = G.to_hf_model(ours)
    ids = torch.randint(0, 61, (2, 11))
    with torch.no_grad():
        np.testing.assert_allclose(hf(ids).logits, ours(ids), atol=1e-5)
    back = G.from_hf_model(hf).state_dict()
    for name, tensor in ours.state_dict().items():
        assert torch.equal(back[name], tensor), name


def test_exercise_references_match_the_formulas_and_reject_plausible_wrong_answers():
    from utils.check import check_answer

    logits = torch.randn(4, 61) * 3
    probs = logits.softmax(-1)
    kept = D.exercise_reference("min_p_kept", logits)
    check_answer(probs >= 0.1 * probs.max(-1, keepdim=True).values, kept)
    with pytest.raises(AssertionError):  # the threshold applied to logits instead of probabilities
        check_answer(logits >= 0.1 * logits.max(-1, keepdim=True).values, kept)
    top = D.exercise_reference("top_k_probs", logits)
    check_answer(D.sampling_distribution(logits[:1], temperature=0.5, top_k=5)[0], top)
    with pytest.raises(AssertionError):  # the temperature forgotten
        check_answer(D.sampling_distribution(logits[:1], temperature=1.0, top_k=5)[0], top)
    with pytest.raises(ValueError, match="name must be one of"):
        D.exercise_reference("beam", logits)
    with pytest.raises(ValueError, match="logits must be"):
        D.exercise_reference("min_p_kept", logits[0])
