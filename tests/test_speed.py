"""utils.course.speed: the pairing and the ratio that the speed table prints (no model is timed here)."""
from utils.course import speed


def test_pairs_alternate_which_model_goes_first():
    calls = []
    times_a, times_b = speed._paired_times(lambda: calls.append("a"), lambda: calls.append("b"), repeats=4, warmup=1)
    assert calls == ["a", "b", "a", "b", "b", "a", "a", "b", "b", "a"]  # warm-up, then A B, B A, A B, B A
    assert len(times_a) == len(times_b) == 4


def test_ratio_is_the_median_of_the_per_pair_ratios_not_the_ratio_of_medians():
    # pair 2 ran under a burst of load that hit the course's model only: the per-pair median ignores it
    course, library = [1.0, 1.1, 9.0], [1.0, 1.0, 2.0]
    median_course, median_library, ratio = speed._summary(course, library)
    assert (median_course, median_library) == (1.1, 1.0)
    assert ratio == 1.1  # ratios 1.0, 1.1, 4.5 -> median 1.1
    # the load moved between pairs, the two models equal within each pair: ratio of medians 1/3, pairs say 1
    assert speed._summary([1.0, 1.0, 3.0], [1.0, 3.0, 3.0])[2] == 1.0
