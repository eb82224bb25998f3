"""utils.mlp and utils.optim: gradients vs autograd and finite differences, optimisers and schedules vs
torch.optim / torch.optim.lr_scheduler, the Keras twin, initialisation statistics, bad input."""
import math

import numpy as np
import pytest
import torch

from utils import mlp as M
from utils import optim as O
from utils.answers import ch02_mlp


def finite_difference(f, array, h=1e-6):
    grad = np.zeros_like(array)
    for i in np.ndindex(array.shape):
        old = array[i]
        array[i] = old + h
        up = f()
        array[i] = old - h
        down = f()
        array[i] = old
        grad[i] = (up - down) / (2 * h)
    return grad


@pytest.fixture
def tiny_mlp():
    torch.manual_seed(0)
    return M.MLP(M.MLPConfig(5, 3, [4, 6])).double()


def test_tensor_engine_matches_autograd_and_finite_differences(tiny_mlp):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(7, 5)), rng.integers(0, 3, 7)
    net = M.TensorMLP.from_torch(tiny_mlp)
    loss = net(x).cross_entropy(y)
    loss.backward()
    torch_loss = torch.nn.functional.cross_entropy(tiny_mlp(torch.from_numpy(x)), torch.from_numpy(y))
    torch_loss.backward()
    assert loss.data == pytest.approx(torch_loss.item(), abs=1e-12)
    linears = [m for m in tiny_mlp.modules() if isinstance(m, torch.nn.Linear)]
    for w, lin in zip(net.weights, linears, strict=True):
        np.testing.assert_allclose(w.grad, lin.weight.grad.numpy().T, atol=1e-12)
        fd = finite_difference(lambda: net(x).cross_entropy(y).data.item(), w.data)
        np.testing.assert_allclose(w.grad, fd, atol=1e-7)


def test_tensor_broadcasting_exp_tanh_and_scalar_only_backward():
    a, b = M.Tensor(np.array([[1.0, 2.0], [3.0, 4.0]])), M.Tensor(np.array([0.5, -1.0]))
    ((a * b).tanh() + a.exp() - b).sum().backward()
    ta, tb = torch.tensor(a.data, requires_grad=True), torch.tensor(b.data, requires_grad=True)
    (torch.tanh(ta * tb) + ta.exp() - tb).sum().backward()
    np.testing.assert_allclose(a.grad, ta.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(b.grad, tb.grad.numpy(), atol=1e-12)
    with pytest.raises(ValueError, match="scalar"):
        (a * b).backward()


@pytest.mark.parametrize("name", M.ACTIVATIONS)
def test_activations_and_derivatives_match_torch(name):
    z = np.linspace(-6, 6, 101)
    zt = torch.tensor(z, requires_grad=True)
    out = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu,
           "gelu": torch.nn.functional.gelu}[name](zt)
    out.sum().backward()
    np.testing.assert_allclose(M.activation(name, z), out.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(M.activation_derivative(name, z), zt.grad.numpy(), atol=1e-12)
    with pytest.raises(ValueError, match="activation must be one of"):
        M.activation("swish", z)


def test_keras_twin_gives_the_same_logits(tiny_mlp):
    import keras

    config = M.MLPConfig(5, 3, [4, 6], activation="gelu", dropout=0.5)
    torch.manual_seed(1)
    model = M.MLP(config).eval()
    twin = M.keras_mlp(config)
    M.copy_torch_mlp_to_keras(model, twin)
    x = np.random.default_rng(1).normal(size=(8, 5)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(twin(x, training=False)), model(torch.from_numpy(x)).detach().numpy(),
                               atol=1e-5)
    with pytest.raises(ValueError, match="linear layers"):
        M.copy_torch_mlp_to_keras(model, keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)]))
    with pytest.raises(ValueError, match="dropout must lie"):
        M.MLPConfig(5, 3, dropout=1.0)


def test_he_init_keeps_relu_second_moment_and_default_std():
    model = M.init_mlp_(M.MLP(M.MLPConfig(512, 10, [512] * 4)), "he")
    x = torch.randn(256, 512)
    stats = M.layer_statistics(model, x, torch.randint(0, 10, (256,)))
    ms = np.array(stats["input_ms"][1:])
    assert np.all((ms > 0.5) & (ms < 2)), ms  # E[h^2] stays near 1 under He init with ReLU
    predicted = 512 * (2 / 512) * np.array(stats["input_ms"][:-1])  # Var(z) = n_in Var(W) E[h^2]
    np.testing.assert_allclose(np.array(stats["z_std"][:-1]) ** 2, predicted, rtol=0.3)
    small = M.layer_statistics(M.init_mlp_(M.MLP(M.MLPConfig(512, 10, [512] * 4)), 0.01), x, torch.zeros(256).long())
    assert small["z_std"][-1] < 1e-3 * stats["z_std"][-1]
    assert all(p.grad is None for p in model.parameters())
    weight = torch.nn.Linear(400, 300).weight
    assert weight.std().item() == pytest.approx(M.init_std("torch_default", 400, 300), rel=0.02)
    with pytest.raises(ValueError, match="scheme must be"):
        M.init_mlp_(model, "lecun")


def _run(make, steps=6):
    torch.manual_seed(0)
    w = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    x, y = torch.randn(10, 4, dtype=torch.float64), torch.randn(10, 3, dtype=torch.float64)
    opt = make([w])
    for _ in range(steps):
        opt.zero_grad()
        ((torch.tanh(x @ w) - y) ** 2).mean().backward()
        opt.step()
    return w.detach()


@pytest.mark.parametrize("mine, theirs", [
    (lambda p: O.SGD(p, 0.1, momentum=0.9, nesterov=True, weight_decay=0.1),
     lambda p: torch.optim.SGD(p, 0.1, momentum=0.9, nesterov=True, weight_decay=0.1)),
    (lambda p: O.RMSprop(p, 0.01, centered=True, momentum=0.5), lambda p: torch.optim.RMSprop(p, 0.01, centered=True,
                                                                                               momentum=0.5)),
    (lambda p: O.Adam(p, 0.01, weight_decay=0.1), lambda p: torch.optim.Adam(p, 0.01, weight_decay=0.1)),
    (lambda p: O.AdamW(p, 0.01, weight_decay=0.1), lambda p: torch.optim.AdamW(p, 0.01, weight_decay=0.1)),
])
def test_optimisers_match_torch_optim(mine, theirs):
    np.testing.assert_allclose(_run(mine).numpy(), _run(theirs).numpy(), atol=1e-14)


def test_adam_eps_hat_differs_and_bad_optimiser_arguments():
    plain = _run(lambda p: O.Adam(p, 0.01, eps=1e-3))
    hat = _run(lambda p: O.Adam(p, 0.01, eps=1e-3, eps_hat=True))
    assert (plain - hat).abs().max() > 1e-6
    with pytest.raises(ValueError, match="lr must be"):
        O.SGD([torch.zeros(1)], lr=-1)
    with pytest.raises(ValueError, match="nesterov=True needs momentum"):
        O.SGD([torch.zeros(1)], lr=0.1, nesterov=True)
    with pytest.raises(TypeError, match="params"):
        O.Adam([np.zeros(1)])


def test_schedules_match_torch_and_transformers():
    from transformers import get_linear_schedule_with_warmup

    total = 50
    makers = {
        "step": (lambda o: torch.optim.lr_scheduler.StepLR(o, 7, 0.5), lambda t: O.step_decay(t, 0.1, 7, 0.5)),
        "cosine": (lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, total, eta_min=0.01),
                   lambda t: O.cosine_decay(t, 0.1, total, 0.01)),
        "one_cycle": (lambda o: torch.optim.lr_scheduler.OneCycleLR(o, 0.1, total_steps=total, cycle_momentum=False),
                      lambda t: O.one_cycle(t, 0.1, total)),
        "warmup": (lambda o: get_linear_schedule_with_warmup(o, 5, total),
                   lambda t: O.linear_warmup_decay(t, 0.1, 5, total)),
    }
    for name, (make, mine) in makers.items():
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
        sched = make(opt)
        lrs = []
        for _ in range(total):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        np.testing.assert_allclose([mine(t) for t in range(total)], lrs, atol=1e-12, err_msg=name)
    with pytest.raises(ValueError, match="warmup_steps"):
        O.linear_warmup_decay(0, 0.1, 60, total)
    with pytest.raises(ValueError, match="step must be"):
        O.cosine_decay(-1, 0.1, total)
    assert O.cosine_decay(total, 0.1, total) == pytest.approx(0.0)
    assert O.one_cycle(total - 1, 0.1, total) == pytest.approx(0.1 / 25 / 1e4)  # max_lr / (div * final_div) at T - 1


def test_lr_range_test_leaves_model_untouched(tiny_mlp):
    x, y = torch.randn(64, 5, dtype=torch.float64), torch.randint(0, 3, (64,))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)
    before = [p.clone() for p in tiny_mlp.parameters()]
    result = O.lr_range_test(tiny_mlp, loader, torch.nn.CrossEntropyLoss(), lambda p: O.SGD(p, 0.1), steps=20)
    assert all(torch.equal(a, b) for a, b in zip(before, tiny_mlp.parameters(), strict=True))
    assert len(result["lr"]) == len(result["loss"]) and result["lr"] == sorted(result["lr"])
    assert result["lr"][0] <= result["suggested_lr"] * 10 <= result["lr"][-1]
    with pytest.raises(ValueError, match="lr_min"):
        O.lr_range_test(tiny_mlp, loader, torch.nn.CrossEntropyLoss(), lambda p: O.SGD(p, 0.1), lr_min=1, lr_max=0.1)


def test_exercise_references_match_closed_forms_and_reject_unknown_names():
    s = 1 / (1 + math.exp(0.75))  # sigmoid(1.5 * -0.5)
    ds = s * (1 - s)
    assert np.allclose(ch02_mlp.exercise_reference("sigmoid_grads"), [ds * -0.5, ds * 1.5], atol=1e-7)
    w, b = np.array([-4.0, 1.5]), np.zeros(2)
    for _ in range(30):  # Nesterov in torch's form, b <- mu b + g, w <- w - lr (g + mu b)
        g = np.array([1.0, 25.0]) * w
        b = 0.8 * b + g
        w = w - 0.035 * (g + 0.8 * b)
    assert np.allclose(ch02_mlp.exercise_reference("nesterov_end"), w, atol=1e-12)
    assert ch02_mlp.exercise_reference("he_std") == pytest.approx(math.sqrt(2 / 300))
    with pytest.raises(ValueError, match="name must be one of"):
        ch02_mlp.exercise_reference("adam")
