"""GPT (Radford et al., 2018/2019): a decoder-only Transformer trained to predict the next token, built from
chapter 5's blocks; GPT-2 weight loading, the bits-per-byte yardstick and an n-gram baseline (chapter 7). The
KV cache the model reads and extends, and the decoding rules that turn its logits into text, are in
``utils.decoding``.

GPT-2's block is ``utils.attention.TransformerEncoderBlock`` with ``norm_first=True`` (pre-LayerNorm) whose
self-attention is causal; the whole model is: token + learned position embeddings -> L blocks -> final
LayerNorm -> logits through the *transposed token embedding* (tied input/output weights).

Shape legend
    B   batch size
    T   tokens fed in this call;  P  positions already in the KV cache;  P + T  all positions so far
    D   model width ``d_model``;  H  heads;  dk = D / H  the width of one head;  F  feed-forward width
    L   number of blocks;  V  vocabulary size;  Tmax  ``context_length``

Masks are boolean with True = may attend / real token, as in ``utils.attention``. ``attention_mask`` is
(B, P + T): one entry per position the model can see, cached ones included (0/False = padding).

The Keras twin (:class:`KerasGPT`) is created on first access, so importing this module never starts TensorFlow.
"""
import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .attention import ACTIVATIONS, MultiHeadAttention, TransformerEncoderBlock, scaled_dot_product_attention
from .device import lazy_keras_classes


@dataclass
class GPTConfig:
    """Sizes of a GPT model (GPT-2 124M by default)."""
    vocab_size: int = 50257          # V: tokens (GPT-2: 256 bytes + 50,000 merges + <|endoftext|>)
    context_length: int = 1024       # Tmax: rows of the learned position table, the longest input
    d_model: int = 768               # D: width of every token vector
    num_heads: int = 12              # H: attention heads per block (D must divide by H)
    num_layers: int = 12             # L: blocks stacked
    d_ff: int | None = None          # F: feed-forward width; None = 4 D, as GPT-2
    dropout: float = 0.0             # on embeddings, attention weights and sublayer outputs (GPT-2 trained: 0.1)
    layer_norm_eps: float = 1e-5     # GPT-2's LayerNorm epsilon
    activation: str = "gelu_tanh"    # GPT-2's GELU is the tanh approximation ("gelu_new")

    def __post_init__(self):
        for name in ("vocab_size", "context_length", "d_model", "num_heads", "num_layers"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.d_model % self.num_heads:
            raise ValueError(f"d_model={self.d_model} must be divisible by num_heads={self.num_heads}")
        if self.d_ff is None:
            self.d_ff = 4 * self.d_model
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")

    @classmethod
    def from_hf(cls, hf_config) -> "GPTConfig":
        """From a ``transformers.GPT2Config``."""
        act = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu", "relu": "relu"}
        if hf_config.activation_function not in act:
            raise ValueError(f"activation_function {hf_config.activation_function!r} is not supported; "
                             f"accepted: {sorted(act)}")
        return cls(vocab_size=hf_config.vocab_size, context_length=hf_config.n_positions, d_model=hf_config.n_embd,
                   num_heads=hf_config.n_head, num_layers=hf_config.n_layer,
                   d_ff=hf_config.n_inner or 4 * hf_config.n_embd, dropout=0.0,
                   layer_norm_eps=hf_config.layer_norm_epsilon, activation=act[hf_config.activation_function])

    def to_hf(self):
        """The matching ``transformers.GPT2Config`` (dropout off, no end-of-text token): the inverse of
        :meth:`from_hf`."""
        import transformers

        act = {"gelu_tanh": "gelu_new", "gelu": "gelu", "relu": "relu"}  # from_hf's map, read backwards
        return transformers.GPT2Config(
            vocab_size=self.vocab_size, n_positions=self.context_length, n_embd=self.d_model, n_layer=self.num_layers,
            n_head=self.num_heads, n_inner=self.d_ff, layer_norm_epsilon=self.layer_norm_eps,
            activation_function=act[self.activation], resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
            bos_token_id=0, eos_token_id=None)

    def to_dict(self) -> dict:
        return asdict(self)

    def num_parameters(self) -> int:
        """The count by formula: embeddings V D + Tmax D; per block 4 (D^2 + D) attention, 2 D F + F + D
        feed-forward, 4 D for two LayerNorms; a final LayerNorm 2 D; the output layer is tied (0)."""
        D, F_, L = self.d_model, self.d_ff, self.num_layers
        block = 4 * (D * D + D) + (2 * D * F_ + F_ + D) + 4 * D
        return self.vocab_size * D + self.context_length * D + L * block + 2 * D


# ------------------------------------------------------------------------------------------------ model
def causal_attention_mask(T: int, P: int = 0, padding=None, device=None) -> torch.Tensor:
    """Which of the P + T keys each of the T new queries may attend to: (1 or B, 1, T, P + T) bool.

    Query i sits at position P + i and sees keys 0..P + i (causal). ``padding`` (B, P + T) bool removes padded
    keys; a query always keeps itself, so a padded query's row is never empty (its output is unused, but an
    all-masked row would make the fused kernel return NaN).
    """
    keys = torch.arange(P + T, device=device)
    queries = torch.arange(P, P + T, device=device)[:, None]
    allowed = keys[None, :] <= queries                                                 # (T, P + T)
    if padding is None:
        return allowed[None, None]
    if padding.dim() != 2 or padding.shape[1] != P + T:
        raise ValueError(f"attention_mask must have shape (B, P + T) = (B, {P + T}), got {tuple(padding.shape)}")
    itself = keys[None, :] == queries                                                  # (T, P + T)
    return (allowed & (padding.bool()[:, None, :] | itself))[:, None]                  # (B, 1, T, P + T)


class CausalSelfAttention(MultiHeadAttention):
    """Chapter 5's multi-head attention, used causally and able to read/extend a :class:`KVCache`.

    ``forward(x (B, T, D), mask (1 or B, 1, T, P + T), cache=None, layer=0) -> (B, T, D)``.
    """

    def forward(self, x, mask=None, cache=None, layer=0):
        B, T, _ = x.shape
        q = self.split_heads(self.query(x))                                            # (B, H, T, dk)
        k = self.split_heads(self.key(x))                                              # (B, H, T, dk)
        v = self.split_heads(self.value(x))
        if cache is not None:
            k, v = cache.update(layer, k, v)                                           # (B, H, P + T, dk)
        if self.fused:
            p = self.dropout.p if self.training else 0.0
            heads = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        else:
            heads, weights = scaled_dot_product_attention(q, k, v, mask, self.dropout)
            self.last_weights = weights.detach()
        heads = heads.transpose(1, 2).reshape(B, T, self.d_model)                     # (B, T, H*dk)
        return self.output(heads)


class GPTBlock(TransformerEncoderBlock):
    """A pre-LN block: x + attn(LN(x)), then x + MLP(LN(x)); chapter 5's block with causal attention."""

    def __init__(self, config: GPTConfig):
        super().__init__(config.d_model, config.num_heads, config.d_ff, config.dropout, config.activation,
                         norm_first=True, layer_norm_eps=config.layer_norm_eps)
        self.attention = CausalSelfAttention(config.d_model, config.num_heads, config.dropout)

    def forward(self, x, mask=None, cache=None, layer=0):
        x = self.residual(x, lambda h: self.attention(h, mask, cache, layer), self.attention_norm)
        return self.residual(x, self.feed_forward, self.feed_forward_norm)


class GPT(nn.Module):
    """ids (B, T) -> next-token logits (B, T, V).

    ``forward(input_ids, attention_mask=None, position_ids=None, cache=None)``: ``attention_mask`` (B, P + T)
    marks real tokens (left padding for batched generation); ``position_ids`` (B, T) default to P, ..., P + T - 1;
    with a ``cache`` (a ``utils.decoding.KVCache``) the call appends its keys/values there and reads the earlier ones.
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.d_model)          # also the output layer
        self.position_embedding = nn.Embedding(config.context_length, config.d_model)
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList([GPTBlock(config) for _ in range(config.num_layers)])
        self.final_norm = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2: the residual branches' last layers scaled by 1/sqrt(2 L)
            if name.endswith(("attention.output.weight", "feed_forward.dense_out.weight")):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * config.num_layers))

    @staticmethod
    def _init_weights(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, 0.0, 0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def set_fused(self, fused: bool) -> "GPT":
        """Use PyTorch's fused attention kernel (True) or the readable one (False) in every block."""
        for block in self.blocks:
            block.attention.fused = fused
        return self

    def forward(self, input_ids, attention_mask=None, position_ids=None, cache=None):
        if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2:
            raise ValueError(f"input_ids must be a (B, T) tensor, got {getattr(input_ids, 'shape', input_ids)!r}")
        B, T = input_ids.shape
        P = cache.length if cache is not None else 0
        if P + T > self.config.context_length:
            raise ValueError(f"{P} cached + {T} new tokens exceed context_length={self.config.context_length}")
        if position_ids is None:
            position_ids = torch.arange(P, P + T, device=input_ids.device)[None]            # (1, T)
        x = self.token_embedding(input_ids) + self.position_embedding(position_ids)       # (B, T, D)
        x = self.dropout(x)
        mask = causal_attention_mask(T, P, attention_mask, device=input_ids.device)
        for layer, block in enumerate(self.blocks):
            x = block(x, mask, cache, layer)
        return self.final_norm(x) @ self.token_embedding.weight.T                          # (B, T, V), tied


def next_token_loss(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of predicting token t + 1 from position t: logits (B, T, V) vs ids (B, T).

    The shift is explicit: position t's logits are scored against ``input_ids[:, t + 1]``; the last position has
    no label."""
    return F.cross_entropy(logits[:, :-1].flatten(0, 1), input_ids[:, 1:].flatten())


def flat_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of logits (B, T, V) against already shifted targets (B, T): ``utils.train.fit``'s loss."""
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten())


# ---------------------------------------------------------------------------------- GPT-2 weights in
# GPT-2's names for a block's layers -> ours (the attention's packed c_attn is split by hand)
GPT2_LINEARS = {"attn.c_proj": "attention.output", "mlp.c_fc": "feed_forward.dense_in",
                "mlp.c_proj": "feed_forward.dense_out"}
GPT2_NORMS = {"ln_1": "attention_norm", "ln_2": "feed_forward_norm"}


def gpt2_to_course_state_dict(state_dict: dict, num_layers: int) -> dict:
    """Rename (and reshape) a Hugging Face / OpenAI GPT-2 state dict to :class:`GPT`'s names.

    GPT-2 stores its linear layers as ``Conv1D`` with weight (in, out) — the transpose of ``nn.Linear``'s
    (out, in) — and packs W_q, W_k, W_v into one ``c_attn`` (D, 3 D). Works with or without the
    ``transformer.`` prefix; ``attn.bias`` / ``attn.masked_bias`` (old causal-mask buffers) and a tied
    ``lm_head.weight`` are skipped.
    """
    sd = {k.removeprefix("transformer."): v for k, v in state_dict.items()}
    needed = ["wte.weight", "wpe.weight", "ln_f.weight", "ln_f.bias"]
    missing = [k for k in needed if k not in sd]
    if missing:
        raise ValueError(f"not a GPT-2 state dict: missing {missing} (got e.g. {sorted(sd)[:5]})")
    out = {"token_embedding.weight": sd["wte.weight"], "position_embedding.weight": sd["wpe.weight"],
           "final_norm.weight": sd["ln_f.weight"], "final_norm.bias": sd["ln_f.bias"]}
    for i in range(num_layers):
        g, c = f"h.{i}.", f"blocks.{i}."
        if g + "attn.c_attn.weight" not in sd:
            raise ValueError(f"the checkpoint has no block {i}: does num_layers={num_layers} match it?")
        q, k, v = sd[g + "attn.c_attn.weight"].t().chunk(3, dim=0)                      # 3 x (D, D), (out, in)
        qb, kb, vb = sd[g + "attn.c_attn.bias"].chunk(3)
        for name, w, b in (("query", q, qb), ("key", k, kb), ("value", v, vb)):
            out[c + f"attention.{name}.weight"], out[c + f"attention.{name}.bias"] = w, b
        for theirs, ours in GPT2_LINEARS.items():
            out[c + ours + ".weight"] = sd[g + theirs + ".weight"].t()                 # Conv1D (in, out) -> (out, in)
            out[c + ours + ".bias"] = sd[g + theirs + ".bias"]
        for theirs, ours in GPT2_NORMS.items():
            out[c + ours + ".weight"], out[c + ours + ".bias"] = sd[g + theirs + ".weight"], sd[g + theirs + ".bias"]
    return out


def load_gpt2_weights(model: GPT, state_dict: dict) -> list[str]:
    """Copy a GPT-2 state dict into ``model``, checking every shape; returns the names loaded."""
    course = gpt2_to_course_state_dict(state_dict, model.config.num_layers)
    own = model.state_dict()
    extra = [k for k in state_dict if k.removeprefix("transformer.").startswith(f"h.{model.config.num_layers}.")]
    if extra:
        raise ValueError(f"the checkpoint has more blocks than num_layers={model.config.num_layers} ({extra[0]})")
    with torch.no_grad():
        for name, tensor in course.items():
            if own[name].shape != tensor.shape:
                raise ValueError(f"shape mismatch for {name}: checkpoint {tuple(tensor.shape)}, model "
                                 f"{tuple(own[name].shape)}; do the configs agree?")
            own[name].copy_(tensor)
    return sorted(course)


def config_from_gpt2_state_dict(state_dict: dict, num_heads: int) -> GPTConfig:
    """Sizes read off the tensors' shapes (the number of heads is not visible in them: pass it)."""
    sd = {k.removeprefix("transformer."): v for k, v in state_dict.items()}
    layers = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("h."))
    V, D = sd["wte.weight"].shape
    return GPTConfig(vocab_size=V, context_length=sd["wpe.weight"].shape[0], d_model=D, num_heads=num_heads,
                     num_layers=layers, d_ff=sd["h.0.mlp.c_fc.weight"].shape[1])


def from_hf_model(hf_model) -> GPT:
    """A :class:`GPT` with the weights of a ``transformers.GPT2LMHeadModel`` (or ``GPT2Model``)."""
    model = GPT(GPTConfig.from_hf(hf_model.config))
    load_gpt2_weights(model, hf_model.state_dict())
    return model.eval()


def to_hf_model(model: GPT):
    """A ``transformers.GPT2LMHeadModel`` carrying ``model``'s weights: the inverse of :func:`from_hf_model`.

    Our names mapped back, each ``nn.Linear`` weight (out, in) transposed to ``Conv1D``'s (in, out), and W_q, W_k,
    W_v packed into one ``c_attn``; the output layer stays tied to the token table, as in GPT-2.
    """
    import transformers

    c = model.config
    hf = transformers.GPT2LMHeadModel(c.to_hf())
    own = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    sd = {"wte.weight": own["token_embedding.weight"], "wpe.weight": own["position_embedding.weight"],
          "ln_f.weight": own["final_norm.weight"], "ln_f.bias": own["final_norm.bias"]}
    for i in range(c.num_layers):
        g, b = f"h.{i}.", f"blocks.{i}."
        qkv = [f"{b}attention.{name}" for name in ("query", "key", "value")]
        sd[g + "attn.c_attn.weight"] = torch.cat([own[n + ".weight"] for n in qkv]).t()  # (D, 3 D), (in, out)
        sd[g + "attn.c_attn.bias"] = torch.cat([own[n + ".bias"] for n in qkv])
        for theirs, ours in GPT2_LINEARS.items():
            sd[g + theirs + ".weight"] = own[b + ours + ".weight"].t()                # (out, in) -> Conv1D (in, out)
            sd[g + theirs + ".bias"] = own[b + ours + ".bias"]
        for theirs, ours in GPT2_NORMS.items():
            sd[g + theirs + ".weight"], sd[g + theirs + ".bias"] = own[b + ours + ".weight"], own[b + ours + ".bias"]
    report = hf.transformer.load_state_dict(sd, strict=False)
    missing = [k for k in report.missing_keys if not k.endswith(("attn.bias", "attn.masked_bias"))]
    if missing or report.unexpected_keys:
        raise RuntimeError(f"GPT-2 names not matched: missing {missing}, unexpected {report.unexpected_keys}")
    return hf.eval()


# ---------------------------------------------------------------------------------- measuring models
@torch.no_grad()
def bits_per_byte(model: GPT, ids, token_bytes, stride: int | None = None, batch_size: int = 16,
                  device="cpu") -> float:
    """Bits per byte of a token stream: total -log2 p(token | earlier tokens) over the UTF-8 bytes predicted.

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
        batch = torch.zeros(len(chunk), T + 1, dtype=torch.long)
        scored = torch.zeros(len(chunk), T, dtype=torch.bool)                          # which targets count
        for j, s in enumerate(chunk):
            row = ids[s:s + T + 1]
            batch[j, :len(row)] = row
            scored[j, (0 if s == 0 else T - stride):len(row) - 1] = True
        logits = model(batch[:, :-1].to(device)).float().cpu()                          # (B, T, V)
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


# ------------------------------------------------------------------------------------------- Keras twin
def _keras_gpt_class():
    import keras
    from keras import ops

    from . import attention_keras

    class KerasGPT(keras.Model):
        """Keras twin of :class:`GPT` from ``utils.attention_keras.KerasTransformerEncoderBlock(norm_first=True)``:
        ``call(input_ids (B, T), attention_mask (B, T) or None) -> logits (B, T, V)`` (no cache)."""

        def __init__(self, config: GPTConfig, **kwargs):
            super().__init__(**kwargs)
            self.config = config
            D = config.d_model
            self.token_embedding = keras.layers.Embedding(config.vocab_size, D, name="token_embedding")
            self.position_embedding = keras.layers.Embedding(config.context_length, D, name="position_embedding")
            self.embedding_dropout = keras.layers.Dropout(config.dropout)
            self.blocks = [attention_keras.KerasTransformerEncoderBlock(
                D, config.num_heads, config.d_ff, dropout=config.dropout, activation=config.activation,
                norm_first=True, layer_norm_eps=config.layer_norm_eps, name=f"block_{i}")
                for i in range(config.num_layers)]
            self.final_norm = keras.layers.LayerNormalization(epsilon=config.layer_norm_eps, name="final_norm")

        def call(self, input_ids, attention_mask=None, training=None):
            T = ops.shape(input_ids)[1]
            x = self.token_embedding(input_ids) + self.position_embedding(ops.arange(T))[None]  # (B, T, D)
            x = self.embedding_dropout(x, training=training)
            mask = ops.tril(ops.ones((T, T), dtype="bool"))[None, None]                     # (1, 1, T, T)
            if attention_mask is not None:
                padding = ops.cast(attention_mask, "bool")[:, None, None, :]                 # (B, 1, 1, T)
                mask = ops.logical_and(mask, ops.logical_or(padding, ops.eye(T, dtype="bool")[None, None]))
            for block in self.blocks:
                x = block(x, mask=mask, training=training)
            return ops.matmul(self.final_norm(x), ops.transpose(self.token_embedding.embeddings))  # tied

    return KerasGPT


def copy_gpt_to_keras(torch_model: GPT, keras_model) -> None:
    """Copy every weight of a :class:`GPT` into a :class:`KerasGPT` of the same config."""
    from .attention_keras import copy_encoder_block_to_keras, copy_norm_to_keras

    if not keras_model.built:
        keras_model(np.zeros((1, 2), dtype="int64"))  # Keras creates the weights on the first call
    keras_model.token_embedding.embeddings.assign(torch_model.token_embedding.weight.detach().cpu().numpy())
    keras_model.position_embedding.embeddings.assign(torch_model.position_embedding.weight.detach().cpu().numpy())
    for torch_block, keras_block in zip(torch_model.blocks, keras_model.blocks, strict=True):
        copy_encoder_block_to_keras(torch_block, keras_block)
    copy_norm_to_keras(torch_model.final_norm, keras_model.final_norm)


# PEP 562: KerasGPT is built on first access, so importing never starts TensorFlow
__getattr__ = lazy_keras_classes(__name__, ("KerasGPT",), lambda: {"KerasGPT": _keras_gpt_class()})
