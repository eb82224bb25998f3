"""The script chapter 8 launches with ``torchrun``: data-parallel training and its variants, checked.

Run it (from the repository root) as::

    torchrun --nproc-per-node=2 -m utils.ddp_train --out runs/ddp                  # CPU: gloo
    torchrun --nproc-per-node=$(nvidia-smi -L | wc -l) -m utils.ddp_train --out runs/ddp   # GPUs: nccl

Every rank runs the experiments named by ``--experiments`` on scikit-learn's digits (offline) and writes
what it found to ``OUT/rank<r>.pt`` (tensors and numbers, read back with ``torch.load(weights_only=True)``):

- ``ddp``: ``DistributedDataParallel`` + ``DistributedSampler`` for ``--steps`` steps; the flat parameters.
  :func:`train_single_process` with :func:`utils.distributed.replica_batches` is the one-process reference.
- ``no_sampler``: the same without ``DistributedSampler`` (every rank reads the same batches).
- ``zero``: DDP with ``ZeroRedundancyOptimizer`` (each rank keeps Adam's moments for its share only).
- ``fsdp``: ``torch.distributed.fsdp.fully_shard`` (parameters, gradients and moments sharded).
- ``ring``: :func:`utils.distributed.ring_all_reduce` against ``dist.all_reduce``.
- ``no_sync``: gradient accumulation with and without ``ddp.no_sync()``, all-reduces counted.
- ``batchnorm``: batch-norm statistics under DDP with and without ``SyncBatchNorm``.
- ``save``: a checkpoint written by rank 0 only, and by every rank (the pitfall), writers logged.
- ``throughput``: seconds per step at a fixed global batch with all ranks and, interleaved in the same launch,
  with one process (under bfloat16 autocast with ``--amp bfloat16``), and the time of the gradient all-reduce.

The model is a small MLP (``--model mlp``) or a Transformer encoder reading the 8 rows of a digit as 8
tokens (``--model transformer``, chapter 5's blocks from ``utils.attention``).
"""
import argparse
import contextlib
import os
import pathlib
import time

import torch
import torch.distributed as dist
from torch import nn

from .distributed import ring_all_reduce, tensor_bytes

EXPERIMENTS = ("ddp", "no_sampler", "zero", "fsdp", "ring", "no_sync", "batchnorm", "save", "throughput")
MODELS = ("mlp", "transformer")
OPTIMIZERS = ("sgd", "adam")


def load_digits_split(test_share: float = 0.25, seed: int = 0):
    """scikit-learn's 8x8 digits, standardised with the training split's statistics.

    Returns ``(X_train (N, 64) float32, y_train (N,) int64, X_test, y_test)`` as tensors."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=test_share, random_state=seed, stratify=y)
    mean, std = X_train.mean(0), X_train.std(0) + 1.0  # +1: some border pixels are always 0
    as_x = lambda a: torch.tensor((a - mean) / std, dtype=torch.float32)  # noqa: E731
    return as_x(X_train), torch.tensor(y_train), as_x(X_test), torch.tensor(y_test)


class RowTransformer(nn.Module):
    """A digit as a sequence: 8 rows of 8 pixels -> 8 tokens of width D, pre-LN encoder blocks, mean pooling,
    a linear classifier. (B, 64) -> logits (B, 10)."""

    def __init__(self, d_model: int = 32, layers: int = 2, heads: int = 4):
        super().__init__()
        from .attention import TransformerEncoderBlock

        self.embed = nn.Linear(8, d_model)
        self.position = nn.Parameter(torch.randn(8, d_model) * 0.02)
        self.blocks = nn.ModuleList([TransformerEncoderBlock(d_model, heads, 4 * d_model, norm_first=True)
                                     for _ in range(layers)])
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, 10)

    def forward(self, x):
        h = self.embed(x.view(-1, 8, 8)) + self.position                     # (B, 8 rows, D)
        for block in self.blocks:
            h = block(h)
        return self.head(self.norm(h).mean(1))                               # (B, 10)


def build_model(kind: str = "mlp", hidden: int = 64, layers: int = 2, seed: int = 0,
                batch_norm: bool = False) -> nn.Module:
    """The same initial weights on every rank (seeded): an MLP ``64 -> hidden -> hidden -> 10`` (batch norm
    after the first layer if asked) or a :class:`RowTransformer` of width ``hidden`` and ``layers`` blocks."""
    if kind not in MODELS:
        raise ValueError(f"kind must be one of {MODELS}, got {kind!r}")
    torch.manual_seed(seed)
    if kind == "transformer":
        return RowTransformer(hidden, layers)
    norm = [nn.BatchNorm1d(hidden)] if batch_norm else []
    return nn.Sequential(nn.Linear(64, hidden), *norm, nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, 10))


def make_optimizer(params, name: str, lr: float) -> torch.optim.Optimizer:
    """``sgd`` (plain) or ``adam`` (PyTorch defaults apart from ``lr``)."""
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")
    return torch.optim.SGD(params, lr=lr) if name == "sgd" else torch.optim.Adam(params, lr=lr)


def flat_gradients(model: nn.Module) -> torch.Tensor:
    """All parameters' ``.grad`` in one float32 vector (P,), in ``parameters`` order; sharded (DTensor)
    gradients are gathered first (a collective under FSDP: every rank must call it)."""
    pieces = []
    for p in model.parameters():
        g = p.grad.full_tensor() if hasattr(p.grad, "full_tensor") else p.grad
        pieces.append(g.detach().float().reshape(-1).cpu())
    return torch.cat(pieces)


def batch_gradient(model: nn.Module, X: torch.Tensor, y: torch.Tensor, indices) -> torch.Tensor:
    """The reference for a first step: the gradient (P,) of the mean cross-entropy over ``X[indices]`` (a list
    of indices, or a list of per-rank lists, concatenated), computed in one process. Leaves ``.grad`` set."""
    if indices and isinstance(indices[0], (list, tuple)):
        indices = [i for part in indices for i in part]
    model.zero_grad(set_to_none=True)
    nn.CrossEntropyLoss()(model(X[indices]), y[indices]).backward()
    return flat_gradients(model)


def flat_parameters(model: nn.Module) -> torch.Tensor:
    """All parameters in one float32 vector (P,), in ``named_parameters`` order; sharded (DTensor) ones are
    gathered first."""
    pieces = []
    for p in model.parameters():
        p = p.full_tensor() if hasattr(p, "full_tensor") else p
        pieces.append(p.detach().float().reshape(-1).cpu())
    return torch.cat(pieces)


def train_single_process(model: nn.Module, X: torch.Tensor, y: torch.Tensor, batches, optimizer: str = "adam",
                         lr: float = 1e-2) -> nn.Module:
    """The reference: one process, one step per entry of ``batches``, each the index list of a global batch
    (or a list of per-rank lists, concatenated). Mean cross-entropy over the batch. Returns ``model``."""
    opt = make_optimizer(model.parameters(), optimizer, lr)
    loss_fn = nn.CrossEntropyLoss()
    for indices in batches:
        if indices and isinstance(indices[0], (list, tuple)):
            indices = [i for part in indices for i in part]
        opt.zero_grad(set_to_none=True)
        loss_fn(model(X[indices]), y[indices]).backward()
        opt.step()
    return model


# ------------------------------------------------------------------------------ the experiments (one rank)
def _loader(X, y, args, world, rank, distributed=True):
    from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

    data = TensorDataset(X, y)
    sampler = DistributedSampler(data, world, rank, shuffle=True, seed=args.seed, drop_last=True) \
        if distributed else None
    return sampler, DataLoader(data, batch_size=args.local_batch, sampler=sampler, drop_last=True,
                               shuffle=not distributed, generator=torch.Generator().manual_seed(args.seed))


def _batches(sampler, loader, steps):
    """``steps`` batches, epoch after epoch; ``set_epoch`` reshuffles each epoch (without it, every
    epoch would repeat the first one's order)."""
    epoch = 0
    while True:
        if sampler is not None:
            sampler.set_epoch(epoch)
        for batch in loader:
            yield batch
            steps -= 1
            if steps == 0:
                return
        epoch += 1


def _train(model, optimizer, sampler, loader, steps, device):
    """Trains ``steps`` steps; returns the first step's gradient (P,) after the all-reduce: Adam barely
    responds to a constant rescaling of the gradient, so a missing 1/W shows there, not in the parameters."""
    loss_fn, first_gradient = nn.CrossEntropyLoss(), None
    for inputs, targets in _batches(sampler, loader, steps):
        inputs, targets = inputs.to(device), targets.to(device)
        loss = loss_fn(model(inputs), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # DDP all-reduces (averages) the gradients here, bucket by bucket
        if first_gradient is None:
            first_gradient = flat_gradients(model)
        optimizer.step()
    return first_gradient


def run_ddp(args, X, y, world, rank, device, no_sampler=False):
    from torch.nn.parallel import DistributedDataParallel as DDP

    model = build_model(args.model, args.hidden, args.layers, args.seed).to(device)
    ddp = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
    sampler, loader = _loader(X, y, args, world, rank, distributed=not no_sampler)
    first = _train(ddp, make_optimizer(ddp.parameters(), args.optimizer, args.lr), sampler, loader, args.steps,
                   device)
    return {"parameters": flat_parameters(model), "first_gradient": first}


def run_zero(args, X, y, world, rank, device):
    from torch.distributed.optim import ZeroRedundancyOptimizer
    from torch.nn.parallel import DistributedDataParallel as DDP

    model = build_model(args.model, args.hidden, args.layers, args.seed).to(device)
    ddp = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = ZeroRedundancyOptimizer(ddp.parameters(), optimizer_class=torch.optim.Adam, lr=args.lr)
    sampler, loader = _loader(X, y, args, world, rank)
    first = _train(ddp, optimizer, sampler, loader, args.steps, device)
    state = [t for s in optimizer.optim.state.values() for t in s.values() if torch.is_tensor(t) and t.numel() > 1]
    return {"parameters": flat_parameters(model), "first_gradient": first,
            "optimizer_state_bytes": tensor_bytes(state),
            "parameter_bytes": tensor_bytes(model.parameters())}


def run_fsdp(args, X, y, world, rank, device):
    from torch.distributed.fsdp import fully_shard

    model = build_model(args.model, args.hidden, args.layers, args.seed).to(device)
    for module in model.modules():  # shard each layer, then the rest: layers gather their weights one by one
        if isinstance(module, nn.Linear) or module.__class__.__name__ == "TransformerEncoderBlock":
            fully_shard(module)
    fully_shard(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    sampler, loader = _loader(X, y, args, world, rank)
    first = _train(model, optimizer, sampler, loader, args.steps, device)
    local = lambda ts: [t.to_local() if hasattr(t, "to_local") else t for t in ts]  # noqa: E731 - this rank's shard
    state = [t for s in optimizer.state.values() for t in s.values() if torch.is_tensor(t) and t.numel() > 1]
    return {"parameters": flat_parameters(model), "first_gradient": first,
            "optimizer_state_bytes": tensor_bytes(local(state)),
            "parameter_bytes": tensor_bytes(local(model.parameters()))}


def run_ring(args, world, rank, device):
    results = {}
    for n in (1, world + 1, 1000, 12_345):  # sizes that do and do not divide by the world size
        generator = torch.Generator().manual_seed(1000 * rank + n)
        x = torch.randn(n, generator=generator).to(device)
        ring, library = x.clone(), x.clone()
        ring_all_reduce(ring)
        dist.all_reduce(library)
        results[n] = (ring - library).abs().max().item()
    return {"ring_vs_all_reduce": results}


def run_no_sync(args, X, y, world, rank, device, micro_batches=4):
    from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook
    from torch.nn.parallel import DistributedDataParallel as DDP

    loss_fn, found = nn.CrossEntropyLoss(), {}
    start = rank * args.local_batch * micro_batches  # this rank's own samples
    chunks = [slice(start + i * args.local_batch, start + (i + 1) * args.local_batch) for i in range(micro_batches)]
    for use_no_sync in (False, True):
        model = build_model(args.model, args.hidden, args.layers, args.seed).to(device)
        ddp = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
        calls = []

        def counting_hook(state, bucket, calls=calls):
            calls.append(bucket.index())
            return allreduce_hook(state, bucket)

        ddp.register_comm_hook(None, counting_hook)
        for i, chunk in enumerate(chunks):
            last = i == micro_batches - 1
            with ddp.no_sync() if use_no_sync and not last else contextlib.nullcontext():
                (loss_fn(ddp(X[chunk].to(device)), y[chunk].to(device)) / micro_batches).backward()
        key = "with_no_sync" if use_no_sync else "without_no_sync"
        found[key] = {"all_reduce_calls": len(calls),
                      "gradients": torch.cat([p.grad.reshape(-1).cpu() for p in model.parameters()])}
    return found


def run_batchnorm(args, X, y, world, rank, device):
    from torch.nn.parallel import DistributedDataParallel as DDP

    rows = slice(rank * args.local_batch, (rank + 1) * args.local_batch)  # rank r: its share of one global batch
    model = build_model("mlp", args.hidden, 2, args.seed, batch_norm=True).to(device)
    ddp = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
    inputs = X[rows].to(device)
    ddp(inputs)  # one training-mode pass: batch norm normalises with, and remembers, this rank's statistics
    found = {"plain_running_mean": model[1].running_mean.detach().cpu().clone()}
    with torch.no_grad():  # the fix by hand: all-reduce the sums, divide by the global count
        total = model[0](inputs).sum(0)                                       # (hidden,)
        dist.all_reduce(total)
        found["synced_batch_mean"] = (total / (world * args.local_batch)).cpu()
    synced = nn.SyncBatchNorm.convert_sync_batchnorm(build_model("mlp", args.hidden, 2, args.seed, batch_norm=True))
    try:  # the library's fix; DDP accepts SyncBatchNorm only on GPUs
        synced_ddp = DDP(synced.to(device), device_ids=[device.index] if device.type == "cuda" else None)
        synced_ddp(inputs)
        found["sync_running_mean"] = synced[1].running_mean.detach().cpu().clone()
    except ValueError as err:
        found["sync_error"] = str(err).splitlines()[0]
    return found


def run_save(args, world, rank, out):
    from .train import save_checkpoint

    state = {"parameters": build_model(args.model, args.hidden, args.layers, args.seed).state_dict()}
    log = out / "checkpoint_writers.log"
    save_checkpoint(out / "every_rank.pt", state)  # the pitfall: all ranks write the same file
    with open(log, "a") as f:
        f.write(f"every_rank.pt {rank}\n")
    if rank == 0:  # the fix: one writer; the others wait until the file is complete
        save_checkpoint(out / "rank0_only.pt", state)
        with open(log, "a") as f:
            f.write(f"rank0_only.pt {rank}\n")
    dist.barrier()
    return {}


def _median_step_seconds(step, steps, device, barrier=True):
    """Median seconds of ``step()`` over ``steps`` timed calls, after two warm-up calls."""
    times = []
    for _ in range(steps + 2):
        if barrier:
            dist.barrier()
        start = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return sorted(times[2:])[len(times[2:]) // 2]


def run_throughput(args, X, y, world, rank, device):
    """One training step at a fixed global batch, timed with ``world`` DDP ranks (each a 1/world share) and,
    in the same launch, with one process on the whole batch (rank 0, while the others wait): interleaved over
    ``--throughput-rounds`` rounds, so both settings see the same load on a shared machine."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    kind, width = args.throughput_model or args.model, args.throughput_hidden or args.hidden
    model = build_model(kind, width, args.layers, args.seed).to(device)
    ddp = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
    single = build_model(kind, width, args.layers, args.seed).to(device)
    loss_fn = nn.CrossEntropyLoss()
    amp = {"none": None, "bfloat16": torch.bfloat16}[args.amp]

    def step_of(net, optimizer, inputs, targets):
        def step():
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
                loss = loss_fn(net(inputs), targets)
            loss.backward()
            optimizer.step()
        return step

    local = args.throughput_batch // world
    many_step = step_of(ddp, make_optimizer(ddp.parameters(), args.optimizer, args.lr), X[:local].to(device),
                        y[:local].to(device))
    one_step = step_of(single, make_optimizer(single.parameters(), args.optimizer, args.lr),
                       X[:args.throughput_batch].to(device), y[:args.throughput_batch].to(device))
    many, one = [], []
    for _ in range(args.throughput_rounds):
        many.append(_median_step_seconds(many_step, args.throughput_steps, device))
        if rank == 0:
            one.append(_median_step_seconds(one_step, args.throughput_steps, device, barrier=False))
        dist.barrier()  # the other ranks wait here while rank 0 times one process
    buffer = torch.zeros(sum(p.numel() for p in model.parameters()), device=device)
    comm_s = _median_step_seconds(lambda: dist.all_reduce(buffer), args.throughput_steps, device)
    step_s = sorted(many)[len(many) // 2]
    return {"seconds_per_step": step_s, "all_reduce_seconds": comm_s, "gradient_bytes": buffer.numel() * 4,
            "samples_per_second": args.throughput_batch / step_s, "global_batch": args.throughput_batch,
            "rounds_seconds_per_step": many, "rounds_one_process_seconds_per_step": one}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=pathlib.Path, help="folder for rank<r>.pt results")
    parser.add_argument("--experiments", default=",".join(EXPERIMENTS), help=f"comma list of {EXPERIMENTS}")
    parser.add_argument("--model", default="mlp", choices=MODELS)
    parser.add_argument("--hidden", type=int, default=64, help="MLP width / Transformer d_model")
    parser.add_argument("--layers", type=int, default=2, help="Transformer blocks")
    parser.add_argument("--optimizer", default="adam", choices=OPTIMIZERS)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--local-batch", type=int, default=32, help="samples per rank per step")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backend", default="auto", choices=("auto", "gloo"),
                        help="auto: nccl on GPUs (one per rank), else gloo; gloo: CPUs even where GPUs exist "
                             "(e.g. several 'nodes' on one machine, which would share a GPU)")
    parser.add_argument("--throughput-batch", type=int, default=256, help="global batch of the timing runs")
    parser.add_argument("--throughput-steps", type=int, default=10, help="timed steps per round (median)")
    parser.add_argument("--throughput-rounds", type=int, default=3,
                        help="rounds, each timing the ranks and then one process (rank 0), interleaved")
    parser.add_argument("--throughput-model", choices=MODELS, help="model of the timing runs (default: --model)")
    parser.add_argument("--throughput-hidden", type=int, help="its width (default: --hidden)")
    parser.add_argument("--amp", default="none", choices=("none", "bfloat16"),
                        help="autocast dtype of the throughput runs (bfloat16 needs no loss scaling)")
    args = parser.parse_args(argv)
    args.experiments = [e.strip() for e in args.experiments.split(",") if e.strip()]
    unknown = sorted(set(args.experiments) - set(EXPERIMENTS))
    if unknown:
        parser.error(f"unknown experiments {unknown}; accepted: {', '.join(EXPERIMENTS)}")
    if args.throughput_rounds < 1 or args.throughput_steps < 1:
        parser.error(f"--throughput-rounds and --throughput-steps must be >= 1, got {args.throughput_rounds} and "
                     f"{args.throughput_steps}")
    return args


def main(argv=None):
    args = parse_args(argv)
    cuda = torch.cuda.is_available() and args.backend != "gloo"
    dist.init_process_group("nccl" if cuda else "gloo")  # rank, world size and rendezvous come from torchrun
    try:
        world, rank = dist.get_world_size(), dist.get_rank()
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if cuda else torch.device("cpu")
        if cuda:
            torch.cuda.set_device(device)
        X, y, _, _ = load_digits_split()
        args.out.mkdir(parents=True, exist_ok=True)
        results = {"world_size": world, "rank": rank, "backend": dist.get_backend(), "timings": {}}
        runners = {"ddp": lambda: run_ddp(args, X, y, world, rank, device),
                   "no_sampler": lambda: run_ddp(args, X, y, world, rank, device, no_sampler=True),
                   "zero": lambda: run_zero(args, X, y, world, rank, device),
                   "fsdp": lambda: run_fsdp(args, X, y, world, rank, device),
                   "ring": lambda: run_ring(args, world, rank, device),
                   "no_sync": lambda: run_no_sync(args, X, y, world, rank, device),
                   "batchnorm": lambda: run_batchnorm(args, X, y, world, rank, device),
                   "save": lambda: run_save(args, world, rank, args.out),
                   "throughput": lambda: run_throughput(args, X, y, world, rank, device)}
        for name in args.experiments:
            start = time.perf_counter()
            results[name] = runners[name]()
            results["timings"][name] = time.perf_counter() - start
        torch.save(results, args.out / f"rank{rank}.pt")
        dist.barrier()  # nobody leaves (and tears the group down) while another rank still communicates
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
