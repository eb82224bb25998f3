"""Real BERT weights in :mod:`utils.bert`'s model: Hugging Face parameter names translated to ours, a checkpoint's
``safetensors`` file read, and every tensor copied in only after every name and shape was checked.

Outside an encoder block the names are already Hugging Face's (``embeddings.word_embeddings``, ``pooler.dense``,
``cls.predictions``, ``classifier``...); inside one they are :mod:`utils.attention`'s, so one small table
(:data:`HF_BLOCK_NAMES`) translates them. A checkpoint folder (all-MiniLM-L6-v2's, bert-base-uncased's) holds a
``config.json`` and a ``model.safetensors``: :func:`from_pretrained` builds the model from the first and loads the
second. Writing our weights back under Hugging Face's names is ``utils.deploy.save_model_folder``.
"""
import pathlib
import re

import torch
from torch import nn

from .bert import BertConfig, BertModel

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
    """Translate a Hugging Face BERT parameter name to :mod:`utils.bert`'s, e.g.
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
    """Copy a Hugging Face BERT state dict into ``model`` (a ``utils.bert.BertModel`` or a model holding one as
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
