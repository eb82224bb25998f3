"""The full profile's code paths, run on a CPU without network: ``COURSE_PROFILE=full`` with small overrides.

Chapters 3, 4, 6, 7 and 9 download in the full profile (Fashion-MNIST, Tiny Shakespeare, SST-2,
bert-base-uncased and GPT-2 124M); here each download is served by an offline stand-in in the real file format
(``tests/standins.py``), passed through the real cache, checksum and atomic-rename code. ``amp`` is forced to
bfloat16, so the mixed-precision paths (``torch.autocast`` in ``utils.train.fit`` and in chapter 6's own loop,
Keras' ``mixed_bfloat16`` policy, ``Trainer(bf16=True)``) run too; float16 with its gradient scaler is covered
by ``tests/test_train.py``. Model sizes are cut to the quick profile's, so every assertion of the notebook still
has to hold. Chapter 5 downloads nothing; it runs for its two sequence-to-sequence models trained under autocast.
Chapter 1's full profile differs from its quick one in training lengths alone, so it is not run here.
"""
import json
import os
import pathlib

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parent.parent
QUICK_SIZES = {
    "03_cnn": dict(channels=[6, 16], hidden=[120, 84], val_size=0.15, epochs=20, softmax_epochs=30,
                   target_accuracy=0.9, seeds=[0]),
    "04_rnn": dict(keras_seeds=[2], lm_embed=32, lm_hidden=256, lm_layers=1, lm_seq=100, lm_batch=32, lm_epochs=2),
    "05_attention": dict(n_train=20_000, n_test=2_000, batch_size=128, rnn_epochs=1, rnn_lr=1e-2, rnn_hidden=64,
                         d_model=64, layers=2, transformer_epochs=2, transformer_lr=6e-3, pitfall_steps=120,
                         timing_lengths=[64, 128, 256, 512, 1024]),
    "06_bert": dict(wordpiece_vocab=3000, mlm_hidden=128, mlm_layers=2, mlm_seq_len=64, mlm_batch=32, mlm_steps=500,
                    ft_max_len=16, ft_epochs=1, ft_lr=1e-4, random_lrs=[3e-4, 1e-3], ft_seeds=[0, 1],
                    ft_train_words=2000, val_share=0.15, freeze_word_embeddings=True, target_accuracy=0.8,
                    min_margin=0.1),
    "07_gpt": dict(train_chars=1_500_000, valid_chars=140_000, test_chars=200_000, bpe_train_chars=400_000,
                   bpe_vocab=512, d_model=128, layers=1, heads=4, context=32, batch=32, steps=1000, lr=5e-3,
                   lstm_hidden=384, lstm_seq=16, lstm_batch=32, lstm_steps=1000, lstm_lr=3e-2, lstm_seeds=[0],
                   ngram_orders=[2, 3, 4, 5, 6, 7], pretrained_heads=2),
    "09_deployment": dict(train_texts=1200, test_texts=400, max_len=8, batch=16, steps=40, full_lr=2e-4,
                          lora_lr=5e-3, latency_batch=16, latency_repeats=3, load_requests=24, concurrency=6),
}
EXPECTED_DOWNLOADS = {
    "03_cnn": {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
               "t10k-labels-idx1-ubyte.gz"},
    "04_rnn": {"tinyshakespeare.txt"},
    "05_attention": set(),
    "06_bert": {"SST-2.zip", "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                "vocab.txt"},
    "07_gpt": {"gpt2-model.safetensors", "gpt2-encoder.json", "gpt2-vocab.bpe"},
    "09_deployment": {"SST-2.zip", "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                      "vocab.txt"},
}


@pytest.mark.parametrize("chapter", sorted(QUICK_SIZES))
def test_full_profile_runs_offline_with_stand_ins(chapter, tmp_path, monkeypatch):
    cache, log = tmp_path / "cache", tmp_path / "downloads.jsonl"
    monkeypatch.setenv("COURSE_PROFILE", "full")
    gpu = os.environ.get("COURSE_GPU_CHECK") == "1"  # ./course gpu-check: the same runs on CUDA in float16
    amp = "float16" if gpu else "bfloat16"
    monkeypatch.setenv("COURSE_OVERRIDES", json.dumps({**QUICK_SIZES[chapter], "amp": amp}))
    monkeypatch.setenv("COURSE_CACHE", str(cache))
    monkeypatch.setenv("COURSE_DEVICE", "cuda" if gpu else "cpu")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = ROOT / "chapters" / f"{chapter}.ipynb"
    nb = nbformat.read(path, as_version=4)
    setup = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "utils.setup(" in c.source)
    nb.cells.insert(setup + 1, nbformat.v4.new_code_cell(
        "import importlib.util\n"
        f"spec = importlib.util.spec_from_file_location('standins', {str(ROOT / 'tests' / 'standins.py')!r})\n"
        "standins = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(standins)\n"
        f"standins.install({str(log)!r})\n"
        "assert ENV.profile == 'full'"))
    NotebookClient(nb, timeout=900, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    errors = [(c.source[:300], o["ename"], o["evalue"], o["traceback"][-1][-500:]) for c in nb.cells
              if c.cell_type == "code" for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert not errors, f"{chapter} in the full profile: {errors[:1]}"
    requests = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    assert {r["filename"] for r in requests} == EXPECTED_DOWNLOADS[chapter]
    assert {p.name for p in cache.rglob("*") if p.is_file() and not p.name.startswith(".")} >= \
        EXPECTED_DOWNLOADS[chapter], "every download lands in the cache under its own name"
    assert not [p for p in cache.rglob(".*.tmp")], "no temporary download file is left behind"
