"""What training warns of without refusing (dev in an untrained group, a refit on SIB-200 dev sentences), and
the rows evaluation reads as the worker would dead-letter them."""

from __future__ import annotations

import json
from pathlib import Path

from worker.training.data import Example, dead_letter_reason, read_for_evaluation
from worker.training.splits import training_caveats, unseen_dev_groups

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def rows(*groups: str) -> list[Example]:
    return [Example(f"text {i}", ("Music",), group) for i, group in enumerate(groups)]


def test_dev_groups_the_training_rows_have_none_of_are_named() -> None:
    assert unseen_dev_groups(rows("US", "FR"), rows("FR", "BR", "BR", "JP")) == ["BR", "JP"]
    assert unseen_dev_groups(rows("US", "FR"), rows("US")) == []
    (caveat,) = training_caveats(rows("US", "FR"), rows("BR"), [Path("train.jsonl")], [Path("dev_BR.jsonl")], False)
    assert caveat.startswith("dev data in BR, which the training data has no rows of (it has FR, US)")
    assert "BR scores measured later are not zero-shot" in caveat


def test_a_refit_warns_only_when_the_dev_split_is_sib_200_sentences(tmp_path: Path) -> None:
    jsonl = tmp_path / "videos.jsonl"
    jsonl.write_text("", encoding="utf-8")
    same = rows("eng_Latn"), rows("eng_Latn")
    sib = FIXTURES / "sib_small"
    (caveat,) = training_caveats(*same, [sib], [], refit=True)
    assert caveat.startswith("--refit folds the SIB-200 style dev split (sib_small) into the training rows")
    assert training_caveats(*same, [sib], [], refit=False) == []
    assert training_caveats(*same, [jsonl], [], refit=True) == []  # a held-out share of videos
    assert len(training_caveats(*same, [jsonl], [sib / "eng_Latn"], refit=True)) == 1  # --dev FOLDER
    # a .tsv named in --data is split like JSON Lines: its dev rows are train sentences, translated in no dev set
    assert training_caveats(*same, [sib / "eng_Latn" / "train.tsv"], [], refit=True) == []


def test_the_worker_s_own_check_names_the_rows_it_would_dead_letter() -> None:
    assert dead_letter_reason("Gol", ("futebol",), "", 512) == ""
    assert dead_letter_reason("", ("futebol", "gol"), "", 512) == "missing-field"  # the worker needs a title
    assert dead_letter_reason("https://bit.ly/x", (), "follow me on instagram", 512) == "empty-text"


def test_evaluation_reads_dead_lettered_rows_marked_only_when_asked(tmp_path: Path) -> None:
    videos = tmp_path / "videos.jsonl"
    lines = [
        {"video_id": "a", "region": "BR", "title": "Gol do Flamengo", "category": "Sports"},
        {"video_id": "b", "region": "BR", "title": "", "tags": ["futebol"], "category": "Sports"},
        {"video_id": "c", "region": "BR", "title": "!!!", "category": "Music"},
        {"video_id": "d", "region": "BR", "title": "", "category": ""},  # unlabelled: skipped, not counted
    ]
    videos.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    assert [(e.item, e.refused, e.text) for e in read_for_evaluation(videos, mark_refused=True)] == [
        ("video:a", "", "Gol do Flamengo"), ("video:b", "missing-field", ""), ("video:c", "empty-text", "")]
    # unmarked, as training and the other readers see it: the text-less row is left out, the untitled one kept
    assert [e.item for e in read_for_evaluation(videos)] == ["video:a", "video:b"]
    tsv = tmp_path / "deu_Latn" / "dev.tsv"
    tsv.parent.mkdir()
    tsv.write_text("index_id\tcategory\ttext\n1\tsports\tTor!\n2\tsports\t\n3\tsports\t12:30\n", encoding="utf-8")
    marked = read_for_evaluation(tmp_path / "deu_Latn", mark_refused=True)
    assert [(e.item, e.group, e.refused) for e in marked] == [
        ("sib:1", "deu_Latn", ""), ("sib:2", "deu_Latn", "missing-field"), ("sib:3", "deu_Latn", "empty-text")]
    assert [e.item for e in read_for_evaluation(tmp_path / "deu_Latn")] == ["sib:1"]
