import gc

from worker.app import freeze_startup_objects


def test_startup_objects_are_kept_out_of_later_collections() -> None:
    loaded_at_startup = [{"weights": i} for i in range(1000)]
    try:
        freeze_startup_objects()
        assert gc.get_freeze_count() >= len(loaded_at_startup)
        assert gc.get_count()[2] == 0  # nothing left in the oldest generation to walk
    finally:
        gc.unfreeze()
