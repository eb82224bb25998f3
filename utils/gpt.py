"""GPT (Radford et al., 2018/2019): a decoder-only Transformer trained to predict the next token (chapter 7).

Read top to bottom: the config, the causal self-attention, the block, the model, the next-token loss. The model
is token + learned position embeddings -> L pre-LayerNorm blocks (chapter 5's encoder block with its attention
made causal) -> a final LayerNorm -> logits through the *transposed token embedding* (tied input/output weights).

Elsewhere: the KV cache the attention reads and extends, and the decoding rules, in ``utils.decoding``; GPT-2's
weights to and from ``transformers`` in ``utils.gpt_interop``; the Keras twin in ``utils.gpt_keras``; bits per byte
and the n-gram baseline in ``utils.lm_eval``.

Shape legend
    B   batch size
    T   tokens fed in this call;  P  positions already in the KV cache;  P + T  all positions so far
    D   model width ``d_model``;  H  heads;  dk = D / H  the width of one head;  F  feed-forward width
    L   number of blocks;  V  vocabulary size;  Tmax  ``context_length``

Masks are boolean with True = may attend / real token, as in ``utils.attention``. ``attention_mask`` is
(B, P + T): one entry per position the model can see, cached ones included (0/False = padding).
Arguments are checked in ``GPTConfig`` and ``GPT.forward`` (the entry); the blocks and their attention run
unchecked, so a decoding step costs no check per layer.
"""
import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .attention import ACTIVATIONS, MultiHeadAttention, PositionwiseFeedForward, attend


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
        for name in ("vocab_size", "context_length", "d_model", "num_heads", "num_layers", "d_ff"):
            if name == "d_ff" and self.d_ff is None:
                self.d_ff = 4 * self.d_model
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.d_model % self.num_heads:
            raise ValueError(f"d_model={self.d_model} must be divisible by num_heads={self.num_heads}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if not self.layer_norm_eps > 0:
            raise ValueError(f"layer_norm_eps must be > 0, got {self.layer_norm_eps!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    def num_parameters(self) -> int:
        """The count by formula: embeddings V D + Tmax D; per block 4 (D^2 + D) attention, 2 D F + F + D
        feed-forward, 4 D for two LayerNorms; a final LayerNorm 2 D; the output layer is tied (0)."""
        D, F_, L = self.d_model, self.d_ff, self.num_layers
        block = 4 * (D * D + D) + (2 * D * F_ + F_ + D) + 4 * D
        return self.vocab_size * D + self.context_length * D + L * block + 2 * D


# ------------------------------------------------------------------------------------------- attention
def causal_attention_mask(T: int, P: int = 0, padding=None, device=None) -> torch.Tensor:
    """Which of the P + T keys each of the T new queries may attend to: (1 or B, 1, T, P + T) bool.

    Query i sits at position P + i and sees keys 0..P + i (causal). ``padding`` (B, P + T) bool removes padded
    keys; a query always keeps itself, so a padded query's row is never empty (its output is unused, but an
    all-masked row would make the fused kernel return NaN). The mask is made here, once per model call, so its
    shape is checked here too.
    """
    keys = torch.arange(P + T, device=device)
    queries = torch.arange(P, P + T, device=device)[:, None]
    allowed = keys[None, :] <= queries                                                 # (T, P + T)
    if padding is None:
        return allowed[None, None]                                                     # (1, 1, T, P + T)
    if padding.dim() != 2 or padding.shape[1] != P + T:
        raise ValueError(f"attention_mask must have shape (B, P + T) = (B, {P + T}), got {tuple(padding.shape)}")
    itself = keys[None, :] == queries                                                  # (T, P + T)
    return (allowed & (padding.bool()[:, None, :] | itself))[:, None]                  # (B, 1, T, P + T)


class CausalSelfAttention(MultiHeadAttention):
    """Chapter 5's multi-head attention (its layers ``query``, ``key``, ``value``, ``output``), used causally and
    able to read and extend a ``utils.decoding.KVCache``.

    ``forward(x (B, T, D), mask (1 or B, 1, T, P + T), cache=None, layer=0) -> (B, T, D)``; the mask comes from
    :func:`causal_attention_mask`. ``fused=True`` calls PyTorch's fused kernel (``GPT.set_fused``).
    """

    def __init__(self, config: GPTConfig):
        super().__init__(config.d_model, config.num_heads, config.dropout)

    def forward(self, x, mask, cache=None, layer=0):
        B, T, _ = x.shape
        q = self.split_heads(self.query(x))                                            # (B, H, T, dk)
        k = self.split_heads(self.key(x))                                              # (B, H, T, dk)
        v = self.split_heads(self.value(x))                                            # (B, H, T, dk)
        if cache is not None:
            k, v = cache.update(layer, k, v)                                           # (B, H, P + T, dk)
        if self.fused:
            p = self.dropout.p if self.training else 0.0
            heads = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        else:
            heads, weights = attend(q, k, v, mask, self.dropout)                       # chapter 5's formula
            self.last_weights = weights.detach()                                       # (B, H, T, P + T)
        heads = heads.transpose(1, 2).reshape(B, T, self.d_model)                     # (B, T, H*dk) = (B, T, D)
        return self.output(heads)


# ----------------------------------------------------------------------------------------------- block
class GPTBlock(nn.Module):
    """A pre-LN block: x + attn(LN(x)), then x + MLP(LN(x)); chapter 5's encoder block with ``norm_first=True``,
    its attention causal. ``forward(x (B, T, D), mask, cache=None, layer=0) -> (B, T, D)``."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.attention = CausalSelfAttention(config)
        self.attention_norm = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.feed_forward = PositionwiseFeedForward(config.d_model, config.d_ff, config.activation, config.dropout)
        self.feed_forward_norm = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.residual_dropout = nn.Dropout(config.dropout)

    def forward(self, x, mask, cache=None, layer=0):
        x = x + self.residual_dropout(self.attention(self.attention_norm(x), mask, cache, layer))   # (B, T, D)
        return x + self.residual_dropout(self.feed_forward(self.feed_forward_norm(x)))              # (B, T, D)


# ----------------------------------------------------------------------------------------------- model
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
        mask = causal_attention_mask(T, P, attention_mask, device=input_ids.device)      # (1 or B, 1, T, P + T)
        for layer, block in enumerate(self.blocks):
            x = block(x, mask, cache, layer)                                              # (B, T, D)
        return self.final_norm(x) @ self.token_embedding.weight.T                          # (B, T, V), tied


# ------------------------------------------------------------------------------------- next-token loss
def next_token_loss(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of predicting token t + 1 from position t: logits (B, T, V) vs ids (B, T).

    The shift is explicit: position t's logits are scored against ``input_ids[:, t + 1]``; the last position has
    no label."""
    return F.cross_entropy(logits[:, :-1].flatten(0, 1), input_ids[:, 1:].flatten())


def flat_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of logits (B, T, V) against already shifted targets (B, T): ``utils.train.fit``'s loss."""
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten())
