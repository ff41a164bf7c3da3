"""Token ids of the exported TF graph against the reference tokenizer (docs/encoder.md, step 1).

Three sets, each reported as how many texts get other ids, and how many of those differ in their
number of <unk>:
- every shared text: YouTube train + dev_BR (full text and title + tags, 1024 characters) and every
  SIB-200 sentence;
- every code point of planes 0-1 (surrogates excepted), alone and between "a" and "b";
- 50,000 random runs of 2-6 code points that NFKC changes or that are combining marks.

    .venv/bin/python experiments/tokenizer_agreement.py [--data ../shared/data]

No embedding is computed: ids only, so it takes about half a minute.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import unicodedata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from worker.encoders.reference import ReferenceEncoder  # noqa: E402
from worker.encoders.tf_export import build_muse_module, graph_token_ids  # noqa: E402
from worker.training.data import read_sib_split, read_videos  # noqa: E402

BUDGET = 256


def shared_texts(data: Path) -> list[str]:
    texts: set[str] = set()
    for name in ("train.jsonl", "dev_BR.jsonl"):
        for video in read_videos(data / "youtube" / name, 1024, ("title_tags",)):
            texts.update((video.text, *video.views))
    for language in sorted((data / "sib200").iterdir()):
        for split in ("train", "dev"):
            if (language / f"{split}.tsv").exists():
                texts.update(e.text for e in read_sib_split(language, split))
    return sorted(texts)


def code_points() -> list[str]:
    singles = [chr(c) for c in range(0x20000) if not 0xD800 <= c <= 0xDFFF]
    return singles + [f"a{c}b" for c in singles]


def tricky_runs(n: int = 50_000) -> list[str]:
    tricky = [c for c in map(chr, range(0x20000)) if not 0xD800 <= ord(c) <= 0xDFFF
              and (unicodedata.normalize("NFKC", c) != c or unicodedata.combining(c))]
    rng = random.Random(0)
    return ["".join(rng.choice(tricky) for _ in range(rng.randint(2, 6))) for _ in range(n)]


def compare(name: str, texts: list[str], module, reference: ReferenceEncoder) -> None:
    got = graph_token_ids(module, texts, BUDGET)
    differ = [(want, ids) for text, ids in zip(texts, got, strict=True) if (want := reference.tokenize(text)) != ids]
    unk = sum(want.count(0) != ids.count(0) for want, ids in differ)
    print(json.dumps({"set": name, "texts": len(texts), "differ": len(differ), "differ_in_unk_count": unk}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data")
    data = parser.parse_args().data
    module, reference = build_muse_module(BUDGET), ReferenceEncoder(max_tokens=BUDGET)
    if data.is_dir():
        compare("shared texts", shared_texts(data), module, reference)
    compare("code points, alone and between a and b", code_points(), module, reference)
    compare("random runs of 2-6 tricky code points", tricky_runs(), module, reference)


if __name__ == "__main__":
    main()
