import numpy as np
import pytest
import torch

from utils.check import assert_close, check_answer, check_property, max_abs_diff, relative_diff, to_numpy


def test_to_numpy_accepts_all_frameworks():
    import tensorflow as tf

    for x in (np.ones(3), torch.ones(3, requires_grad=True), tf.ones(3), [1.0, 1.0, 1.0]):
        np.testing.assert_array_equal(to_numpy(x), np.ones(3))


def test_assert_close_returns_max_diff_and_names_the_worst_element():
    assert assert_close([1.0, 2.0], np.array([1.0, 2.0 + 1e-7]), atol=1e-6) == pytest.approx(1e-7)
    with pytest.raises(AssertionError, match=r"worst at index \(1, 0\): 5 vs expected 4"):
        assert_close(np.array([[1.0], [5.0]]), torch.tensor([[1.0], [4.0]]), atol=1e-5, name="logits")
    with pytest.raises(AssertionError, match="shape"):
        assert_close(np.ones(2), np.ones(3))
    with pytest.raises(AssertionError, match="non-finite"):
        assert_close(np.array([np.nan]), np.array([0.0]))


def test_diff_helpers():
    assert max_abs_diff([1, 2], [1, 4]) == 2
    assert relative_diff(np.array([3.0, 4.0]), np.array([3.0, 4.0])) == 0
    with pytest.raises(ValueError, match="shapes differ"):
        max_abs_diff(np.ones(2), np.ones(3))


def test_check_answer_says_what_is_wrong_without_the_answer(capsys):
    expected = np.array([0.25, 0.75])
    check_answer(np.array([0.25, 0.75]), expected, name="probs")
    assert "✓ probs" in capsys.readouterr().out
    for wrong, message in [(None, "no answer"), (np.ones(3), "wrong shape"), (np.array(["a", "b"]), "dtype"),
                           (np.array([0.25, 0.7]), "1 of 2 values are wrong")]:
        with pytest.raises(AssertionError, match=message) as err:
            check_answer(wrong, expected, name="probs")
        assert "0.75" not in str(err.value)


def test_check_property_judges_what_the_answer_does(capsys):
    with pytest.raises(AssertionError, match="no answer yet"):
        check_property(None, lambda a: True, name="model")
    with pytest.raises(AssertionError, match="does not meet the requirement: even"):
        check_property(3, lambda a: a % 2 == 0, name="number", requirement="even")
    with pytest.raises(AssertionError, match="could not be checked"):
        check_property("text", lambda a: a + 1 > 0, name="number")
    with pytest.raises(TypeError, match="holds must be a function"):
        check_property(2, True)
    check_property(4, lambda a: a % 2 == 0, name="number")
    assert "✓ number: correct" in capsys.readouterr().out
