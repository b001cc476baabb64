"""Time nth_prime against trial division, side by side in one run.

    python bench/bench_primes.py

Trial division is what the original C system did for every request; here
it is written in Python, so the ratio compares algorithms, not languages.
Each figure is the median of several runs.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable

from otelzmq.primes import nth_prime

REPEATS = 7


def trial_division(n: int) -> int:
    """The nth prime by testing each odd number against smaller primes."""
    found, candidate = 1, 1
    while found < n:
        candidate += 2
        limit = math.isqrt(candidate)
        divisor = 3
        while divisor <= limit and candidate % divisor:
            divisor += 2
        if divisor > limit:
            found += 1
    return 2 if n == 1 else candidate


def median_ms(function: Callable[[int], int], n: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function(n)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    print(f"{'n':>10}  {'sieve ms':>10}  {'trial ms':>10}  {'trial/sieve':>11}")
    for n in (9_001, 10_000, 100_000, 1_000_000):
        sieve = median_ms(nth_prime, n, REPEATS)
        if n <= 100_000:
            trial = median_ms(trial_division, n, 1 if n > 10_000 else 3)
            print(f"{n:>10}  {sieve:>10.2f}  {trial:>10.1f}  {trial / sieve:>10.0f}x")
        else:
            print(f"{n:>10}  {sieve:>10.2f}  {'(skipped)':>10}  {'':>11}")
    print("Targets: n = 10,000 under 5 ms; n = 1,000,000 under 300 ms.")


if __name__ == "__main__":
    main()
