"""CLI commands for the encoder: export the MUSE SavedModel, and embed a text file (backfills).

Plain functions with typer-annotated parameters; `worker/cli.py` registers them. TensorFlow
is imported inside the bodies so `python -m worker --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from worker.encoders.base import DEFAULT_MAX_TOKENS
from worker.settings import DEFAULT_SAVEDMODEL_DIR, EncoderKind


def export_muse(
    out: Annotated[
        Path, typer.Option(help="Directory of the SavedModel (a cache).")
    ] = DEFAULT_SAVEDMODEL_DIR,
) -> None:
    """Export MUSE as a TF2 SavedModel; a no-op when it exists for the installed weights."""
    from worker.encoders.tf_export import ensure_savedmodel, is_current
    from worker.logs import native_logs_as_events

    was_current = is_current(out)
    with native_logs_as_events("tensorflow"):
        ensure_savedmodel(out)
    typer.echo(f"{out}: {'up to date' if was_current else 'exported'}")


def embed(
    input: Annotated[
        Path, typer.Option(exists=True, dir_okay=False, help="UTF-8 text file, one text per line.")
    ],
    out: Annotated[Path, typer.Option(dir_okay=False, help="Where to write the float32 (n, 512) .npy.")],
    encoder: Annotated[
        EncoderKind | None, typer.Option(help="tf or reference; default: WORKER_ENCODER (tf).")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Texts per encoder call.")] = 128,
    max_tokens: Annotated[
        int, typer.Option(min=3, help="SentencePiece tokens kept per text (BOS/EOS incl.).")
    ] = DEFAULT_MAX_TOKENS,
) -> None:
    """Embed every line of INPUT with MUSE and save the L2-normalised embeddings as .npy (the TF encoder
    is loaded from WORKER_ENCODER_HANDLE, as the worker loads it)."""
    import numpy as np
    from tqdm import tqdm

    from worker.encoders import load_encoder
    from worker.encoders.base import EMBEDDING_DIM
    from worker.settings import load_settings

    settings = load_settings().with_encoder(encoder)
    texts = input.read_text(encoding="utf-8").splitlines()
    model = load_encoder(settings, max_tokens)
    vectors = np.empty((len(texts), EMBEDDING_DIM), dtype=np.float32)
    with tqdm(total=len(texts), unit="text", desc=f"embed ({settings.worker_encoder.value})") as progress:
        for start in range(0, len(texts), batch_size):
            batch = texts[start : start + batch_size]
            vectors[start : start + len(batch)] = model.encode(batch)
            progress.update(len(batch))
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, vectors)
    typer.echo(f"{out}: {vectors.shape[0]} x {vectors.shape[1]} float32 ({model.identity.short})")
