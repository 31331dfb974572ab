"""The late policy (course.toml's [late]): how late a submission was, counted in started days
past its due date and the grace period, and the share of its points that costs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Lateness:
    """How late a submission was under the course's policy; `penalty` is a fraction of its score."""

    submitted_at: datetime | None
    due: datetime | None
    days: int = 0  # started days past the due date and the grace period
    penalty: float = 0.0

    @property
    def late(self) -> bool:
        return self.days > 0


@dataclass(frozen=True)
class LatePolicy:
    grace_minutes: int = 0
    penalty_per_day: float = 0.0  # fraction of the points lost per started day late
    max_days: int | None = None  # later than this many days: no points

    def apply(self, submitted_at: datetime | None, due: datetime | None) -> Lateness:
        if submitted_at is None or due is None:
            return Lateness(submitted_at, due)
        over = submitted_at - due - timedelta(minutes=self.grace_minutes)
        days = max(0, math.ceil(over / timedelta(days=1)))
        penalty = min(1.0, days * self.penalty_per_day)
        if self.max_days is not None and days > self.max_days:
            penalty = 1.0
        return Lateness(submitted_at, due, days, round(penalty, 4))
