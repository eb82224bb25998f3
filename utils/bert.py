"""BERT (Devlin et al., 2018), built from chapter 5's encoder blocks: the model, its masked-LM and
next-sentence-prediction heads and loss, loaders for real weights, and its Keras twin. Its tokenizer is in
:mod:`utils.wordpiece`, the pre-training batches (segments, NSP pairs, masking) in :mod:`utils.pretraining`.

Module and parameter names follow the paper and Hugging Face's ``BertModel`` (``embeddings.word_embeddings``,
``encoder.layer.3``, ``pooler.dense``, ``cls.predictions``, ``classifier``...), so a checkpoint maps onto this
model with one small rename table (:data:`HF_BLOCK_NAMES`) for the inside of an encoder block, whose names
come from ``utils.attention``.

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

The Keras model (:class:`KerasBertModel`) is created on first access, so importing this module never
starts TensorFlow.
"""
import json
import pathlib
import re
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
from torch import nn

from . import _validate as check
from .attention import ACTIVATIONS, TransformerEncoderBlock
from .device import lazy_keras_classes

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")  # ids 0..4 in a vocabulary we train


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


def bool_attention_mask(input_ids: torch.Tensor, attention_mask, pad_token_id: int) -> torch.Tensor:
    """(B, T) bool, True = real token: ``attention_mask`` (0/1 or bool) or, when None, ``input_ids != pad``."""
    if attention_mask is None:
        return input_ids != pad_token_id
    check.tensor("attention_mask", attention_mask, spec="(B, T), 1/True = real token")
    if attention_mask.shape != input_ids.shape:
        raise ValueError(f"attention_mask must have the shape of input_ids {tuple(input_ids.shape)}, "
                         f"got {tuple(attention_mask.shape)}")
    if attention_mask.is_floating_point():  # an additive mask (0 / -10000) would silently flip under .bool()
        raise TypeError(f"attention_mask must be 0/1 integers or bool (1/True = real token), got dtype "
                        f"{attention_mask.dtype}; convert a 0/1 float mask with .long()")
    return attention_mask.bool()


# ---------------------------------------------------------------------------------------------- the model
class BertEmbeddings(nn.Module):
    """x = LayerNorm(word + position + token-type embeddings), then dropout. ids (B, T) -> (B, T, D)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)  # HF's capitalised name
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.max_positions = config.max_position_embeddings

    def forward(self, input_ids, token_type_ids=None):
        check.tensor("input_ids", input_ids, 2, spec="(B, T)", integer_dtype=True)
        B, T = input_ids.shape
        if T > self.max_positions:
            raise ValueError(f"sequence of {T} tokens is longer than max_position_embeddings={self.max_positions}")
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        check.tensor("token_type_ids", token_type_ids, spec=f"(B, T) = {(B, T)}", integer_dtype=True)
        if token_type_ids.shape != input_ids.shape:
            raise ValueError(f"token_type_ids must have the shape of input_ids (B, T) = {(B, T)}, "
                             f"got {tuple(token_type_ids.shape)}")
        positions = torch.arange(T, device=input_ids.device)                            # (T,)
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

    def forward(self, x, mask=None, output_hidden_states: bool = False):
        """x (B, T, D), mask (B, T) bool (True = real token) -> (B, T, D), or the list of all L+1 states."""
        if mask is not None and mask.dim() == 2:
            mask = mask[:, None, None, :]  # (B, 1, 1, T): unambiguous, so no block re-checks it when B == T
        states = [x]
        for block in self.layer:
            states.append(block(states[-1], mask=mask))
        return states if output_hidden_states else states[-1]


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
        check.tensor("input_ids", input_ids, spec="(B, T)", integer_dtype=True)
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must have shape (B, T), got {tuple(input_ids.shape)}")
        mask = bool_attention_mask(input_ids, attention_mask, self.config.pad_token_id)    # (B, T)
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
    """``predictions`` (masked LM over the vocabulary) and ``seq_relationship`` (NSP: IsNext/NotNext)."""

    def __init__(self, config: BertConfig, word_embeddings: nn.Embedding):
        super().__init__()
        self.predictions = BertLMPredictionHead(config, word_embeddings)
        self.seq_relationship = nn.Linear(config.hidden_size, 2)
        init_bert_weights(self.predictions.transform, config.initializer_range)
        init_bert_weights(self.seq_relationship, config.initializer_range)


class BertForPreTraining(nn.Module):
    """BERT with both pre-training heads.

    ``forward(input_ids (B, T), token_type_ids (B, T), masked (B, T) bool, attention_mask=None)
    -> (mlm_logits (M, V) at the M masked positions only, nsp_logits (B, 2))``. Projecting only the
    masked ~15% of positions onto the vocabulary (as BERT's own code does) saves most of the output cost.
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
        sequence_output, pooled = self.bert(input_ids, attention_mask, token_type_ids)
        mlm_logits = self.cls.predictions(sequence_output[masked])                     # (M, D) -> (M, V)
        return mlm_logits, self.cls.seq_relationship(pooled)                           # (M, V), (B, 2)


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
    mlm = nn.functional.cross_entropy(mlm_logits, mlm_labels)
    nsp = nn.functional.cross_entropy(nsp_logits, is_next)
    return mlm + nsp, mlm, nsp


# ---------------------------------------------------------------------------------- real weights in
# Inside one encoder block Hugging Face's names (left) differ from utils.attention's (right).
HF_BLOCK_NAMES = {
    "attention.self.query": "attention.query",
    "attention.self.key": "attention.key",
    "attention.self.value": "attention.value",
    "attention.output.dense": "attention.output",
    "attention.output.LayerNorm": "attention_norm",
    "intermediate.dense": "feed_forward.dense_in",
    "output.dense": "feed_forward.dense_out",
    "output.LayerNorm": "feed_forward_norm",
}
_HF_LAYER = re.compile(r"^(.*encoder\.layer\.\d+\.)(.+)\.(weight|bias)$")


def hf_to_course_name(name: str) -> str:
    """Translate a Hugging Face BERT parameter name to this module's, e.g.
    ``encoder.layer.0.attention.self.query.weight`` -> ``encoder.layer.0.attention.query.weight``."""
    name = name.replace(".gamma", ".weight").replace(".beta", ".bias")  # the oldest checkpoints' LayerNorm names
    match = _HF_LAYER.match(name)
    if match and match.group(2) in HF_BLOCK_NAMES:
        return match.group(1) + HF_BLOCK_NAMES[match.group(2)] + "." + match.group(3)
    return name


def read_safetensors(path) -> dict:
    """All tensors of a ``model.safetensors`` file (or a folder holding one) as a name -> tensor dict."""
    from safetensors.torch import load_file

    path = pathlib.Path(path)
    if not (path / "model.safetensors" if path.is_dir() else path).is_file():
        raise FileNotFoundError(f"no safetensors weights at {path}: pass a model.safetensors file or a folder "
                                "holding one")
    return load_file(str(path / "model.safetensors" if path.is_dir() else path))


HEAD_PREFIXES = ("cls.", "classifier.")  # task heads: a checkpoint without them leaves them new (random), by design
_TIED = {"cls.predictions.decoder.weight"}  # shares its tensor with the word embeddings


def _is_body(name: str) -> bool:
    """Whether a (course-named) parameter belongs to BERT itself rather than to a task head or a buffer."""
    return not name.startswith(HEAD_PREFIXES) and not name.endswith("position_ids")


def load_hf_weights(model: nn.Module, state_dict: dict, strict: bool = True) -> dict:
    """Copy a Hugging Face BERT state dict into ``model`` (a :class:`BertModel` or a model holding one as
    ``.bert``), all or nothing: every name and shape is checked before any tensor is copied. Prefixes
    ``bert.`` are matched to the model's own layout.

    ``strict=True`` (the default) raises ``ValueError`` listing every difference when the checkpoint does not fit
    BERT's body (embeddings, encoder layers, pooler): a shape mismatch, a body parameter the checkpoint lacks
    (e.g. a 6-layer checkpoint into an 8-layer model) or a body tensor with no home here (into a 4-layer model);
    the model is then left unchanged. Task heads (``classifier.*``, ``cls.*``) the checkpoint lacks are new
    heads and stay randomly initialised in both modes (listed in ``missing``). ``strict=False`` loads what fits
    (shape mismatches still raise) and prints what stayed random.

    Returns ``{"loaded": [...], "missing": [...], "unused": [...]}``: ``missing`` are this model's
    parameters the checkpoint lacks (they keep their random initialisation), ``unused`` the checkpoint's
    tensors with no home here (e.g. the ``position_ids`` buffer or heads this model does not have).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a BertModel or a model holding one as .bert, got {type(model).__name__}")
    if not isinstance(state_dict, dict):
        raise TypeError(f"state_dict must be a dict name -> tensor (e.g. from read_safetensors), "
                        f"got {type(state_dict).__name__}")
    if not isinstance(strict, bool):
        raise TypeError(f"strict must be True or False, got {strict!r}")
    own = model.state_dict()
    prefix = "bert." if any(k.startswith("bert.") for k in own) else ""
    plan, unused, mismatched = [], [], []
    for hf_name, tensor in state_dict.items():
        name = hf_to_course_name(hf_name)
        if prefix and not name.startswith((prefix, *HEAD_PREFIXES)):
            name = prefix + name
        elif not prefix and name.startswith("bert."):
            name = name[len("bert."):]
        if name not in own:
            unused.append(hf_name)
            continue
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"state_dict[{hf_name!r}] must be a tensor, got {type(tensor).__name__}")
        if own[name].shape != tensor.shape:
            mismatched.append(f"{hf_name} -> {name}: checkpoint {tuple(tensor.shape)}, model {tuple(own[name].shape)}")
        plan.append((name, tensor))
    loaded = [name for name, _ in plan]
    missing = [k for k in own if k not in loaded and k not in _TIED]
    body_missing = [k for k in missing if _is_body(k)]
    body_unused = [k for k in unused if _is_body(hf_to_course_name(k)) and hf_to_course_name(k).startswith(
        ("bert.", "embeddings.", "encoder.", "pooler."))]
    problems = []
    if mismatched:
        problems.append(f"{len(mismatched)} shapes differ: " + "; ".join(mismatched[:8])
                        + (" ..." if len(mismatched) > 8 else ""))
    if strict and body_missing:
        problems.append(f"{len(body_missing)} of the model's tensors are not in the checkpoint (they would stay "
                        f"random): {', '.join(body_missing[:8])}" + (" ..." if len(body_missing) > 8 else ""))
    if strict and body_unused:
        problems.append(f"{len(body_unused)} checkpoint tensors have no place in the model: "
                        f"{', '.join(body_unused[:8])}" + (" ..." if len(body_unused) > 8 else ""))
    if problems:
        config = getattr(model, "config", None) or getattr(getattr(model, "bert", None), "config", None)
        sizes = (f" (model: {config.num_hidden_layers} layers, hidden_size={config.hidden_size}, "
                 f"intermediate_size={config.intermediate_size})") if config is not None else ""
        raise ValueError("the checkpoint does not fit the model" + sizes + "; nothing was copied. "
                         + " | ".join(problems) + ". Build the model from the checkpoint's config.json "
                         "(BertConfig.from_json)" + ("" if mismatched else ", or pass strict=False for a deliberate "
                                                     "partial load"))
    with torch.no_grad():
        for name, tensor in plan:
            own[name].copy_(tensor)
    if not strict and body_missing:
        print(f"load_hf_weights(strict=False): {len(body_missing)} tensors stayed randomly initialised: "
              f"{', '.join(body_missing)}")
    return {"loaded": loaded, "missing": missing, "unused": unused}


def from_pretrained(path, model_class=BertModel, strict: bool = True, **kwargs):
    """Build ``model_class(BertConfig.from_json(path), **kwargs)`` and load ``path``'s safetensors weights
    (``strict`` as in :func:`load_hf_weights`). Returns ``(model in eval mode, report)`` with the report of
    :func:`load_hf_weights`."""
    model = model_class(BertConfig.from_json(path), **kwargs)
    report = load_hf_weights(model, read_safetensors(path), strict=strict)
    return model.eval(), report


# ------------------------------------------------------------------------------------------- Keras twin
def _keras_bert_class():
    import keras
    from keras import ops

    from . import attention

    class KerasBertModel(keras.Model):
        """Keras twin of :class:`BertModel` built from ``utils.attention.KerasTransformerEncoderBlock``.

        ``call(input_ids (B, T), attention_mask (B, T) or None, token_type_ids (B, T) or None)
        -> (sequence_output (B, T, D), pooled_output (B, D))``; same config, same maths.
        """

        def __init__(self, config: BertConfig, **kwargs):
            if not isinstance(config, BertConfig):
                raise TypeError(f"config must be a BertConfig, got {type(config).__name__}")
            super().__init__(**kwargs)
            self.config = config
            D, eps = config.hidden_size, config.layer_norm_eps
            self.word_embeddings = keras.layers.Embedding(config.vocab_size, D, name="word_embeddings")
            self.position_embeddings = keras.layers.Embedding(config.max_position_embeddings, D,
                                                              name="position_embeddings")
            self.token_type_embeddings = keras.layers.Embedding(config.type_vocab_size, D,
                                                                name="token_type_embeddings")
            # Keras' LayerNormalization defaults to epsilon=1e-3: BERT needs its own 1e-12
            self.embeddings_norm = keras.layers.LayerNormalization(epsilon=eps, name="embeddings_LayerNorm")
            self.embeddings_dropout = keras.layers.Dropout(config.hidden_dropout_prob)
            self.encoder_layers = [
                attention.KerasTransformerEncoderBlock(D, config.num_attention_heads, config.intermediate_size,
                                                       dropout=config.hidden_dropout_prob,
                                                       activation=config.hidden_act, layer_norm_eps=eps,
                                                       name=f"layer_{i}")
                for i in range(config.num_hidden_layers)]
            self.pooler = keras.layers.Dense(D, activation="tanh", name="pooler")

        def call(self, input_ids, attention_mask=None, token_type_ids=None, training=None):
            if attention_mask is None:
                attention_mask = ops.not_equal(input_ids, self.config.pad_token_id)
            if token_type_ids is None:
                token_type_ids = ops.zeros_like(input_ids)
            positions = ops.arange(ops.shape(input_ids)[1])                                 # (T,)
            x = (self.word_embeddings(input_ids) + self.position_embeddings(positions)[None]
                 + self.token_type_embeddings(token_type_ids))                              # (B, T, D)
            x = self.embeddings_dropout(self.embeddings_norm(x), training=training)
            mask = ops.cast(attention_mask, "bool")                                          # (B, T)
            for block in self.encoder_layers:
                x = block(x, mask=mask, training=training)
            return x, self.pooler(x[:, 0])

    return KerasBertModel


def copy_bert_to_keras(torch_model: BertModel, keras_model) -> None:
    """Copy every weight of a PyTorch :class:`BertModel` into a :class:`KerasBertModel` of the same config.

    Embedding tables keep their (rows, D) layout; Linear weights (out, in) become Dense kernels (in, out)."""
    from .attention import encoder_block_pairs
    from .rnn import linear_to_keras

    if not isinstance(torch_model, BertModel):
        raise TypeError(f"torch_model must be a BertModel (for a classifier pass model.bert), "
                        f"got {type(torch_model).__name__}")
    sizes = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
             "max_position_embeddings", "type_vocab_size")
    keras_config = getattr(keras_model, "config", None)
    differ = [f"{k}: PyTorch {getattr(torch_model.config, k)}, Keras {getattr(keras_config, k, None)}"
              for k in sizes if getattr(torch_model.config, k) != getattr(keras_config, k, None)]
    if differ:
        raise ValueError("cannot copy: the two BERTs have different sizes (nothing was copied); build KerasBertModel "
                         "from the same BertConfig. Differences: " + "; ".join(differ))
    if not keras_model.built:
        keras_model(np.ones((1, 2), dtype="int64"))  # Keras creates weights on the first call
    emb = torch_model.embeddings

    def numpy(t):
        return t.detach().cpu().numpy()

    pairs = [(getattr(keras_model, name), [numpy(getattr(emb, name).weight)])
             for name in ("word_embeddings", "position_embeddings", "token_type_embeddings")]
    pairs.append((keras_model.embeddings_norm, [numpy(emb.LayerNorm.weight), numpy(emb.LayerNorm.bias)]))
    for torch_block, keras_block in zip(torch_model.encoder.layer, keras_model.encoder_layers, strict=True):
        pairs += encoder_block_pairs(torch_block, keras_block)
    pairs.append((keras_model.pooler, linear_to_keras(torch_model.pooler.dense)))  # (out, in) -> (in, out)
    check.keras_assignments(pairs, "BERT")


# PEP 562: KerasBertModel is built on first access, so importing never starts TensorFlow
__getattr__ = lazy_keras_classes(__name__, ("KerasBertModel",), lambda: {"KerasBertModel": _keras_bert_class()})
