"""ops.pipeline.one_ahead: results in order, one computed ahead at most, errors in order."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from ops.pipeline import one_ahead


def test_results_come_in_order_and_at_most_one_is_computed_ahead():
    computed = []

    def compute(item):
        computed.append(item)
        return item * 10

    with ThreadPoolExecutor(max_workers=1) as pool:
        results = one_ahead(pool, compute, iter(range(4)))
        assert next(results) == 0
        assert computed in ([0], [0, 1])  # the caller works on 0 while 1 is computed, not 2
        assert list(results) == [10, 20, 30]


def test_an_error_of_compute_is_raised_in_its_turn():
    def compute(item):
        if item == 1:
            raise ValueError("bad item")
        return item

    with ThreadPoolExecutor(max_workers=1) as pool:
        results = one_ahead(pool, compute, [0, 1, 2])
        assert next(results) == 0
        with pytest.raises(ValueError, match="bad item"):
            next(results)
