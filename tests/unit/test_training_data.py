"""Data parsing, splitting, few-shot sampling, fingerprints, fitted items (scoring: test_training_metrics)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from worker.training.data import (
    DataError,
    Example,
    item_key,
    read_few_shot_pool,
    read_for_evaluation,
    read_sib_tsv,
    read_videos,
    with_views,
)
from worker.training.head import HyperParameters
from worker.training.pipeline import TrainRequest, item_prior, read_training_set
from worker.training.splits import few_shot_sample, fingerprint, load_training_data, split_holdout

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def test_videos_use_build_text_and_region(tmp_path: Path) -> None:
    path = tmp_path / "v.jsonl"
    rows = [
        {
            "region": "BR",
            "title": "Gol!!!!!",
            "tags": ["#futebolBrasil"],
            "description": "http://x.com/a",
            "category": "Sports",
        },
        {
            "region": "US",
            "title": "",
            "tags": [],
            "description": "",
            "category": "Music",
        },  # empty text: skipped
        {
            "region": "FR",
            "title": "Clip",
            "tags": [],
            "description": "",
            "category": ["Music", "Entertainment"],
        },
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    examples = read_videos(path)
    assert [(ex.text, ex.labels, ex.group) for ex in examples] == [
        ("Gol!. futebol Brasil", ("Sports",), "BR"),
        ("Clip", ("Music", "Entertainment"), "FR"),
    ]


def test_views_add_training_texts_without_repeats_and_ride_along_on_dev_rows(tmp_path: Path) -> None:
    path = tmp_path / "v.jsonl"
    rows = [
        {
            "region": "US",
            "title": "Goal",
            "tags": ["football"],
            "description": "A long match.",
            "category": "Sports",
        },
        {
            "region": "US",
            "title": "Song",
            "tags": [],
            "description": "",
            "category": "Music",
        },  # no other view
    ] * 4
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    (goal, song, *_) = read_videos(path, views=("title_tags", "title", "title_description"))
    assert goal.text == "Goal. football. A long match."
    assert goal.views == ("Goal. football", "Goal", "Goal. A long match.")
    assert song.views == ()
    assert [ex.text for ex in with_views([goal])] == [goal.text, *goal.views]
    train, dev = load_training_data([path], [], 0.25, seed=1, views=("title",))
    # dev is scored on its full texts; its views are kept for a refit on train + dev
    assert all(bool(ex.views) == (ex.labels == ("Sports",)) for ex in train + dev) and dev
    assert len(with_views(train)) == len(train) + sum(ex.labels == ("Sports",) for ex in train)
    # embed views ride along for scoring (evaluation and dev), never as training rows
    (goal, song, *_) = read_for_evaluation(path, embed_views=("title_tags",))
    assert (goal.embed_with, goal.views, song.embed_with) == (("Goal. football",), (), ())
    _, dev = load_training_data([path], [], 0.25, seed=1, embed_views=("title_tags",))
    assert all(bool(ex.embed_with) == (ex.labels == ("Sports",)) for ex in dev)


def test_text_budget_reaches_build_text(tmp_path: Path) -> None:
    path = tmp_path / "v.jsonl"
    row = {"title": "word " * 100, "tags": [], "description": "", "category": "Music"}
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    assert len(read_videos(path, max_chars=64)[0].text) <= 64 < len(read_videos(path, max_chars=1024)[0].text)


def test_sib_tsv_honours_csv_quoting(tmp_path: Path) -> None:
    path = tmp_path / "dev.tsv"
    path.write_text(
        'index_id\tcategory\ttext\n7\thealth\t"He said ""rest"",\tthen left."\n', encoding="utf-8"
    )
    assert read_sib_tsv(path, "eng_Latn") == [
        Example('He said "rest", then left.', ("health",), "eng_Latn", item="sib:7")  # its translations' too
    ]


def test_sib_folder_splits_by_file_and_zero_shot_languages_stay_out_of_dev() -> None:
    train, dev = load_training_data([FIXTURES / "sib_small"], [], 0.2, seed=1)
    assert {e.group for e in train} == {"eng_Latn", "fra_Latn"}  # deu_Latn has no train.tsv
    # ... so it is a zero-shot language: its dev.tsv chooses neither the epochs nor the thresholds
    assert {e.group for e in dev} == {"eng_Latn", "fra_Latn"}
    assert not {e.text for e in train} & {e.text for e in dev}
    evaluated = read_for_evaluation(FIXTURES / "sib_small")
    assert len(evaluated) == len(dev) + len(read_sib_tsv(FIXTURES / "sib_small" / "deu_Latn" / "dev.tsv", "deu_Latn"))


def test_a_separate_dev_folder_is_read_from_dev_tsv_never_test_tsv(tmp_path: Path) -> None:
    write_language(tmp_path, "por_Latn", ("train", "dev", "test"))
    _, dev = load_training_data([tmp_path], [tmp_path], 0.2, seed=1)
    assert [e.text for e in dev] == ["por_Latn dev sentence"]


def test_a_separate_dev_file_keeps_the_views_a_refit_fits_on(tmp_path: Path) -> None:
    path = tmp_path / "v.jsonl"
    row = {"title": "Goal", "tags": ["football"], "description": "Highlights of the match", "category": "Sports"}
    path.write_text((json.dumps(row) + "\n") * 2, encoding="utf-8")
    held_out = load_training_data([path], [], 0.5, seed=1, views=("title",))[1]
    separate = load_training_data([path], [path], 0.5, seed=1, views=("title",))[1]
    assert separate[0].views == ("Goal",) and separate[0].views == held_out[0].views


def test_a_tags_string_is_one_tag_as_the_worker_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "v.jsonl"
    path.write_text(json.dumps({"title": "Gol", "tags": "futebol", "category": "Sports"}) + "\n", encoding="utf-8")
    assert read_videos(path)[0].text == "Gol. futebol"


def test_rows_name_their_item_and_views_keep_it(tmp_path: Path) -> None:
    path = tmp_path / "v.jsonl"
    rows = [{"video_id": "abc", "title": "Goal", "tags": ["football"], "category": "Sports"},
            {"title": "Song", "category": "Music"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    goal, song = read_videos(path, views=("title",))
    assert [item_key(ex) for ex in with_views([goal])] == ["video:abc", "video:abc"]
    # without an id, a hash of the raw fields: the same whatever text budget a head reads the row with
    assert item_key(song).startswith("text:") and item_key(song) == item_key(read_videos(path, max_chars=3)[1])


def write_language(root: Path, name: str, splits: tuple[str, ...]) -> None:
    (root / name).mkdir()
    for split in splits:
        (root / name / f"{split}.tsv").write_text(
            f"index_id\tcategory\ttext\n1\tsports\t{name} {split} sentence\n", encoding="utf-8"
        )


def test_few_shot_pool_prefers_train_then_dev_never_test(tmp_path: Path) -> None:
    write_language(tmp_path, "por_Latn", ("train", "dev", "test"))
    write_language(tmp_path, "ita_Latn", ("dev",))
    texts = {e.text for e in read_few_shot_pool(tmp_path)}
    assert texts == {"por_Latn train sentence", "ita_Latn dev sentence"}
    # ita_Latn's dev.tsv is also what evaluate reads: the model's fitted_items.txt leaves the shots out there
    assert {e.text for e in read_for_evaluation(tmp_path)} == {"por_Latn test sentence", "ita_Latn dev sentence"}
    write_language(tmp_path, "tur_Latn", ("test",))
    with pytest.raises(ValueError, match="tur_Latn: no train.tsv or dev.tsv"):
        read_few_shot_pool(tmp_path)


def test_jsonl_holdout_is_stratified_seeded_and_disjoint() -> None:
    rows = read_videos(FIXTURES / "videos_small.jsonl")
    train, dev = load_training_data([FIXTURES / "videos_small.jsonl"], [], 0.25, seed=3)
    again, _ = load_training_data([FIXTURES / "videos_small.jsonl"], [], 0.25, seed=3)
    assert train == again and len(train) + len(dev) == len(rows)
    assert sorted(e.labels[0] for e in dev).count("Music") >= 2
    assert {e.labels[0] for e in dev} == {e.labels[0] for e in rows}


def test_split_keeps_singletons_in_training() -> None:
    rows = [Example(f"t{i}", ("A",), "x") for i in range(10)] + [Example("lonely", ("B",), "x")]
    kept, held = split_holdout(rows, 0.3, seed=0)
    assert Example("lonely", ("B",), "x") in kept and len(held) == 3


def test_split_never_holds_out_a_whole_label() -> None:
    rows = [Example(f"a{i}", ("A",), "x") for i in range(2)]
    kept, held = split_holdout(rows, 0.8, seed=0)  # round(1.6) = 2 would leave A nothing to learn from
    assert (len(kept), len(held)) == (1, 1)


def test_few_shot_takes_k_per_class_and_leaves_the_rest() -> None:
    rows = [Example(f"{c}{i}", (c,), "BR") for c in "ABC" for i in range(10 if c != "C" else 2)]
    sample, rest = few_shot_sample(rows, 5, seed=4)
    counts = {c: sum(e.labels[0] == c for e in sample) for c in "ABC"}
    assert counts == {"A": 5, "B": 5, "C": 2}
    assert len(sample) + len(rest) == len(rows) and not set(sample) & set(rest)
    assert few_shot_sample(rows, 5, seed=4)[0] == sample
    assert few_shot_sample(rows, 5, seed=5)[0] != sample


def test_fingerprint_ignores_order_but_not_content() -> None:
    a = [Example("x", ("A",), "US"), Example("y", ("B",), "FR")]
    assert fingerprint(a) == fingerprint(a[::-1])
    assert fingerprint(a) != fingerprint([Example("x", ("B",), "US"), a[1]])


def test_the_translations_of_few_shot_rows_leave_dev() -> None:
    """Shots from a zero-shot language's dev.tsv share their index_ids with the eng/fra dev rows: those
    must not choose the epochs and thresholds, or score the head on its own shots in another language."""
    sib = FIXTURES / "sib_small"
    request = TrainRequest(data=[sib / "eng_Latn", sib / "fra_Latn"], out=Path("unused"), dev=[],
                           few_shot_data=[sib / "deu_Latn"], few_shot=1, labels=None, dev_fraction=0.2,
                           hp=HyperParameters())
    data = read_training_set(request)
    shot_items = {item_key(ex) for ex in data.shots}
    full_dev = load_training_data(request.data, [], 0.2, seed=13)[1]
    assert shot_items and shot_items <= {item_key(ex) for ex in full_dev}  # the fixture is parallel
    assert not shot_items & {item_key(ex) for ex in data.dev}
    assert len(data.dev) == len(full_dev) - 2 * len(shot_items)  # each shot's English and French rows


def test_a_label_only_the_shots_have_is_learnt(tmp_path: Path) -> None:
    shots = tmp_path / "shots.jsonl"
    shots.write_text(json.dumps({"video_id": "n1", "region": "BR", "title": "Doação de sangue hoje",
                                 "category": "Nonprofits & Activism"}) + "\n")
    request = TrainRequest(data=[FIXTURES / "videos_small.jsonl"], out=Path("unused"), dev=[],
                           few_shot_data=[shots], few_shot=1, labels=None, dev_fraction=0.2,
                           hp=HyperParameters(), few_shot_weight=3)
    data = read_training_set(request)
    assert "Nonprofits & Activism" in data.labels
    assert sum(ex.item == "video:n1" for ex in data.train) == 3  # before: dropped with its unknown label


def test_the_prior_counts_each_item_once() -> None:
    """Not each row: a video's extra view rows and a shot's repeats would weigh its label more."""
    rows = [Example("v1", ("A",), "US", item="video:1"), Example("v1 tags", ("A",), "US", item="video:1"),
            Example("v2", ("B",), "US", item="video:2"), *[Example("v3", ("B",), "BR", item="video:3")] * 10]
    assert item_prior(rows, ("A", "B", "C")) == pytest.approx([1 / 3, 2 / 3, 0], abs=1e-6)


# --- data a judge or an engineer may hand in: read as meant, or refused naming the file --------------

def _sib(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def test_a_byte_order_mark_keeps_the_row_ids_and_json_lines_readable(tmp_path: Path) -> None:
    tsv = _sib(tmp_path / "deu_Latn" / "test.tsv", "\ufeffindex_id\tcategory\ttext\r\n7\tsports\tTor!\r\n")
    (row,) = read_sib_tsv(tsv, "deu_Latn")
    assert row.item == "sib:7" and row.labels == ("sports",)  # without utf-8-sig: keyed by text, id lost
    jsonl = _sib(tmp_path / "v.jsonl", '\ufeff{"video_id": "a", "title": "Gol", "category": " Sports "}\n')
    (video,) = read_videos(jsonl)
    assert video.labels == ("Sports",)


def test_a_tsv_file_passed_itself_is_read_as_sib_rows_of_its_folder(tmp_path: Path) -> None:
    tsv = _sib(tmp_path / "ita_Latn" / "test.tsv", "index_id\tcategory\ttext\n1\tsports\tGol!\n")
    (row,) = read_for_evaluation(tsv)
    assert (row.group, row.item, row.text) == ("ita_Latn", "sib:1", "Gol!")


@pytest.mark.parametrize(("name", "content", "message"), [
    ("bad.jsonl", '{"title": "a", "category": "x"}\nnot json\n', r"bad.jsonl:2: not JSON"),
    ("list.jsonl", '[1, 2]\n', r"list.jsonl:1: a JSON list"),
    ("x/test.tsv", "id\tlabel\tsentence\n1\tsports\tGol\n", r"no category or text column"),
    ("y/test.tsv", "index_id\tcategory\ttext\n1\tsports\n", r"row 2 has fewer columns"),
])
def test_unreadable_data_is_refused_naming_the_file_and_line(tmp_path: Path, name: str, content: str,
                                                            message: str) -> None:
    with pytest.raises(DataError, match=message):
        read_for_evaluation(_sib(tmp_path / name, content))


def test_latin1_and_folders_without_tsv_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not UTF-8"):
        read_for_evaluation(_sib(tmp_path / "l" / "test.tsv", "index_id\tcategory\ttext\n1\tsports\tNiño\n", "latin-1"))
    (tmp_path / "nested" / "root" / "deu_Latn").mkdir(parents=True)
    with pytest.raises(DataError, match="no .tsv files"):
        read_for_evaluation(tmp_path / "nested")


def test_rows_without_a_category_are_skipped_not_labelled_none(tmp_path: Path) -> None:
    lines = ['{"title": "Gol", "category": null}', '{"title": "Gol", "category": []}', '{"title": "Gol"}',
             '{"title": "Gol", "category": " "}', '{"title": "Gol", "category": ["Sports", "News"]}']
    (row,) = read_videos(_sib(tmp_path / "v.jsonl", "\n".join(lines)))
    assert row.labels == ("Sports", "News")
