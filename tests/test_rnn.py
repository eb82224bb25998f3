"""Unit tests of utils.rnn: cells equal PyTorch's and Keras' layers, shapes, the tasks' helpers, clear errors."""
import numpy as np
import pytest
import torch
from torch import nn

from utils import rnn
from utils.answers import ch04_rnn
from utils.check import assert_close

B, T, D, H = 2, 5, 3, 4


@pytest.fixture
def x():
    return torch.randn(B, T, D, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("cell", rnn.CELLS)
def test_scratch_layer_equals_torch_layer(cell, x):
    torch.manual_seed(0)
    fused = rnn.make_recurrent(cell, D, H)
    scratch = rnn.make_recurrent(cell, D, H, impl="scratch")
    scratch.load_state_dict(fused.state_dict())  # same parameter names and shapes
    torch.manual_seed(1)
    h0 = torch.randn(1, B, H)
    state = (h0, torch.randn(1, B, H)) if cell == "lstm" else h0
    (out_f, state_f), (out_s, state_s) = fused(x, state), scratch(x, state)
    assert out_s.shape == (B, T, H)
    assert_close(out_s, out_f, atol=1e-6, name=f"{cell} outputs")
    for a, b in zip(state_s if cell == "lstm" else [state_s], state_f if cell == "lstm" else [state_f], strict=True):
        assert a.shape == (1, B, H)
        assert_close(a, b, atol=1e-6, name=f"{cell} final state")


@pytest.mark.parametrize("cell", rnn.CELLS)
def test_scratch_layer_gradients_match(cell, x):
    torch.manual_seed(0)
    fused, scratch = rnn.make_recurrent(cell, D, H), rnn.ScratchRNN(cell, D, H)
    scratch.load_state_dict(fused.state_dict())
    for layer in (fused, scratch):
        layer(x)[0].square().sum().backward()
    for (name, p), q in zip(fused.named_parameters(), scratch.parameters(), strict=True):
        assert_close(q.grad, p.grad, atol=1e-5, name=f"grad {name}")


@pytest.mark.parametrize("cell", rnn.CELLS)
def test_keras_layer_with_converted_weights_matches(cell, x):
    torch.manual_seed(0)
    layer = rnn.make_recurrent(cell, D, H)
    keras_layer = rnn.keras_recurrent(cell, H, return_sequences=True)
    keras_layer.build((None, T, D))
    keras_layer.set_weights(rnn.torch_to_keras_weights(cell, layer))
    assert_close(keras_layer(x.numpy()), layer(x)[0], atol=1e-5, name=f"keras {cell}")


def test_forecaster_shapes_and_keras_twin(x):
    torch.manual_seed(0)
    model = rnn.Forecaster(hidden_size=H)
    window = torch.randn(B, 7)
    assert model(window).shape == (B,)
    keras_model = rnn.keras_forecaster(7, H)
    rnn.copy_forecaster_to_keras(model, keras_model)
    with torch.no_grad():
        assert_close(keras_model(window.numpy()[..., None])[:, 0], model(window), atol=1e-5, name="forecast")


def test_char_lm_two_layers_keras_twin_and_stateful_call():
    torch.manual_seed(0)
    lm = rnn.CharLM(vocab_size=11, embed_dim=5, hidden_size=H, num_layers=2).eval()
    ids = torch.randint(0, 11, (B, 6))
    logits, state = lm.forward_with_state(ids)
    assert logits.shape == (B, 6, 11) and state[0].shape == (2, B, H)
    # continuing from the state equals reading the whole sequence at once
    more = torch.randint(0, 11, (B, 4))
    with torch.no_grad():
        assert_close(lm.forward_with_state(more, state)[0], lm(torch.cat([ids, more], 1))[:, 6:], atol=1e-6,
                     name="state carried")
    keras_lm = rnn.keras_char_lm(11, 5, H, num_layers=2)
    rnn.copy_char_lm_to_keras(lm, keras_lm)
    with torch.no_grad():
        assert_close(keras_lm(ids.numpy()), lm(ids), atol=1e-5, name="keras LM logits")


def test_make_windows():
    X, y = rnn.make_windows(np.arange(10.0), 3)
    assert X.shape == (7, 3) and y.shape == (7,)
    assert X[2].tolist() == [2, 3, 4] and y[2] == 5


def test_vocab_round_trip_and_unknown_characters():
    vocab = rnn.CharVocab("hello")
    assert len(vocab) == 5  # unk + e, h, l, o
    assert vocab.decode(vocab.encode("hole")) == "hole"
    assert vocab.encode("hz").tolist() == [vocab.index["h"], 0]


def test_next_char_pairs_are_shifted_by_one():
    X, Y = rnn.next_char_pairs(np.arange(11), 3)
    assert X.tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8]] and Y.tolist() == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]


def test_perplexity_of_a_uniform_model_is_the_vocabulary_size():
    lm = rnn.CharLM(vocab_size=7, embed_dim=2, hidden_size=3)
    with torch.no_grad():
        lm.head.weight.zero_()
        lm.head.bias.zero_()  # equal logits -> uniform distribution
    assert rnn.perplexity(lm, np.arange(50) % 7, seq_len=4, streams=3) == pytest.approx(7.0, rel=1e-6)


def test_sample_continues_the_prompt_reproducibly():
    torch.manual_seed(0)
    vocab = rnn.CharVocab("abc ")
    lm = rnn.CharLM(len(vocab), 3, 4)
    a = rnn.sample(lm, vocab, "ab", 10, temperature=0.7, generator=torch.Generator().manual_seed(1))
    b = rnn.sample(lm, vocab, "ab", 10, temperature=0.7, generator=torch.Generator().manual_seed(1))
    assert a == b and a.startswith("ab") and len(a) == 12


def test_detach_state_keeps_values_and_cuts_the_graph():
    h = torch.ones(1, 2, 3, requires_grad=True) * 2
    for state in (h, (h, h)):
        out = rnn.detach_state(state)
        parts = out if isinstance(out, tuple) else (out,)
        assert all(not p.requires_grad and torch.equal(p, h.detach()) for p in parts)


def test_input_gradient_norms_vanish_for_a_plain_rnn():
    torch.manual_seed(0)
    norms = rnn.input_gradient_norms(nn.RNN(3, 16, batch_first=True), torch.randn(4, 40, 3))
    assert norms.shape == (40,) and norms[0] < 1e-3 * norms[-1]


def test_clear_errors():
    with pytest.raises(ValueError, match="unknown cell 'lstmm'"):
        rnn.make_recurrent("lstmm", D, H)
    with pytest.raises(ValueError, match="unknown impl"):
        rnn.make_recurrent("gru", D, H, impl="cuda")
    layer = rnn.ScratchRNN("lstm", D, H)
    with pytest.raises(ValueError, match=r"\(B, T, D=3\)"):
        layer(torch.zeros(B, D))
    with pytest.raises(ValueError, match=r"tuple \(h, c\)"):
        layer(torch.zeros(B, T, D), torch.zeros(1, B, H))
    with pytest.raises(ValueError, match=r"\(1, 2, 4\), got \(2, 4\)"):
        layer(torch.zeros(B, T, D), (torch.zeros(B, H), torch.zeros(B, H)))
    with pytest.raises(ValueError, match="a GRU state is one tensor"):
        rnn.ScratchRNN("gru", D, H)(torch.zeros(B, T, D), (torch.zeros(1, B, H), torch.zeros(1, B, H)))
    with pytest.raises(ValueError, match="longer than the window"):
        rnn.make_windows(np.arange(5.0), 5)
    with pytest.raises(ValueError, match="temperature"):
        rnn.sample(rnn.CharLM(3, 2, 2), rnn.CharVocab("ab"), "a", 3, temperature=0)


def test_exercise_references_match_the_formulas_and_reject_plausible_wrong_answers():
    from utils.check import check_answer

    counts = ch04_rnn.exercise_reference("lstm_counts")
    check_answer([4 * 20 * 30 + 8 * 20, 4 * 20 * 30 + 4 * 20], counts)
    with pytest.raises(AssertionError):  # one bias vector in PyTorch too
        check_answer([4 * 20 * 30 + 4 * 20, 4 * 20 * 30 + 4 * 20], counts)

    rng = np.random.default_rng(0)
    B, T, D, H = 2, 3, 4, 5
    x = rng.normal(size=(B, T, D)).astype(np.float32)
    kernel, recurrent = rng.normal(scale=0.5, size=(D, 3 * H)), rng.normal(scale=0.5, size=(H, 3 * H))
    bias = rng.normal(scale=0.1, size=3 * H)

    def gru_numpy(reset_before):  # Keras gate blocks z | r | h
        h = np.zeros((B, H))
        for t in range(T):
            x_part = x[:, t] @ kernel + bias
            z = 1 / (1 + np.exp(-(x_part[:, :H] + h @ recurrent[:, :H])))
            r = 1 / (1 + np.exp(-(x_part[:, H:2 * H] + h @ recurrent[:, H:2 * H])))
            recur = (r * h) @ recurrent[:, 2 * H:] if reset_before else r * (h @ recurrent[:, 2 * H:])
            h = z * h + (1 - z) * np.tanh(x_part[:, 2 * H:] + recur)
        return h

    state = ch04_rnn.exercise_reference("gru_reset_before", x=x, weights=[kernel, recurrent, bias])
    check_answer(gru_numpy(True), state, atol=1e-5, rtol=1e-5)
    with pytest.raises(AssertionError):  # the reset gate applied after the recurrent product (PyTorch's GRU)
        check_answer(gru_numpy(False), state, atol=1e-5, rtol=1e-5)

    torch_gru = nn.GRU(D, H, batch_first=True)
    keras_weights = rnn.torch_to_keras_weights("gru", torch_gru)
    outputs = ch04_rnn.exercise_reference("keras_gru_outputs", x=torch.from_numpy(x), weights=keras_weights)
    check_answer(torch_gru(torch.from_numpy(x))[0], outputs, atol=1e-5, rtol=1e-5)
    swapped = nn.GRU(D, H, batch_first=True)  # gates copied without the r | z <-> z | r reordering
    with torch.no_grad():
        for p_swapped, p in zip(swapped.parameters(), torch_gru.parameters(), strict=True):
            p_swapped.copy_(torch.cat([p[H:2 * H], p[:H], p[2 * H:]]))
    with pytest.raises(AssertionError):
        check_answer(swapped(torch.from_numpy(x))[0], outputs, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="name must be one of"):
        ch04_rnn.exercise_reference("lstm_state")
    with pytest.raises(TypeError, match="needs x"):
        ch04_rnn.exercise_reference("gru_reset_before", x=x)
