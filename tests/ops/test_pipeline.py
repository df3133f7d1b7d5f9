"""ops.pipeline: one_ahead gives results in order, one computed ahead at most, errors in order;
bulk_work raises the collector's threshold, freezes what is alive and shortens the switch
interval, then restores all three."""

import gc
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from ops.pipeline import BULK_GC_THRESHOLD, BULK_SWITCH_INTERVAL_S, bulk_work, one_ahead


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


@pytest.fixture
def collector_as_python_starts():
    """The collector's settings (and the switch interval) as a fresh process has them, put
    back afterwards."""
    thresholds, switch_interval = gc.get_threshold(), sys.getswitchinterval()
    gc.unfreeze()
    yield thresholds
    gc.set_threshold(*thresholds)
    sys.setswitchinterval(switch_interval)
    gc.unfreeze()


def test_bulk_work_settings_for_the_duration_then_as_before(collector_as_python_starts):
    sys.setswitchinterval(0.004)
    with bulk_work():
        assert gc.get_threshold() == (BULK_GC_THRESHOLD, *collector_as_python_starts[1:])
        assert gc.get_freeze_count() > 0
        assert sys.getswitchinterval() == pytest.approx(BULK_SWITCH_INTERVAL_S)
    assert gc.get_threshold() == collector_as_python_starts
    assert gc.get_freeze_count() == 0
    assert sys.getswitchinterval() == pytest.approx(0.004)


def test_nested_uses_leave_the_settings_to_the_outermost(collector_as_python_starts):
    with bulk_work():
        with bulk_work():
            pass
        assert gc.get_threshold()[0] == BULK_GC_THRESHOLD
        assert gc.get_freeze_count() > 0
        assert sys.getswitchinterval() == pytest.approx(BULK_SWITCH_INTERVAL_S)
    assert gc.get_threshold() == collector_as_python_starts
    assert gc.get_freeze_count() == 0


def test_a_process_that_froze_objects_itself_keeps_them_frozen(collector_as_python_starts):
    gc.freeze()
    frozen = gc.get_freeze_count()
    with bulk_work():
        assert gc.get_threshold()[0] == BULK_GC_THRESHOLD
    # Not unfrozen, nor frozen again (a few frozen objects may have been freed meanwhile).
    assert 0 < gc.get_freeze_count() <= frozen
    assert gc.get_threshold() == collector_as_python_starts


def test_garbage_cycles_made_meanwhile_are_still_collected(collector_as_python_starts):
    import weakref

    class Node:
        pass

    with bulk_work():
        node = Node()
        node.itself = node
        gone = weakref.ref(node)
        del node
        gc.collect(0)
        assert gone() is None
