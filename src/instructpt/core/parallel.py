"""Ordered parallel map for stages that work unit by unit (mix encoding, packing).

A spawn pool (safe with threads and torch; no fork of a loaded process) when
more than one worker and more than one unit; in-process otherwise, so small
jobs and tests pay no pool start-up. Results come back in input order, which
keeps every stage's output independent of the worker count.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def map_ordered(
    fn: Callable[[T], R],
    items: Sequence[T],
    num_workers: int,
    initializer: Callable[[], None] | None = None,
) -> Iterator[R]:
    if num_workers > 1 and len(items) > 1:
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(min(num_workers, len(items)), initializer=initializer) as pool:
            yield from pool.imap(fn, items)
    else:
        for item in items:
            yield fn(item)
