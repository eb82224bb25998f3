"""A small, readable PyTorch training loop with a progress bar, history and safe checkpoints.

``fit`` trains for a number of epochs, evaluates after each, returns the history as a dict of lists,
and (if given a path) writes a checkpoint after every epoch that a later call resumes from.
Checkpoints are written to a temporary file and renamed, so an interrupted save never leaves a broken
file in place of the previous good one; they hold only tensors and numbers and load with
``weights_only=True`` (no arbitrary unpickling). Trained weights to keep are written with
``safetensors`` (:func:`save_weights`), a format that holds tensors and nothing else.

On a GPU, ``fit(amp=True)`` computes in float16 under ``torch.autocast`` with a gradient scaler, and
:func:`loader_options` prepares batches in worker processes; :func:`device_speedup` measures what the
GPU buys over the CPU.
"""
import copy
import os
import pathlib
import tempfile
import time
import warnings

import torch
from tqdm.auto import tqdm

from . import _validate as check
from .data import BAR_SECONDS
from .device import mixed_precision_dtype


def _device(device) -> torch.device:
    """``device`` as a ``torch.device``; a ValueError naming the accepted forms otherwise."""
    try:
        return torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N', 'mps' or a torch.device, got {device!r}") from None


def _batches(name: str, loader) -> int:
    """Number of batches of a DataLoader-like ``loader``; refuses an empty one before anything is written."""
    try:
        n = len(loader)
    except TypeError:
        raise TypeError(f"{name} must be a DataLoader (or any sized iterable of (inputs, targets) batches), "
                        f"got {type(loader).__name__}") from None
    if n == 0:
        raise ValueError(f"{name} is empty (0 batches): accepted, a loader with at least one batch; check the dataset "
                         "size, batch_size and drop_last")
    return n


def accuracy(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Fraction of rows whose arg-max class equals the target. logits (B, C), targets (B,).

    Predictions first, like :func:`utils.metrics.accuracy` and the ``metric(outputs, targets)`` of :func:`fit`."""
    if logits.dim() < 1 or logits.shape[:-1] != targets.shape:
        raise ValueError(f"logits must be (B, C) and targets (B,) (or (..., C) and (...)), got "
                         f"{tuple(logits.shape)} and {tuple(targets.shape)}")
    return (logits.argmax(dim=-1) == targets).float().mean().item()


def _atomic_write(path, write) -> pathlib.Path:
    """Call ``write(temporary_path)``, then rename the result onto ``path``; on any failure the old file stays."""
    path = pathlib.Path(path)
    if path.is_dir():
        raise ValueError(f"path must be a file path, but {path} is a folder")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)  # atomic on POSIX and Windows
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_checkpoint(path, state: dict) -> pathlib.Path:
    """Atomically write ``state`` (tensors, numbers, lists, dicts) to ``path``."""
    if not isinstance(state, dict):
        raise TypeError(f"state must be a dict (tensors, numbers, lists, dicts), got {type(state).__name__}")

    def write(tmp):
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())

    return _atomic_write(path, write)


def save_weights(model, path) -> pathlib.Path:
    """Atomically write ``model``'s weights to ``path`` in the safetensors format (shared tensors handled)."""
    from safetensors.torch import save_model

    return _atomic_write(path, lambda tmp: save_model(model, tmp))


def load_weights(model, path, device="cpu"):
    """Load weights written by :func:`save_weights` into ``model`` (names and shapes must match exactly)."""
    from safetensors.torch import load_file

    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights file at {path}")
    incoming = load_file(str(path), device=str(_device(device)))
    own = model.state_dict()
    # save_weights stores a tensor shared by several names (tied weights) once: the others may be absent
    stored = {own[k].data_ptr() for k in incoming if k in own}
    tied = {k for k in own if k not in incoming and own[k].data_ptr() in stored}
    differences = check.state_dict_differences(own, incoming, optional=tied)
    if differences:
        raise ValueError(f"{path} does not fit this model (nothing was loaded; was it saved from a model of these "
                         "sizes?): " + " | ".join(differences))
    model.load_state_dict(incoming, strict=False)  # every name and shape checked above; tied names share
    return model


def load_checkpoint(path, map_location="cpu") -> dict:
    """Load a checkpoint written by :func:`save_checkpoint` (tensors and plain data only)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    return torch.load(path, map_location=map_location, weights_only=True)


def loader_options(device) -> dict:
    """Extra ``DataLoader`` arguments for ``device``. On CUDA: worker processes prepare the next batches while
    the GPU computes, into page-locked memory that copies to the GPU asynchronously. On a CPU: none (for
    in-memory data the main process is fastest, and workers would compete with training for the cores)."""
    if _device(device).type != "cuda":
        return {}
    return {"num_workers": min(4, os.cpu_count() or 1), "pin_memory": True, "persistent_workers": True}


def autocast(device, amp):
    """``torch.autocast`` in the precision ``amp`` means on ``device`` (see ``utils.device.mixed_precision_dtype``);
    a context that changes nothing when that is float32."""
    device, dtype = _device(device), mixed_precision_dtype(amp, device)
    return torch.autocast(device.type, dtype=getattr(torch, dtype or "float32"), enabled=dtype is not None)


def grad_scaler(device, amp) -> torch.amp.GradScaler:
    """A loss scaler that is active only when ``amp`` means float16 on ``device`` (bfloat16 has float32's range
    and needs none); inactive, its ``scale``, ``unscale_``, ``step`` and ``update`` simply pass through."""
    device = _device(device)
    return torch.amp.GradScaler(device.type, enabled=mixed_precision_dtype(amp, device) == "float16")


def _to(batch, device):
    return batch.to(device, non_blocking=True)  # asynchronous from pinned memory; a plain copy otherwise


def train_step(model, inputs, targets, loss_fn, optimizer, scaler, device, amp=False, clip_grad_norm=None):
    """One optimisation step: forward pass and loss under :func:`autocast`, scaled backward pass, optional
    clipping of the true (unscaled) gradients, update. ``scaler`` from :func:`grad_scaler`. Returns
    ``(outputs, loss)``."""
    with autocast(device, amp):
        outputs = model(inputs)
        loss = loss_fn(outputs, targets)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if clip_grad_norm is not None:
        scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
    scaler.step(optimizer)  # skipped when a float16 gradient overflowed
    scaler.update()
    return outputs, loss


@torch.no_grad()
def evaluate(model, loader, loss_fn, device="cpu", metric=accuracy, amp=False) -> dict:
    """Mean loss (and metric, if given) over a DataLoader, weighted by batch size; ``amp`` as in :func:`fit`."""
    device = _device(device)
    _batches("loader", loader)
    model.eval()
    totals, count = {"loss": 0.0, "metric": 0.0}, 0
    for inputs, targets in loader:
        inputs, targets = _to(inputs, device), _to(targets, device)
        with autocast(device, amp):
            outputs = model(inputs)
            loss = loss_fn(outputs, targets)  # autocast computes losses in float32
        n = len(targets)
        totals["loss"] += loss.item() * n
        if metric is not None:
            totals["metric"] += metric(outputs.float(), targets) * n
        count += n
    if count == 0:
        raise ValueError("loader yielded no examples: accepted, batches with at least one row")
    result = {"loss": totals["loss"] / count}
    if metric is not None:
        result["metric"] = totals["metric"] / count
    return result


def fit(model, train_loader, loss_fn, optimizer, epochs: int, device="cpu", val_loader=None, metric=accuracy,
        scheduler=None, clip_grad_norm: float | None = None, checkpoint=None, progress: bool = True,
        log_dir=None, amp=False) -> dict:
    """Train ``model`` for ``epochs`` epochs; return history ``{"train_loss": [...], "val_loss": [...], ...}``.

    ``metric(outputs, targets) -> float`` is reported as ``train_metric``/``val_metric`` (``None`` skips it).
    ``scheduler.step()`` runs once per batch. With ``checkpoint`` (a path), state is saved after every
    epoch and an existing checkpoint is resumed from, continuing the same run. With ``log_dir``, each
    epoch's numbers are also written for TensorBoard (``tensorboard --logdir <parent folder>``).
    ``amp`` (see ``utils.device.mixed_precision_dtype``; ``True`` = float16 on a GPU) runs forward pass and
    loss under ``torch.autocast``; weights and optimizer stay float32, and for float16 a gradient scaler
    multiplies the loss so that small gradients do not underflow to zero (steps with inf/NaN are skipped).
    """
    check.positive_int("epochs", epochs)
    device = _device(device)
    _batches("train_loader", train_loader)
    if val_loader is not None:
        _batches("val_loader", val_loader)
    for name, value in (("loss_fn", loss_fn), ("metric", metric if metric is not None else len)):
        if not callable(value):
            raise TypeError(f"{name} must be a function (outputs, targets) -> value, got {type(value).__name__}")
    if not hasattr(optimizer, "step") or not hasattr(optimizer, "zero_grad"):
        raise TypeError(f"optimizer must be a torch.optim optimizer, got {type(optimizer).__name__}")
    if clip_grad_norm is not None:
        check.number("clip_grad_norm", clip_grad_norm, 0.0, low_open=True)
    scaler = grad_scaler(device, amp)
    state = None
    if checkpoint is not None and pathlib.Path(checkpoint).exists():
        state = load_checkpoint(checkpoint)
        differences = check.state_dict_differences(model.state_dict(), state.get("model", {}))
        if differences:
            raise ValueError(f"checkpoint {checkpoint} belongs to another model (nothing was loaded): "
                             + " | ".join(differences) + "; delete it or pass another checkpoint path")
    model.to(device)
    history, start = {"train_loss": [], "train_metric": [], "val_loss": [], "val_metric": []}, 0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"])  # same shuffling as an uninterrupted run
        history, start = state["history"], state["epoch"]
    bar = tqdm(total=(epochs - start) * len(train_loader), disable=not progress, desc="training", unit="batch",
               mininterval=BAR_SECONDS)
    writer = None  # created after the first epoch, so that a call that fails early writes no event file
    for epoch in range(start, epochs):
        model.train()
        total_loss = total_metric = 0.0
        count = 0
        for inputs, targets in train_loader:
            inputs, targets = _to(inputs, device), _to(targets, device)
            outputs, loss = train_step(model, inputs, targets, loss_fn, optimizer, scaler, device, amp, clip_grad_norm)
            if scheduler is not None:
                with warnings.catch_warnings():  # a step the scaler skipped (inf/NaN) still advances the schedule
                    warnings.filterwarnings("ignore", "Detected call of `lr_scheduler.step", UserWarning)
                    scheduler.step()
            n = len(targets)
            total_loss += loss.item() * n
            if metric is not None:
                total_metric += metric(outputs.detach().float(), targets) * n
            count += n
            bar.update()
        if count == 0:
            raise ValueError("train_loader yielded no examples in an epoch: accepted, batches with at least one row")
        history["train_loss"].append(total_loss / count)
        history["train_metric"].append(total_metric / count if metric is not None else None)
        if val_loader is not None:
            val = evaluate(model, val_loader, loss_fn, device, metric, amp=amp)
            history["val_loss"].append(val["loss"])
            history["val_metric"].append(val.get("metric"))
        latest = {k: v[-1] for k, v in history.items() if v and v[-1] is not None}
        bar.set_postfix({k: f"{v:.4f}" for k, v in latest.items()})
        if log_dir is not None:
            if writer is None:
                from torch.utils.tensorboard import SummaryWriter  # imported only when asked for: it is slow

                writer = SummaryWriter(str(log_dir))
            for key, value in latest.items():
                writer.add_scalar(key, value, epoch + 1)
        if checkpoint is not None:
            save_checkpoint(checkpoint, {
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "scaler": scaler.state_dict() if scaler.is_enabled() else None,
                "rng": torch.get_rng_state(), "history": history, "epoch": epoch + 1})
    bar.close()
    if writer is not None:
        writer.close()
    return {k: v for k, v in history.items() if v and v[0] is not None}


def seconds_per_step(model, batch, loss_fn, device, amp=False, steps: int = 5, warmup: int = 2) -> float:
    """Median wall time of one training step (forward, loss, backward, SGD update) on ``device``.

    Works on a copy of ``model`` (the original is untouched); ``batch`` is one ``(inputs, targets)`` pair.
    The first ``warmup`` steps (allocation, kernel selection) are not timed; on a GPU every timed step ends
    with a synchronisation, because GPU calls return before the work is done.
    """
    device = _device(device)
    check.positive_int("steps", steps)
    check.non_negative_int("warmup", warmup)
    if not isinstance(batch, tuple | list) or len(batch) != 2:
        raise TypeError(f"batch must be one (inputs, targets) pair, got {type(batch).__name__}")
    trial = copy.deepcopy(model).to(device).train()
    optimizer = torch.optim.SGD(trial.parameters(), lr=1e-4)
    scaler = grad_scaler(device, amp)
    inputs, targets = (t.to(device) for t in batch)
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        train_step(trial, inputs, targets, loss_fn, optimizer, scaler, device, amp)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def device_speedup(model, batch, loss_fn, amp=False, steps: int = 5, warmup: int = 2) -> dict:
    """Time one training step of ``model`` on the CPU and, when there is one, on the GPU (with ``amp``).

    Prints the times and the speed-up; returns ``{"cpu": seconds, "cuda": seconds}`` (no ``"cuda"``
    without a GPU).
    """
    times = {"cpu": seconds_per_step(model, batch, loss_fn, "cpu", steps=steps, warmup=warmup)}
    shape = tuple(batch[0].shape)
    line = f"one training step, batch {shape}: CPU {times['cpu'] * 1e3:,.1f} ms"
    if torch.cuda.is_available():
        times["cuda"] = seconds_per_step(model, batch, loss_fn, "cuda", amp=amp, steps=steps, warmup=warmup)
        precision = mixed_precision_dtype(amp, "cuda") or "float32"
        line += (f" | GPU ({torch.cuda.get_device_name(0)}, {precision}) {times['cuda'] * 1e3:,.1f} ms"
                 f" -> {times['cpu'] / times['cuda']:.1f}x faster")
    else:
        line += " | no GPU in this runtime (Colab: Runtime > Change runtime type > GPU)"
    print(line)
    return times
