"""Tiny randomly initialised KerasHub presets for tests: real classes, real save/load, no download."""

from __future__ import annotations

import re
from pathlib import Path

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def vocabulary_from(texts, size: int = 2000) -> list[str]:
    """Special tokens, single characters (so WordPiece never fails) and the most common words."""
    counts = {}
    chars = set()
    for text in texts:
        for word in re.findall(r"\w+|[^\w\s]", text.lower()):
            counts[word] = counts.get(word, 0) + 1
            chars.update(word)
    words = sorted(counts, key=lambda w: (-counts[w], w))
    pieces = sorted(chars) + [f"##{c}" for c in sorted(chars)]
    vocab = SPECIAL + [p for p in pieces if p not in SPECIAL]
    for word in words:
        if len(vocab) >= size:
            break
        if word not in vocab:
            vocab.append(word)
    return vocab


def make_bert_preset(folder: Path, vocabulary: list[str], sequence_length: int = 128, seed: int = 0) -> Path:
    """Saves a 2-layer, 32-wide BERT with its tokenizer and preprocessor as a local Keras preset."""
    import keras
    import keras_hub

    keras.utils.set_random_seed(seed)
    folder = Path(folder)
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocabulary, lowercase=True)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=len(vocabulary),
        num_layers=2,
        num_heads=2,
        hidden_dim=32,
        intermediate_dim=64,
        max_sequence_length=sequence_length,
        dtype="float32",
    )
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=sequence_length)
    backbone.save_to_preset(str(folder))
    preprocessor.save_to_preset(str(folder))
    return folder
