"""Answer key of chapter 2 (multilayer perceptrons): each exercise's expected value, from PyTorch."""
import torch

from ..mlp import init_std

EXERCISES = ("sigmoid_grads", "nesterov_end", "he_std")


def exercise_reference(name: str):
    """Expected answer of chapter 2's exercise ``name`` (one of :data:`EXERCISES`), computed independently of the
    learner's code, so the notebook's check cell can compare without displaying how the answer is obtained.

    sigmoid_grads: [dL/da, dL/db] of L = sigmoid(a b) at a = 1.5, b = -0.5, by ``torch.autograd`` -> list of 2.
    nesterov_end: ``torch.optim.SGD(lr=0.035, momentum=0.8, nesterov=True)``, 30 steps on the bowl
    (w1^2 + 25 w2^2) / 2 from (-4, 1.5) -> array (2,).
    he_std: the weight std keeping E[relu(xW)^2] = E[x^2] for 300 inputs, sqrt(2 / 300) -> float.
    """
    if name not in EXERCISES:
        raise ValueError(f"name must be one of {', '.join(EXERCISES)}, got {name!r}")
    if name == "sigmoid_grads":
        a, b = torch.tensor(1.5, requires_grad=True), torch.tensor(-0.5, requires_grad=True)
        torch.sigmoid(a * b).backward()
        return [a.grad.item(), b.grad.item()]
    if name == "nesterov_end":
        w = torch.tensor([-4.0, 1.5], dtype=torch.float64, requires_grad=True)
        opt = torch.optim.SGD([w], lr=0.035, momentum=0.8, nesterov=True)
        for _ in range(30):
            opt.zero_grad()
            (0.5 * (w[0] ** 2 + 25 * w[1] ** 2)).backward()
            opt.step()
        return w.detach().numpy()
    return init_std("he", 300, 300)
