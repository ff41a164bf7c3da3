"""Build the one text the encoder sees from an upload's title, tags and description.

`build_text` is the single definition, used by the worker, by training and by evaluation,
so a head is always trained on the same kind of text it is served.

Steps, in order:
1. Description: drop URLs, e-mail addresses and @handles, split it into lines and
   sentences, then drop the boilerplate ones (subscribe / follow / social-network link
   lists, in the languages seen in uploads) and those left with no letters (link lists,
   separators, timestamps).
2. Tags: hashtags and camelCase / snake_case tags are split into words
   (`#EddieMurphy` -> `Eddie Murphy`); duplicates (case-insensitive) are dropped.
3. Every part: repeated characters are squeezed (`soooooo!!!!` -> `sooo!`), whitespace
   is collapsed.
4. The parts are joined as `title. tags. description` and cut at a word boundary to
   the character budget (default 512): the title and tags carry most of the signal,
   long descriptions mostly add noise and cost encoder time.

Views are texts built the same way from fewer fields (`VIEWS`). A model can be trained on
them as extra rows, and can be served on the mean of the full text's and its views'
embeddings (`build_texts`; docs/training.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

DEFAULT_MAX_CHARS = 512
MAX_TAGS = 20
# Texts built from fewer of an upload's fields: name -> (with tags, with description); the title is always in.
VIEWS: dict[str, tuple[bool, bool]] = {
    "title_tags": (True, False),
    "title_description": (False, True),
    "title": (False, False),
}

_URL = re.compile(r"(?:https?://|www\.)\S+|\b[\w.-]+\.(?:com|net|org|ly|gl|be|fr|io|tv|me)/\S*", re.IGNORECASE)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b")
_HANDLE = re.compile(r"(?<!\w)@\w+")
_HASHTAG = re.compile(r"#(\w+)")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_SENTENCE_END = re.compile(r"(?<=[.!?|•])")
_REPEAT_LETTER = re.compile(r"(\w)\1{3,}")
_REPEAT_OTHER = re.compile(r"([^\w\s])\1+")
_HAS_LETTER = re.compile(r"[^\W\d_]")
# Lines that advertise channels rather than describe the video, in the upload languages
# we see most. A line is dropped when it contains one of these words. Matched against the
# lower-cased line: twice as fast as re.IGNORECASE, which folds every character it tries.
_BOILERPLATE = re.compile(
    r"\b(subscribe|subscribed|follow (?:us|me)|abonne[zr]?|abonnez-vous|suivez|inscreva|siga|"
    r"suscr[ií]bete|s[ií]gueme|abonnieren|folge|instagram|facebook|twitter|tiktok|snapchat|"
    r"patreon|discord|merch|business inquiries|contact|copyright|all rights reserved|"
    r"tous droits|derechos reservados|direitos reservados)\b"
)


@dataclass(frozen=True)
class TextBudget:
    """What one upload's text may cost: characters kept by `build_text`, SentencePiece tokens kept by the
    encoder per text. A head records the budget it was trained with (`Classifier.text_budget`)."""

    max_chars: int
    max_tokens: int


def split_words(token: str) -> str:
    """`EddieMurphy` -> `Eddie Murphy`; `snake_case_tag` -> `snake case tag`."""
    token = token.replace("_", " ")
    return token if token.islower() or token.isupper() else _CAMEL.sub(" ", token)


def squeeze(text: str) -> str:
    """Squeeze runs: 4+ equal letters become 3, repeated punctuation becomes one; collapse spaces."""
    # a search is 4x cheaper than a sub that finds nothing, and most texts have no runs
    if _REPEAT_LETTER.search(text):
        text = _REPEAT_LETTER.sub(r"\1\1\1", text)
    if _REPEAT_OTHER.search(text):
        text = _REPEAT_OTHER.sub(r"\1", text)
    return " ".join(text.split())  # the same whitespace as the regex \s


def clean_description(description: str, budget: int = DEFAULT_MAX_CHARS) -> str:
    """Meaningful sentences of the description, until about `budget` characters are kept.

    Line by line (no pattern here spans lines), so the lines past the budget are never scanned.
    """
    kept: list[str] = []
    size = 0
    for line in description.split("\n"):
        if "/" in line or "www." in line.lower():
            line = _URL.sub(" ", line)
        if "@" in line:
            line = _HANDLE.sub(" ", _EMAIL.sub(" ", line))
        for segment in _SENTENCE_END.split(line):
            if _BOILERPLATE.search(segment.lower()) or not _HAS_LETTER.search(segment):
                continue
            kept.append(_HASHTAG.sub(lambda m: split_words(m.group(1)), segment) if "#" in segment else segment)
            size += len(segment)
            if size > budget:
                return squeeze(" ".join(kept))
    return squeeze(" ".join(kept))


def clean_tags(tags: Iterable[str], budget: int = DEFAULT_MAX_CHARS) -> str:
    """Distinct tags as words (case and spacing ignored), at most MAX_TAGS, about `budget` characters."""
    seen: set[str] = set()
    words: list[str] = []
    size = 0
    for tag in tags:
        tag = split_words(tag.lstrip("#")).strip()
        folded = tag.casefold().replace(" ", "")
        if tag and folded not in seen:
            seen.add(folded)
            words.append(tag)
            size += len(tag) + 2
        if len(words) == MAX_TAGS or size > budget:
            break
    return squeeze(", ".join(words))


def tag_list(value: object) -> tuple[str, ...]:
    """A JSON row's `tags`: a list of tags, or one string that is one tag (not its characters)."""
    if isinstance(value, str):
        return (value,)
    return tuple(str(tag) for tag in value or ())


def cut(text: str, max_chars: int) -> str:
    """Cut to at most `max_chars`, at the last space when there is one in the last fifth."""
    if len(text) <= max_chars:
        return text
    head = text[:max_chars]
    space = head.rfind(" ")
    return head[:space] if space > max_chars * 4 // 5 else head


def build_text(title: str, tags: Iterable[str], description: str, max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """The encoder input for one upload; empty when nothing meaningful is left."""
    title_text = squeeze(_HASHTAG.sub(lambda m: split_words(m.group(1)), _URL.sub(" ", title)))
    tags_text = clean_tags(tags, max_chars - len(title_text))
    budget = max_chars - len(title_text) - len(tags_text)
    # Only the description's first few budgets' worth can survive boilerplate removal and
    # reach the cut: a 10 MB description is not read whole.
    description_text = clean_description(description[: budget * 4], budget) if budget > 0 else ""
    parts = [title_text, tags_text, description_text]
    text = ". ".join(p for p in parts if p)
    return cut(text, max_chars) if _HAS_LETTER.search(text) else ""


def build_views(
    title: str, tags: Iterable[str], description: str, views: Iterable[str], full_text: str,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> tuple[str, ...]:
    """The named views' texts (`VIEWS`), without empty ones or repeats of `full_text` (build_text's)."""
    tags = tuple(tags)
    texts: list[str] = []
    for name in views:
        with_tags, with_description = VIEWS[name]
        text = build_text(title, tags if with_tags else (), description if with_description else "", max_chars)
        if text and text != full_text and text not in texts:
            texts.append(text)
    return tuple(texts)


def build_texts(
    title: str, tags: Iterable[str], description: str, views: Iterable[str], max_chars: int = DEFAULT_MAX_CHARS
) -> tuple[str, tuple[str, ...]]:
    """(the full text, its views' texts): what the encoder embeds for one upload; ("", ()) when empty."""
    tags = tuple(tags)
    text = build_text(title, tags, description, max_chars)
    return text, (build_views(title, tags, description, views, text, max_chars) if text else ())
