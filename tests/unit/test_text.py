import re

from hypothesis import given
from hypothesis import strategies as st

import worker.text as text_module
from worker.text import build_text, build_texts, build_views, clean_description, clean_tags, cut, split_words, squeeze


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
    out = build_text(text, [], "", max_chars=102)  # 102 ends inside a word
    assert out == ("word " * 20).strip()
    assert cut("abcdefghij", 5) == "abcde"


def test_title_tags_description_order() -> None:
    assert build_text("Title", ["tag one", "tag two"], "Some description.") == (
        "Title. tag one, tag two. Some description."
    )


def test_views_are_built_from_fewer_fields_without_empties_or_repeats() -> None:
    full = build_text("Goal", ["football"], "A long match.")
    views = ("title_tags", "title", "title_description", "title_tags")
    assert build_views("Goal", ["football"], "A long match.", views, full) == (
        "Goal. football", "Goal", "Goal. A long match.")
    # no description: title + tags is the full text, so only the title is left as a view
    assert build_views("Goal", ["football"], "", views, build_text("Goal", ["football"], "")) == ("Goal",)
    assert build_views("", ["football"], "", ("title",), "football") == ()
    assert build_texts("Goal", ["football"], "", views) == ("Goal. football", ("Goal",))
    assert build_texts("https://x.io", [], "", views) == ("", ())  # no text, no views


def test_nothing_meaningful_left_is_empty() -> None:
    assert build_text("https://x.com/abc", ["#"], "----\n00:00\nhttps://bit.ly/x") == ""


def test_non_latin_scripts_survive() -> None:
    assert build_text("東京の旅", ["旅行"], "ملخص كامل") == "東京の旅. 旅行. ملخص كامل"


def test_huge_description_is_bounded() -> None:
    out = build_text("t", [], "mot " * 3_000_000)
    assert len(out) <= 512


# --- the fast paths give what the plain definitions give -------------------------------------------
_PIECES = [*"aAbBéÉ1 _\t\n.!?|•#@/:wW-", "aaaa", "!!", "Subscribe", "www.", "WWW.", "http://x.io/a", "INSTAGRAM",
           "sígueme", "EddieMurphy", "snake_case", "x@y.com"]
_TEXT = st.lists(st.sampled_from(_PIECES), max_size=40).map("".join)


def reference_squeeze(text: str) -> str:
    text = re.sub(r"(\w)\1{3,}", r"\1\1\1", text)
    text = re.sub(r"([^\w\s])\1+", r"\1", text)
    return re.sub(r"\s+", " ", text).strip()


def reference_clean_description(description: str, budget: int) -> str:
    """The whole-text definition: strip links, split into sentences and lines, drop boilerplate."""
    description = text_module._URL.sub(" ", description)
    description = text_module._HANDLE.sub(" ", text_module._EMAIL.sub(" ", description))
    boilerplate = re.compile(text_module._BOILERPLATE.pattern, re.IGNORECASE)
    kept, size = [], 0
    for segment in re.split(r"(?<=[.!?|•])|\n", description):
        if boilerplate.search(segment) or not text_module._HAS_LETTER.search(segment):
            continue
        kept.append(text_module._HASHTAG.sub(lambda m: reference_split_words(m.group(1)), segment))
        size += len(segment)
        if size > budget:
            break
    return reference_squeeze(" ".join(kept))


def reference_split_words(token: str) -> str:
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", token.replace("_", " "))


@given(_TEXT)
def test_squeeze_matches_its_definition(text: str) -> None:
    assert squeeze(text) == reference_squeeze(text)


@given(_TEXT)
def test_split_words_matches_its_definition(token: str) -> None:
    assert split_words(token) == reference_split_words(token)


@given(_TEXT, st.integers(min_value=1, max_value=60))
def test_clean_description_matches_its_definition(description: str, budget: int) -> None:
    assert clean_description(description, budget) == reference_clean_description(description, budget)
