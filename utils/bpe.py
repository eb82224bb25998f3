"""Byte-level byte-pair encoding (BPE), the tokenizer of GPT-2 (chapter 7), from scratch.

Text is first cut into *chunks* by a regular expression (GPT-2's: words with their leading space, numbers,
runs of punctuation, runs of spaces), then each chunk's UTF-8 bytes are merged pair by pair. Training learns
the merges: start from the 256 single bytes and repeatedly fuse the most frequent adjacent pair into a new
token. Encoding replays the merges in the order they were learnt (lowest rank first). Any string encodes,
because every byte has a token of its own: there is no unknown token.

Shape legend
    N   number of tokens of an encoded text
    V   vocabulary size = 256 + number of merges

Token ids: our own training gives byte ``b`` the id ``b`` and merge ``i`` the id ``256 + i``. GPT-2's
published files number tokens differently (``encoder.json``); :meth:`ByteLevelBPE.from_gpt2_files` reads them,
so the same code encodes with GPT-2's own merges.
"""
import json
import pathlib
from collections import Counter
from functools import lru_cache

# GPT-2's pre-tokenisation pattern (OpenAI's encoder.py), written with the third-party ``regex`` module for \p{L}
GPT2_SPLIT_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's printable stand-in character for each byte 0..255: printable Latin-1 bytes stand for themselves,
    the other 68 get the code points 256, 257, ... in order. Used by GPT-2's files and by ``tokenizers``."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def split_into_chunks(text: str, pattern: str = GPT2_SPLIT_PATTERN) -> list[str]:
    """Cut ``text`` into the pieces that BPE merges inside (a merge never crosses a chunk boundary)."""
    import regex

    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return regex.findall(pattern, text)


def _merge_pair(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace every non-overlapping occurrence of ``pair`` in ``ids`` (left to right) by ``new_id``."""
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


class ByteLevelBPE:
    """A trained byte-level BPE tokenizer.

    ``merges``: list of id pairs in the order learnt; merge ``i`` makes token ``merge_ids[i]``.
    ``vocab``: id -> the bytes the token stands for. ``byte_ids``: byte value -> id of the one-byte token.
    """

    def __init__(self, merges, vocab: dict[int, bytes], byte_ids=None, merge_ids=None,
                 pattern: str = GPT2_SPLIT_PATTERN):
        self.merges = [tuple(m) for m in merges]
        self.vocab = dict(vocab)
        self.byte_ids = list(range(256)) if byte_ids is None else list(byte_ids)
        self.merge_ids = [256 + i for i in range(len(self.merges))] if merge_ids is None else list(merge_ids)
        if len(self.byte_ids) != 256 or len(self.merge_ids) != len(self.merges):
            raise ValueError(f"need 256 byte ids and one id per merge, got {len(self.byte_ids)} byte ids, "
                             f"{len(self.merge_ids)} ids for {len(self.merges)} merges")
        pairs = zip(self.merges, self.merge_ids, strict=True)
        self.ranks = {pair: (rank, new) for rank, (pair, new) in enumerate(pairs)}  # pair -> (rank, new id)
        self.pattern = pattern
        self._cache: dict[str, list[int]] = {}

    def __len__(self) -> int:
        return len(self.vocab)

    # ------------------------------------------------------------------------------------------- encode
    def encode_chunk(self, chunk: str) -> list[int]:
        """One chunk -> ids: start from its bytes, apply the lowest-ranked mergeable pair until none is left."""
        if chunk in self._cache:
            return self._cache[chunk]
        ids = [self.byte_ids[b] for b in chunk.encode("utf-8")]
        while len(ids) > 1:
            pairs = {(a, b) for a, b in zip(ids, ids[1:], strict=False)}
            best = min(pairs, key=lambda p: self.ranks.get(p, (float("inf"),))[0])
            if best not in self.ranks:
                break
            ids = _merge_pair(ids, best, self.ranks[best][1])
        self._cache[chunk] = ids
        return ids

    def encode(self, text: str) -> list[int]:
        """str -> token ids (N,)."""
        return [i for chunk in split_into_chunks(text, self.pattern) for i in self.encode_chunk(chunk)]

    def decode_bytes(self, ids) -> bytes:
        try:
            return b"".join(self.vocab[int(i)] for i in ids)
        except KeyError as err:
            raise ValueError(f"token id {err.args[0]} is not in the vocabulary "
                             f"(ids 0..{len(self.vocab) - 1})") from None

    def decode(self, ids) -> str:
        """ids -> str; a token sequence cut inside a multi-byte character decodes that character as U+FFFD."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def token_bytes(self, ids) -> list[int]:
        """Number of bytes each token stands for (for bits per byte)."""
        return [len(self.vocab[int(i)]) for i in ids]

    # ----------------------------------------------------------------------------------- GPT-2's files
    @classmethod
    def from_gpt2_files(cls, encoder_json, vocab_bpe) -> "ByteLevelBPE":
        """Read GPT-2's ``encoder.json`` (token string -> id) and ``vocab.bpe`` (merges, rank order)."""
        encoder = json.loads(pathlib.Path(encoder_json).read_text(encoding="utf-8"))
        lines = pathlib.Path(vocab_bpe).read_text(encoding="utf-8").splitlines()
        byte_of = {ch: b for b, ch in bytes_to_unicode().items()}

        def as_bytes(token: str) -> bytes:
            return bytes(byte_of[ch] for ch in token)

        merges, merge_ids = [], []
        for line in lines:
            if not line or line.startswith("#version"):
                continue
            a, b = line.split(" ")
            merges.append((encoder[a], encoder[b]))
            merge_ids.append(encoder[a + b])
        vocab = {i: as_bytes(tok) for tok, i in encoder.items() if all(ch in byte_of for ch in tok)}
        byte_ids = [encoder[bytes_to_unicode()[b]] for b in range(256)]
        return cls(merges, vocab, byte_ids, merge_ids)


def _pair_key(tie_break: str):
    """Order of pairs with equal counts: ``"bytes"`` = smallest ids first (ids = byte values, then merges);
    ``"tokenizers"`` = the order of Hugging Face ``tokenizers``, whose single-byte ids are sorted by the
    byte's stand-in character (:func:`bytes_to_unicode`), not by the byte value."""
    if tie_break == "bytes":
        return lambda pair: pair
    if tie_break == "tokenizers":
        order = sorted(range(256), key=lambda b: bytes_to_unicode()[b])
        rank = {b: r for r, b in enumerate(order)}
        return lambda pair: (rank.get(pair[0], pair[0]), rank.get(pair[1], pair[1]))
    raise ValueError(f"tie_break must be 'bytes' or 'tokenizers', got {tie_break!r}")


def train_bpe(text: str, vocab_size: int, tie_break: str = "bytes", pattern: str = GPT2_SPLIT_PATTERN,
              min_frequency: int = 2) -> tuple[ByteLevelBPE, list[int]]:
    """Learn ``vocab_size - 256`` merges on ``text``. Returns ``(tokenizer, counts)``, ``counts[i]`` being how
    often merge ``i``'s pair occurred when it was chosen.

    Each step fuses the most frequent adjacent pair (pairs counted inside chunks, weighted by how often the
    chunk occurs); ties go to the smallest pair in the ``tie_break`` order. Training stops early when no pair
    occurs ``min_frequency`` times.
    """
    if not isinstance(vocab_size, int) or vocab_size < 256:
        raise ValueError(f"vocab_size must be an int >= 256 (the single bytes), got {vocab_size!r}")
    key = _pair_key(tie_break)
    words = Counter(split_into_chunks(text, pattern))
    seqs = [list(w.encode("utf-8")) for w in words]            # one id list per distinct chunk
    freq = list(words.values())
    pair_counts: Counter = Counter()
    where: dict[tuple[int, int], set[int]] = {}                # pair -> indices of the chunks holding it
    for w, ids in enumerate(seqs):
        for pair in zip(ids, ids[1:], strict=False):
            pair_counts[pair] += freq[w]
            where.setdefault(pair, set()).add(w)
    merges, counts = [], []
    vocab = {i: bytes([i]) for i in range(256)}
    for new_id in range(256, vocab_size):
        if not pair_counts:
            break
        best = max(pair_counts, key=lambda p: (pair_counts[p], tuple(-k for k in key(p))))
        if pair_counts[best] < min_frequency:
            break
        merges.append(best)
        counts.append(pair_counts[best])
        vocab[new_id] = vocab[best[0]] + vocab[best[1]]
        for w in list(where.get(best, ())):                    # only chunks holding the pair change
            old = seqs[w]
            for pair in zip(old, old[1:], strict=False):
                pair_counts[pair] -= freq[w]
                if pair_counts[pair] == 0:
                    del pair_counts[pair]
            new = _merge_pair(old, best, new_id)
            seqs[w] = new
            for pair in zip(new, new[1:], strict=False):
                pair_counts[pair] += freq[w]
                where.setdefault(pair, set()).add(w)
        where.pop(best, None)
    return ByteLevelBPE(merges, vocab, pattern=pattern), counts


def train_tokenizers_bpe(text: str, vocab_size: int, min_frequency: int = 2):
    """The same training with Hugging Face ``tokenizers`` (byte-level BPE, GPT-2's split, all 256 bytes in the
    alphabet, no special tokens, no prefix space): the library the course checks :func:`train_bpe` against."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[])
    tokenizer.train_from_iterator([text], trainer=trainer)
    return tokenizer


def tokenizers_merges_as_bytes(tokenizer) -> list[tuple[bytes, bytes]]:
    """The merges of a ``tokenizers`` byte-level BPE as pairs of byte strings (comparable with ours)."""
    byte_of = {ch: b for b, ch in bytes_to_unicode().items()}
    model = json.loads(tokenizer.to_str())["model"]
    pairs = [m.split(" ") if isinstance(m, str) else m for m in model["merges"]]
    return [(bytes(byte_of[c] for c in a), bytes(byte_of[c] for c in b)) for a, b in pairs]


def merges_as_bytes(tokenizer: ByteLevelBPE) -> list[tuple[bytes, bytes]]:
    return [(tokenizer.vocab[a], tokenizer.vocab[b]) for a, b in tokenizer.merges]


def to_gpt2_files(tokenizer: ByteLevelBPE, folder) -> tuple[pathlib.Path, pathlib.Path]:
    """Write ``encoder.json`` and ``vocab.bpe`` in GPT-2's format (for stand-ins and round trips)."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    uni = bytes_to_unicode()

    def text(i):
        return "".join(uni[b] for b in tokenizer.vocab[i])

    encoder = {text(i): i for i in sorted(tokenizer.vocab)}
    encoder_path, merges_path = folder / "encoder.json", folder / "vocab.bpe"
    encoder_path.write_text(json.dumps(encoder, ensure_ascii=False), encoding="utf-8")
    merges_path.write_text("#version: 0.2\n" + "".join(f"{text(a)} {text(b)}\n" for a, b in tokenizer.merges),
                           encoding="utf-8")
    return encoder_path, merges_path
