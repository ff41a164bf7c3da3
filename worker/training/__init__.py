"""Training, evaluation and shipping of the classifier head (`python -m worker train|evaluate`).

Flow: data (JSON Lines videos, SIB-200 folders) -> text (`worker.text.build_text`) ->
embeddings (encoder + on-disk cache) -> Keras head -> calibrated thresholds -> artifact.
"""
