"""The daemon's garbage-collector settings (lynkr.heap): start-up's heap frozen, young passes spaced out."""

from __future__ import annotations

import gc

from lynkr import heap


def test_settle_freezes_what_start_up_left_and_spaces_out_young_passes() -> None:
    before = gc.get_threshold()
    kept = [{"start-up state": index} for index in range(1000)]
    try:
        heap.settle()
        assert gc.get_freeze_count() >= len(kept)
        assert gc.get_threshold() == (heap.YOUNG_THRESHOLD, *heap.OLDER_THRESHOLDS)
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
