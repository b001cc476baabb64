import math

import pytest

from otelzmq.primes import nth_prime, upper_bound

# p(10^k), from the published tables of the prime-counting function.
KNOWN = {
    1: 2,
    10: 29,
    100: 541,
    1_000: 7_919,
    10_000: 104_729,
    100_000: 1_299_709,
    1_000_000: 15_485_863,
    10_000_000: 179_424_673,
    # A few more landmarks, including the original system's outputs.
    2: 3,
    6: 13,
    1_001: 7_927,
    9_001: 93_187,
    78_498: 999_983,  # the largest prime below one million
}


def _primes_by_trial_division(count: int) -> list[int]:
    primes: list[int] = []
    candidate = 2
    while len(primes) < count:
        limit = math.isqrt(candidate)
        if all(candidate % p for p in primes if p <= limit):
            primes.append(candidate)
        candidate += 1
    return primes


@pytest.mark.parametrize(("n", "expected"), sorted(KNOWN.items()))
def test_known_values(n: int, expected: int) -> None:
    assert nth_prime(n) == expected


def test_every_n_up_to_five_thousand_matches_trial_division() -> None:
    reference = _primes_by_trial_division(5_000)
    assert [nth_prime(n) for n in range(1, 5_001)] == reference


@pytest.mark.parametrize("n", [1, 5, 6, 7, 100, 12_345, 1_000_000])
def test_upper_bound_is_never_below_the_prime(n: int) -> None:
    assert upper_bound(n) >= nth_prime(n)


@pytest.mark.parametrize("n", [0, -1, -1000])
def test_positions_below_one_are_refused(n: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        nth_prime(n)
