import numpy as np
import pytest
import sklearn.linear_model as sklm
import sklearn.metrics as skm
import torch
from sklearn.datasets import load_diabetes

from utils import metrics as M
from utils import regression as R
from utils.answers import ch01_regression


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return R.add_bias_column(R.Standardizer().fit(X).transform(X)), y


def numeric_gradient(f, w, h=1e-6):
    g = np.zeros_like(w)
    for i in np.ndindex(w.shape):
        e = np.zeros_like(w)
        e[i] = h
        g[i] = (f(w + e) - f(w - e)) / (2 * h)
    return g


def test_normal_equation_and_ridge_match_sklearn(diabetes):
    X, y = diabetes
    w = R.normal_equation(X, y)
    lr = sklm.LinearRegression().fit(X[:, 1:], y)
    np.testing.assert_allclose(w, np.r_[lr.intercept_, lr.coef_], rtol=1e-8)
    w_ridge = R.normal_equation(X, y, l2=10.0)
    ridge = sklm.Ridge(alpha=10.0).fit(X[:, 1:], y)
    np.testing.assert_allclose(w_ridge, np.r_[ridge.intercept_, ridge.coef_], rtol=1e-8)


@pytest.mark.parametrize("kind", ["mse", "logistic", "softmax"])
def test_gradients_match_finite_differences(kind):
    rng = np.random.default_rng(0)
    X = R.add_bias_column(rng.normal(size=(30, 3)))
    if kind == "softmax":
        y, w = rng.integers(0, 4, 30), rng.normal(size=(4, 4))
        fn = R.softmax_loss_and_grad
    else:
        y, w = (rng.integers(0, 2, 30) if kind == "logistic" else rng.normal(size=30)), rng.normal(size=4)
        fn = R.logistic_loss_and_grad if kind == "logistic" else R.mse_loss_and_grad
    np.testing.assert_allclose(fn(X, y, w)[1], numeric_gradient(lambda v: fn(X, y, v)[0], w), atol=1e-6)


def test_gradient_descent_converges_to_closed_form(diabetes):
    X, y = diabetes
    w, losses = R.gradient_descent(X, y, R.mse_loss_and_grad, np.zeros(X.shape[1]), lr=0.2, epochs=5000)
    assert np.all(np.diff(losses) <= 1e-9)
    np.testing.assert_allclose(w, R.normal_equation(X, y), rtol=1e-4, atol=1e-3)
    with pytest.raises(ValueError, match="lr must be > 0"):
        R.gradient_descent(X, y, R.mse_loss_and_grad, np.zeros(X.shape[1]), lr=0.0, epochs=1)


def test_sigmoid_softmax_are_stable_and_match_torch():
    z = np.array([-1000.0, -2.0, 0.0, 3.0, 1000.0])
    np.testing.assert_allclose(R.sigmoid(z), torch.sigmoid(torch.tensor(z)).numpy())
    Z = np.array([[1000.0, 0.0, -1000.0], [1.0, 2.0, 3.0]])
    np.testing.assert_allclose(R.softmax(Z), torch.softmax(torch.tensor(Z), 1).numpy())
    P, y = R.softmax(Z[1:]), np.array([2])
    assert R.cross_entropy(P, y) == pytest.approx(torch.nn.functional.cross_entropy(torch.tensor(Z[1:]),
                                                                                    torch.tensor(y)).item())
    with pytest.raises(ValueError, match="labels must lie"):
        R.one_hot(np.array([0, 3]), 3)


def test_metrics_match_sklearn():
    rng = np.random.default_rng(1)
    t, p = rng.integers(0, 3, 200), rng.integers(0, 3, 200)
    np.testing.assert_array_equal(M.confusion_matrix(t, p), skm.confusion_matrix(t, p))
    assert M.accuracy(p, t) == pytest.approx(skm.accuracy_score(t, p))
    macro = skm.precision_recall_fscore_support(t, p, average="macro")[:3]
    np.testing.assert_allclose(M.precision_recall_f1(t, p, "macro"), macro)
    tb, pb = t % 2, p % 2
    binary = skm.precision_recall_fscore_support(tb, pb, average="binary")[:3]
    np.testing.assert_allclose(M.precision_recall_f1(tb, pb), binary)
    with pytest.raises(ValueError, match="'binary' or 'macro'"):
        M.precision_recall_f1(t, p, "micro")


def test_softmax_regression_baseline_learns_digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X / 16, y, test_size=0.25, stratify=y, random_state=0)
    model, history = R.fit_softmax_regression(X_train, y_train, 10)
    logits = model(torch.tensor(X_test, dtype=torch.float32))
    assert history["train_loss"][-1] < history["train_loss"][0] / 4
    assert (logits.argmax(1).numpy() == y_test).mean() > 0.93


def test_exercise_references_agree_with_formulas_and_plausible_wrong_answers_fail():
    from utils.check import check_answer

    rng = np.random.default_rng(0)
    X = R.add_bias_column(rng.normal(size=(60, 3)))
    y_reg, w = X @ [1.0, 2.0, -1.0, 0.5] + rng.normal(size=60), rng.normal(size=4)
    residual = X @ w - y_reg
    check_answer(np.mean(np.abs(residual)), ch01_regression.exercise_reference("mae", X=X, y=y_reg, w=w))
    with pytest.raises(AssertionError, match="value is wrong"):  # the mean squared error is not the MAE
        check_answer(np.mean(residual ** 2), ch01_regression.exercise_reference("mae", X=X, y=y_reg, w=w))

    ridge = ch01_regression.exercise_reference("ridge", X=X, y=y_reg, lam=5.0)
    check_answer(R.normal_equation(X, y_reg, l2=5.0), ridge, rtol=1e-6)
    with pytest.raises(AssertionError):  # penalising the intercept too
        check_answer(np.linalg.solve(X.T @ X + 5.0 * np.eye(4), X.T @ y_reg), ridge, rtol=1e-3, atol=1e-2)

    y01 = (rng.random(60) < R.sigmoid(X @ w)).astype(int)
    z = X @ w
    log_loss = ch01_regression.exercise_reference("log_loss", X=X, y=y01, w=w)
    check_answer(np.mean(np.logaddexp(0, z) - y01 * z), log_loss)
    with pytest.raises(AssertionError):  # the labels the wrong way round
        check_answer(np.mean(np.logaddexp(0, z) - (1 - y01) * z), log_loss)

    labels = np.r_[np.zeros(50, int), np.ones(10, int)]
    predictions = np.r_[np.zeros(50, int), np.zeros(5, int), np.ones(5, int)]
    macro = ch01_regression.exercise_reference("macro_recall", y=labels, predictions=predictions)
    check_answer(macro, (1.0 + 0.5) / 2)
    with pytest.raises(AssertionError):  # accuracy (the micro average) is not the macro recall
        check_answer(np.mean(labels == predictions), macro)
    with pytest.raises(ValueError, match="name must be one of"):
        ch01_regression.exercise_reference("rmse", X=X, y=y_reg, w=w)
    with pytest.raises(TypeError, match="takes the inputs X, y, w"):
        ch01_regression.exercise_reference("mae", X=X, y=y_reg)
