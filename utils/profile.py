"""The two sizes of every experiment: ``quick`` (CPU, offline, minutes) and ``full`` (GPU, downloads).

A notebook states its sizes once::

    CFG = utils.profile.pick(quick=dict(epochs=5, hidden=32), full=dict(epochs=30, hidden=256))

and reads ``CFG.epochs`` afterwards, so the reader sees exactly what changes between the two.
"""
import json
import os
from types import SimpleNamespace

PROFILES = ("quick", "full")


def current(requested: str | None = None, device: str | None = None) -> str:
    """``requested`` or ``$COURSE_PROFILE``; ``auto`` (the default) is ``full`` on CUDA, else ``quick``."""
    name = (requested or os.environ.get("COURSE_PROFILE") or "auto").strip().lower()
    if name not in (*PROFILES, "auto"):
        raise ValueError(f"unknown profile {name!r} (from COURSE_PROFILE or the argument); "
                         f"accepted: {', '.join(PROFILES)}, auto")
    if name != "auto":
        return name
    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    return "full" if device == "cuda" else "quick"


def pick(quick: dict, full: dict, profile: str | None = None) -> SimpleNamespace:
    """Return the settings of the current profile as attributes.

    ``$COURSE_OVERRIDES`` (a JSON object) replaces chosen settings, e.g. to run the full profile's code
    path on a CPU with tiny sizes: ``COURSE_PROFILE=full COURSE_OVERRIDES='{"epochs": 1}'``.
    """
    if set(quick) != set(full):
        raise ValueError(f"quick and full must set the same keys; only in quick: {sorted(set(quick) - set(full))}, "
                         f"only in full: {sorted(set(full) - set(quick))}")
    chosen = dict(quick if current(profile) == "quick" else full)
    raw = os.environ.get("COURSE_OVERRIDES", "").strip()
    if raw:
        try:
            overrides = json.loads(raw)
        except json.JSONDecodeError as err:
            raise ValueError(f"COURSE_OVERRIDES must be a JSON object, got {raw!r} ({err})") from None
        if not isinstance(overrides, dict):
            raise ValueError(f"COURSE_OVERRIDES must be a JSON object, got {raw!r}")
        unknown = sorted(set(overrides) - set(chosen))
        if unknown:
            raise ValueError(f"COURSE_OVERRIDES sets unknown keys {unknown}; accepted: {sorted(chosen)}")
        chosen.update(overrides)
    return SimpleNamespace(**chosen)
