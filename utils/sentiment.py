"""The sentiment task that chapters 6 (fine-tuning BERT) and 9 (deploying it) share, and its full-profile checkpoint.

Quick profile: single words of the VADER lexicon (shipped inside the ``vaderSentiment`` wheel, so offline), labelled
by the sign of their mean human rating and split by word. Full profile: GLUE's SST-2 sentences and the
``bert-base-uncased`` weights at a pinned revision, each downloaded once through :func:`utils.data.download`
(sha256-checked, atomic, cached).
"""
import pathlib

import numpy as np

from . import _validate as check

SST2_URLS = ["https://dl.fbaipublicfiles.com/glue/data/SST-2.zip",
             "https://firebasestorage.googleapis.com/v0/b/mtl-sentence-representations.appspot.com"
             "/o/data%2FSST-2.zip?alt=media&token=aabc5f6b-e466-44a2-b9b4-cf6337f84ac8"]
SST2_SHA256 = "d67e16fb55739c1b32cdce9877596db1c127dc322d93c082281f64057c16deaa"
BERT_BASE_REVISION = "86b5e0934494bd15c9632b12f734a8a67f723594"
BERT_BASE_FILES = {  # file -> sha256 (Hugging Face's LFS/content hashes of that revision)
    "config.json": "7160e1553ad2ca51d8c1cb066be533db31826e12d173824c1bb0cb1a4f187d20",
    "model.safetensors": "68d45e234eb4a928074dfd868cead0219ab85354cc53d20e772753c6bb9169d3",
    "tokenizer.json": "ce64fce797c24f68df90b40a3f74f579b336a493db14bd583fd520ea0d8c9a98",
    "tokenizer_config.json": "a025160ef0431f1a392f6f050c1310f4c5d9fb6f275932dbccba73c4d214bf10",
    "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
}


def vader_words(min_abs_mean: float = 0.5, test_share: float = 0.2, seed: int = 0, verbose: bool = False):
    """The VADER lexicon as a word-sentiment task split by word (no test word is seen in training):
    ``(train_words, train_labels, test_words, test_labels)``, labels (N,) with 1 = positive mean rating. Words
    whose mean rating is within ``min_abs_mean`` of neutral are left out."""
    import vaderSentiment

    check.number("min_abs_mean", min_abs_mean, 0.0, 4.0)
    check.number("test_share", test_share, 0.0, 1.0, low_open=True)
    path = pathlib.Path(vaderSentiment.__file__).parent / "vader_lexicon.txt"
    rows = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    ratings = {r[0]: float(r[1]) for r in rows}                          # word -> mean rating (a few repeat)
    items = sorted((w, m) for w, m in ratings.items() if abs(m) >= min_abs_mean)
    if verbose:
        print(f"VADER lexicon: {len(ratings):,} entries, {len(items):,} with |mean rating| >= {min_abs_mean}")
    order = np.random.default_rng(seed).permutation(len(items))
    cut = int(round(len(items) * (1 - test_share)))
    words, labels = [w for w, _ in items], np.array([int(m > 0) for _, m in items])
    return [words[i] for i in order[:cut]], labels[order[:cut]], [words[i] for i in order[cut:]], labels[order[cut:]]


def sst2_sentences(verbose: bool = False):
    """GLUE SST-2 (downloaded once, checked by sha256): ``(train_texts, train_labels, dev_texts, dev_labels)``.
    GLUE hides the test labels, so dev is the test set."""
    from .data import download, extract

    folder = extract(download("GLUE SST-2", SST2_URLS, sha256=SST2_SHA256, filename="SST-2.zip"))

    def read(name):
        lines = next(folder.rglob(name)).read_text(encoding="utf-8").splitlines()[1:]  # header: sentence \t label
        return [ln.rsplit("\t", 1)[0] for ln in lines], np.array([int(ln.rsplit("\t", 1)[1]) for ln in lines])

    train, dev = read("train.tsv"), read("dev.tsv")
    if verbose:
        print(f"SST-2: {len(train[0]):,} training sentences, {len(dev[0]):,} dev sentences (the test set here)")
    return (*train, *dev)


def bert_base_uncased() -> pathlib.Path:
    """The folder of ``bert-base-uncased`` at a pinned revision, each file downloaded once and checked by sha256."""
    from .data import cache_dir, download

    folder = cache_dir() / "bert-base-uncased"
    for name, sha256 in BERT_BASE_FILES.items():
        url = f"https://huggingface.co/google-bert/bert-base-uncased/resolve/{BERT_BASE_REVISION}/{name}"
        download(f"bert-base-uncased {name}", [url], sha256=sha256, filename=name, cache_dir=folder)
    return folder
