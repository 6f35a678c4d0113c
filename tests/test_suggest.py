"""Suggested windows to correct (diffmatte.suggest)."""
from __future__ import annotations

import numpy as np
import pytest

from diffmatte.errors import InputError
from diffmatte.suggest import suggest_windows


def test_the_most_uncertain_places_come_first_and_are_different() -> None:
    u = np.zeros((120, 160))
    u[10:20, 100:110] = 0.5  # a strong spot (sum 50)
    u[80:110, 20:50] = 0.04  # a weak but wide one (sum 36)
    u[60, 80] = 0.3  # a lone pixel
    got = suggest_windows(u, size=32, count=5)
    assert [(s.left <= 100 and s.right >= 110 and s.top <= 10 and s.bottom >= 20) for s in got[:1]] == [True]
    assert got[1].left <= 20 and got[1].right >= 50 and got[1].top <= 80 and got[1].bottom >= 110
    assert got[2].left <= 80 < got[2].right and got[2].top <= 60 < got[2].bottom
    assert len(got) == 3  # nothing else is uncertain: no window that scores 0
    assert got[0].score == pytest.approx(50) and got[1].score == pytest.approx(36, rel=0.02)
    assert all(s.right - s.left == 32 and s.bottom - s.top == 32 for s in got)


def test_small_images_and_bad_maps() -> None:
    got = suggest_windows(np.full((20, 30), 0.1), size=64, count=2)
    assert [(g.left, g.top, g.right, g.bottom) for g in got] == [(0, 0, 30, 20)]  # clipped to the image
    with pytest.raises(InputError, match="uncertainty must be"):
        suggest_windows(np.full((4, 4), -1.0))
