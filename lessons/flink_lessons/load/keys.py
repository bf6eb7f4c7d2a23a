"""Which key each event gets: uniform or Zipf-skewed over ``n`` keys, reproducible from a seed. Pure Python.

A Zipf skew with exponent ``s`` gives the key of rank ``r`` (1 = hottest) the weight ``1 / r**s``; the hottest
key's share of all events is ``1 / H(n, s)`` with ``H(n, s) = sum(1 / r**s for r in 1..n)``. Key ``r`` is
named ``c<r>`` (``c1`` is the hottest), so a lesson can say which key should be hot.
"""

from __future__ import annotations

import itertools
import random
import re
from dataclasses import dataclass

_SKEW = re.compile(r"^\s*(uniform|zipf\s*:\s*(?P<s>[0-9]*\.?[0-9]+))\s*$")


@dataclass(frozen=True)
class Skew:
    """How keys are drawn.

    :param exponent: ``0`` for uniform keys, else the Zipf exponent ``s`` (> 0).
    """

    exponent: float = 0.0

    @property
    def text(self) -> str:
        """The command-line form: ``uniform`` or ``zipf:<s>``."""
        return "uniform" if self.exponent == 0 else f"zipf:{self.exponent:g}"

    def weights(self, keys: int) -> list[float]:
        """The relative weight of each key, hottest first.

        :param keys: how many keys.
        """
        if self.exponent == 0:
            return [1.0] * keys
        return [1.0 / rank**self.exponent for rank in range(1, keys + 1)]

    def shares(self, keys: int) -> list[float]:
        """Each key's expected share of the events (sums to 1), hottest first.

        :param keys: how many keys.
        """
        weights = self.weights(keys)
        total = sum(weights)
        return [weight / total for weight in weights]


def parse_skew(text: str) -> Skew:
    """``uniform`` or ``zipf:<exponent>`` (exponent > 0), e.g. ``zipf:1.2``.

    :param text: the ``--skew`` value.
    :raises ValueError: naming the accepted forms.
    """
    match = _SKEW.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"must be 'uniform' or 'zipf:<exponent>' with an exponent > 0 (e.g. zipf:1.2), got {text!r}")
    exponent = float(match.group("s")) if match.group("s") else 0.0
    if match.group("s") and exponent <= 0:
        raise ValueError(f"the Zipf exponent must be > 0 (zipf:0 is uniform: say 'uniform'), got {text!r}")
    return Skew(exponent)


def key_name(rank: int) -> str:
    """The name of the key of rank ``rank`` (1-based, 1 = hottest under Zipf).

    :param rank: the key's rank.
    """
    return f"c{rank}"


class KeyChooser:
    """Draws keys (as bytes) reproducibly: the same seed gives the same sequence, however it is batched.

    :param keys: how many distinct keys (>= 1).
    :param skew: uniform or Zipf.
    :param seed: the random seed.
    :param null_key_share: share of events (0..1) sent without a Kafka key (their value still names a key).
    """

    def __init__(self, keys: int, skew: Skew, seed: int, null_key_share: float = 0.0) -> None:
        if keys < 1:
            raise ValueError(f"keys must be at least 1, got {keys}")
        if not 0.0 <= null_key_share <= 1.0:
            raise ValueError(f"null_key_share must be within 0..1, got {null_key_share}")
        self.keys = keys
        self.skew = skew
        self.null_key_share = null_key_share
        self.names: list[bytes] = [key_name(rank).encode() for rank in range(1, keys + 1)]
        self._cumulative = list(itertools.accumulate(skew.weights(keys)))
        # Two streams, so the sequence does not depend on how a run is cut into batches (its rate): keys
        # draw one number each from the first, null-key decisions one each from the second.
        self._random = random.Random(seed)
        self._nulls = random.Random(f"{seed}/null-keys")

    def take(self, count: int) -> tuple[list[bytes], list[bytes | None]]:
        """The next ``count`` keys: each event's key, and its Kafka message key (``None`` for a null key).

        :param count: how many.
        """
        if self.skew.exponent == 0:
            chosen = self._random.choices(self.names, k=count)
        else:
            chosen = self._random.choices(self.names, cum_weights=self._cumulative, k=count)
        if self.null_key_share <= 0:
            return chosen, list(chosen)
        draw = self._nulls.random
        share = self.null_key_share
        return chosen, [None if draw() < share else key for key in chosen]
