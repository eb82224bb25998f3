"""BERT (Devlin et al., 2018), built from chapter 5's encoder blocks: config, embeddings, encoder, model, and the
masked-LM and next-sentence-prediction heads with their loss. Read top to bottom, it is the model of chapter 6.

Elsewhere: the tokenizer in :mod:`utils.wordpiece`, the pre-training batches in :mod:`utils.pretraining`, loading
real weights (Hugging Face names, all-MiniLM-L6-v2, bert-base-uncased) in :mod:`utils.bert_interop`, the Keras twin
in :mod:`utils.bert_keras`. Module names follow the paper and Hugging Face's ``BertModel``
(``embeddings.word_embeddings``, ``encoder.layer.3``, ``pooler.dense``, ``cls.predictions``...).

Shape legend
    B   batch size
    T   sequence length in tokens ([CLS] A [SEP] B [SEP] and padding included)
    D   hidden size ``hidden_size``
    H   attention heads;  D / H the width of one head
    F   feed-forward width ``intermediate_size``
    V   vocabulary size
    M   number of masked positions in a batch (masked LM predicts only there)
    C   number of classes of a classification head

Attention masks: ``attention_mask`` is (B, T) with 1/True = real token, 0/False = padding, as in Hugging Face.
When it is None our models derive it from ``input_ids != pad_token_id``; Hugging Face instead attends to
every position, padding included (chapter 6's pitfalls show what that does).
"""
import json
import pathlib
from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from . import _validate as check
from .attention import ACTIVATIONS, TransformerEncoderBlock

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")  # ids 0..4 in a vocabulary we train


# ------------------------------------------------------------------------------------------------ config
@dataclass
class BertConfig:
    """Sizes of a BERT model; field names are those of Hugging Face's ``config.json``, so it loads directly."""
    vocab_size: int = 30522                  # V: WordPiece vocabulary size
    hidden_size: int = 768                   # D: width of every token vector
    num_hidden_layers: int = 12              # encoder blocks stacked
    num_attention_heads: int = 12            # H: heads per block (D must divide by H)
    intermediate_size: int = 3072            # F: feed-forward width (4 D in the paper)
    hidden_act: str = "gelu"                 # exact erf GELU, as the original BERT
    hidden_dropout_prob: float = 0.1         # dropout on embeddings and on each sublayer's output
    attention_probs_dropout_prob: float = 0.1  # dropout on the attention weights
    max_position_embeddings: int = 512       # longest sequence the learned position table covers
    type_vocab_size: int = 2                 # segments: 0 = sentence A, 1 = sentence B
    layer_norm_eps: float = 1e-12            # BERT's LayerNorm epsilon (PyTorch's default is 1e-5)
    pad_token_id: int = 0                    # id of [PAD]
    initializer_range: float = 0.02          # std of the normal initialisation of every weight matrix

    def __post_init__(self):
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                     "max_position_embeddings", "type_vocab_size"):
            check.positive_int(f"BertConfig.{name}", getattr(self, name))
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"BertConfig.hidden_size={self.hidden_size} must be divisible by "
                             f"num_attention_heads={self.num_attention_heads}; accepted: a head count dividing it")
        check.one_of("BertConfig.hidden_act", self.hidden_act, ACTIVATIONS)
        check.probability("BertConfig.hidden_dropout_prob", self.hidden_dropout_prob)
        check.probability("BertConfig.attention_probs_dropout_prob", self.attention_probs_dropout_prob)
        check.number("BertConfig.layer_norm_eps", self.layer_norm_eps, 0.0, low_open=True)
        check.integer("BertConfig.pad_token_id", self.pad_token_id, 0, self.vocab_size - 1)
        check.number("BertConfig.initializer_range", self.initializer_range, 0.0)

    @classmethod
    def from_json(cls, path) -> "BertConfig":
        """Read a Hugging Face ``config.json`` (a file, or a folder holding one); unknown keys are ignored."""
        path = pathlib.Path(path)
        path = path / "config.json" if path.is_dir() else path
        if not path.is_file():
            raise FileNotFoundError(f"no BERT config at {path}: pass a config.json or a folder holding one")
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("model_type", "bert") != "bert":
            raise ValueError(f"{path} describes a {raw['model_type']!r} model, not 'bert'")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})

    def to_dict(self) -> dict:
        return asdict(self)


def init_bert_weights(module: nn.Module, std: float = 0.02) -> None:
    """BERT's initialisation, for ``model.apply``: weights ~ N(0, std), biases 0, LayerNorm gain 1."""
    check.number("std", std, 0.0)
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=std)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)
    if isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


# ------------------------------------------------------------------------------------------------ model
class BertEmbeddings(nn.Module):
    """x = LayerNorm(word + position + token-type embeddings), then dropout. ids (B, T) -> (B, T, D)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)  # HF's capitalised name
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids, token_type_ids=None):
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)                                 # all sentence A
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)           # (T,)
        x = (self.word_embeddings(input_ids)                                             # (B, T, D)
             + self.position_embeddings(positions)[None]                                 # (1, T, D) broadcast
             + self.token_type_embeddings(token_type_ids))                               # (B, T, D)
        return self.dropout(self.LayerNorm(x))


class BertEncoder(nn.Module):
    """A stack of post-LN ``utils.attention.TransformerEncoderBlock``s: ``layer[i]`` as in Hugging Face."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.layer = nn.ModuleList([
            TransformerEncoderBlock(config.hidden_size, config.num_attention_heads, config.intermediate_size,
                                    dropout=config.hidden_dropout_prob, activation=config.hidden_act,
                                    norm_first=False, layer_norm_eps=config.layer_norm_eps)
            for _ in range(config.num_hidden_layers)])
        for block in self.layer:  # the block has one dropout rate; BERT's attention weights have their own
            block.attention.dropout.p = config.attention_probs_dropout_prob
            # the fused kernel, as transformers' default "sdpa": the readable path only when weights are inspected
            # (utils.attention.attention_weights_kept)
            block.attention.fused = True

    def forward(self, x, mask=None):
        """x (B, T, D), mask (B, T) bool (True = real token) or broadcastable to (B, H, T, T) -> (B, T, D)."""
        if mask is not None and mask.dim() == 2:
            mask = mask[:, None, None, :]  # (B, 1, 1, T): unambiguous, so no block re-checks it when B == T
        for block in self.layer:
            x = block(x, mask=mask)                                                      # (B, T, D)
        return x


class BertPooler(nn.Module):
    """pooled = tanh(W h_[CLS] + b): the [CLS] vector through one dense layer. (B, T, D) -> (B, D)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = nn.Tanh()

    def forward(self, sequence_output):
        return self.activation(self.dense(sequence_output[:, 0]))


class BertModel(nn.Module):
    """Embeddings -> encoder -> pooler. ``forward(input_ids (B, T), attention_mask (B, T) or None,
    token_type_ids (B, T) or None) -> (sequence_output (B, T, D), pooled_output (B, D))``."""

    def __init__(self, config: BertConfig):
        super().__init__()
        if not isinstance(config, BertConfig):
            raise TypeError(f"config must be a BertConfig (e.g. BertConfig.from_json(folder)), got "
                            f"{type(config).__name__}")
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config)
        self.apply(lambda m: init_bert_weights(m, config.initializer_range))

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        mask = _checked_mask(self.config, input_ids, attention_mask, token_type_ids)      # (B, T) bool
        sequence_output = self.encoder(self.embeddings(input_ids, token_type_ids), mask)  # (B, T, D)
        return sequence_output, self.pooler(sequence_output)


class BertForSequenceClassification(nn.Module):
    """BERT + dropout + a linear layer on the pooled [CLS] vector. ids (B, T) -> logits (B, C).

    ``forward(input_ids)`` alone works (the mask comes from the padding), so ``utils.train.fit`` can drive it.
    """

    def __init__(self, config: BertConfig, num_labels: int = 2):
        super().__init__()
        check.positive_int("num_labels", num_labels)
        self.bert = BertModel(config)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, num_labels)
        init_bert_weights(self.classifier, config.initializer_range)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        _, pooled = self.bert(input_ids, attention_mask, token_type_ids)
        return self.classifier(self.dropout(pooled))


# ----------------------------------------------------------------------------------- pre-training heads
class BertPredictionHeadTransform(nn.Module):
    """h -> LayerNorm(gelu(W h + b)), applied before the vocabulary projection. (M, D) -> (M, D)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = nn.GELU()
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, h):
        return self.LayerNorm(self.activation(self.dense(h)))


class BertLMPredictionHead(nn.Module):
    """Masked-LM logits = transform(h) E^T + b, with E the (tied) word-embedding table. (M, D) -> (M, V)."""

    def __init__(self, config: BertConfig, word_embeddings: nn.Embedding):
        super().__init__()
        self.transform = BertPredictionHeadTransform(config)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size)
        self.decoder.weight = word_embeddings.weight  # tied: one (V, D) table for input and output
        nn.init.zeros_(self.decoder.bias)

    def forward(self, h):
        return self.decoder(self.transform(h))


class BertPreTrainingHeads(nn.Module):
    """``predictions`` (masked LM over the vocabulary) and ``seq_relationship`` (NSP: IsNext/NotNext).

    ``forward(sequence_output (B, T, D), pooled_output (B, D), masked (B, T) bool) -> (mlm_logits (M, V),
    nsp_logits (B, 2))``: only the M masked positions are projected onto the vocabulary, as BERT's own code does.
    """

    def __init__(self, config: BertConfig, word_embeddings: nn.Embedding):
        super().__init__()
        self.predictions = BertLMPredictionHead(config, word_embeddings)
        self.seq_relationship = nn.Linear(config.hidden_size, 2)
        init_bert_weights(self.predictions.transform, config.initializer_range)
        init_bert_weights(self.seq_relationship, config.initializer_range)

    def forward(self, sequence_output, pooled_output, masked):
        mlm_logits = self.predictions(sequence_output[masked])                         # (M, D) -> (M, V)
        return mlm_logits, self.seq_relationship(pooled_output)                        # (M, V), (B, 2)


class BertForPreTraining(nn.Module):
    """BERT with both pre-training heads, the masked-LM decoder tied to the word embeddings.

    ``forward(input_ids (B, T), token_type_ids (B, T), masked (B, T) bool, attention_mask=None)
    -> (mlm_logits (M, V) at the M masked positions only, nsp_logits (B, 2))``.
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        self.bert = BertModel(config)
        self.cls = BertPreTrainingHeads(config, self.bert.embeddings.word_embeddings)

    def forward(self, input_ids, token_type_ids, masked, attention_mask=None):
        check.tensor("masked", masked, spec="(B, T) bool", bool_dtype=True)
        if masked.shape != getattr(input_ids, "shape", None):
            raise ValueError(f"masked must be (B, T) bool, shaped like input_ids {tuple(input_ids.shape)}, "
                             f"got {tuple(masked.shape)}")
        sequence_output, pooled = self.bert(input_ids, attention_mask, token_type_ids)  # (B, T, D), (B, D)
        return self.cls(sequence_output, pooled, masked)                                # (M, V), (B, 2)


def pretraining_loss(mlm_logits, nsp_logits, mlm_labels, is_next):
    """BERT's loss: mean cross-entropy over masked tokens + cross-entropy of next-sentence prediction.

    mlm_logits (M, V), mlm_labels (M,) the original ids; nsp_logits (B, 2), is_next (B,) 1 = IsNext.
    Returns ``(total, mlm_loss, nsp_loss)``.
    """
    check.tensor("mlm_logits", mlm_logits, 2, spec="(M, V)", floating=True)
    check.tensor("nsp_logits", nsp_logits, 2, spec="(B, 2)", floating=True)
    check.tensor("mlm_labels", mlm_labels, 1, spec="(M,)", integer_dtype=True)
    check.tensor("is_next", is_next, 1, spec="(B,)", integer_dtype=True)
    if len(mlm_labels) != len(mlm_logits) or len(mlm_labels) == 0:
        raise ValueError(f"mlm_labels (M,) must have one label per row of mlm_logits (M, V) with M >= 1, got "
                         f"{tuple(mlm_labels.shape)} and {tuple(mlm_logits.shape)}")
    if len(is_next) != len(nsp_logits) or nsp_logits.shape[1] != 2:
        raise ValueError(f"nsp_logits must be (B, 2) and is_next (B,), got {tuple(nsp_logits.shape)} and "
                         f"{tuple(is_next.shape)}")
    mlm = nn.functional.cross_entropy(mlm_logits, mlm_labels)                         # mean over the M tokens
    nsp = nn.functional.cross_entropy(nsp_logits, is_next)                            # mean over the B pairs
    return mlm + nsp, mlm, nsp


# ------------------------------------------------------------------------------ checks at the entry
def _checked_mask(config: BertConfig, input_ids, attention_mask, token_type_ids) -> torch.Tensor:
    """The model's entry checks; returns the (B, T) bool mask, True = real token (from [PAD] when None)."""
    check.tensor("input_ids", input_ids, spec="(B, T)", integer_dtype=True)
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids must have shape (B, T), got {tuple(input_ids.shape)}")
    B, T = input_ids.shape
    if attention_mask is not None:
        check.tensor("attention_mask", attention_mask, spec="(B, T), 1/True = real token")
        if attention_mask.shape != input_ids.shape:
            raise ValueError(f"attention_mask must have the shape of input_ids {(B, T)}, "
                             f"got {tuple(attention_mask.shape)}")
        if attention_mask.is_floating_point():  # an additive mask (0 / -10000) would silently flip under .bool()
            raise TypeError(f"attention_mask must be 0/1 integers or bool (1/True = real token), got dtype "
                            f"{attention_mask.dtype}; convert a 0/1 float mask with .long()")
    if T > config.max_position_embeddings:
        raise ValueError(f"sequence of {T} tokens is longer than "
                         f"max_position_embeddings={config.max_position_embeddings}")
    if token_type_ids is not None:
        check.tensor("token_type_ids", token_type_ids, spec=f"(B, T) = {(B, T)}", integer_dtype=True)
        if token_type_ids.shape != input_ids.shape:
            raise ValueError(f"token_type_ids must have the shape of input_ids (B, T) = {(B, T)}, "
                             f"got {tuple(token_type_ids.shape)}")
    return input_ids != config.pad_token_id if attention_mask is None else attention_mask.bool()
