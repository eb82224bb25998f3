"""GPT-2's weights in :mod:`utils.gpt`'s model and back (chapter 7): ``transformers``' configs and models, and the
released GPT-2 state dict (OpenAI / Hugging Face names), with every tensor's name and shape checked.

GPT-2 stores its linear layers as ``Conv1D`` with weight (in, out) — the transpose of ``nn.Linear``'s (out, in) —
and packs W_q, W_k, W_v into one ``c_attn`` (D, 3 D); the tables below give the other names. ``transformers`` is
imported only inside the functions that need it.

Shape legend: D model width, V vocabulary size, Tmax ``context_length``, as in :mod:`utils.gpt`.
"""
import torch

from .gpt import GPT, GPTConfig

# GPT-2's names for a block's layers -> ours (the attention's packed c_attn is split by hand)
GPT2_LINEARS = {"attn.c_proj": "attention.output", "mlp.c_fc": "feed_forward.dense_in",
                "mlp.c_proj": "feed_forward.dense_out"}
GPT2_NORMS = {"ln_1": "attention_norm", "ln_2": "feed_forward_norm"}
# transformers' activation names -> ours; config_to_hf reads it backwards ("gelu_new" for our "gelu_tanh")
HF_ACTIVATIONS = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu", "relu": "relu"}


def config_from_hf(hf_config) -> GPTConfig:
    """A :class:`GPTConfig` from a ``transformers.GPT2Config`` (dropout off)."""
    if hf_config.activation_function not in HF_ACTIVATIONS:
        raise ValueError(f"activation_function {hf_config.activation_function!r} is not supported; "
                         f"accepted: {sorted(HF_ACTIVATIONS)}")
    return GPTConfig(vocab_size=hf_config.vocab_size, context_length=hf_config.n_positions, d_model=hf_config.n_embd,
                     num_heads=hf_config.n_head, num_layers=hf_config.n_layer,
                     d_ff=hf_config.n_inner or 4 * hf_config.n_embd, dropout=0.0,
                     layer_norm_eps=hf_config.layer_norm_epsilon,
                     activation=HF_ACTIVATIONS[hf_config.activation_function])


def config_to_hf(config: GPTConfig):
    """The matching ``transformers.GPT2Config`` (dropout off, no end-of-text token): the inverse of
    :func:`config_from_hf`."""
    import transformers

    activation = {"gelu_tanh": "gelu_new", "gelu": "gelu", "relu": "relu"}[config.activation]
    return transformers.GPT2Config(
        vocab_size=config.vocab_size, n_positions=config.context_length, n_embd=config.d_model,
        n_layer=config.num_layers, n_head=config.num_heads, n_inner=config.d_ff,
        layer_norm_epsilon=config.layer_norm_eps, activation_function=activation, resid_pdrop=0.0, embd_pdrop=0.0,
        attn_pdrop=0.0, bos_token_id=0, eos_token_id=None)


# ---------------------------------------------------------------------------------- GPT-2 weights in
def gpt2_to_course_state_dict(state_dict: dict, num_layers: int) -> dict:
    """Rename (and reshape) a Hugging Face / OpenAI GPT-2 state dict to :class:`utils.gpt.GPT`'s names.

    Works with or without the ``transformer.`` prefix; ``attn.bias`` / ``attn.masked_bias`` (old causal-mask
    buffers) and a tied ``lm_head.weight`` are skipped.
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
    """A :class:`utils.gpt.GPT` with the weights of a ``transformers.GPT2LMHeadModel`` (or ``GPT2Model``)."""
    model = GPT(config_from_hf(hf_model.config))
    load_gpt2_weights(model, hf_model.state_dict())
    return model.eval()


# --------------------------------------------------------------------------------- GPT-2 weights out
def to_hf_model(model: GPT):
    """A ``transformers.GPT2LMHeadModel`` carrying ``model``'s weights: the inverse of :func:`from_hf_model`.

    Our names mapped back, each ``nn.Linear`` weight (out, in) transposed to ``Conv1D``'s (in, out), and W_q, W_k,
    W_v packed into one ``c_attn``; the output layer stays tied to the token table, as in GPT-2.
    """
    import transformers

    c = model.config
    hf = transformers.GPT2LMHeadModel(config_to_hf(c))
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
