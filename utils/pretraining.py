"""BERT's pre-training data (chapter 6): documents cut into segments, next-sentence-prediction pairs,
the 80/10/10 masking of masked-LM, and the masked-LM accuracy.

The model, its heads and the loss (:func:`utils.bert.pretraining_loss`) live in :mod:`utils.bert`; this module
makes the batches they are trained on.

Shape legend
    B   batch size (or N pairs)
    T   sequence length in tokens ([CLS] A [SEP] B [SEP] and padding included)
    V   vocabulary size
    M   number of masked positions in a batch (masked LM predicts only there)
"""
import numpy as np
import torch

from . import _validate as check

IGNORE_INDEX = -100  # label of positions that are not predicted (PyTorch's cross_entropy default)


def split_into_segments(token_ids, length: int) -> list[list[int]]:
    """Cut one document's token ids into consecutive segments of ``length`` (the last, shorter one dropped)."""
    check.positive_int("length", length)
    return [list(token_ids[i:i + length]) for i in range(0, len(token_ids) - length + 1, length)]


def make_nsp_pairs(documents, rng: np.random.Generator, max_len: int, cls_id: int, sep_id: int):
    """Next-sentence-prediction pairs: for each consecutive (A, B) segment pair of a document, keep B
    (IsNext, label 1) or, with probability 1/2, replace it by a random segment of another document
    (NotNext, label 0).

    ``documents``: list of lists of segments (lists of ids), each segment at most (max_len - 3) // 2 long.
    Returns ``input_ids (N, max_len)``, ``token_type_ids (N, max_len)`` (padded with 0 = [PAD]) and
    ``is_next (N,)`` as int64 NumPy arrays.
    """
    check.positive_int("max_len", max_len)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), got {type(rng).__name__}")
    if sum(len(d) > 0 for d in documents) < 2:
        raise ValueError("need at least two non-empty documents to draw NotNext segments from")
    rows, types, labels = [], [], []
    for d, segments in enumerate(documents):
        for a, b in zip(segments[:-1], segments[1:], strict=True):
            is_next = rng.random() >= 0.5
            if not is_next:
                other = rng.choice([j for j in range(len(documents)) if j != d and documents[j]])
                b = documents[other][rng.integers(len(documents[other]))]
            ids = [cls_id, *a, sep_id, *b, sep_id]
            if len(ids) > max_len:
                raise ValueError(f"pair of {len(ids)} tokens exceeds max_len={max_len}; use shorter segments")
            rows.append(ids + [0] * (max_len - len(ids)))
            types.append([0] * (len(a) + 2) + [1] * (len(b) + 1) + [0] * (max_len - len(ids)))
            labels.append(int(is_next))
    return np.array(rows, dtype=np.int64), np.array(types, dtype=np.int64), np.array(labels, dtype=np.int64)


def mask_tokens(input_ids: torch.Tensor, special: torch.Tensor, mask_id: int, vocab_size: int,
                generator: torch.Generator | None = None, mask_prob: float = 0.15, num_special: int = 0):
    """BERT's masking: choose ``mask_prob`` of the non-special positions; of those, 80% become [MASK],
    10% a random token, 10% stay unchanged. The model must predict the original token at all of them.

    input_ids (B, T) int64, special (B, T) bool (True for [CLS], [SEP], [PAD]: never chosen).
    Random replacements are drawn from ids ``num_special .. vocab_size - 1``.
    Returns ``(corrupted_ids (B, T), masked (B, T) bool, labels (B, T))`` with labels = original id where
    masked, else ``IGNORE_INDEX``.
    """
    check.number("mask_prob", mask_prob, 0.0, 1.0, low_open=True, high_open=True)
    check.tensor("input_ids", input_ids, 2, spec="(B, T)", integer_dtype=True)
    check.tensor("special", special, spec="(B, T) bool")
    check.positive_int("vocab_size", vocab_size)
    check.integer("num_special", num_special, 0, vocab_size - 1)
    check.integer("mask_id", mask_id, 0, vocab_size - 1)
    if special.shape != input_ids.shape or special.dtype != torch.bool:
        raise ValueError(f"special must be a bool tensor shaped like input_ids {tuple(input_ids.shape)}, "
                         f"got {special.dtype} {tuple(special.shape)}")

    def uniform():
        return torch.rand(input_ids.shape, generator=generator)

    masked = (uniform() < mask_prob) & ~special                                       # 15% of real tokens
    to_mask = masked & (uniform() < 0.8)                                              # 80% of those -> [MASK]
    to_random = masked & ~to_mask & (uniform() < 0.5)                                 # half the rest -> random
    corrupted = input_ids.clone()
    corrupted[to_mask] = mask_id
    random_ids = torch.randint(num_special, vocab_size, input_ids.shape, generator=generator)
    corrupted[to_random] = random_ids[to_random]
    labels = torch.where(masked, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    return corrupted, masked, labels


def masked_lm_accuracy(mlm_logits: torch.Tensor, mlm_labels: torch.Tensor) -> float:
    """Fraction of masked positions whose arg-max prediction is the original token. (M, V), (M,)."""
    check.tensor("mlm_logits", mlm_logits, 2, spec="(M, V)")
    check.tensor("mlm_labels", mlm_labels, 1, spec="(M,)", integer_dtype=True)
    if len(mlm_labels) != len(mlm_logits) or len(mlm_labels) == 0:
        raise ValueError(f"need mlm_logits (M, V) and mlm_labels (M,) with the same M >= 1, got "
                         f"{tuple(mlm_logits.shape)} and {tuple(mlm_labels.shape)}")
    return (mlm_logits.argmax(-1) == mlm_labels).float().mean().item()
