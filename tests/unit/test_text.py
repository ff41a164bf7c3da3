from worker.text import build_text, clean_tags, cut, split_words, squeeze


def test_urls_handles_and_boilerplate_are_removed() -> None:
    text = build_text(
        "Mr. Robinson's Neighborhood - SNL",
        ["snl"],
        "Mr. Robinson returns to his neighborhood.Subscribe to SNL: https://goo.gl/tUsX\n"
        "Follow us on Instagram: http://instagram.com/nbcsnl @nbcsnl\nContact: press@nbc.com",
    )
    assert "http" not in text and "goo.gl" not in text and "@" not in text
    assert "Subscribe" not in text and "Instagram" not in text
    assert "returns to his neighborhood" in text


def test_hashtags_and_camel_case_tags_are_split_and_duplicates_dropped() -> None:
    assert split_words("EddieMurphy") == "Eddie Murphy"
    assert split_words("snake_case_tag") == "snake case tag"
    assert clean_tags(["#FunnyCats", "funny cats", "Funnycats", "dogs"]) == "Funny Cats, dogs"
    assert "Best Day Ever" in build_text("Great #BestDayEver", [], "")


def test_repeated_characters_are_squeezed() -> None:
    assert squeeze("Soooooo goooood!!!!!!   yes") == "Sooo goood! yes"


def test_cut_respects_budget_and_word_boundary() -> None:
    text = "word " * 200
    out = build_text(text, [], "", max_chars=100)
    assert len(out) <= 100 and not out.endswith("wor")
    assert cut("abcdefghij", 5) == "abcde"


def test_title_tags_description_order() -> None:
    assert build_text("Title", ["tag one", "tag two"], "Some description.") == (
        "Title. tag one, tag two. Some description."
    )


def test_nothing_meaningful_left_is_empty() -> None:
    assert build_text("https://x.com/abc", ["#"], "----\n00:00\nhttps://bit.ly/x") == ""


def test_non_latin_scripts_survive() -> None:
    assert build_text("東京の旅", ["旅行"], "ملخص كامل") == "東京の旅. 旅行. ملخص كامل"


def test_huge_description_is_bounded() -> None:
    out = build_text("t", [], "mot " * 3_000_000)
    assert len(out) <= 512
