"""Categorize uploaded videos in any language, as a Kafka stream processor.

consume -> decode -> batch -> embed (Redis cache) -> classify -> encode -> produce -> commit
(`consume.py`, `decode.py`, `batch.py`, `embed.py` + `cache.py`, `classify.py`, `encode.py`,
`produce.py`, `commit.py`, driven by the one loop in `loop.py`).
"""
