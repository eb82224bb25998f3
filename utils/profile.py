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
    if requested is not None and not isinstance(requested, str):
        raise TypeError(f"profile must be a str ({', '.join(PROFILES)}, auto) or None, got {requested!r}")
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
    for label, settings in (("quick", quick), ("full", full)):
        if not isinstance(settings, dict):
            raise TypeError(f"{label} must be a dict of settings, e.g. dict(epochs=5), got {type(settings).__name__}")
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
        for key, value in overrides.items():
            overrides[key] = _check_override(key, value, chosen[key], quick[key], full[key])
        chosen.update(overrides)
    return SimpleNamespace(**chosen)


def _kind(value) -> str:
    """The JSON-level type of a setting: bool, int, float, str, list, dict or None."""
    if value is None or isinstance(value, bool | str | dict):
        return type(value).__name__ if value is not None else "null"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, list | tuple):
        return "list"
    return type(value).__name__


def _check_override(key: str, value, current, quick_value, full_value):
    """An override must have the type the profile itself gives ``key`` (an int is accepted for a float, a JSON
    list for a tuple); a setting that is None in a profile takes any value."""
    if key == "amp":  # mixed precision: on/off, or the low-precision dtype by name (utils.device.AMP_DTYPES)
        if value is None or isinstance(value, bool) or value in ("float16", "bfloat16"):
            return value
        raise TypeError(f"COURSE_OVERRIDES sets amp={value!r}; accepted: true, false, null, \"float16\", "
                        f"\"bfloat16\"")
    accepted = {_kind(v) for v in (quick_value, full_value) if v is not None}
    if not accepted:
        return value
    kind = _kind(value)
    if kind in accepted or (kind == "int" and "float" in accepted):
        return tuple(value) if isinstance(current, tuple) and isinstance(value, list) else value
    if value is None and None in (quick_value, full_value):
        return value
    example = full_value if full_value is not None else quick_value
    raise TypeError(f"COURSE_OVERRIDES sets {key}={value!r} ({kind}), but the profiles give {key} a "
                    f"{' or '.join(sorted(accepted))} value (e.g. {json.dumps(example, default=str)}); "
                    f"accepted: {'/'.join(sorted(accepted))}")
