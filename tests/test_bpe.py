import pytest

from utils import bpe

TEXT = ("def f(x):\n    return x + 1  # naïve ünïcode: 日本語 ✓\n" * 3 + "class Spam:\n    pass\n" * 4
        + "print('hello world')\n" * 5)


def test_round_trip_is_lossless_including_non_ascii_and_unseen_text():
    tok, counts = bpe.train_bpe(TEXT, 300)
    assert len(tok) == 256 + len(tok.merges) == 256 + len(counts)
    for text in (TEXT, "never seen: Ωμέγα 🐍\t\r\n", ""):
        assert tok.decode(tok.encode(text)) == text
    assert len(tok.encode(TEXT)) < len(TEXT.encode("utf-8"))          # merges compress


def test_merge_counts_never_increase_and_first_merge_is_the_most_frequent_pair():
    tok, counts = bpe.train_bpe(TEXT, 290)
    assert all(a >= b for a, b in zip(counts, counts[1:], strict=False))
    from collections import Counter

    pairs = Counter()
    for chunk in bpe.split_into_chunks(TEXT):
        b = chunk.encode()
        pairs.update(zip(b, b[1:], strict=False))
    assert counts[0] == max(pairs.values()) and pairs[tok.merges[0]] == counts[0]


def test_equal_merges_to_tokenizers_with_its_tie_break():
    ours, _ = bpe.train_bpe(TEXT, 320, tie_break="tokenizers")
    theirs = bpe.train_tokenizers_bpe(TEXT, 320)
    assert bpe.merges_as_bytes(ours) == bpe.tokenizers_merges_as_bytes(theirs)
    byte_of = {ch: b for b, ch in bpe.bytes_to_unicode().items()}
    their_tokens = [bytes(byte_of[c] for c in t) for t in theirs.encode(TEXT).tokens]
    assert [ours.vocab[i] for i in ours.encode(TEXT)] == their_tokens  # same tokens (ids are numbered differently)


def test_gpt2_file_format_round_trip(tmp_path):
    tok, _ = bpe.train_bpe(TEXT, 300)
    again = bpe.ByteLevelBPE.from_gpt2_files(*bpe.to_gpt2_files(tok, tmp_path))
    assert again.encode(TEXT) == tok.encode(TEXT) and again.decode(again.encode(TEXT)) == TEXT


def test_bad_input():
    with pytest.raises(ValueError, match="vocab_size"):
        bpe.train_bpe(TEXT, 100)
    with pytest.raises(ValueError, match="tie_break"):
        bpe.train_bpe(TEXT, 300, tie_break="random")
    with pytest.raises(TypeError, match="str"):
        bpe.split_into_chunks(b"bytes")
    tok, _ = bpe.train_bpe(TEXT, 260)
    with pytest.raises(ValueError, match="not in the vocabulary"):
        tok.decode([10_000])
