"""LoRA (Hu et al., 2021): fine-tune a frozen ``Linear`` W through a low-rank update,
``h = W x + (alpha / r) B A x``, with A (r, in) and B (out, r) the only new, trainable weights.

B starts at zero, so the adapted model starts exactly where the pretrained one was; after training the update can
be merged, ``W' = W + (alpha / r) B A``, and the model runs at its original cost.

Shape legend
    r     the rank of the update
    I, O  in_features and out_features of the adapted Linear
    ...   any leading dimensions of the input (B, T for a sequence)
"""
import torch
from torch import nn

from . import _validate as check


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable rank-``r`` update: x (..., I) -> (..., O)."""

    def __init__(self, base: nn.Linear, r: int = 8, alpha: float = 16.0):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"base must be a torch.nn.Linear, got {type(base).__name__}")
        check.positive_int("r", r)
        check.number("alpha", alpha, 0.0, low_open=True)
        if r > min(base.in_features, base.out_features):
            raise ValueError(f"r={r} is above min(in_features, out_features) = "
                             f"{min(base.in_features, base.out_features)}: no longer a low-rank update")
        self.base, self.r, self.alpha, self.scaling = base, r, alpha, alpha / r
        self.in_features, self.out_features = base.in_features, base.out_features  # read like a Linear's
        base.requires_grad_(False)
        # A like a Linear's default init (Kaiming-uniform), B zero: the update B A starts at exactly 0
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, device=base.weight.device))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, device=base.weight.device))
        nn.init.kaiming_uniform_(self.lora_A, a=5 ** 0.5)

    def forward(self, x):
        update = (x @ self.lora_A.T) @ self.lora_B.T               # (..., r) then (..., O): never forms B A
        return self.base(x) + self.scaling * update

    def merged(self) -> nn.Linear:
        """A plain ``nn.Linear`` with W + (alpha / r) B A: the same function, no extra cost at inference."""
        out = nn.Linear(self.base.in_features, self.base.out_features, bias=self.base.bias is not None,
                        device=self.base.weight.device)
        with torch.no_grad():
            out.weight.copy_(self.base.weight + self.scaling * self.lora_B @ self.lora_A)   # (O, I)
            if self.base.bias is not None:
                out.bias.copy_(self.base.bias)
        return out


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, new)


def add_lora(model: nn.Module, targets=("query", "value"), r: int = 8, alpha: float = 16.0,
             train_also=("classifier",)) -> list[str]:
    """Freeze ``model`` and wrap every ``nn.Linear`` whose name ends with one of ``targets`` in a
    :class:`LoRALinear`; parameters whose name starts with one of ``train_also`` (the new task head) stay
    trainable. Returns the wrapped modules' names. Nothing changes when no Linear matches (``ValueError``)."""
    if isinstance(targets, str) or not targets or not all(isinstance(t, str) for t in targets):
        raise TypeError(f"targets must be a non-empty list of module-name endings such as ('query', 'value'), "
                        f"got {targets!r}")
    names = [name for name, module in model.named_modules()
             if isinstance(module, nn.Linear) and name.rsplit(".", 1)[-1] in targets]
    if not names:
        linears = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, nn.Linear)})
        raise ValueError(f"no nn.Linear named {list(targets)} in the model; accepted endings here: {linears}")
    wrapped = {name: LoRALinear(model.get_submodule(name), r, alpha) for name in names}  # all built, then swapped
    model.requires_grad_(False)
    for name, module in wrapped.items():
        _replace(model, name, module)
        module.lora_A.requires_grad_(True)
        module.lora_B.requires_grad_(True)
    for name, p in model.named_parameters():
        if name.startswith(tuple(train_also)):
            p.requires_grad_(True)
    return names


def merge_lora(model: nn.Module) -> int:
    """Replace every :class:`LoRALinear` in ``model`` by its merged ``nn.Linear`` (in place); returns how many."""
    names = [name for name, m in model.named_modules() if isinstance(m, LoRALinear)]
    for name in names:
        _replace(model, name, model.get_submodule(name).merged())
    return len(names)


def trainable_share(model: nn.Module) -> tuple[int, int]:
    """(trainable parameters, all parameters) of ``model``."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def adapter_state_dict(model: nn.Module) -> dict:
    """Only what fine-tuning changed: every trainable tensor (the LoRA A and B and the task head), detached."""
    return {name: p.detach().cpu().contiguous() for name, p in model.named_parameters() if p.requires_grad}


def copy_lora_to_peft(model: nn.Module, peft_model, to_peft_name) -> int:
    """Copy each :class:`LoRALinear`'s A and B into the matching ``peft`` LoRA layer of ``peft_model``.
    ``to_peft_name(course_module_name)`` gives the module's name inside the Hugging Face model (e.g.
    ``utils.deploy.course_to_hf_name``). Returns the number of layers copied; every one must exist in peft."""
    peft_modules = dict(peft_model.named_modules())
    pairs = []
    for name, module in model.named_modules():
        if isinstance(module, LoRALinear):
            target = "base_model.model." + to_peft_name(name + ".weight").removesuffix(".weight")
            if target not in peft_modules or not hasattr(peft_modules[target], "lora_A"):
                raise ValueError(f"peft_model has no LoRA layer {target!r} for {name!r}; wrap the same targets")
            peft_layer = peft_modules[target]
            if peft_layer.scaling["default"] != module.scaling:
                raise ValueError(f"{target}: peft's scaling {peft_layer.scaling['default']} differs from ours "
                                 f"{module.scaling}; use the same r and lora_alpha")
            pairs.append((peft_layer, module))
    with torch.no_grad():
        for peft_layer, module in pairs:
            peft_layer.lora_A["default"].weight.copy_(module.lora_A)
            peft_layer.lora_B["default"].weight.copy_(module.lora_B)
    return len(pairs)
