"""The shared sentiment task of chapters 6 and 9 (the downloads are covered offline by test_full_profile.py)."""
import pytest

from utils import sentiment


def test_vader_words_split_by_word_with_labels_from_the_rating_sign(capsys):
    train_words, train_labels, test_words, test_labels = sentiment.vader_words(min_abs_mean=0.5, verbose=True)
    assert not set(train_words) & set(test_words)
    assert len(train_words) == len(train_labels) and len(test_words) == len(test_labels)
    assert abs(len(test_words) / (len(train_words) + len(test_words)) - 0.2) < 0.001
    labels = dict(zip(train_words + test_words, [*train_labels, *test_labels], strict=True))
    assert labels["good"] == 1 and labels["terrible"] == 0 and labels["love"] == 1 and labels["hate"] == 0
    assert "VADER lexicon:" in capsys.readouterr().out
    again = sentiment.vader_words()
    assert again[0] == train_words and again[2] == test_words


def test_a_stricter_rating_threshold_keeps_fewer_words():
    loose, strict = sentiment.vader_words(min_abs_mean=0.5), sentiment.vader_words(min_abs_mean=2.0)
    assert len(strict[0]) + len(strict[2]) < len(loose[0]) + len(loose[2])


@pytest.mark.parametrize("kwargs, words", [({"min_abs_mean": -1}, ["min_abs_mean", "-1"]),
                                           ({"test_share": 0.0}, ["test_share", "0.0"])])
def test_bad_arguments_are_named(kwargs, words):
    with pytest.raises(ValueError) as err:
        sentiment.vader_words(**kwargs)
    assert all(w in str(err.value) for w in words)
