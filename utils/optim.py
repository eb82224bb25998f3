"""Optimisers and learning-rate schedules from their formulas, plus the learning-rate range test.

The optimisers update a list of PyTorch tensors in place, like ``torch.optim`` (``step()``, ``zero_grad()``,
a settable ``lr``), so any PyTorch training loop can use them; their switches name the conventions on which
PyTorch and Keras differ (see chapter 2, section 4):

- ``eps_inside_sqrt``: RMSprop divides by ``sqrt(v) + eps`` in PyTorch, by ``sqrt(v + eps)`` in Keras.
- ``eps_hat``: Adam adds ``eps`` to the bias-corrected ``sqrt(v_hat)`` in PyTorch, to the uncorrected
  ``sqrt(v)`` in Keras (the "epsilon hat" of the Adam paper's section 2).
- ``decoupled_weight_decay``: PyTorch's ``weight_decay`` on SGD, RMSprop and Adam is an L2 penalty added to the
  gradient; Keras' ``weight_decay`` (on every optimiser) and ``AdamW`` in both shrink the weights directly,
  ``w <- w - lr * wd * w``, outside the adaptive scaling.

Schedules are functions ``step -> learning rate`` (step 0 is the first update).

Shapes: every parameter keeps its own shape; the state (momentum, squared-gradient averages) has the same shape.
"""
import copy
import math

import torch


def _check_positive(name, value, allow_zero=False):
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0 or (value == 0 and not allow_zero):
        accepted = "a number >= 0" if allow_zero else "a number > 0"
        raise ValueError(f"{name} must be {accepted}, got {value!r}")


def _check_fraction(name, value):
    if not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"{name} must lie in [0, 1), got {value!r}")


class Optimizer:
    """The shared part: a list of parameters, a learning rate, per-parameter state and a step counter."""

    def __init__(self, params, lr: float, weight_decay: float = 0.0, decoupled_weight_decay: bool = False):
        self.params = [p for p in params]
        if not self.params or not all(isinstance(p, torch.Tensor) for p in self.params):
            raise TypeError("params must be a non-empty iterable of torch tensors (e.g. model.parameters())")
        _check_positive("lr", lr)
        _check_positive("weight_decay", weight_decay, allow_zero=True)
        self.lr, self.weight_decay, self.decoupled_weight_decay = lr, weight_decay, decoupled_weight_decay
        self.state = [{} for _ in self.params]
        self.steps = 0

    def zero_grad(self, set_to_none: bool = True):
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    @torch.no_grad()
    def step(self):
        """One update of every parameter that has a gradient."""
        self.steps += 1
        for p, state in zip(self.params, self.state, strict=True):
            if p.grad is None:
                continue
            g = p.grad
            if self.weight_decay and self.decoupled_weight_decay:
                p.mul_(1 - self.lr * self.weight_decay)  # w <- w - lr * wd * w, before the update (as both do)
            elif self.weight_decay:
                g = g + self.weight_decay * p  # L2: the gradient of (wd / 2) ||w||^2 joins the data gradient
            p.sub_(self.update(g, state))

    def update(self, g, state):
        """The amount subtracted from a parameter, given its gradient ``g`` and its state dict."""
        raise NotImplementedError


class SGD(Optimizer):
    """w <- w - lr * b with b = momentum * b + g (PyTorch's form; b = g on the first step).

    ``nesterov``: w <- w - lr * (g + momentum * b). Keras keeps v = momentum * v - lr * g and adds it; with a
    constant learning rate both forms take identical steps (v = -lr * b).
    """

    def __init__(self, params, lr: float, momentum: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0,
                 decoupled_weight_decay: bool = False):
        super().__init__(params, lr, weight_decay, decoupled_weight_decay)
        _check_fraction("momentum", momentum)
        if nesterov and momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0, got momentum=0")
        self.momentum, self.nesterov = momentum, nesterov

    def update(self, g, state):
        if self.momentum == 0:
            return self.lr * g
        b = state["momentum"] = g.clone() if "momentum" not in state else self.momentum * state["momentum"] + g
        return self.lr * (g + self.momentum * b if self.nesterov else b)


class RMSprop(Optimizer):
    """v = rho * v + (1 - rho) g^2;  w <- w - lr * g / (sqrt(v) + eps)   (``eps_inside_sqrt``: / sqrt(v + eps)).

    ``centered`` subtracts the squared running mean of g from v; ``momentum`` keeps b = momentum * b + g / denom
    and steps by lr * b. Defaults are PyTorch's (rho 0.99, eps 1e-8); Keras uses rho 0.9, eps 1e-7, inside.
    """

    def __init__(self, params, lr: float = 0.01, rho: float = 0.99, eps: float = 1e-8, momentum: float = 0.0,
                 centered: bool = False, eps_inside_sqrt: bool = False, weight_decay: float = 0.0,
                 decoupled_weight_decay: bool = False):
        super().__init__(params, lr, weight_decay, decoupled_weight_decay)
        _check_fraction("rho", rho)
        _check_fraction("momentum", momentum)
        _check_positive("eps", eps)
        self.rho, self.eps, self.momentum = rho, eps, momentum
        self.centered, self.eps_inside_sqrt = centered, eps_inside_sqrt

    def update(self, g, state):
        v = state["square_avg"] = self.rho * state.get("square_avg", torch.zeros_like(g)) + (1 - self.rho) * g * g
        if self.centered:
            m = state["grad_avg"] = self.rho * state.get("grad_avg", torch.zeros_like(g)) + (1 - self.rho) * g
            v = v - m * m
        denom = (v + self.eps).sqrt() if self.eps_inside_sqrt else v.sqrt() + self.eps
        if self.momentum == 0:
            return self.lr * g / denom
        b = state["momentum"] = self.momentum * state.get("momentum", torch.zeros_like(g)) + g / denom
        return self.lr * b


class Adam(Optimizer):
    """m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  w <- w - lr * m_hat / (sqrt(v_hat) + eps),
    with m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t), t = 1, 2, ...

    ``eps_hat=True`` is Keras' form: w <- w - lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps), the same
    as PyTorch's with eps replaced by eps * sqrt(1 - b2^t). ``weight_decay`` is L2 unless
    ``decoupled_weight_decay`` (then this is AdamW).
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, eps_hat: bool = False,
                 weight_decay: float = 0.0, decoupled_weight_decay: bool = False):
        super().__init__(params, lr, weight_decay, decoupled_weight_decay)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        _check_fraction("betas[0]", betas[0])
        _check_fraction("betas[1]", betas[1])
        _check_positive("eps", eps)
        self.betas, self.eps, self.eps_hat = tuple(betas), eps, eps_hat

    def update(self, g, state):
        b1, b2 = self.betas
        t = self.steps
        m = state["m"] = b1 * state.get("m", torch.zeros_like(g)) + (1 - b1) * g
        v = state["v"] = b2 * state.get("v", torch.zeros_like(g)) + (1 - b2) * g * g
        if self.eps_hat:
            return self.lr * math.sqrt(1 - b2**t) / (1 - b1**t) * m / (v.sqrt() + self.eps)
        return self.lr * (m / (1 - b1**t)) / ((v / (1 - b2**t)).sqrt() + self.eps)


def AdamW(params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.01,
          eps_hat: bool = False) -> Adam:
    """Adam with decoupled weight decay (Loshchilov & Hutter): w <- w - lr * wd * w, then the Adam step."""
    return Adam(params, lr, betas, eps, eps_hat, weight_decay, decoupled_weight_decay=True)


# ---- learning-rate schedules: step (0 = first update) -> learning rate ---------------------------------

def _check_step(step, total_steps=None):
    if not isinstance(step, int) or step < 0:
        raise ValueError(f"step must be an int >= 0, got {step!r}")
    if total_steps is not None and (not isinstance(total_steps, int) or total_steps < 1):
        raise ValueError(f"total_steps must be an int >= 1, got {total_steps!r}")


def step_decay(step: int, base_lr: float, step_size: int, gamma: float = 0.1) -> float:
    """base_lr * gamma ** floor(step / step_size): drop by ``gamma`` every ``step_size`` steps."""
    _check_step(step)
    if not isinstance(step_size, int) or step_size < 1:
        raise ValueError(f"step_size must be an int >= 1, got {step_size!r}")
    return base_lr * gamma ** (step // step_size)


def cosine_decay(step: int, base_lr: float, total_steps: int, min_lr: float = 0.0) -> float:
    """min_lr + (base_lr - min_lr) (1 + cos(pi t / T)) / 2 for t <= T, then min_lr."""
    _check_step(step, total_steps)
    t = min(step, total_steps)
    return min_lr + (base_lr - min_lr) * (1 + math.cos(math.pi * t / total_steps)) / 2


def linear_warmup_decay(step: int, base_lr: float, warmup_steps: int, total_steps: int) -> float:
    """BERT's schedule: base_lr * t / W for t < W, then base_lr * (T - t) / (T - W), never below 0."""
    _check_step(step, total_steps)
    if not isinstance(warmup_steps, int) or not 0 <= warmup_steps < total_steps:
        raise ValueError(f"warmup_steps must be an int in [0, total_steps={total_steps}), got {warmup_steps!r}")
    if step < warmup_steps:
        return base_lr * step / warmup_steps
    return base_lr * max(0.0, (total_steps - step) / (total_steps - warmup_steps))


def one_cycle(step: int, max_lr: float, total_steps: int, pct_start: float = 0.3, div_factor: float = 25.0,
              final_div_factor: float = 1e4) -> float:
    """Smith's one-cycle policy (PyTorch's two-phase cosine form): from max_lr / div_factor up to max_lr over the
    first pct_start of the steps, then down to max_lr / (div_factor * final_div_factor) at step T - 1."""
    _check_step(step, total_steps)
    if not 0 < pct_start < 1:
        raise ValueError(f"pct_start must lie in (0, 1), got {pct_start!r}")
    start, end = max_lr / div_factor, max_lr / (div_factor * final_div_factor)
    peak = pct_start * total_steps - 1  # the step at which max_lr is reached
    if step <= peak:
        lo, hi, frac = start, max_lr, step / peak
    else:
        lo, hi, frac = max_lr, end, min(1.0, (step - peak) / (total_steps - 1 - peak))
    return hi + (lo - hi) * (1 + math.cos(math.pi * frac)) / 2


def set_lr(optimizer, lr: float) -> None:
    """Set the learning rate of a ``torch.optim`` optimiser (every group) or of one from this module."""
    if isinstance(optimizer, Optimizer):
        optimizer.lr = lr
    elif hasattr(optimizer, "param_groups"):
        for group in optimizer.param_groups:
            group["lr"] = lr
    else:
        raise TypeError(f"optimizer must be a torch.optim optimiser or a utils.optim.Optimizer, "
                        f"got {type(optimizer).__name__}")


# ---- the learning-rate range test ----------------------------------------------------------------------

def lr_range_test(model, loader, loss_fn, make_optimizer, lr_min: float = 1e-5, lr_max: float = 1.0,
                  steps: int = 100, smoothing: float = 0.9, device="cpu") -> dict:
    """Train a copy of ``model`` for ``steps`` mini-batches while the learning rate grows geometrically from
    ``lr_min`` to ``lr_max``; stop early when the smoothed loss exceeds 4x its best. ``model`` is untouched.

    ``make_optimizer(parameters) -> optimizer``. Returns ``{"lr": [...], "loss": [...] (smoothed),
    "suggested_lr": float}``, the suggestion being a tenth of the learning rate with the lowest smoothed loss.
    """
    if not 0 < lr_min < lr_max:
        raise ValueError(f"need 0 < lr_min < lr_max, got lr_min={lr_min!r}, lr_max={lr_max!r}")
    if not isinstance(steps, int) or steps < 2:
        raise ValueError(f"steps must be an int >= 2, got {steps!r}")
    trial = copy.deepcopy(model).to(device).train()
    optimizer = make_optimizer(trial.parameters())
    lrs, losses, avg, batches = [], [], 0.0, iter(())
    for i in range(steps):
        try:
            inputs, targets = next(batches)
        except StopIteration:
            batches = iter(loader)
            inputs, targets = next(batches)
        lr = lr_min * (lr_max / lr_min) ** (i / (steps - 1))
        set_lr(optimizer, lr)
        loss = loss_fn(trial(inputs.to(device)), targets.to(device))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        avg = smoothing * avg + (1 - smoothing) * loss.item()
        smoothed = avg / (1 - smoothing ** (i + 1))  # bias-corrected, like Adam's m_hat
        lrs.append(lr)
        losses.append(smoothed)
        if not math.isfinite(smoothed) or smoothed > 4 * min(losses):
            break
    best = min(range(len(losses)), key=losses.__getitem__)
    return {"lr": lrs, "loss": losses, "suggested_lr": lrs[best] / 10}
