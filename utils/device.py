"""Frameworks, device and seeds: everything a chapter's set-up cell needs, in one call to :func:`setup`.

PyTorch and TensorFlow share one machine: both get the same thread budget, and TensorFlow is told to grow
its GPU memory instead of grabbing all of it, so a PyTorch model fits beside it on one Colab GPU.
"""
import contextlib
import os
import platform
import random
import sys
import tempfile
from types import SimpleNamespace

import numpy as np

DEVICES = ("auto", "cpu", "cuda", "mps")
AMP_DTYPES = ("float16", "bfloat16")

# Must be in the environment before TensorFlow/Keras/tokenizers are first imported.
FRAMEWORK_ENV = {
    "KERAS_BACKEND": "tensorflow",      # Keras 3 reads this once, at import
    "TF_CPP_MIN_LOG_LEVEL": "2",        # hide TensorFlow's start-up chatter, keep warnings and errors
    "TF_FORCE_GPU_ALLOW_GROWTH": "true",  # share the GPU with PyTorch
    "TOKENIZERS_PARALLELISM": "false",  # avoid the fork warning/deadlock with DataLoader workers
    # Idle OpenMP threads sleep instead of spinning: with TensorFlow's pool in the same process, or other
    # work on the machine, spinning made small PyTorch steps 5-70x slower on 2 cores (measured here).
    "OMP_WAIT_POLICY": "PASSIVE",
}


def device_name(requested: str | None = None) -> str:
    """Resolve ``requested`` (or ``$COURSE_DEVICE``, default ``auto``) to ``cpu``, ``cuda`` or ``mps``.

    ``auto`` means CUDA when present, else CPU; MPS is used only when asked for, because it gives
    slightly different numbers and lacks some operations.
    """
    import torch

    if requested is not None and not isinstance(requested, str):
        raise TypeError(f"device must be a str ({', '.join(DEVICES)}) or None, got {requested!r}")
    name = (requested or os.environ.get("COURSE_DEVICE") or "auto").strip().lower()
    if name not in DEVICES:
        raise ValueError(f"unknown device {name!r} (from COURSE_DEVICE or the argument); "
                         f"accepted: {', '.join(DEVICES)}")
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    available = {"cpu": True, "cuda": torch.cuda.is_available(),
                 "mps": getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()}
    if not available[name]:
        raise ValueError(f"device {name!r} was requested but is not available here; use 'auto' or 'cpu'")
    return name


def mixed_precision_dtype(amp, device) -> str | None:
    """What ``amp`` (a chapter's ``CFG.amp``) means on ``device``: the low-precision dtype name, or ``None``.

    ``False``/``None``: full float32. ``True``: ``"float16"`` on a CUDA GPU (fast on every NVIDIA GPU since
    Volta, Colab's T4 included; loss scaling guards its small range) and ``None`` elsewhere (most CPUs gain
    nothing). ``"float16"``/``"bfloat16"``: that dtype on any device (e.g. to try the code path on a CPU).
    """
    if amp is None or amp is False:
        return None
    if amp is True:
        return "float16" if str(device).startswith("cuda") else None
    if amp in AMP_DTYPES:
        return amp
    raise ValueError(f"amp must be True, False, None or one of {AMP_DTYPES}, got {amp!r}")


@contextlib.contextmanager
def keras_mixed_precision(amp, device):
    """Keras models built inside this block compute in float16/bfloat16 with float32 weights (the
    ``mixed_float16``/``mixed_bfloat16`` policy; ``compile`` then adds loss scaling for float16).
    ``amp`` as in :func:`mixed_precision_dtype`; with ``None`` the block changes nothing. The previous
    policy is restored on exit, so later models (and cross-checks) stay float32."""
    import keras

    dtype = mixed_precision_dtype(amp, device)
    previous = keras.config.dtype_policy()
    if dtype is not None:
        keras.config.set_dtype_policy(f"mixed_{dtype}")
    try:
        yield dtype
    finally:
        keras.config.set_dtype_policy(previous)


# TensorFlow's C++ start-up lines that teach nothing (TF_CPP_MIN_LOG_LEVEL does not reach them: they are
# written before logging is initialised). Anything else it prints still shows.
STARTUP_CHATTER = ("All log messages before absl::InitializeLog", "oneDNN custom operations are on",
                   "Could not find cuda drivers", "failed call to cuInit")


@contextlib.contextmanager
def quiet_native_stderr(drop=STARTUP_CHATTER):
    """Capture what C/C++ code writes to file descriptor 2 and re-emit every line except ``drop`` matches."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode(errors="replace").splitlines():
                if line.strip() and not any(pattern in line for pattern in drop):
                    print(line, file=sys.stderr)


# On Ampere and later GPUs both frameworks would compute float32 matrix products and convolutions in TF32 (a
# 10-bit mantissa); the chapters' cross-framework checks compare float32 results to 1e-5, so keep true float32.
# Mixed-precision training (``amp``) is unaffected: it chooses float16 explicitly.


def lazy_keras_classes(module_name: str, names: tuple, build):
    """A module-level ``__getattr__`` (PEP 562) for the Keras classes ``names`` of a module, created by ``build()``
    (a dict name -> class) on first access, so that importing the module for its PyTorch part never starts
    TensorFlow. ``build`` is called at most once; any other missing name is an AttributeError."""
    built = {}

    def __getattr__(name):
        if name not in names:
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        if not built:
            built.update(build())
        return built[name]
    return __getattr__


def import_torch_first():
    """Import torch (and triton, where it is installed) before TensorFlow, the order that works; return torch.

    PyTorch's CUDA wheels bring triton, which torch imports lazily (e.g. at the first optimiser step). Loaded
    after TensorFlow, triton's compiler library crashed the process (segmentation fault: torch 2.13+cu130,
    triton 3.7.1, TensorFlow 2.21, Python 3.13, seen here); loaded first, both work. CPU wheels have no triton.
    """
    import importlib.util

    import torch

    if importlib.util.find_spec("triton") is not None:
        import torch._dynamo  # noqa: F401  (imports triton now, before TensorFlow)
    return torch


def configure_torch(threads: int) -> None:
    """PyTorch: ``threads`` intra-op threads, one inter-op thread, true float32 (no TF32)."""
    import torch

    from ._validate import positive_int

    positive_int("threads", threads)

    torch.backends.cuda.matmul.allow_tf32 = False  # the long-standing flags: newer and older torch both accept them
    torch.backends.cudnn.allow_tf32 = False
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # can only be set once per process, before any parallel work
        pass


@contextlib.contextmanager
def torch_threads(threads: int):
    """PyTorch runs on ``threads`` intra-op threads inside the ``with`` block; the previous number comes back after.

    For work made of many tiny operations (generating one token at a time), where handing each operation out to
    sleeping threads can cost more than it saves.
    """
    import torch

    from ._validate import positive_int

    positive_int("threads", threads)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def configure_tensorflow(threads: int, use_gpu: bool) -> None:
    """TensorFlow: the same thread budget, GPU memory grown on demand, hidden when ``use_gpu`` is False."""
    from ._validate import positive_int

    positive_int("threads", threads)
    import tensorflow as tf

    tf.config.experimental.enable_tensor_float_32_execution(False)  # see configure_torch
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        gpus = tf.config.list_physical_devices("GPU")
        for gpu in gpus:
            tf.config.experimental.set_memory_growth(gpu, True)
        if gpus and not use_gpu:
            tf.config.set_visible_devices([], "GPU")  # keep both frameworks on the device we chose
    except RuntimeError:  # TensorFlow already initialised (set-up cell run twice): settings stand
        pass


def _check_seed(seed) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be a non-negative int, got {seed!r} ({type(seed).__name__})")
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be a non-negative int below 2**32 (NumPy's limit), got {seed!r}")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy, PyTorch (CPU and CUDA) and TensorFlow/Keras."""
    import keras
    import torch

    _check_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    keras.utils.set_random_seed(seed)  # Python, NumPy and TensorFlow


def setup(seed: int = 0, device: str | None = None, profile: str | None = None, threads: int | None = None,
          verbose: bool = True) -> SimpleNamespace:
    """Configure both frameworks, choose device and profile, seed everything; print a summary.

    Returns a namespace with ``device`` (a ``torch.device``), ``profile`` (``'quick'``/``'full'``),
    ``seed``, ``threads`` and ``versions``.
    """
    from . import _validate as check
    from . import profile as profiles

    # every argument and environment variable is checked before anything is configured
    _check_seed(seed)
    if threads is not None:
        check.positive_int("threads", threads)
    threads = threads or check.env_int("COURSE_THREADS") or os.cpu_count() or 1
    if profile is not None:
        profiles.current(profile, device="cpu")  # validates the name; resolved against the device below
    for key, value in FRAMEWORK_ENV.items():
        os.environ.setdefault(key, value)
    torch = import_torch_first()  # torch before TensorFlow: the order that works

    name = device_name(device)
    chosen_profile = profiles.current(profile, device=name)
    configure_torch(threads)
    drop = STARTUP_CHATTER if name != "cuda" else STARTUP_CHATTER[:3]  # on a GPU, a failed cuInit matters
    with quiet_native_stderr(drop):
        import keras
        import tensorflow as tf

        configure_tensorflow(threads, use_gpu=(name == "cuda"))
    seed_everything(seed)
    import matplotlib

    matplotlib.rcParams.update({"figure.dpi": 72, "figure.figsize": (6, 3.5)})  # small saved outputs
    env = SimpleNamespace(
        device=torch.device(name), profile=chosen_profile, seed=seed, threads=threads,
        versions={"python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__,
                  "tensorflow": tf.__version__, "keras": keras.__version__})
    if verbose:
        gpu = f" ({torch.cuda.get_device_name(0)})" if name == "cuda" else ""
        print(" | ".join(f"{k} {v}" for k, v in env.versions.items()))
        print(f"device: {name}{gpu} | profile: {env.profile} | seed: {seed} | threads: {threads}")
    return env
