from worker.commit import OffsetTracker

TP = ("videos", 0)


def test_position_waits_for_gaps() -> None:
    tracker = OffsetTracker()
    for offset in range(10, 15):
        tracker.track(TP, offset)
    tracker.done(TP, 11)
    tracker.done(TP, 12)
    assert tracker.uncommitted() == {}
    tracker.done(TP, 10)
    assert tracker.uncommitted() == {TP: 13}
    tracker.done(TP, 14)
    assert tracker.uncommitted() == {TP: 13}
    tracker.done(TP, 13)
    assert tracker.uncommitted() == {TP: 15}
    assert tracker.in_flight() == 0


def test_partitions_are_independent_and_committed_positions_are_not_repeated() -> None:
    tracker = OffsetTracker()
    other = ("videos", 1)
    tracker.track(TP, 0)
    tracker.track(other, 7)
    tracker.done(other, 7)
    assert tracker.uncommitted() == {other: 8}
    tracker.mark_committed({other: 8})
    assert tracker.uncommitted() == {}
    assert tracker.in_flight() == 1


def test_forget_drops_revoked_partition_and_late_acks_are_ignored() -> None:
    tracker = OffsetTracker()
    tracker.track(TP, 5)
    tracker.forget([TP])
    tracker.done(TP, 5)
    assert tracker.uncommitted() == {}
    assert tracker.in_flight() == 0
