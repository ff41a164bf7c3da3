from worker.batch import Batcher
from worker.records import SourceRef, Upload, VideoUploaded


def upload(text: str, at: float, offset: int = 0) -> Upload:
    return Upload(VideoUploaded(video_id=f"v{offset}", title=text), text, SourceRef("t", 0, offset), at)


def test_empty_batch_is_never_due() -> None:
    batcher = Batcher(max_size=4, max_chars=100, max_wait_s=0.05)
    assert not batcher.is_due(1e9)
    assert batcher.seconds_until_due(0.0) is None


def test_closes_on_max_size_and_takes_no_more() -> None:
    batcher = Batcher(max_size=3, max_chars=1000, max_wait_s=10)
    for i in range(3):
        assert not batcher.is_due(0.0)
        batcher.add(upload("abc", 0.0, i))
    assert batcher.is_due(0.0)
    assert batcher.seconds_until_due(0.0) == 0.0
    batcher.add(upload("abc", 0.0, 3))
    assert [u.source.offset for u in batcher.take()] == [0, 1, 2]
    assert [u.source.offset for u in batcher.take()] == [3]
    assert len(batcher) == 0


def test_closes_on_character_budget_and_takes_only_what_fits() -> None:
    batcher = Batcher(max_size=100, max_chars=10, max_wait_s=10)
    batcher.add(upload("aaaa", 0.0, 0))
    batcher.add(upload("bbbb", 0.0, 1))
    assert not batcher.is_due(0.0)
    batcher.add(upload("cccc", 0.0, 2))
    assert batcher.is_due(0.0)
    assert [u.source.offset for u in batcher.take()] == [0, 1]
    assert [u.source.offset for u in batcher.take()] == [2]


def test_embed_views_count_toward_the_character_budget() -> None:
    batcher = Batcher(max_size=100, max_chars=10, max_wait_s=10)
    batcher.add(Upload(VideoUploaded(video_id="v0", title="aaaa"), "aaaa", SourceRef("t", 0, 0), 0.0, ("aaa",)))
    batcher.add(upload("bbbb", 0.0, 1))
    assert batcher.is_due(0.0)
    assert [u.source.offset for u in batcher.take()] == [0]


def test_an_oversized_text_still_forms_a_batch_of_one() -> None:
    batcher = Batcher(max_size=100, max_chars=10, max_wait_s=10)
    batcher.add(upload("x" * 50, 0.0, 0))
    batcher.add(upload("y", 0.0, 1))
    assert [u.source.offset for u in batcher.take()] == [0]


def test_closes_when_oldest_waited_max_wait() -> None:
    batcher = Batcher(max_size=100, max_chars=1000, max_wait_s=0.05)
    batcher.add(upload("a", 10.0, 0))
    batcher.add(upload("b", 10.04, 1))
    assert not batcher.is_due(10.049)
    assert abs(batcher.seconds_until_due(10.02) - 0.03) < 1e-9
    assert batcher.is_due(10.05)
    assert len(batcher.take()) == 2


def test_discard_drops_only_the_given_partitions_and_their_characters() -> None:
    batcher = Batcher(max_size=100, max_chars=10, max_wait_s=10)
    kept = Upload(VideoUploaded(video_id="k", title="cccc"), "cccc", SourceRef("t", 1, 0), 0.0)
    batcher.add(upload("aaaa", 0.0, 0))
    batcher.add(kept)
    batcher.add(upload("bbbb", 0.0, 1))
    assert batcher.is_full()
    assert batcher.discard({("t", 0)}) == 2
    assert not batcher.is_full()  # 4 characters left of the budget of 10
    assert batcher.take() == [kept]
