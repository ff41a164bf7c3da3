from worker.commit import Committer, LettersInOrder, OffsetTracker
from worker.records import DeadLetter, SourceRef

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


# --- what counts as committed, and when it is sent (Committer) --------------------------------------------

class RecordingTarget:
    """Stands for `consume.Inbox`: records each commit; the broker's confirmation is the test's to give."""

    def __init__(self) -> None:
        self.calls: list[tuple[dict[tuple[str, int], int], bool]] = []

    def commit(self, positions: dict[tuple[str, int], int], asynchronous: bool = True) -> None:
        self.calls.append((dict(positions), asynchronous))


def _done_up_to(tracker: OffsetTracker, tp: tuple[str, int], end: int) -> None:
    for offset in range(end):
        tracker.track(tp, offset)
        tracker.done(tp, offset)


def test_a_commit_the_broker_did_not_confirm_is_sent_again_at_the_next_interval() -> None:
    tracker, target = OffsetTracker(), RecordingTarget()
    committer = Committer(tracker, target, interval_s=1.0)
    _done_up_to(tracker, TP, 5)
    committer.maybe_commit(now=0.0)
    committer.maybe_commit(now=0.5)  # not due
    assert target.calls == [({TP: 5}, True)]
    assert tracker.uncommitted() == {TP: 5}  # sent is not committed: no confirmation came back (it failed)
    committer.maybe_commit(now=1.0)
    assert target.calls[-1] == ({TP: 5}, True)
    tracker.mark_committed({TP: 5})  # the broker confirmed it
    committer.maybe_commit(now=2.0)
    assert len(target.calls) == 2


def test_the_drain_commit_sends_every_position_confirmed_or_not() -> None:
    tracker, target = OffsetTracker(), RecordingTarget()
    other = ("videos", 1)
    _done_up_to(tracker, TP, 3)
    _done_up_to(tracker, other, 2)
    tracker.mark_committed({other: 2})
    Committer(tracker, target, interval_s=1.0).commit(asynchronous=False)
    assert target.calls == [({TP: 3, other: 2}, False)]


def test_exactly_once_commits_nothing_here() -> None:
    tracker, target = OffsetTracker(), RecordingTarget()
    _done_up_to(tracker, TP, 3)
    committer = Committer(tracker, target, interval_s=1.0, enabled=False)
    committer.maybe_commit(now=0.0)
    committer.commit(asynchronous=False)
    assert target.calls == []


def test_a_late_confirmation_never_moves_back_and_one_for_a_revoked_partition_is_ignored() -> None:
    tracker = OffsetTracker()
    _done_up_to(tracker, TP, 8)
    tracker.mark_committed({TP: 8})
    tracker.mark_committed({TP: 5})  # an older commit's answer, arriving last
    assert tracker.uncommitted() == {}
    tracker.forget([TP])
    tracker.mark_committed({TP: 8})
    _done_up_to(tracker, TP, 3)  # assigned again, read again from the start
    assert tracker.uncommitted() == {TP: 3}


def letter(offset: int) -> DeadLetter:
    return DeadLetter(SourceRef(TP[0], TP[1], offset), key=None, value=b"x", error_type="avro-decode",
                      error_message="not avro")


def test_a_dead_letter_is_due_once_every_earlier_offset_of_its_partition_is_done() -> None:
    tracker = OffsetTracker()
    letters = LettersInOrder(tracker)
    for offset in range(4):  # 0: upload, 1 and 2: letters, 3: upload
        tracker.track(TP, offset)
    letters.add(letter(1))
    letters.add(letter(2))
    assert list(letters.due()) == []  # the upload at 0 has no output yet
    tracker.done(TP, 0)
    sent = []
    for due in letters.due():  # lazily: sending 1 (done) makes 2 due in the same pass
        sent.append(due.source.offset)
        tracker.done(TP, due.source.offset)
    assert sent == [1, 2]
    assert tracker.uncommitted() == {TP: 3}


def test_forgotten_partitions_lose_their_waiting_letters() -> None:
    tracker = OffsetTracker()
    letters = LettersInOrder(tracker)
    tracker.track(TP, 0)
    tracker.track(TP, 1)
    letters.add(letter(1))
    letters.forget([TP])
    tracker.done(TP, 0)
    assert list(letters.due()) == []
