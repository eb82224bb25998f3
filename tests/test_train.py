import numpy as np
import pytest
import torch
from torch import nn

from utils.train import evaluate, fit, load_checkpoint, save_checkpoint


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
