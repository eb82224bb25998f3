"""utils.distributed and utils.ddp_train: memory accounting, accumulation, the launcher, and a real
2-process DDP run on loopback that must equal one-process training."""
import socket
import subprocess
import sys

import pytest
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint
from torch.utils.data import DistributedSampler

import utils.distributed as D
from utils.ddp_train import (
    batch_gradient,
    build_model,
    flat_parameters,
    load_digits_split,
    parse_args,
    train_single_process,
)


def small_mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))


def one_step(model, optimizer):
    model(torch.randn(4, 6)).square().mean().backward()
    optimizer.step()
    return optimizer


@pytest.mark.parametrize("make, kind", [(torch.optim.Adam, "adam"),
                                        (lambda p: torch.optim.SGD(p, 0.1, momentum=0.9), "momentum")])
def test_measured_state_equals_formula_in_float32(make, kind):
    model = small_mlp()
    optimizer = one_step(model, make(model.parameters()))
    n = sum(p.numel() for p in model.parameters())
    assert D.measured_state_bytes(model, optimizer) == D.training_state_bytes(n, "float32", kind)


def test_mixed_precision_state_counts_master_weights():
    low = small_mlp().to(torch.bfloat16)
    masters = [p.detach().float().clone().requires_grad_() for p in low.parameters()]
    optimizer = torch.optim.Adam(masters)
    low(torch.randn(4, 6, dtype=torch.bfloat16)).float().sum().backward()
    for master, p in zip(masters, low.parameters(), strict=True):
        master.grad = p.grad.float()
    optimizer.step()
    for master in masters:
        master.grad = None
    n = sum(p.numel() for p in low.parameters())
    measured = D.measured_state_bytes(low, optimizer)
    assert measured == D.training_state_bytes(n, "mixed", "adam")
    assert measured["total"] == 16 * n and measured["master_weights"] == 4 * n


@pytest.mark.parametrize("kwargs, word", [({"n_params": -1}, "n_params"), ({"n_params": 10, "precision": "fp8"},
                                          "precision"), ({"n_params": 10, "optimizer": "lion"}, "optimizer")])
def test_training_state_bytes_rejects_bad_input(kwargs, word):
    with pytest.raises(ValueError, match=word):
        D.training_state_bytes(**kwargs)


def test_saved_activations_of_a_linear_layer_and_of_checkpointed_blocks():
    layer = nn.Linear(8, 4)
    x = torch.randn(5, 8, requires_grad=True)
    with D.SavedActivations(layer) as saved:
        layer(x)
    assert saved.bytes == 5 * 8 * 4  # the input only: the weight is a parameter
    blocks = nn.ModuleList([nn.Sequential(nn.Linear(8, 8), nn.Tanh()) for _ in range(3)])
    with D.SavedActivations(blocks) as plain:
        h = x
        for block in blocks:
            h = block(h)
    with D.SavedActivations(blocks) as kept:
        h = x
        for block in blocks:
            h = checkpoint(block, h, use_reentrant=False)
    # plain: x and the three tanh outputs (each tanh output is also the next linear's input: one storage);
    # checkpointed: the three block inputs only
    assert plain.bytes == 4 * 5 * 8 * 4 and kept.bytes == 3 * 5 * 8 * 4


def test_accumulation_equals_one_batch_and_the_trap_does_not():
    model = small_mlp()
    X, y = torch.randn(23, 6), torch.randint(0, 3, (23,))
    model.zero_grad()
    nn.CrossEntropyLoss()(model(X), y).backward()
    full = [p.grad.clone() for p in model.parameters()]
    parts = [(X[:10], y[:10]), (X[10:20], y[10:20]), (X[20:], y[20:])]
    D.accumulate_gradients(model, nn.CrossEntropyLoss(reduction="sum"), parts)
    for p, g in zip(model.parameters(), full, strict=True):
        torch.testing.assert_close(p.grad, g, atol=1e-6, rtol=0)
    D.accumulate_gradients(model, nn.CrossEntropyLoss(), parts, normalise="per_micro_batch")
    assert max((p.grad - g).abs().max().item() for p, g in zip(model.parameters(), full, strict=True)) > 1e-3
    with pytest.raises(ValueError, match="normalise"):
        D.accumulate_gradients(model, nn.CrossEntropyLoss(), parts, normalise="mean")
    with pytest.raises(ValueError, match="empty"):
        D.accumulate_gradients(model, nn.CrossEntropyLoss(), [])


def test_replica_batches_are_what_distributed_sampler_gives():
    steps = D.replica_batches(50, world_size=2, local_batch=4, steps=9, seed=3)  # 6 steps per epoch: crosses one
    assert len(steps) == 9 and all(len(step) == 2 and all(len(b) == 4 for b in step) for step in steps)
    for rank in range(2):
        sampler = DistributedSampler(range(50), 2, rank, shuffle=True, seed=3, drop_last=True)
        sampler.set_epoch(1)
        assert steps[6][rank] == list(sampler)[:4]
    first_epoch = [i for step in steps[:6] for b in step for i in b]
    assert len(set(first_epoch)) == len(first_epoch)  # no sample twice within an epoch
    with pytest.raises(ValueError, match="cannot fill"):
        D.replica_batches(5, 2, 4, 1)


def test_cost_model():
    assert D.ring_all_reduce_seconds(1e6, 1, 1e9) == 0
    assert D.ring_all_reduce_seconds(8e6, 4, 1e9) == pytest.approx(2 * 3 * 2e6 / 1e9)
    assert D.data_parallel_step_seconds(1.0, 8e6, 4, 1e9, overlap=1.0) == 1.0
    with pytest.raises(ValueError, match="overlap"):
        D.data_parallel_step_seconds(1.0, 1, 2, 1e9, overlap=2)


def test_ports_and_children():
    port = D.free_port()
    assert D.port_is_free(port)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        assert not D.port_is_free(port)
        with pytest.raises(ValueError, match="already in use"):
            D.torchrun(["--out", "unused"], port=port)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert sleeper.pid in [pid for pid, _ in D.running_children()]
    finally:
        sleeper.kill()
        sleeper.wait()
    assert sleeper.pid not in [pid for pid, _ in D.running_children()]


def test_script_rejects_unknown_experiments():
    with pytest.raises(SystemExit):
        parse_args(["--out", "x", "--experiments", "ddp,magic"])
    with pytest.raises(SystemExit):
        parse_args(["--out", "x", "--throughput-rounds", "0"])
    with pytest.raises(ValueError, match="kind"):
        build_model("cnn")


def launched_workers():
    return [pid for pid, cmd in D.running_children() if "torch.distributed.run" in cmd or "ddp_train" in cmd]


@pytest.mark.integration  # a real torchrun launch
def test_a_launch_over_time_is_killed_with_all_its_workers(tmp_path):
    with pytest.raises(RuntimeError, match="did not finish"):
        D.torchrun(["--out", tmp_path, "--experiments", "throughput", "--throughput-steps", "100000"], timeout=3)
    assert not launched_workers()


def test_batch_gradient_concatenates_per_rank_lists():
    X, y, _, _ = load_digits_split()
    nested = batch_gradient(build_model("mlp", 16), X, y, [[0, 1, 2], [3, 4]])
    flat = batch_gradient(build_model("mlp", 16), X, y, [0, 1, 2, 3, 4])
    assert torch.equal(nested, flat) and nested.numel() == sum(p.numel() for p in build_model("mlp", 16).parameters())
    assert not torch.equal(flat, batch_gradient(build_model("mlp", 16), X, y, [0, 1, 2]))


@pytest.mark.integration  # two real processes on loopback: several seconds
def test_two_process_ddp_equals_one_process_on_loopback(tmp_path):
    """A real torchrun with 2 gloo processes on 127.0.0.1: DDP's parameters after 6 steps equal one process
    trained on the full batches; the ring all-reduce equals dist.all_reduce. Bounded by the launcher's
    timeout; the launcher kills every worker on any failure, and this test checks none is left."""
    try:
        D.torchrun(["--out", tmp_path, "--experiments", "ddp,ring", "--steps", "6", "--local-batch", "16",
                    "--hidden", "16", "--lr", "0.01"], nproc_per_node=2, timeout=300)
        ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
        X, y, _, _ = load_digits_split()
        reference = train_single_process(build_model("mlp", 16), X, y, D.replica_batches(len(X), 2, 16, 6),
                                         "adam", 0.01)
        start = flat_parameters(build_model("mlp", 16))
        assert ranks[0]["world_size"] == 2 and ranks[0]["backend"] == "gloo"
        assert torch.equal(ranks[0]["ddp"]["parameters"], ranks[1]["ddp"]["parameters"])
        torch.testing.assert_close(ranks[0]["ddp"]["parameters"], flat_parameters(reference), atol=1e-6, rtol=0)
        assert (ranks[0]["ddp"]["parameters"] - start).abs().max() > 1e-2  # training did move the weights
        assert all(d == 0 for r in ranks for d in r["ring"]["ring_vs_all_reduce"].values())  # 2 addends: exact
        first = batch_gradient(build_model("mlp", 16), X, y, D.replica_batches(len(X), 2, 16, 6)[0])
        for r in ranks:  # the averaged first gradient: a sum (missing 1/W) would be twice as large
            torch.testing.assert_close(r["ddp"]["first_gradient"], first, atol=1e-6, rtol=0)
        assert first.abs().max() > 1e-3  # large enough that a doubled gradient fails the check above
    finally:
        assert not launched_workers()
