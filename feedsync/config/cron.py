"""Five-field cron expressions: validation, schedule periods, and APScheduler trigger fields.

We parse cron ourselves instead of asking APScheduler because (1) config validation must
stay cheap (APScheduler is a heavy import), (2) the server and the health check need the
schedule's period (cache max-age, "two periods" freshness), and (3) APScheduler 3's
``from_crontab`` reads day-of-week numbers as Monday=0 where cron means Sunday=0; handing it
explicit day names avoids that trap.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from datetime import date, timedelta

_FIELDS = (  # name, low, high
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
)
_MONTH_NAMES = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_MONTHS = {m: i for i, m in enumerate(_MONTH_NAMES, 1)}
_DAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


@dataclass(frozen=True, slots=True)
class CronSpec:
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    days_restricted: bool
    weekdays_restricted: bool

    def _fires_on(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        weekday = (day.weekday() + 1) % 7
        return day.day in self.days and weekday in self.weekdays

    def _gaps(self) -> list[timedelta]:
        """Gaps between consecutive runs over eight years (two leap days)."""
        times = [h * 60 + m for h in self.hours for m in self.minutes]
        gaps = [timedelta(minutes=b - a) for a, b in itertools.pairwise(times)]
        if len(self.months) == 12 and not self.days_restricted and not self.weekdays_restricted:
            # Every day fires: the only day-level gap is the overnight one.
            return [*gaps, timedelta(days=1, minutes=times[0] - times[-1])]
        start = date(2024, 1, 1)
        previous: date | None = None
        for offset in range(8 * 366):
            day = start + timedelta(days=offset)
            if not self._fires_on(day):
                continue
            if previous is not None:
                gaps.append(timedelta(days=(day - previous).days, minutes=times[0] - times[-1]))
            previous = day
        return gaps

    def shortest_period(self) -> timedelta:
        return min(self._gaps())

    def longest_period(self) -> timedelta:
        return max(self._gaps())

    def trigger_fields(self) -> dict[str, str]:
        """Keyword arguments for ``apscheduler.triggers.cron.CronTrigger``."""
        return {
            "minute": ",".join(map(str, self.minutes)),
            "hour": ",".join(map(str, self.hours)),
            "day": ",".join(map(str, sorted(self.days))),
            "month": ",".join(map(str, sorted(self.months))),
            "day_of_week": ",".join(_DAY_NAMES[d] for d in sorted(self.weekdays)),
        }


@functools.lru_cache(maxsize=16)
def period(expression: str) -> timedelta:
    """The shortest gap between two runs of a valid expression (cached: asked per feed)."""
    return parse(expression).shortest_period()


def parse(expression: str) -> CronSpec:
    """Parse ``m h dom mon dow``; raise ValueError naming the field that is wrong."""
    parts = expression.split()
    if len(parts) != 5:
        raise ValueError(
            f"cron needs 5 fields (minute hour day-of-month month day-of-week), got {len(parts)}"
        )
    values = [_field(text, *spec) for text, spec in zip(parts, _FIELDS, strict=True)]
    weekdays = frozenset(d % 7 for d in values[4])
    days_restricted = parts[2] != "*"
    weekdays_restricted = parts[4] != "*"
    if days_restricted and weekdays_restricted:
        # Vixie cron ORs the two, APScheduler ANDs them; refuse rather than guess.
        raise ValueError("restrict either day-of-month or day-of-week, not both")
    spec = CronSpec(
        minutes=tuple(sorted(values[0])),
        hours=tuple(sorted(values[1])),
        days=frozenset(values[2]),
        months=frozenset(values[3]),
        weekdays=weekdays,
        days_restricted=days_restricted,
        weekdays_restricted=weekdays_restricted,
    )
    longest_month = {2: 29, 4: 30, 6: 30, 9: 30, 11: 30}
    if not any(d <= longest_month.get(m, 31) for m in spec.months for d in spec.days):
        raise ValueError("this schedule never runs (no such day in those months)")
    return spec


def _field(text: str, name: str, low: int, high: int) -> set[int]:
    names = _MONTHS if name == "month" else _DAYS if name == "day of week" else {}
    result: set[int] = set()
    for item in text.lower().split(","):
        try:
            result |= _item(item, low, high, names)
        except ValueError:
            raise ValueError(f"invalid {name} field {text!r} (allowed {low}-{high})") from None
    return result


def _item(item: str, low: int, high: int, names: dict[str, int]) -> set[int]:
    base, _, step_text = item.partition("/")
    step = int(step_text) if step_text else 1
    if step < 1:
        raise ValueError(item)
    if base == "*":
        start, stop = low, high
    elif "-" in base:
        a, b = base.split("-", 1)
        start, stop = _value(a, names), _value(b, names)
    else:
        start = _value(base, names)
        stop = high if step_text else start
    if not low <= start <= stop <= high:
        raise ValueError(item)
    return set(range(start, stop + 1, step))


def _value(text: str, names: dict[str, int]) -> int:
    return names[text] if text in names else int(text)
