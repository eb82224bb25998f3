"""Decoding: how a language model's next-token logits become text (chapter 7) — the KV cache that makes each
step cheap, the logits filters (repetition penalty, temperature, top-k, top-p) and the generation loop.

Works with any model called as ``model(input_ids (B, T), attention_mask (B, P + T), position_ids (B, T),
cache) -> logits (B, T, V)`` that appends its keys and values to the cache, such as :class:`utils.gpt.GPT`.

Shape legend
    B   batch size;  V  vocabulary size
    T   tokens fed in this call;  P  positions already in the KV cache;  P + T  all positions so far
    L   number of blocks;  H  heads;  dk  the width of one head
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # annotations only: utils.gpt imports nothing from here, so no import cycle
    from .gpt import GPT, GPTConfig


# --------------------------------------------------------------------------------------------- KV cache
class KVCache:
    """The keys and values every block has computed so far: ``keys[l]``, ``values[l]`` of shape (B, H, P, dk).

    A new token's query needs the keys and values of all earlier positions; they never change (causal
    attention), so they are kept instead of recomputed. One cache belongs to one batch of prompts: start a
    new one for a new prompt.
    """

    def __init__(self):
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []

    @property
    def length(self) -> int:
        """P: positions cached (0 when empty)."""
        return self.keys[0].shape[2] if self.keys else 0

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        """Append this call's k, v (B, H, T, dk) for block ``layer``; return all of them (B, H, P + T, dk)."""
        if layer == len(self.keys):
            self.keys.append(k)
            self.values.append(v)
        elif layer < len(self.keys):
            self.keys[layer] = torch.cat([self.keys[layer], k], dim=2)              # (B, H, P + T, dk)
            self.values[layer] = torch.cat([self.values[layer], v], dim=2)
        else:
            raise ValueError(f"layer {layer} updated before layer {len(self.keys)}: blocks run in order")
        return self.keys[layer], self.values[layer]

    def nbytes(self) -> int:
        """Bytes actually held by the cached tensors."""
        return sum(t.numel() * t.element_size() for t in (*self.keys, *self.values))


def kv_cache_bytes(config: GPTConfig, length: int, batch_size: int = 1, bytes_per_value: int = 4) -> int:
    """2 (keys and values) x L x H x dk x length x batch x bytes per number."""
    d_head = config.d_model // config.num_heads
    return 2 * config.num_layers * config.num_heads * d_head * length * batch_size * bytes_per_value



# ---------------------------------------------------------------------------------------- logits filters
def apply_repetition_penalty(logits, input_ids, penalty: float):
    """Make tokens already in ``input_ids`` (B, T) less likely: their logit is divided by ``penalty`` when
    positive and multiplied by it when negative (CTRL, Keskar et al. 2019). logits (B, V) -> (B, V)."""
    if not penalty > 0:
        raise ValueError(f"repetition penalty must be > 0, got {penalty!r}")
    seen = torch.gather(logits, 1, input_ids)                                          # (B, T)
    seen = torch.where(seen < 0, seen * penalty, seen / penalty)
    return logits.scatter(1, input_ids, seen)


def apply_temperature(logits, temperature: float):
    """logits / temperature: < 1 sharpens the distribution, > 1 flattens it. Temperature 0 is greedy, not a
    division: use ``do_sample=False``."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0 (for temperature 0 use greedy decoding), got {temperature!r}")
    return logits / temperature


def top_k_filter(logits, k: int):
    """Keep the ``k`` largest logits of each row (ties with the k-th kept too), set the rest to -inf. (B, V)."""
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"top_k must be a positive int, got {k!r}")
    k = min(k, logits.shape[-1])
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]                               # (B, 1)
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits, p: float):
    """Nucleus: keep the most likely tokens until their probabilities add up to ``p`` (the token that crosses
    ``p`` included, at least one token kept); the rest -> -inf. (B, V)."""
    if not 0.0 < p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {p!r}")
    sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
    probs = sorted_logits.softmax(dim=-1)
    mass_before = probs.cumsum(dim=-1) - probs                                         # mass of better tokens
    drop_sorted = mass_before >= p
    drop_sorted[..., 0] = False
    drop = drop_sorted.scatter(-1, order, drop_sorted)                                 # back to vocabulary order
    return logits.masked_fill(drop, float("-inf"))


def sampling_distribution(logits, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None):
    """The probabilities a sampling step draws from: temperature, then top-k, then top-p, then softmax.
    logits (B, V) -> probabilities (B, V), zero for every filtered token."""
    logits = apply_temperature(logits, temperature)
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    return logits.softmax(dim=-1)


def positions_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position of each token counting real tokens only (left padding does not shift positions): (B, T)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


@torch.no_grad()
def generate(model: GPT, input_ids, max_new_tokens: int, attention_mask=None, use_cache: bool = True,
             do_sample: bool = False, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
             repetition_penalty: float | None = None, generator: torch.Generator | None = None):
    """Append ``max_new_tokens`` tokens to ``input_ids`` (B, T) -> (B, T + max_new_tokens).

    Each step: logits of the last position -> repetition penalty -> (sampling only) temperature, top-k, top-p
    -> arg-max (greedy) or a draw from the softmax. Batched prompts of different lengths are *left*-padded, with
    ``attention_mask`` (B, T) marking real tokens. ``use_cache=False`` recomputes the whole sequence each step.
    Past the model's ``context_length`` the model sees the last ``context_length`` tokens: the window slides by one
    token a step and the cache starts afresh, because learned positions cannot be shifted inside it.
    """
    if not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be an int >= 0, got {max_new_tokens!r}")
    model.eval()
    ids = input_ids
    mask = torch.ones_like(ids, dtype=torch.bool) if attention_mask is None else attention_mask.bool()
    if mask.shape != ids.shape:
        raise ValueError(f"attention_mask must have the shape of input_ids {tuple(ids.shape)}, got {tuple(mask.shape)}")
    window = model.config.context_length
    start = fed = max(0, ids.shape[1] - window)  # first column the model sees; columns already in the cache
    cache = KVCache() if use_cache else None
    for _ in range(max_new_tokens):
        if ids.shape[1] - start > window:  # the window is full: slide it and rebuild the cache from scratch
            start = fed = ids.shape[1] - window
            cache = KVCache() if use_cache else None
        window_mask = mask[:, start:]
        positions = positions_from_mask(window_mask)                                   # (B, T_window)
        if use_cache:
            logits = model(ids[:, fed:], window_mask, positions[:, fed - start:], cache)[:, -1]  # (B, V)
            fed = ids.shape[1]
        else:
            logits = model(ids[:, start:], window_mask, positions)[:, -1]
        if repetition_penalty is not None:
            logits = apply_repetition_penalty(logits, ids, repetition_penalty)
        if do_sample:
            probs = sampling_distribution(logits, temperature, top_k, top_p)             # (B, V)
            next_id = torch.multinomial(probs, 1, generator=generator)                  # (B, 1)
        else:
            next_id = logits.argmax(dim=-1, keepdim=True)                               # (B, 1)
        ids = torch.cat([ids, next_id], dim=1)
        mask = torch.cat([mask, torch.ones_like(next_id, dtype=torch.bool)], dim=1)
    return ids


# ------------------------------------------------------------------------------------------ exercises
EXERCISES = ("min_p_kept", "top_k_probs")


def exercise_reference(name: str, logits: torch.Tensor) -> torch.Tensor:
    """Expected answer of chapter 7's exercise ``name`` (one of :data:`EXERCISES`) for ``logits`` (B, V), from
    ``transformers``' own logits processors, independently of the learner's formula, so the check cell does not
    display how.

    min_p_kept: (B, V) bool, the tokens ``MinPLogitsWarper(0.1)`` keeps.
    top_k_probs: (V,) the distribution sampling draws from for ``logits[0]`` with temperature 0.5, then top-k 5.
    """
    from transformers import MinPLogitsWarper, TemperatureLogitsWarper, TopKLogitsWarper

    if name not in EXERCISES:
        raise ValueError(f"name must be one of {', '.join(EXERCISES)}, got {name!r}")
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
        raise ValueError(f"logits must be a (B, V) tensor, got {getattr(logits, 'shape', type(logits).__name__)}")
    no_history = torch.zeros(len(logits), 1, dtype=torch.long)  # these processors do not read the history
    if name == "min_p_kept":
        return torch.isfinite(MinPLogitsWarper(0.1)(no_history, logits.clone()))
    cooled = TemperatureLogitsWarper(0.5)(no_history[:1], logits[:1].clone())
    return TopKLogitsWarper(5)(no_history[:1], cooled).softmax(dim=-1)[0]
