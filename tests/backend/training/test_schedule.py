"""The release's router-loss ramp and teacher-forcing schedule, at the paper's 50 epochs and scaled."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hisem.training.schedule import (
    ROUTER_LOSS_WEIGHT,
    router_warmup_epochs,
    router_weight,
    teacher_forced,
)


def test_paper_schedule_at_50_epochs() -> None:
    weights = [router_weight(e, 50) for e in range(50)]
    assert weights[:4] == [0.0] * 4, "no router gradient for the first 4 epochs"
    assert 0.0 < weights[4] < 0.01
    assert weights[-1] == pytest.approx(ROUTER_LOSS_WEIGHT)
    # half-cosine: halfway through the ramp the weight is half of the maximum
    mid = 4 + (50 - 4) // 2 - 1
    assert weights[mid] == pytest.approx(ROUTER_LOSS_WEIGHT / 2, abs=0.03)
    forced = [teacher_forced(e, 50) for e in range(50)]
    assert forced.count(True) == 41 and all(forced[:41]) and not any(forced[41:])


@given(st.integers(min_value=1, max_value=400))
def test_schedule_shape_for_any_length(total: int) -> None:
    weights = [router_weight(e, total) for e in range(total)]
    assert all(0.0 <= w <= ROUTER_LOSS_WEIGHT + 1e-12 for w in weights)
    assert all(a <= b for a, b in zip(weights, weights[1:], strict=False)), "the ramp never goes down"
    assert all(w == 0.0 for w in weights[: router_warmup_epochs(total)])
    assert weights[-1] == pytest.approx(ROUTER_LOSS_WEIGHT) or total <= router_warmup_epochs(total)
    forced = [teacher_forced(e, total) for e in range(total)]
    # forced epochs come first, then the router decides
    assert forced == sorted(forced, reverse=True)


def test_bad_length() -> None:
    with pytest.raises(ValueError):
        router_weight(0, 0)


@given(st.integers(min_value=1, max_value=2000))
def test_learning_rate_schedules(total: int) -> None:
    from hisem.training.schedule import learning_rate

    assert {learning_rate(s, total, 1e-4, "constant") for s in range(0, total, max(total // 7, 1))} == {1e-4}
    cosine = [learning_rate(s, total, 1e-4, "cosine") for s in range(total + 1)]
    assert cosine[0] == 1e-4 and cosine[-1] == pytest.approx(0.0, abs=1e-20)
    assert all(a >= b for a, b in zip(cosine, cosine[1:], strict=False)), "cosine only decays"
    with pytest.raises(ValueError, match="schedule"):
        learning_rate(0, total, 1e-4, "linear")
