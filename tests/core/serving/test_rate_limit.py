import pytest

from core.serving.rate_limit import RateLimited, RateLimiter


def test_limit_per_client_with_a_sliding_window():
    now = [0.0]
    limiter = RateLimiter(3, clock=lambda: now[0])
    for _ in range(3):
        limiter.check("a")
    with pytest.raises(RateLimited, match=r"3 generations per minute .* Try again in 60 s"):
        limiter.check("a")
    limiter.check("b")  # other clients are unaffected
    now[0] = 61.0
    limiter.check("a")  # the window slid past the first requests


def test_zero_turns_the_limit_off():
    limiter = RateLimiter(0)
    for _ in range(1000):
        limiter.check("a")
