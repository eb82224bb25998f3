"""A small, readable PyTorch training loop with a progress bar, history and safe checkpoints.

``fit`` trains for a number of epochs, evaluates after each, returns the history as a dict of lists,
and (if given a path) writes a checkpoint after every epoch that a later call resumes from.
Checkpoints are written to a temporary file and renamed, so an interrupted save never leaves a broken
file in place of the previous good one; they hold only tensors and numbers and load with
``weights_only=True`` (no arbitrary unpickling).
"""
import os
import pathlib
import tempfile

import torch
from tqdm.auto import tqdm


def accuracy(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Fraction of rows whose arg-max class equals the target. logits (B, C), targets (B,)."""
    return (logits.argmax(dim=-1) == targets).float().mean().item()


def save_checkpoint(path, state: dict) -> pathlib.Path:
    """Atomically write ``state`` (tensors, numbers, lists, dicts) to ``path``."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic on POSIX and Windows
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path, map_location="cpu") -> dict:
    """Load a checkpoint written by :func:`save_checkpoint` (tensors and plain data only)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    return torch.load(path, map_location=map_location, weights_only=True)


@torch.no_grad()
def evaluate(model, loader, loss_fn, device="cpu", metric=accuracy) -> dict:
    """Mean loss (and metric, if given) over a DataLoader, weighted by batch size."""
    model.eval()
    totals, count = {"loss": 0.0, "metric": 0.0}, 0
    for inputs, targets in loader:
        inputs, targets = inputs.to(device), targets.to(device)
        outputs = model(inputs)
        n = len(targets)
        totals["loss"] += loss_fn(outputs, targets).item() * n
        if metric is not None:
            totals["metric"] += metric(outputs, targets) * n
        count += n
    result = {"loss": totals["loss"] / count}
    if metric is not None:
        result["metric"] = totals["metric"] / count
    return result


def fit(model, train_loader, loss_fn, optimizer, epochs: int, device="cpu", val_loader=None, metric=accuracy,
        scheduler=None, clip_grad_norm: float | None = None, checkpoint=None, progress: bool = True,
        log_dir=None) -> dict:
    """Train ``model`` for ``epochs`` epochs; return history ``{"train_loss": [...], "val_loss": [...], ...}``.

    ``metric(outputs, targets) -> float`` is reported as ``train_metric``/``val_metric`` (``None`` skips it).
    ``scheduler.step()`` runs once per batch. With ``checkpoint`` (a path), state is saved after every
    epoch and an existing checkpoint is resumed from, continuing the same run. With ``log_dir``, each
    epoch's numbers are also written for TensorBoard (``tensorboard --logdir <parent folder>``).
    """
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    model.to(device)
    history, start = {"train_loss": [], "train_metric": [], "val_loss": [], "val_metric": []}, 0
    if checkpoint is not None and pathlib.Path(checkpoint).exists():
        state = load_checkpoint(checkpoint)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])  # same shuffling as an uninterrupted run
        history, start = state["history"], state["epoch"]
    bar = tqdm(total=(epochs - start) * len(train_loader), disable=not progress, desc="training", unit="batch")
    writer = None
    if log_dir is not None:
        from torch.utils.tensorboard import SummaryWriter  # imported only when asked for: it is slow

        writer = SummaryWriter(str(log_dir))
    for epoch in range(start, epochs):
        model.train()
        total_loss = total_metric = 0.0
        count = 0
        for inputs, targets in train_loader:
            inputs, targets = inputs.to(device), targets.to(device)
            outputs = model(inputs)
            loss = loss_fn(outputs, targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            n = len(targets)
            total_loss += loss.item() * n
            if metric is not None:
                total_metric += metric(outputs.detach(), targets) * n
            count += n
            bar.update()
        history["train_loss"].append(total_loss / count)
        history["train_metric"].append(total_metric / count if metric is not None else None)
        if val_loader is not None:
            val = evaluate(model, val_loader, loss_fn, device, metric)
            history["val_loss"].append(val["loss"])
            history["val_metric"].append(val.get("metric"))
        latest = {k: v[-1] for k, v in history.items() if v and v[-1] is not None}
        bar.set_postfix({k: f"{v:.4f}" for k, v in latest.items()})
        if writer is not None:
            for key, value in latest.items():
                writer.add_scalar(key, value, epoch + 1)
        if checkpoint is not None:
            save_checkpoint(checkpoint, {
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "rng": torch.get_rng_state(), "history": history, "epoch": epoch + 1})
    bar.close()
    if writer is not None:
        writer.close()
    return {k: v for k, v in history.items() if v and v[0] is not None}
