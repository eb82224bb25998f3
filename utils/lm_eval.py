"""Measuring language models on held-out text (chapter 7): bits per byte, the yardstick that ignores the
tokenizer, and a byte n-gram model with Witten–Bell interpolation, the counting baseline.

Bits per byte = total -log2 p(token | earlier tokens) over the text / its number of UTF-8 bytes, so a BPE GPT, a
byte-level LSTM and a byte n-gram compare on the same files (uniform guessing over 256 byte values: 8).

Shape legend: N tokens in the stream scored; Tmax the model's ``context_length``; B windows in one batch;
V vocabulary size.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F


@torch.no_grad()
def bits_per_byte(model, ids, token_bytes, stride: int | None = None, batch_size: int = 16, device="cpu") -> float:
    """Bits per byte of a token stream ``ids`` (N,) for a model with ``config.context_length`` (a
    :class:`utils.gpt.GPT`): total -log2 p(token | earlier tokens) over the UTF-8 bytes predicted.

    Windows of ``context_length + 1`` tokens start every ``stride`` tokens (default: ``context_length``, no
    overlap); each token after the first is scored exactly once, in the first window that predicts it, so with
    ``stride < context_length`` every scored token (but those of the first window) has at least
    ``context_length - stride`` tokens of context. ``token_bytes[i]``: bytes of token ``ids[i]``. Independent
    of the tokenizer, so models with different vocabularies (or none: bytes) compare on the same text.
    """
    T = model.config.context_length
    stride = T if stride is None else stride
    if not isinstance(stride, int) or not 1 <= stride <= T:
        raise ValueError(f"stride must be an int in 1..context_length={T}, got {stride!r}")
    model.eval()
    ids = torch.as_tensor(np.asarray(ids), dtype=torch.long)
    nbytes = torch.as_tensor(np.asarray(token_bytes), dtype=torch.float64)
    if len(ids) < 2 or len(nbytes) != len(ids):
        raise ValueError(f"need at least 2 ids and one byte count per id, got {len(ids)} ids, {len(nbytes)} counts")
    starts = [0]
    while starts[-1] + T < len(ids) - 1:
        starts.append(starts[-1] + stride)
    nats = 0.0
    for i in range(0, len(starts), batch_size):
        chunk = starts[i:i + batch_size]
        batch = torch.zeros(len(chunk), T + 1, dtype=torch.long)                       # (B, Tmax + 1)
        scored = torch.zeros(len(chunk), T, dtype=torch.bool)                          # which targets count
        for j, s in enumerate(chunk):
            row = ids[s:s + T + 1]
            batch[j, :len(row)] = row
            scored[j, (0 if s == 0 else T - stride):len(row) - 1] = True
        logits = model(batch[:, :-1].to(device)).float().cpu()                          # (B, Tmax, V)
        loss = F.cross_entropy(logits.flatten(0, 1), batch[:, 1:].flatten(), reduction="none")
        nats += float((loss * scored.flatten()).sum())
    return nats / math.log(2) / float(nbytes[1:].sum())


class WittenBellNgram:
    """A byte n-gram language model with Witten-Bell interpolation (no parameter to tune):

    P_n(w | h) = (c(h, w) + u(h) P_{n-1}(w | h')) / (c(h) + u(h)),   u(h) = number of distinct bytes seen after h,

    h' being h without its oldest byte; P_0 = 1/256. A context never seen falls back to the shorter one.
    """

    def __init__(self, order: int):
        if not isinstance(order, int) or not 1 <= order <= 7:
            raise ValueError(f"order must be an int in 1..7 (context of order - 1 bytes), got {order!r}")
        self.order = order
        self.tables = []

    @staticmethod
    def _contexts(data: np.ndarray, k: int) -> np.ndarray:
        """Context id of the k bytes before each position (positions >= k): (N - k,) int64."""
        ctx = np.zeros(len(data) - k, dtype=np.int64)
        for j in range(k):
            ctx = ctx * 256 + data[j:len(data) - k + j]
        return ctx

    def fit(self, data: bytes) -> "WittenBellNgram":
        data = np.frombuffer(data, dtype=np.uint8).astype(np.int64)
        self.tables = []
        for k in range(self.order):                                                    # context length k
            ctx = self._contexts(data, k)
            keys, pair_counts = np.unique(ctx * 256 + data[k:], return_counts=True)    # c(h, w)
            ctx_ids, distinct = np.unique(keys // 256, return_counts=True)            # u(h)
            totals = np.bincount(np.searchsorted(ctx_ids, keys // 256), weights=pair_counts)  # c(h)
            self.tables.append((keys, pair_counts, ctx_ids, distinct, totals))
        return self

    def bits_per_byte(self, data: bytes) -> float:
        """Mean -log2 P(byte | up to order - 1 bytes before it, within ``data``)."""
        if not self.tables:
            raise ValueError("call fit() first")
        x = np.frombuffer(data, dtype=np.uint8).astype(np.int64)
        prob = np.full(len(x), 1 / 256)
        for k, (keys, pair_counts, ctx_ids, distinct, totals) in enumerate(self.tables):
            ctx = np.full(len(x), -1, dtype=np.int64)
            ctx[k:] = self._contexts(x, k)
            at = np.clip(np.searchsorted(ctx_ids, ctx), 0, len(ctx_ids) - 1)
            seen = ctx_ids[at] == ctx
            key = ctx * 256 + x
            kat = np.clip(np.searchsorted(keys, key), 0, len(keys) - 1)
            c_hw = np.where(keys[kat] == key, pair_counts[kat], 0)
            u, c_h = distinct[at], totals[at]
            prob = np.where(seen, (c_hw + u * prob) / np.where(seen, c_h + u, 1), prob)
        return float(-np.log2(prob).mean())
