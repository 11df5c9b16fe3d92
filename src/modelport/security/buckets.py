"""Token buckets and daily quotas: what a request takes from, and the in-process counter.

A ``Bucket`` holds ``burst`` tokens and refills at ``per_second``; a request takes one
token, and is refused while less than one is left (for as long as one token takes to
come back). A ``Quota`` counts a key's requests per UTC day. ``LocalLimitStore`` keeps
both in this process's memory: each server process counts alone (``RedisLimitStore``
counts for every process that shares one Redis server).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

DAY_S = 86_400


@dataclass(frozen=True, slots=True)
class Bucket:
    """A token bucket: ``limit`` (``key`` or ``model``) and ``name`` (key name or model
    name) say whose it is, ``slot`` is the counter it lives in, ``rate`` how the config
    wrote it (``100/s``)."""

    limit: str
    name: str
    slot: str
    rate: str
    per_second: float
    burst: int


@dataclass(frozen=True, slots=True)
class Quota:
    """A key's daily request quota: ``slot`` is its counter (per key id)."""

    name: str
    slot: str
    requests: int


@dataclass(frozen=True, slots=True)
class Refusal:
    """Which check refused (an index into the buckets; their count for the quota) and
    how many seconds until the request would pass."""

    index: int
    wait_s: float


class LimitStore(Protocol):
    """Where tokens and quota counts live: in this process, or in Redis."""

    description: str  # where the counts live, for GET /api (no address)

    async def take(self, buckets: Sequence[Bucket], quota: Quota | None) -> Refusal | None:
        """Take one token from every bucket and one request from the quota, all or none:
        None when the request may go on, else the check that refused it."""
        ...


def seconds_to_midnight(now: float) -> float:
    """Seconds from ``now`` (Unix time) to the next UTC midnight, when quotas reset."""
    return DAY_S - now % DAY_S


class LocalLimitStore:
    """Buckets and quotas in this process's memory (a few microseconds per request).

    Each server process counts alone: with N workers a client may get up to N times a
    rate, depending on which workers its connections land on. Counts start over when
    the process does."""

    description = "counted in each server process (approximate across workers and replicas)"

    def __init__(self) -> None:
        # slot -> [tokens, monotonic time of that level]; lists, updated in place.
        self._levels: dict[str, list[float]] = {}
        # slot -> [UTC day number, requests that day]
        self._days: dict[str, list[int]] = {}

    async def take(self, buckets: Sequence[Bucket], quota: Quota | None) -> Refusal | None:
        """Take from every bucket and the quota, or from none of them."""
        return self.take_now(buckets, quota)

    def take_now(self, buckets: Sequence[Bucket], quota: Quota | None) -> Refusal | None:
        """``take``, synchronously (the event loop's thread only: no locks)."""
        now = time.monotonic()
        refusal = self._refill(buckets, now)
        if refusal is None and quota is not None:
            refusal = self._check_quota(quota, len(buckets))
        if refusal is not None:
            return refusal
        for bucket in buckets:
            state = self._levels[bucket.slot]
            state[0] -= 1.0
        if quota is not None:
            self._days[quota.slot][1] += 1
        return None

    def _refill(self, buckets: Sequence[Bucket], now: float) -> Refusal | None:
        """Bring every bucket's level up to ``now``; the longest wait among the refusing."""
        refusal = None
        for index, bucket in enumerate(buckets):
            state = self._levels.get(bucket.slot)
            if state is None:
                state = self._levels[bucket.slot] = [float(bucket.burst), now]
            else:
                level = state[0] + (now - state[1]) * bucket.per_second
                state[0] = min(float(bucket.burst), level)
                state[1] = now
            if state[0] < 1.0:
                wait = (1.0 - state[0]) / bucket.per_second
                if refusal is None or wait > refusal.wait_s:
                    refusal = Refusal(index, wait)
        return refusal

    def _check_quota(self, quota: Quota, index: int) -> Refusal | None:
        now = time.time()
        day = int(now // DAY_S)
        state = self._days.get(quota.slot)
        if state is None or state[0] != day:
            state = self._days[quota.slot] = [day, 0]
        if state[1] >= quota.requests:
            return Refusal(index, seconds_to_midnight(now))
        return None
