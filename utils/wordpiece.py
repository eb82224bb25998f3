"""WordPiece, BERT's tokenizer (chapter 6): greedy longest-match encoding written out, and training a
vocabulary with the ``tokenizers`` library.

A word is split into the longest pieces found in the vocabulary; pieces after the first carry the ``##``
prefix (``"unhappiness" -> ["unh", "##appi", "##ness"]`` with a suitable vocabulary). Chapter 7's byte-level
BPE (:mod:`utils.bpe`) is the other tokenizer of the course.
"""
from . import _validate as check
from .bert import SPECIAL_TOKENS


def wordpiece_tokenize(word: str, vocab, unk_token: str = "[UNK]", max_chars: int = 100) -> list[str]:
    """Split one (lower-cased, punctuation-free) word greedily into the longest pieces found in ``vocab``.

    Pieces after the first carry the ``##`` prefix. A word with any part not in the vocabulary becomes
    ``[unk_token]``. Example: ``"unaffable" -> ["una", "##ffa", "##ble"]`` with a suitable vocabulary.
    """
    if not isinstance(word, str):
        raise TypeError(f"word must be a str (one word), got {type(word).__name__}")
    check.positive_int("max_chars", max_chars)
    if len(word) > max_chars:
        return [unk_token]
    pieces, start = [], 0
    while start < len(word):
        end = len(word)
        while end > start:  # longest match first
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                break
            end -= 1
        if end == start:
            return [unk_token]
        pieces.append(piece)
        start = end
    return pieces


def train_wordpiece(texts, vocab_size: int, min_frequency: int = 2, lowercase: bool = True):
    """Train a BERT-style WordPiece tokenizer with the ``tokenizers`` library on an iterable of strings.

    The pipeline: normalise (lower-case, strip accents) -> split on whitespace and punctuation ->
    WordPiece. Special tokens get ids 0..4 in the order of :data:`utils.bert.SPECIAL_TOKENS`; encoding a pair gives
    ``[CLS] A [SEP] B [SEP]`` with segment ids 0 for A (and its [CLS], [SEP]) and 1 for B.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    if isinstance(texts, str):
        raise TypeError("texts must be an iterable of strings, got a single string: wrap it as [text]")
    if check.positive_int("vocab_size", vocab_size) <= len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size must exceed the {len(SPECIAL_TOKENS)} special tokens, got {vocab_size}")
    check.positive_int("min_frequency", min_frequency)
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=lowercase, strip_accents=lowercase)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                        special_tokens=list(SPECIAL_TOKENS), show_progress=False)
    tokenizer.train_from_iterator(texts, trainer=trainer)
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    return tokenizer
