import gc
import weakref

from worker.app import freeze_startup_objects
from worker.settings import load_settings
from worker.text import TextBudget


class Node:
    def __init__(self) -> None:
        self.me = self


def test_startup_objects_are_kept_out_of_later_collections() -> None:
    loaded_at_startup = [{"weights": i} for i in range(1000)]
    garbage = weakref.ref(Node())  # a cycle only a collection frees
    gc.disable()  # no automatic collection meanwhile: only freeze_startup_objects' own can free it
    try:
        assert garbage() is not None
        freeze_startup_objects()
        assert garbage() is None  # collected first, so start-up garbage is not frozen for good
        assert gc.get_freeze_count() >= len(loaded_at_startup)
    finally:
        gc.enable()
        gc.unfreeze()


def test_the_head_s_text_budget_is_served_unless_a_setting_overrides_it() -> None:
    trained = TextBudget(max_chars=1024, max_tokens=256)
    assert load_settings().text_budget(trained) == trained
    assert load_settings(worker_max_tokens=128).text_budget(trained) == TextBudget(1024, 128)
    assert load_settings(worker_text_max_chars=300).text_budget(trained) == TextBudget(300, 256)
