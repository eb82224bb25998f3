"""How good is a prediction: the scores the chapters report, in one place.

Classification (chapter 1, reused by every classifier after it): ``confusion_matrix``, ``accuracy``,
``precision_recall_f1``. Generated text (chapter 5): ``exact_match``, ``ngram_counts``, ``bleu``.

Shape legend
    N   number of examples;  C   number of classes
"""
import math

import numpy as np

from . import _validate as check


def _labels(y_true, y_pred):
    """Both label arrays, integer, same shape, non-empty, non-negative."""
    y_true, y_pred = check.integer_labels("y_true", y_true, None), check.integer_labels("y_pred", y_pred, None)
    if y_true.shape != y_pred.shape or y_true.size == 0:
        raise ValueError(f"y_true and y_pred must have the same non-empty shape, got {y_true.shape} and "
                         f"{y_pred.shape}")
    if min(y_true.min(), y_pred.min()) < 0:
        raise ValueError(f"labels must be class indices >= 0, got minimum {min(y_true.min(), y_pred.min())}")
    return y_true, y_pred

# ---- classification ----------------------------------------------------------------------------------

def confusion_matrix(y_true, y_pred, num_classes: int | None = None):
    """M[i, j] = number of examples of true class i predicted as class j. -> (C, C) int."""
    y_true, y_pred = _labels(y_true, y_pred)
    seen = int(max(y_true.max(), y_pred.max())) + 1
    if num_classes is not None and check.positive_int("num_classes", num_classes) < seen:
        raise ValueError(f"num_classes={num_classes} but the labels go up to {seen - 1}: "
                         f"accepted num_classes >= {seen}")
    c = num_classes or seen
    M = np.zeros((c, c), dtype=np.int64)
    np.add.at(M, (y_true, y_pred), 1)
    return M


def accuracy(y_pred, y_true) -> float:
    """Fraction of predictions equal to the labels; y_pred, y_true (N,) or any one shape (no broadcasting).

    Predictions first, like :func:`utils.train.accuracy` and PyTorch's ``loss(output, target)``; scikit-learn's
    ``accuracy_score(y_true, y_pred)`` takes them the other way round.
    """
    y_pred, y_true = np.asarray(y_pred), np.asarray(y_true)
    if y_pred.shape != y_true.shape or y_pred.size == 0:
        raise ValueError(f"y_pred and y_true must have the same non-empty shape, got {y_pred.shape} and "
                         f"{y_true.shape} (an (N, 1) column against (N,) would broadcast to (N, N))")
    return float(np.mean(y_pred == y_true))


def precision_recall_f1(y_true, y_pred, average: str = "binary"):
    """Precision TP/(TP+FP), recall TP/(TP+FN) and F1 (their harmonic mean).

    ``average='binary'``: for class 1. ``'macro'``: unweighted mean over classes. Undefined ratios are 0.
    """
    if average not in ("binary", "macro"):
        raise ValueError(f"average must be 'binary' or 'macro', got {average!r}")
    y_true, y_pred = _labels(y_true, y_pred)
    top = int(max(y_true.max(), y_pred.max()))
    if average == "binary" and top > 1:
        raise ValueError(f"average='binary' needs labels 0 and 1 only, got labels up to {top}; "
                         "accepted for more classes: average='macro'")
    M = confusion_matrix(y_true, y_pred, max(2, top + 1))
    tp = np.diag(M).astype(np.float64)
    predicted, actual = M.sum(0), M.sum(1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    if average == "binary":
        return float(precision[1]), float(recall[1]), float(f1[1])
    return float(precision.mean()), float(recall.mean()), float(f1.mean())


# ---- generated text -------------------------------------------------------------------------------

def exact_match(predictions, references) -> float:
    """Fraction of predicted strings equal to their reference string."""
    if len(predictions) != len(references) or not references:
        raise ValueError(f"need as many predictions as references (> 0), got {len(predictions)} and "
                         f"{len(references)}")
    return sum(p == r for p, r in zip(predictions, references, strict=True)) / len(references)


# ----------------------------------------------------------------------------------------------- BLEU
def ngram_counts(tokens, n: int) -> dict:
    """{n-gram tuple: count} of a token sequence."""
    check.positive_int("n", n)
    counts = {}
    for i in range(len(tokens) - n + 1):
        gram = tuple(tokens[i:i + n])
        counts[gram] = counts.get(gram, 0) + 1
    return counts


def bleu(candidates, references, max_n: int = 4) -> float:
    """Corpus BLEU (Papineni et al., 2002) with one reference per candidate, uniform weights 1/max_n, no smoothing.

    BLEU = BP * exp(sum_n log(p_n) / max_n), p_n = sum of clipped n-gram matches / sum of candidate n-grams over
    the corpus, BP = 1 if c > r else exp(1 - r / c) (c, r: total candidate and reference lengths).
    ``candidates``, ``references``: lists of token sequences (a string is a sequence of character tokens).
    """
    if len(candidates) != len(references) or not candidates:
        raise ValueError(f"need as many candidates as references (> 0), got {len(candidates)} and "
                         f"{len(references)}")
    check.positive_int("max_n", max_n)
    matches, totals = [0] * max_n, [0] * max_n
    for cand, ref in zip(candidates, references, strict=True):
        for n in range(1, max_n + 1):
            cand_counts, ref_counts = ngram_counts(cand, n), ngram_counts(ref, n)
            # clipping: a candidate n-gram counts at most as often as it occurs in the reference
            matches[n - 1] += sum(min(c, ref_counts.get(g, 0)) for g, c in cand_counts.items())
            totals[n - 1] += max(len(cand) - n + 1, 0)
    if min(matches) == 0:
        return 0.0
    c, r = sum(len(x) for x in candidates), sum(len(x) for x in references)
    brevity_penalty = 1.0 if c > r else math.exp(1 - r / c)
    return brevity_penalty * math.exp(sum(math.log(m / t) for m, t in zip(matches, totals, strict=True)) / max_n)
