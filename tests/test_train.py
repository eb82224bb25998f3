import numpy as np
import pytest
import torch
from torch import nn

from utils.train import (
    device_speedup,
    evaluate,
    fit,
    load_checkpoint,
    load_weights,
    loader_options,
    save_checkpoint,
    save_weights,
)


def make_problem(seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(128, 4, generator=g)
    y = (X[:, 0] + X[:, 1] > 0).long()
    data = torch.utils.data.TensorDataset(X, y)
    return torch.utils.data.DataLoader(data, batch_size=16, shuffle=True), torch.utils.data.DataLoader(data, 64)


def new_model():
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    return model, torch.optim.SGD(model.parameters(), lr=0.5)


def test_fit_learns_and_returns_history():
    train, val = make_problem()
    model, opt = new_model()
    before = evaluate(model, val, nn.CrossEntropyLoss())
    history = fit(model, train, nn.CrossEntropyLoss(), opt, epochs=5, val_loader=val, progress=False)
    assert set(history) == {"train_loss", "train_metric", "val_loss", "val_metric"}
    assert len(history["val_loss"]) == 5
    assert history["val_loss"][-1] < before["loss"] / 2 and history["val_metric"][-1] > 0.9


def test_fit_refreshes_its_progress_bar_at_most_once_a_second(capsys):
    # A bar refreshed every 0.1 s floods a notebook's output channel in a long cell (nbval then times out).
    import time

    from utils.data import BAR_SECONDS

    X = torch.randn(4000, 4)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, (X[:, 0] > 0).long()), batch_size=1)
    model, opt = new_model()
    t0 = time.perf_counter()
    fit(model, loader, nn.CrossEntropyLoss(), opt, epochs=1, metric=None)
    seconds = time.perf_counter() - t0
    refreshes = capsys.readouterr().err.count("\r")
    assert refreshes <= seconds / BAR_SECONDS + 3, f"{refreshes} refreshes in {seconds:.1f} s"


def test_resume_continues_the_same_run(tmp_path):
    train, _ = make_problem()
    model, opt = new_model()
    torch.manual_seed(1)
    straight = fit(model, train, nn.CrossEntropyLoss(), opt, epochs=4, progress=False)
    ckpt = tmp_path / "run.pt"
    model2, opt2 = new_model()
    torch.manual_seed(1)
    fit(model2, train, nn.CrossEntropyLoss(), opt2, epochs=2, checkpoint=ckpt, progress=False)
    model3, opt3 = new_model()  # a fresh process would start from scratch objects like these
    resumed = fit(model3, train, nn.CrossEntropyLoss(), opt3, epochs=4, checkpoint=ckpt, progress=False)
    np.testing.assert_allclose(resumed["train_loss"], straight["train_loss"], rtol=1e-6)
    torch.testing.assert_close(model3.weight, model.weight)
    assert load_checkpoint(ckpt)["epoch"] == 4


def test_interrupted_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    ckpt = tmp_path / "model.pt"
    save_checkpoint(ckpt, {"w": torch.ones(2)})

    def broken_save(obj, f):
        f.write(b"partial")
        raise KeyboardInterrupt  # the user stops the kernel mid-write

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(ckpt, {"w": torch.zeros(2)})
    monkeypatch.undo()
    torch.testing.assert_close(load_checkpoint(ckpt)["w"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]  # no temporary file left behind


def test_bad_arguments_are_explained(tmp_path):
    train, _ = make_problem()
    model, opt = new_model()
    with pytest.raises(ValueError, match="positive int"):
        fit(model, train, nn.CrossEntropyLoss(), opt, epochs=0)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


@pytest.mark.parametrize("amp", ["bfloat16", "float16"])
def test_mixed_precision_trains_and_resumes(tmp_path, amp):
    """The CPU runs autocast too, so the GPU's code path (float16 + gradient scaler) is exercised here."""
    train, val = make_problem()
    model, opt = new_model()
    history = fit(model, train, nn.CrossEntropyLoss(), opt, epochs=3, val_loader=val, progress=False, amp=amp,
                  checkpoint=tmp_path / "amp.pt")
    assert history["val_metric"][-1] > 0.9 and model.weight.dtype == torch.float32
    state = load_checkpoint(tmp_path / "amp.pt")
    assert (state["scaler"] is not None) == (amp == "float16")
    model2, opt2 = new_model()
    resumed = fit(model2, train, nn.CrossEntropyLoss(), opt2, epochs=4, progress=False, amp=amp,
                  checkpoint=tmp_path / "amp.pt")
    assert len(resumed["train_loss"]) == 4


def test_amp_true_means_float16_on_cuda_only():
    from utils.device import mixed_precision_dtype

    assert mixed_precision_dtype(True, "cuda") == "float16" and mixed_precision_dtype(True, "cpu") is None
    assert mixed_precision_dtype(False, "cuda") is None and mixed_precision_dtype("bfloat16", "cpu") == "bfloat16"
    with pytest.raises(ValueError, match="amp must be"):
        mixed_precision_dtype("fp16", "cuda")


def test_loader_options_only_on_cuda():
    assert loader_options("cpu") == {}
    assert loader_options(torch.device("cuda"))["pin_memory"] is True


def test_safetensors_weights_round_trip_and_mismatch(tmp_path):
    model, _ = new_model()
    path = save_weights(model, tmp_path / "w" / "linear.safetensors")
    assert not list(path.parent.glob(".*.tmp"))
    copy_model = nn.Linear(4, 2)
    load_weights(copy_model, path)
    torch.testing.assert_close(copy_model.weight, model.weight)
    with pytest.raises(ValueError, match="does not fit this model"):
        load_weights(nn.Sequential(nn.Linear(4, 2)), path)
    with pytest.raises(FileNotFoundError, match="no weights file"):
        load_weights(copy_model, tmp_path / "missing.safetensors")


def test_device_speedup_times_the_cpu_and_leaves_the_model_alone(capsys):
    model, _ = new_model()
    before = model.weight.detach().clone()
    times = device_speedup(model, (torch.randn(16, 4), torch.zeros(16, dtype=torch.long)), nn.CrossEntropyLoss(),
                           steps=3, warmup=1)
    assert times["cpu"] > 0 and ("cuda" in times) == torch.cuda.is_available()
    assert "one training step, batch (16, 4): CPU" in capsys.readouterr().out
    torch.testing.assert_close(model.weight, before)


def test_keras_mixed_precision_policy_is_scoped():
    import keras

    from utils.device import keras_mixed_precision

    with keras_mixed_precision("bfloat16", "cpu") as dtype:
        layer = keras.layers.Dense(2)
    assert dtype == "bfloat16" and layer.compute_dtype == "bfloat16" and layer.variable_dtype == "float32"
    assert keras.config.dtype_policy().name == "float32"
    with keras_mixed_precision(True, "cpu") as dtype:
        assert dtype is None and keras.layers.Dense(2).compute_dtype == "float32"
