"""RetryPolicy: how often and how soon a failed step runs again."""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass


class Backoff(enum.StrEnum):
    CONSTANT = "constant"
    LINEAR = "linear"
    EXPONENTIAL = "exponential"


class Jitter(enum.StrEnum):
    NONE = "none"
    # Uniform in [0, delay].
    FULL = "full"
    # delay ± up to half of it.
    PLUS_MINUS = "plus_minus"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retry a failed step up to max_retries times, waiting `delay` seconds shaped by backoff and jitter."""

    max_retries: int = 1
    delay: float = 0.0
    backoff: Backoff | str = Backoff.CONSTANT
    jitter: Jitter | str = Jitter.NONE

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"RetryPolicy max_retries must be >= 0, got {self.max_retries}.")
        if self.delay < 0:
            raise ValueError(f"RetryPolicy delay must be >= 0, got {self.delay}.")
        # Accept plain strings from users; normalise so comparisons are exact.
        object.__setattr__(self, "backoff", Backoff(self.backoff))
        object.__setattr__(self, "jitter", Jitter(self.jitter))

    def delay_for(self, retry_number: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number `retry_number` (1 for the first retry)."""
        if retry_number < 1:
            raise ValueError(f"retry_number starts at 1, got {retry_number}.")
        if self.backoff is Backoff.LINEAR:
            base = self.delay * retry_number
        elif self.backoff is Backoff.EXPONENTIAL:
            base = self.delay * (2 ** (retry_number - 1))
        else:
            base = self.delay
        rand = (rng or random).random()
        if self.jitter is Jitter.FULL:
            return base * rand
        if self.jitter is Jitter.PLUS_MINUS:
            return max(0.0, base + base * (rand - 0.5))
        return base


class RetryRequested(Exception):
    """Raised by a step to ask for another attempt, regardless of its RetryPolicy."""

    def __init__(self, max_retries: int = 1, seconds_to_wait: float = 0.0) -> None:
        super().__init__(f"Retry requested (max_retries={max_retries}, wait {seconds_to_wait}s).")
        self.max_retries = max_retries
        self.seconds_to_wait = seconds_to_wait
