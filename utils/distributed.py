"""Training large models: where the memory goes, gradient accumulation, and many processes.

Three kinds of tools, in the order chapter 8 teaches them:

- Memory: :func:`training_state_bytes` (the formula: bytes for parameters, gradients, master weights and
  Adam's two moments), :func:`measured_state_bytes` (the same read off the real tensors) and
  :class:`SavedActivations` (bytes the autograd graph keeps for the backward pass, measured with
  saved-tensor hooks).
- Doing one big step as several small ones: :func:`accumulate_gradients` (k micro-batches, the same
  gradient as one k-times-larger batch, whatever the micro-batch sizes).
- Many processes: :func:`ring_all_reduce` (point-to-point sends, equal to ``dist.all_reduce``),
  :func:`replica_batches` (what ``DistributedSampler`` hands each rank), :func:`free_port`,
  :func:`torchrun` (launches ``torchrun`` on a module of this package, always cleans up),
  :func:`running_children` (processes left behind), and the cost model :func:`ring_all_reduce_seconds` /
  :func:`data_parallel_step_seconds`.

The script that runs under ``torchrun`` is :mod:`utils.ddp_train` (``torchrun --nproc_per_node=2 -m
utils.ddp_train --out DIR``). Importing this module never starts a process group.

Shape legend
    P   number of parameters of a model
    B   batch size;  b  the micro-batch (or per-rank) size
    W   world size: the number of processes (ranks)
    N   number of elements of a tensor being all-reduced
"""
import contextlib
import os
import pathlib
import signal
import socket
import subprocess
import sys
import tempfile
import time

import torch

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]  # the folder holding utils/
PRECISIONS = ("float32", "mixed")
OPTIMIZERS = ("sgd", "momentum", "adam")
NORMALISATIONS = ("per_sample", "per_micro_batch")


# ------------------------------------------------------------------------------------------------ memory
def _check_choice(name, value, accepted):
    if value not in accepted:
        raise ValueError(f"{name} must be one of {accepted}, got {value!r}")


def training_state_bytes(n_params: int, precision: str = "float32", optimizer: str = "adam",
                         low_precision_bytes: int = 2) -> dict:
    """Bytes a training step keeps besides activations, per part, for a model of ``n_params`` parameters.

    ``precision="float32"``: parameters and gradients in float32. ``"mixed"``: the model's parameters and
    gradients in a ``low_precision_bytes`` type (2: float16/bfloat16) plus a float32 *master* copy that the
    optimizer updates. ``optimizer``: ``"sgd"`` keeps nothing, ``"momentum"`` one float32 buffer, ``"adam"``
    two (first and second moment). Returns ``{"parameters", "gradients", "master_weights",
    "optimizer_state", "total"}``.
    """
    if not isinstance(n_params, int) or n_params < 0:
        raise ValueError(f"n_params must be a non-negative int, got {n_params!r}")
    _check_choice("precision", precision, PRECISIONS)
    _check_choice("optimizer", optimizer, OPTIMIZERS)
    if low_precision_bytes not in (1, 2):
        raise ValueError(f"low_precision_bytes must be 1 or 2, got {low_precision_bytes!r}")
    weight = 4 if precision == "float32" else low_precision_bytes
    parts = {"parameters": weight * n_params, "gradients": weight * n_params,
             "master_weights": 0 if precision == "float32" else 4 * n_params,
             "optimizer_state": 4 * n_params * {"sgd": 0, "momentum": 1, "adam": 2}[optimizer]}
    parts["total"] = sum(parts.values())
    return parts


def tensor_bytes(tensors) -> int:
    """Bytes of the distinct storages behind ``tensors`` (views of one storage are counted once)."""
    storages = {}
    for t in tensors:
        if t is not None:
            storage = t.untyped_storage()
            storages[storage.data_ptr()] = storage.nbytes()
    return sum(storages.values())


def measured_state_bytes(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """The parts of :func:`training_state_bytes`, read off the real tensors after at least one step.

    ``master_weights`` are the optimizer's parameters that are not the model's (a float32 copy); the
    optimizer state counts every tensor in ``optimizer.state`` except Adam's one-element step counters.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
    params = list(model.parameters())
    model_ptrs = {p.data_ptr() for p in params}
    optimised = [p for group in optimizer.param_groups for p in group["params"]]
    state = [t for s in optimizer.state.values() for t in s.values() if torch.is_tensor(t) and t.numel() > 1]
    parts = {"parameters": tensor_bytes(params), "gradients": tensor_bytes(p.grad for p in params),
             "master_weights": tensor_bytes(p for p in optimised if p.data_ptr() not in model_ptrs),
             "optimizer_state": tensor_bytes(state)}
    parts["total"] = sum(parts.values())
    return parts


class SavedActivations:
    """Context manager that measures what autograd saves for the backward pass.

    Inside ``with SavedActivations(model) as saved:`` every tensor a forward operation saves goes through a
    hook; ``saved.bytes`` is the total size of the distinct storages kept, parameters (and views of them)
    excluded, and ``saved.records`` lists ``(shape, dtype)`` per saved tensor. The tensors themselves are
    stored unchanged, so the backward pass is unaffected.
    """

    def __init__(self, model: torch.nn.Module | None = None):
        self._parameter_ptrs = {p.untyped_storage().data_ptr() for p in model.parameters()} if model else set()
        self._storages, self.records = {}, []
        self._hooks = None

    def _pack(self, t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in self._parameter_ptrs and storage.nbytes():
            self._storages[storage.data_ptr()] = storage.nbytes()
            self.records.append((tuple(t.shape), t.dtype))
        return t

    @property
    def bytes(self) -> int:
        return sum(self._storages.values())

    def __enter__(self):
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc):
        self._hooks.__exit__(*exc)
        return False


# --------------------------------------------------------------------------------- gradient accumulation
def accumulate_gradients(model: torch.nn.Module, loss_fn, micro_batches, normalise: str = "per_sample") -> float:
    """Fill ``model``'s ``.grad`` with the gradient of the mean loss over all samples of ``micro_batches``.

    ``micro_batches``: a list of ``(inputs (b_i, ...), targets (b_i, ...))``, sizes may differ.
    ``loss_fn(outputs, targets)`` must return the *sum* over the micro-batch when ``normalise="per_sample"``
    (the right way: each sum is divided by the total sample count, so every sample weighs the same). With
    ``"per_micro_batch"``, ``loss_fn`` returns a mean and each mean is divided by the number of micro-batches:
    the same gradient only when all micro-batches have one size (the trap chapter 8 shows). Gradients are
    zeroed first. Returns the accumulated loss (a float).
    """
    _check_choice("normalise", normalise, NORMALISATIONS)
    micro_batches = list(micro_batches)
    if not micro_batches:
        raise ValueError("micro_batches is empty; need at least one (inputs, targets) pair")
    total = sum(len(targets) for _, targets in micro_batches)
    model.zero_grad(set_to_none=True)
    accumulated = 0.0
    for inputs, targets in micro_batches:
        loss = loss_fn(model(inputs), targets)
        loss = loss / (total if normalise == "per_sample" else len(micro_batches))
        loss.backward()  # adds into .grad
        accumulated += loss.item()
    return accumulated


# ---------------------------------------------------------------------------------- many processes
def ring_all_reduce(tensor: torch.Tensor, group=None) -> torch.Tensor:
    """Sum ``tensor`` (any shape, N elements) over all ranks of ``group``, in place, with a ring.

    The flat tensor is cut into W chunks. *Reduce-scatter*: in W-1 rounds each rank sends one chunk to its
    right neighbour and adds the chunk arriving from its left one, so that rank r ends holding the full
    sum of chunk (r + 1) mod W. *All-gather*: W-1 more rounds pass the finished chunks around the ring.
    Each rank sends 2 (W-1)/W * N elements in all, however many ranks there are. Returns ``tensor``.
    """
    import torch.distributed as dist

    if not dist.is_initialized():
        raise RuntimeError("ring_all_reduce needs a process group: call torch.distributed.init_process_group")
    if not isinstance(tensor, torch.Tensor) or not tensor.is_contiguous():
        raise ValueError("tensor must be a contiguous torch.Tensor (it is reduced in place)")
    world, rank = dist.get_world_size(group), dist.get_rank(group)
    if world == 1:
        return tensor
    ranks = dist.get_process_group_ranks(group) if group is not None else list(range(world))
    right, left = ranks[(rank + 1) % world], ranks[(rank - 1) % world]
    chunks = list(tensor.view(-1).tensor_split(world))  # views: chunk sizes differ by at most one
    incoming = torch.empty_like(chunks[0])
    for step in range(2 * (world - 1)):
        reducing = step < world - 1
        offset = step if reducing else step - (world - 1) - 1
        send_chunk = chunks[(rank - offset) % world]
        recv_index = (rank - offset - 1) % world
        buffer = incoming[: chunks[recv_index].numel()]
        # post the receive and the send together: blocking send-then-receive would deadlock on every rank
        ops = [dist.P2POp(dist.isend, send_chunk, right, group), dist.P2POp(dist.irecv, buffer, left, group)]
        for request in dist.batch_isend_irecv(ops):
            request.wait()
        if reducing:
            chunks[recv_index].add_(buffer)
        else:
            chunks[recv_index].copy_(buffer)
    return tensor


def replica_batches(n_samples: int, world_size: int, local_batch: int, steps: int, seed: int = 0) -> list:
    """The sample indices of every step and rank, exactly as ``DistributedSampler(shuffle=True, seed=seed,
    drop_last=True)`` with a ``DataLoader(batch_size=local_batch, drop_last=True)`` hands them out, epoch
    after epoch (``set_epoch``). Returns ``steps`` lists of ``world_size`` index lists of ``local_batch``.
    Concatenated over ranks, a step's lists are the global batch a single process would use."""
    from torch.utils.data import DistributedSampler

    for name, value in (("n_samples", n_samples), ("world_size", world_size), ("local_batch", local_batch),
                        ("steps", steps)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    per_rank = n_samples // world_size // local_batch
    if per_rank == 0:
        raise ValueError(f"{n_samples} samples cannot fill one batch of {local_batch} on each of {world_size} ranks")
    samplers = [DistributedSampler(range(n_samples), world_size, r, shuffle=True, seed=seed, drop_last=True)
                for r in range(world_size)]
    steps_out, epoch = [], 0
    while len(steps_out) < steps:
        orders = []
        for sampler in samplers:
            sampler.set_epoch(epoch)
            orders.append(list(sampler))
        for i in range(per_rank):
            steps_out.append([order[i * local_batch:(i + 1) * local_batch] for order in orders])
        epoch += 1
    return steps_out[:steps]


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on ``host:port`` and it can be bound now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that the operating system reports free (bind to port 0, read, release)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _kill_group(process: subprocess.Popen) -> None:
    """End ``process`` and everything it started (it leads its own process group): TERM, then KILL."""
    if process.poll() is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)  # the leader is gone; make sure no worker outlives it
        return
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)
        try:
            process.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def torchrun(script_args, nproc_per_node: int = 2, nnodes: int = 1, port: int | None = None,
             timeout: float = 300, env: dict | None = None, module: str = "utils.ddp_train",
             cwd=None) -> subprocess.CompletedProcess:
    """Launch ``torchrun`` on ``module`` with ``script_args`` on this machine; wait; return the result.

    ``nnodes > 1`` starts one ``torchrun`` per "node", all on 127.0.0.1, meeting at a c10d rendezvous on
    ``port`` (chosen free when None) — the command a real cluster runs on each machine, with another
    address. ``cwd``: the processes' working folder (default: the caller's); ``module`` is imported from this
    checkout wherever that is. ``env``: extra environment variables. Every launched process leads its own
    process group, which is killed on timeout, on error and on interruption, so no worker outlives the call.
    Raises ``ValueError`` for a port already in use and ``RuntimeError`` (with the output's tail) when a launch
    fails or takes over ``timeout`` s.
    """
    for name, value in (("nproc_per_node", nproc_per_node), ("nnodes", nnodes)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if port is None:
        port = free_port()
    elif not port_is_free(port):
        raise ValueError(f"port {port} on 127.0.0.1 is already in use (another launch still running, or "
                         f"another program); pass port=None to choose a free one")
    rendezvous = ["--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{port}", f"--rdzv-id=course{port}"] \
        if nnodes > 1 else [f"--master-port={port}", "--master-addr=127.0.0.1"]
    command = [sys.executable, "-m", "torch.distributed.run", f"--nnodes={nnodes}",
               f"--nproc-per-node={nproc_per_node}", *rendezvous, "--max-restarts=0", "-m", module,
               *map(str, script_args)]
    # the workers import ``module`` from this checkout, wherever the caller (a notebook in chapters/) runs
    child_env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
                 "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
                 **(env or {})}
    logs = [tempfile.TemporaryFile(mode="w+") for _ in range(nnodes)]  # files, not pipes: a full pipe blocks
    processes = []
    try:
        for log in logs:
            processes.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=child_env,
                                              cwd=cwd, start_new_session=True))
        deadline = time.monotonic() + timeout
        for process in processes:
            process.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"torchrun did not finish within {timeout} s (killed): {' '.join(command)}") from None
    finally:
        for process in processes:
            _kill_group(process)
        outputs = []
        for log in logs:
            log.seek(0)
            outputs.append(log.read())
            log.close()
    failed = [(i, p.returncode) for i, p in enumerate(processes) if p.returncode != 0]
    if failed:
        lines = outputs[failed[0][0]].strip().splitlines()
        # a worker's own traceback says why; torchrun's summary after it only says that it failed
        start = min((i for i, line in enumerate(lines) if "Traceback" in line or "Error" in line),
                    default=max(0, len(lines) - 15))
        tail = "\n".join(lines[start:start + 25])
        raise RuntimeError(f"torchrun exited with {failed} ((node, code)); last lines:\n{tail}")
    return subprocess.CompletedProcess(command, 0, "\n".join(outputs), None)


def running_children(pid: int | None = None) -> list:
    """``(pid, command)`` of every live descendant of process ``pid`` (default: this one), read from /proc;
    empty where /proc does not exist. Zombies (finished, waiting to be reaped) are not counted."""
    pid = os.getpid() if pid is None else pid
    if not os.path.isdir("/proc"):
        return []
    parents, commands = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                commands[int(entry)] = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()  # after "(command name)": state, ppid, ...
        if fields[0] != "Z":
            parents[int(entry)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        for child, ppid in parents.items():
            if ppid == parent:
                found.append((child, commands.get(child, "")))
                frontier.append(child)
    return found


# ------------------------------------------------------------------------------------------- cost model
def ring_all_reduce_seconds(n_bytes: float, world_size: int, bandwidth: float, latency: float = 0.0) -> float:
    """Time of a ring all-reduce of ``n_bytes`` over ``world_size`` ranks: 2 (W-1) rounds, each sending
    ``n_bytes / W`` at ``bandwidth`` bytes/s after ``latency`` s. Zero for one rank."""
    if not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size must be a positive int, got {world_size!r}")
    if bandwidth <= 0 or latency < 0 or n_bytes < 0:
        raise ValueError(f"need n_bytes >= 0, bandwidth > 0, latency >= 0; got {n_bytes}, {bandwidth}, {latency}")
    return 2 * (world_size - 1) * (latency + n_bytes / world_size / bandwidth)


def data_parallel_step_seconds(compute_seconds: float, gradient_bytes: float, world_size: int, bandwidth: float,
                               latency: float = 0.0, overlap: float = 0.0) -> float:
    """Seconds per step of data parallelism with a fixed *per-rank* batch: the compute of one rank plus the
    part of the gradient all-reduce that does not hide behind it; up to ``overlap`` (0..1) times the compute
    time of communication runs hidden (``compute + max(0, all_reduce - overlap * compute)``)."""
    if not 0.0 <= overlap <= 1.0:
        raise ValueError(f"overlap must be in [0, 1], got {overlap!r}")
    communication = ring_all_reduce_seconds(gradient_bytes, world_size, bandwidth, latency)
    return compute_seconds + max(0.0, communication - overlap * compute_seconds)
