"""Sequence to sequence: read one sequence, write another (chapter 5's task).

The task (dates written in ten formats -> ISO dates), its character vocabulary, the two translators the
chapter compares (``RNNSeq2Seq``: a GRU with additive attention; ``Seq2SeqTransformer``: encoder-decoder
blocks from ``utils.attention``) and greedy decoding. Scores live in ``utils.metrics`` (exact match, BLEU).

Shape legend
    B   batch size
    S   source length;  T   target length
    E   embedding width;  D   model width;  V   vocabulary size
"""
import math

import torch
from torch import nn

from . import _validate as check
from .attention import (
    MultiHeadAttention,
    TransformerDecoderBlock,
    TransformerEncoderBlock,
    sinusoidal_positional_encoding,
)

# ------------------------------------------------------------------------- a task: dates -> ISO dates
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


# each takes a datetime.date; the all-numeric formats are day-month-year or year-month-day (never the US
# month-day-year), so every string has one meaning (chapter 5 checks it over the whole calendar)
DATE_FORMATS = (
    lambda d: f"{d.day} {MONTHS[d.month - 1]} {d.year}",                       # 25 November 2026
    lambda d: f"{MONTHS[d.month - 1]} {d.day}, {d.year}",                      # November 25, 2026
    lambda d: f"{MONTHS[d.month - 1][:3]} {d.day} {d.year}",                   # Nov 25 2026
    lambda d: f"{d.day:02d} {MONTHS[d.month - 1][:3].lower()} {d.year}",       # 25 nov 2026
    lambda d: f"{d.day}/{d.month}/{d.year}",                                   # 25/11/2026
    lambda d: f"{d.day:02d}.{d.month:02d}.{d.year}",                           # 25.11.2026
    lambda d: f"{WEEKDAYS[d.weekday()]}, {d.day} {MONTHS[d.month - 1]} {d.year}",  # Wednesday, 25 November 2026
    lambda d: f"the {_ordinal(d.day)} of {MONTHS[d.month - 1]}, {d.year}",      # the 25th of November, 2026
    lambda d: f"{MONTHS[d.month - 1].upper()} {d.day} {d.year}",               # NOVEMBER 25 2026
    lambda d: f"{d.year}/{d.month}/{d.day}",                                   # 2026/11/25
)


def split_calendar(first_year: int = 1950, last_year: int = 2049, test_fraction: float = 0.1, seed: int = 0):
    """All days of the years ``first_year..last_year``, split at random into (train_days, test_days) lists,
    so that no test *date* is ever seen in training (in any format)."""
    import datetime
    import random

    check.number("test_fraction", test_fraction, 0.0, 1.0, low_open=True, high_open=True)
    check.integer("first_year", first_year, 1, 9999)
    check.integer("last_year", last_year, first_year, 9999)
    first, last = datetime.date(first_year, 1, 1), datetime.date(last_year, 12, 31)
    days = [first + datetime.timedelta(days=i) for i in range((last - first).days + 1)]
    random.Random(seed).shuffle(days)
    n_test = int(len(days) * test_fraction)
    return days[n_test:], days[:n_test]


def make_date_pairs(days, n: int, seed: int = 0, formats=None):
    """``n`` pairs (human-written date, ISO date) with days and formats drawn at random (seeded).
    ``formats``: indices into ``DATE_FORMATS`` (default: all)."""
    import random

    check.non_negative_int("n", n)
    if not days:
        raise ValueError("days must be a non-empty list of datetime.date (e.g. from split_calendar), got none")
    rng = random.Random(seed)
    formats = range(len(DATE_FORMATS)) if formats is None else list(formats)
    for f in formats:
        check.integer("formats[i]", f, 0, len(DATE_FORMATS) - 1)
    if not formats:
        raise ValueError(f"formats must hold at least one index into DATE_FORMATS (0..{len(DATE_FORMATS) - 1})")
    pairs = []
    for _ in range(n):
        d = rng.choice(days)
        pairs.append((DATE_FORMATS[rng.choice(formats)](d), d.isoformat()))
    return pairs


class Seq2SeqVocab:
    """Characters <-> ids for padded sequence-to-sequence batches: ``pad`` = 0, ``bos`` = 1 (start of output),
    ``eos`` = 2 (end of output). (Chapter 4's ``utils.rnn.CharVocab`` serves a language model instead: one long
    text, id 0 for characters never seen.)"""

    PAD, BOS, EOS = 0, 1, 2

    def __init__(self, texts):
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise TypeError("texts must be a list of strings (every text the vocabulary must cover), got "
                            f"{type(texts).__name__}")
        self.chars = ["<pad>", "<s>", "</s>"] + sorted(set("".join(texts)))
        self.index = {c: i for i, c in enumerate(self.chars)}

    def __len__(self):
        return len(self.chars)

    def encode(self, texts, length: int, bos: bool = False, eos: bool = False) -> torch.Tensor:
        """(N, length) int64 ids, right-padded with ``PAD``; raises ValueError on an unknown character."""
        if isinstance(texts, str):
            raise TypeError(f"texts must be a list of strings, got the single string {texts!r}: wrap it as [text]")
        check.positive_int("length", length)
        out = torch.full((len(texts), length), self.PAD, dtype=torch.long)
        for row, text in enumerate(texts):
            unknown = set(text) - self.index.keys()
            if unknown:
                raise ValueError(f"characters {sorted(unknown)} of {text!r} are not in the vocabulary")
            ids = [self.BOS] * bos + [self.index[c] for c in text] + [self.EOS] * eos
            if len(ids) > length:
                raise ValueError(f"{text!r} needs {len(ids)} positions, more than length={length}")
            out[row, :len(ids)] = torch.tensor(ids)
        return out

    def decode(self, ids) -> list[str]:
        """(N, T) ids -> strings, stopping at the first ``EOS`` and skipping ``PAD``/``BOS``."""
        if not hasattr(ids, "tolist") or getattr(ids, "ndim", 0) != 2:
            raise ValueError(f"ids must be a 2-D tensor or array (N, T) of ids, got {type(ids).__name__} of shape "
                             f"{tuple(getattr(ids, 'shape', ()))}")
        texts = []
        for row in ids.tolist():
            chars = []
            for i in row:
                if i == self.EOS:
                    break
                if not 0 <= i < len(self.chars):
                    raise ValueError(f"id {i} is outside this vocabulary: accepted ids 0..{len(self.chars) - 1}")
                if i > self.EOS:
                    chars.append(self.chars[i])
            texts.append("".join(chars))
        return texts


# ------------------------------------------------------------------------------- sequence-to-sequence
class Seq2SeqTransformer(nn.Module):
    """Encoder-decoder Transformer: token embeddings * sqrt(D) + sinusoidal positions, N encoder blocks,
    N decoder blocks, a linear layer to the output vocabulary.

    ``forward(packed (B, S + T))`` -> logits (B, T, V_tgt): the source ids (B, S) and the decoder input ids
    (B, T) side by side in one tensor, because ``utils.train.fit`` hands a model one tensor. Padding id 0 is
    masked in the source. ``encode(src)`` and ``decode(memory, src_mask, tgt_in)`` do the two halves.
    """

    def __init__(self, src_vocab: int, tgt_vocab: int, src_len: int, d_model: int = 64, num_heads: int = 4,
                 d_ff: int = 256, num_encoder_layers: int = 2, num_decoder_layers: int = 2, dropout: float = 0.0,
                 max_len: int = 64, norm_first: bool = True, fused: bool = False):
        super().__init__()
        for name, value in (("src_vocab", src_vocab), ("tgt_vocab", tgt_vocab), ("src_len", src_len),
                            ("num_encoder_layers", num_encoder_layers), ("num_decoder_layers", num_decoder_layers),
                            ("max_len", max_len)):
            check.positive_int(name, value)
        if src_len > max_len:
            raise ValueError(f"src_len={src_len} must be <= max_len={max_len} (the positional table's length)")
        self.src_len, self.d_model, self.max_len = src_len, d_model, max_len
        self.src_embedding = nn.Embedding(src_vocab, d_model)
        self.tgt_embedding = nn.Embedding(tgt_vocab, d_model)
        self.register_buffer("positions", sinusoidal_positional_encoding(max_len, d_model), persistent=False)
        self.encoder = nn.ModuleList(TransformerEncoderBlock(d_model, num_heads, d_ff, dropout, norm_first=norm_first)
                                     for _ in range(num_encoder_layers))
        self.decoder = nn.ModuleList(TransformerDecoderBlock(d_model, num_heads, d_ff, dropout, norm_first=norm_first)
                                     for _ in range(num_decoder_layers))
        # pre-LN leaves the last block's output un-normalised: one final norm on each side (as GPT-2 does)
        self.encoder_norm = nn.LayerNorm(d_model) if norm_first else nn.Identity()
        self.decoder_norm = nn.LayerNorm(d_model) if norm_first else nn.Identity()
        self.generator = nn.Linear(d_model, tgt_vocab)
        for module in self.modules():
            if isinstance(module, MultiHeadAttention):
                module.fused = fused
        # embeddings start at std 1/sqrt(D), so that after the * sqrt(D) below tokens and positions have the
        # same scale; nn.Embedding's default std 1 would drown the positions (the model could not copy digits)
        for embedding in (self.src_embedding, self.tgt_embedding):
            nn.init.normal_(embedding.weight, std=d_model**-0.5)

    def embed(self, embedding, ids):
        check.tensor("ids", ids, 2, spec="(B, T)", integer_dtype=True)
        if ids.shape[1] > self.max_len:
            raise ValueError(f"sequence of {ids.shape[1]} tokens is longer than max_len={self.max_len}: build the "
                             f"model with max_len >= {ids.shape[1]} or shorten the input")
        return embedding(ids) * math.sqrt(self.d_model) + self.positions[: ids.shape[1]]   # (B, T, D)

    def encode(self, src):
        """src (B, S) ids -> (memory (B, S, D), src_mask (B, S) bool, True = real token)."""
        src_mask = src != 0
        h = self.embed(self.src_embedding, src)
        keep = src_mask[:, None, None, :]  # (B, 1, 1, S): unambiguous, so no block re-checks it when B == S
        for block in self.encoder:
            h = block(h, mask=keep)
        return self.encoder_norm(h), src_mask

    def decode(self, memory, src_mask, tgt_in):
        """tgt_in (B, T) ids -> logits (B, T, V_tgt), each position seeing only itself and earlier ones."""
        h = self.embed(self.tgt_embedding, tgt_in)
        keep = src_mask[:, None, None, :] if src_mask.dim() == 2 else src_mask             # (B, 1, 1, S)
        for block in self.decoder:
            h = block(h, memory, memory_mask=keep)
        return self.generator(self.decoder_norm(h))

    def forward(self, packed):
        src, tgt_in = _unpack(packed, self.src_len)
        return self.decode(*self.encode(src), tgt_in)


def _unpack(packed, src_len: int):
    """packed (B, S + T) -> (src (B, S), tgt_in (B, T)), refusing a tensor without a target part."""
    check.tensor("packed", packed, 2, spec=f"(B, S + T) with S = src_len = {src_len}", integer_dtype=True)
    if packed.shape[1] <= src_len:
        raise ValueError(f"packed must be (B, S + T): the source ids (S = src_len = {src_len}) then at least one "
                         f"decoder input id, got {tuple(packed.shape)}")
    return packed[:, :src_len], packed[:, src_len:]


@torch.no_grad()
def greedy_decode(model, src, max_len: int, bos: int = 1, batch_size: int = 512) -> torch.Tensor:
    """Generate (N, max_len) output ids one position at a time, each step taking the arg-max token.

    ``model`` has ``encode(src) -> (memory, src_mask)`` and ``decode(memory, src_mask, tgt_in) -> logits``.
    """
    check.positive_int("max_len", max_len)
    check.positive_int("batch_size", batch_size)
    check.tensor("src", src, 2, spec="(N, S)", integer_dtype=True)
    if not (hasattr(model, "encode") and hasattr(model, "decode")):
        raise TypeError(f"model must have encode(src) and decode(memory, src_mask, tgt_in) (Seq2SeqTransformer, "
                        f"RNNSeq2Seq), got {type(model).__name__}")
    model.eval()
    outputs = []
    for start in range(0, len(src), batch_size):
        chunk = src[start:start + batch_size]
        memory, src_mask = model.encode(chunk)
        ys = torch.full((len(chunk), 1), bos, dtype=torch.long, device=chunk.device)      # (b, 1)
        for _ in range(max_len):
            next_id = model.decode(memory, src_mask, ys)[:, -1].argmax(-1, keepdim=True)  # (b, 1)
            ys = torch.cat([ys, next_id], dim=1)
        outputs.append(ys[:, 1:])
    return torch.cat(outputs)


class AdditiveAttention(nn.Module):
    """Bahdanau (additive) attention: score(s, h_j) = v^T tanh(W_q s + W_k h_j), weights = softmax over j.

    ``forward(query (B, Dq), keys (B, S, Dk), mask (B, S) bool, True = real)`` -> (context (B, Dk),
    weights (B, S)); the context is the weighted sum of the keys (they are also the values).
    """

    def __init__(self, query_dim: int, key_dim: int, hidden: int):
        super().__init__()
        for name, value in (("query_dim", query_dim), ("key_dim", key_dim), ("hidden", hidden)):
            check.positive_int(name, value)
        self.query_proj = nn.Linear(query_dim, hidden, bias=False)
        self.key_proj = nn.Linear(key_dim, hidden)
        self.score = nn.Linear(hidden, 1, bias=False)                                     # v^T

    def forward(self, query, keys, mask=None, projected_keys=None):
        Dq, Dk = self.query_proj.in_features, self.key_proj.in_features
        check.tensor("query", query, 2, spec=f"(B, Dq={Dq})", floating=True)
        check.tensor("keys", keys, 3, spec=f"(B, S, Dk={Dk})", floating=True)
        B = query.shape[0]
        if query.shape[1] != Dq or keys.shape[0] != B or keys.shape[2] != Dk:
            raise ValueError(f"need query (B, Dq) = ({B}, {Dq}) and keys (B, S, Dk) = ({B}, S, {Dk}) with the same "
                             f"B, got query {tuple(query.shape)}, keys {tuple(keys.shape)}")
        if mask is not None:
            check.tensor("mask", mask, 2, spec="(B, S) bool, True = real", bool_dtype=True)
            if tuple(mask.shape) != tuple(keys.shape[:2]):
                raise ValueError(f"mask must be (B, S) = {tuple(keys.shape[:2])} bool, got {tuple(mask.shape)}")
        projected_keys = self.key_proj(keys) if projected_keys is None else projected_keys   # (B, S, A)
        scores = self.score(torch.tanh(self.query_proj(query)[:, None] + projected_keys))[..., 0]  # (B, S)
        if mask is not None:
            scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        weights = scores.softmax(dim=-1)                                                     # (B, S)
        return (weights[:, :, None] * keys).sum(1), weights                                  # (B, Dk), (B, S)


class RNNSeq2Seq(nn.Module):
    """RNN encoder-decoder with additive attention (Bahdanau et al., 2015).

    Encoder: embedding + bidirectional GRU -> memory (B, S, 2H). Decoder: a GRU cell whose input at step t
    is [embedding of y_(t-1); context_t], the context being additive attention over the memory with the
    previous decoder state as the query. Same interface as :class:`Seq2SeqTransformer` (``forward(packed)``,
    ``encode``, ``decode``), so ``greedy_decode`` works for both; ``last_weights`` holds (B, T, S).
    """

    def __init__(self, src_vocab: int, tgt_vocab: int, src_len: int, embed_dim: int = 32, hidden: int = 64):
        super().__init__()
        for name, value in (("src_vocab", src_vocab), ("tgt_vocab", tgt_vocab), ("src_len", src_len),
                            ("embed_dim", embed_dim), ("hidden", hidden)):
            check.positive_int(name, value)
        self.src_len = src_len
        self.src_embedding = nn.Embedding(src_vocab, embed_dim, padding_idx=0)
        self.tgt_embedding = nn.Embedding(tgt_vocab, embed_dim)
        self.encoder = nn.GRU(embed_dim, hidden, batch_first=True, bidirectional=True)
        self.init_state = nn.Linear(2 * hidden, hidden)
        self.attention = AdditiveAttention(hidden, 2 * hidden, hidden)
        self.cell = nn.GRUCell(embed_dim + 2 * hidden, hidden)
        self.generator = nn.Linear(hidden + 2 * hidden, tgt_vocab)
        self.last_weights = None

    def encode(self, src):
        """src (B, S) -> (memory (B, S, 2H), src_mask (B, S)); padding is skipped by packing."""
        check.tensor("src", src, 2, spec="(B, S)", integer_dtype=True)
        src_mask = src != 0
        lengths = src_mask.sum(1).cpu()                                                   # (B,), on the CPU anyway
        if bool((lengths == 0).any()):
            raise ValueError(f"every source row needs at least one non-padding id (padding id 0); rows "
                             f"{(lengths == 0).nonzero().flatten().tolist()} of src are all padding")
        packed = nn.utils.rnn.pack_padded_sequence(self.src_embedding(src), lengths,
                                                   batch_first=True, enforce_sorted=False)
        memory, _ = self.encoder(packed)
        memory, _ = nn.utils.rnn.pad_packed_sequence(memory, batch_first=True, total_length=src.shape[1])
        return memory, src_mask

    def decode(self, memory, src_mask, tgt_in):
        """tgt_in (B, T) -> logits (B, T, V_tgt), one GRU-cell step per output position."""
        check.tensor("tgt_in", tgt_in, 2, spec="(B, T)", integer_dtype=True)
        H2 = 2 * self.cell.hidden_size
        check.tensor("memory", memory, 3, spec=f"(B, S, 2H={H2})", floating=True)
        if memory.shape[2] != H2 or tuple(src_mask.shape) != tuple(memory.shape[:2]) or len(tgt_in) != len(memory):
            raise ValueError(f"need memory (B, S, 2H={H2}), src_mask (B, S) and tgt_in (B, T) with one B, got memory "
                             f"{tuple(memory.shape)}, src_mask {tuple(src_mask.shape)}, tgt_in {tuple(tgt_in.shape)}")
        lengths = src_mask.sum(1)
        hidden = memory.shape[-1] // 2
        last_forward = memory[torch.arange(len(memory)), lengths - 1, :hidden]            # (B, H)
        state = torch.tanh(self.init_state(torch.cat([last_forward, memory[:, 0, hidden:]], -1)))
        projected = self.attention.key_proj(memory)                                       # once, not per step
        logits, weights = [], []
        for y_prev in self.tgt_embedding(tgt_in).unbind(1):                                # (B, E) per step
            context, w = self.attention(state, memory, src_mask, projected)
            state = self.cell(torch.cat([y_prev, context], -1), state)
            logits.append(self.generator(torch.cat([state, context], -1)))
            weights.append(w)
        self.last_weights = torch.stack(weights, 1).detach()                               # (B, T, S)
        return torch.stack(logits, 1)                                                      # (B, T, V)

    def forward(self, packed):
        src, tgt_in = _unpack(packed, self.src_len)
        return self.decode(*self.encode(src), tgt_in)
