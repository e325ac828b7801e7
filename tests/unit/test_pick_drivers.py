"""Driver selection for a whole matrix at once: the largest |contributions| per row."""

import numpy as np
import pytest

from serving.predictions import pick_drivers


@pytest.mark.parametrize(
    ("row", "k", "expected"),
    [
        ([0.1, -0.5, 0.3, 9.0], 2, [1, 2]),  # the last column is the base value, never picked
        ([0.2, -0.2, 0.2, 0.0], 3, [0, 1, 2]),  # ties: feature order
        ([0.0, 0.4, 0.0, 1.0], 3, [1, -1, -1]),  # a zero contribution explains nothing
        ([0.1, 0.2, 0.3, 0.0], 10, [2, 1, 0]),  # more asked than there are features
    ],
)
def test_pick_drivers_per_row(row, k, expected):
    assert pick_drivers(np.array([row]), k).tolist() == [expected]


def test_pick_drivers_matches_a_row_by_row_choice():
    rng = np.random.default_rng(0)
    contributions = rng.normal(size=(200, 31)).round(1)  # rounding makes ties common
    contributions[:, 5] = 0.0
    picked = pick_drivers(contributions, 5)
    for row, chosen in zip(contributions, picked, strict=True):
        values = np.abs(row[:-1])
        by_hand = sorted(range(len(values)), key=lambda i: (-values[i], i))[:5]
        assert chosen.tolist() == [i if values[i] > 0 else -1 for i in by_hand]


def test_no_rows_no_drivers():
    assert pick_drivers(np.empty((0, 4)), 3).shape == (0, 0)
