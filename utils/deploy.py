"""From a trained classifier to something others can use: a standard model folder (config, safetensors weights
under Hugging Face's names, tokenizer, model card), a ``predict`` that batches and pads, and the offline data and
short fine-tuning run the deployment chapter starts from (its data: :mod:`utils.sentiment`).

Shape legend
    N   number of texts
    B   batch size
    T   sequence length in tokens ([CLS] ... [SEP] and padding included)
    C   number of classes
"""
import json
import pathlib

import numpy as np
import torch
from torch import nn

from . import _validate as check
from .bert import BertForSequenceClassification
from .bert_interop import HF_BLOCK_NAMES, from_pretrained

_COURSE_TO_HF = {course: hf for hf, course in HF_BLOCK_NAMES.items()}
CARD_TEMPLATE = """# {name}

A BERT sentence classifier written by the course *Regression to BERT* (chapter 9).

- Labels: {labels}
- Base checkpoint: {base}
- Training data: {data}
- Intended use: teaching; not evaluated for any decision about people.
- Load it with `transformers.AutoModelForSequenceClassification.from_pretrained(folder)` or
  `utils.deploy.TextClassifier.from_folder(folder)`.
"""


def course_to_hf_name(name: str) -> str:
    """The inverse of ``utils.bert_interop.hf_to_course_name``: ``bert.encoder.layer.0.attention.query.weight`` ->
    ``bert.encoder.layer.0.attention.self.query.weight``; names outside an encoder block are unchanged."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a parameter name (str), got {type(name).__name__}")
    head, sep, rest = name.partition("encoder.layer.")
    if not sep:
        return name
    index, _, inner = rest.partition(".")
    for course, hf in _COURSE_TO_HF.items():
        if inner.startswith(course + "."):
            return f"{head}encoder.layer.{index}.{hf}{inner[len(course):]}"
    return name


def save_model_folder(model, tokenizer, folder, labels, base: str = "", data: str = "") -> pathlib.Path:
    """Write ``model`` (a ``utils.bert.BertForSequenceClassification``) as a standard model folder:
    ``config.json`` (with ``id2label``), ``model.safetensors`` under Hugging Face's parameter names, the
    tokenizer's own files, and a ``README.md`` model card. Returns the folder."""
    from safetensors.torch import save_file

    if not isinstance(model, BertForSequenceClassification):
        raise TypeError(f"model must be a utils.bert.BertForSequenceClassification, got {type(model).__name__}")
    if not hasattr(tokenizer, "save_pretrained"):
        raise TypeError(f"tokenizer must be a transformers tokenizer (it has save_pretrained), got "
                        f"{type(tokenizer).__name__}")
    labels = list(labels) if isinstance(labels, (list, tuple)) else labels
    if not isinstance(labels, list) or not all(isinstance(x, str) and x for x in labels):
        raise TypeError(f"labels must be a list of non-empty str (one per class), got {labels!r}")
    if len(labels) != model.classifier.out_features:
        raise ValueError(f"labels has {len(labels)} names but the model has {model.classifier.out_features} classes; "
                         "accepted: one name per class")
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = {**model.bert.config.to_dict(), "model_type": "bert", "architectures": ["BertForSequenceClassification"],
              "id2label": dict(enumerate(labels)), "label2id": {name: i for i, name in enumerate(labels)}}
    (folder / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    tensors = {course_to_hf_name(k): v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    tokenizer.save_pretrained(folder)
    (folder / "README.md").write_text(CARD_TEMPLATE.format(name=folder.name, labels=", ".join(labels),
                                                           base=base or "unknown", data=data or "unknown"),
                                      encoding="utf-8")
    return folder


def read_labels(folder) -> list[str]:
    """The class names of a model folder, from ``config.json``'s ``id2label``."""
    raw = json.loads((pathlib.Path(folder) / "config.json").read_text(encoding="utf-8"))
    if "id2label" not in raw:
        raise ValueError(f"{folder}/config.json has no id2label: it is not a classifier folder")
    return [raw["id2label"][str(i)] for i in range(len(raw["id2label"]))]


class TextClassifier:
    """A model, its tokenizer and its label names, as one object that answers ``predict(texts)``.

    ``forward`` maps ``(input_ids (B, T) int64, attention_mask (B, T) int64)`` numpy arrays to logits (B, C): the
    PyTorch model by default, or any runtime (ONNX Runtime, a quantised model) with the same inputs.
    """

    def __init__(self, model, tokenizer, labels, max_len: int = 64, forward=None):
        check.positive_int("max_len", max_len)
        if not callable(tokenizer) or not hasattr(tokenizer, "pad_token_id"):
            raise TypeError(f"tokenizer must be a transformers tokenizer, got {type(tokenizer).__name__}")
        if forward is None and not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module when no forward is given, got {type(model).__name__}")
        self.model, self.tokenizer, self.labels, self.max_len = model, tokenizer, list(labels), max_len
        self.forward = forward or self._torch_forward

    @classmethod
    def from_folder(cls, folder, max_len: int = 64) -> "TextClassifier":
        """Load a folder written by :func:`save_model_folder` (or any BERT classifier folder)."""
        import transformers

        folder = pathlib.Path(folder)
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(f"no config.json in {folder}: pass a folder written by save_model_folder")
        labels = read_labels(folder)
        model, _ = from_pretrained(folder, BertForSequenceClassification, num_labels=len(labels))
        return cls(model, transformers.AutoTokenizer.from_pretrained(folder), labels, max_len)

    @torch.inference_mode()
    def _torch_forward(self, input_ids, attention_mask):
        self.model.eval()  # dropout off: a served model must give the same answer twice
        device = next(self.model.parameters()).device
        return self.model(torch.from_numpy(input_ids).to(device), torch.from_numpy(attention_mask).to(device)
                          ).float().cpu().numpy()

    def encode(self, texts) -> dict:
        """Token ids and mask of a list of texts, padded to the longest (at most ``max_len``): numpy (N, T)."""
        texts = check_texts(texts)
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_len, return_tensors="np")
        return {"input_ids": batch["input_ids"].astype(np.int64),
                "attention_mask": batch["attention_mask"].astype(np.int64)}

    def logits(self, texts, batch_size: int = 64) -> np.ndarray:
        """(N, C) logits, ``batch_size`` texts at a time (each batch padded to its own longest text)."""
        check.positive_int("batch_size", batch_size)
        texts = check_texts(texts)
        parts = [self.forward(**self.encode(texts[i:i + batch_size])) for i in range(0, len(texts), batch_size)]
        return np.concatenate(parts)

    def predict(self, texts, batch_size: int = 64) -> list[dict]:
        """One ``{"label", "score", "probabilities"}`` per text: the most probable class, its probability, and
        every class's probability (softmax of the logits) by name."""
        z = self.logits(texts, batch_size)
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)                                                     # (N, C) softmax
        return [{"label": self.labels[int(row.argmax())], "score": float(row.max()),
                 "probabilities": {name: float(q) for name, q in zip(self.labels, row, strict=True)}} for row in p]


def check_texts(texts, max_texts: int | None = None, max_chars: int | None = None) -> list[str]:
    """``texts`` as a list of non-empty strings, or a ``TypeError``/``ValueError`` saying what is wrong (a
    single string is refused: it would be read as a list of characters)."""
    if isinstance(texts, str) or not isinstance(texts, (list, tuple)):
        raise TypeError(f"texts must be a list of strings, got {type(texts).__name__}: {texts!r:.60}")
    if not texts:
        raise ValueError("texts must hold at least one text, got an empty list")
    if max_texts is not None and len(texts) > max_texts:
        raise ValueError(f"texts holds {len(texts)} texts; accepted: at most {max_texts} per request")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] must be a string, got {type(text).__name__}: {text!r:.60}")
        if not text.strip():
            raise ValueError(f"texts[{i}] is empty; accepted: a text with at least one non-space character")
        if max_chars is not None and len(text) > max_chars:
            raise ValueError(f"texts[{i}] has {len(text)} characters; accepted: at most {max_chars}")
    return list(texts)


# ------------------------------------------------------------------------------------------- data and training
def token_tensors(tokenizer, texts, labels, max_len: int):
    """A ``TensorDataset`` of (input_ids (N, T), labels (N,)) padded to the longest text (at most ``max_len``)."""
    check.positive_int("max_len", max_len)
    ids = tokenizer(check_texts(texts), padding=True, truncation=True, max_length=max_len,
                    return_tensors="pt")["input_ids"]
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    if len(labels) != len(ids):
        raise ValueError(f"texts and labels must have the same length, got {len(ids)} and {len(labels)}")
    return torch.utils.data.TensorDataset(ids, labels)


def fine_tune_steps(model, dataset, steps: int, batch_size: int, lr: float, seed: int, device="cpu",
                    amp=False) -> dict:
    """Train the parameters of ``model`` that require grad for exactly ``steps`` batches of ``dataset`` (drawn
    in a seeded random order, reshuffled every pass) with AdamW, linear warm-up (10 %) and decay, and gradient
    clipping at 1, through ``utils.train.fit`` (``amp`` as there: mixed precision on a GPU). The same recipe
    for every variant, so only the variant differs.
    Returns ``fit``'s history plus the wall time in ``seconds``."""
    import time

    from .optim import linear_warmup_decay
    from .train import fit

    check.positive_int("steps", steps)
    check.positive_int("batch_size", batch_size)
    check.non_negative_int("seed", seed)
    check.number("lr", lr, 0.0, low_open=True)
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise ValueError("model has no parameter that requires grad: nothing to fine-tune")
    torch.manual_seed(seed)
    sampler = torch.utils.data.RandomSampler(dataset, num_samples=steps * batch_size,
                                             generator=torch.Generator().manual_seed(seed))
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=True)
    optimizer = torch.optim.AdamW(trainable, lr=lr, weight_decay=0.01)
    warmup = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: linear_warmup_decay(s, 1.0, warmup, steps))
    began = time.perf_counter()
    history = fit(model, loader, nn.CrossEntropyLoss(), optimizer, 1, device=device, scheduler=schedule,
                  clip_grad_norm=1.0, progress=False, amp=amp)
    return {**history, "seconds": time.perf_counter() - began}
