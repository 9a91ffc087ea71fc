from __future__ import annotations

from datetime import timedelta

import pytest

from feedsync.config import cron


@pytest.mark.parametrize(
    ("expr", "shortest", "longest"),
    [
        ("7 * * * *", timedelta(hours=1), timedelta(hours=1)),
        ("*/15 * * * *", timedelta(minutes=15), timedelta(minutes=15)),
        ("0 6,18 * * *", timedelta(hours=12), timedelta(hours=12)),
        ("30 7 * * mon-fri", timedelta(days=1), timedelta(days=3)),
        ("0 0 1 * *", timedelta(days=28), timedelta(days=31)),
        ("0 9 * * 0", timedelta(days=7), timedelta(days=7)),
        ("0 9 * * 7", timedelta(days=7), timedelta(days=7)),
    ],
)
def test_periods(expr: str, shortest: timedelta, longest: timedelta) -> None:
    spec = cron.parse(expr)
    assert spec.shortest_period() == shortest
    assert spec.longest_period() == longest


def test_sunday_is_zero_and_seven() -> None:
    assert cron.parse("0 9 * * 0").trigger_fields()["day_of_week"] == "sun"
    assert cron.parse("0 9 * * 7").trigger_fields()["day_of_week"] == "sun"
    assert cron.parse("0 9 * * 1-5").trigger_fields()["day_of_week"] == "mon,tue,wed,thu,fri"


@pytest.mark.parametrize(
    ("expr", "needle"),
    [
        ("* * * *", "5 fields"),
        ("60 * * * *", "minute"),
        ("* 24 * * *", "hour"),
        ("* * 0 * *", "day of month"),
        ("* * * 13 *", "month"),
        ("* * * * 8", "day of week"),
        ("*/0 * * * *", "minute"),
        ("5-1 * * * *", "minute"),
        ("0 0 1 * mon", "not both"),
        ("0 0 30 feb *", "never runs"),
    ],
)
def test_errors(expr: str, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        cron.parse(expr)
