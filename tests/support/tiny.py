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


def _byte_level_vocabulary() -> tuple[dict, list[str]]:
    """RoBERTa's byte-level BPE with every byte as a token and a few merges."""
    # GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest above 255.
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = [], 0
    for byte in range(256):
        if byte in printable:
            chars.append(chr(byte))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    vocabulary = {token: i for i, token in enumerate(["<s>", "<pad>", "</s>", "<unk>", *chars, "Ġt", "he", "Ġthe", "<mask>"])}
    return vocabulary, ["Ġ t", "h e", "Ġt he"]


def _sentencepiece_proto(texts) -> bytes:
    import io

    import sentencepiece

    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(texts), model_writer=model, vocab_size=300, model_type="unigram", hard_vocab_limit=False,
        pad_id=0, bos_id=1, eos_id=2, unk_id=3, pad_piece="[PAD]", bos_piece="[CLS]", eos_piece="[SEP]",
        unk_piece="[UNK]", user_defined_symbols="[MASK]", minloglevel=2,
    )
    return model.getvalue()


def make_family_preset(family: str, folder: Path, texts, seed: int = 0) -> Path:
    """A 2-layer, 32-wide encoder of a KerasHub family with its tokenizer, saved as a local preset.

    Only the backbone and tokenizer are saved: the family's preprocessor (where
    KerasHub has one) is found from them, as for a downloaded preset.
    """
    import keras
    import keras_hub

    keras.utils.set_random_seed(seed)
    folder = Path(folder)
    size = {"num_layers": 2, "num_heads": 2, "hidden_dim": 32, "intermediate_dim": 64, "max_sequence_length": 128,
            "dtype": "float32"}
    if family == "distil_bert":
        vocabulary = vocabulary_from(texts, size=800)
        tokenizer = keras_hub.models.DistilBertTokenizer(vocabulary=vocabulary, lowercase=True)
        backbone = keras_hub.models.DistilBertBackbone(vocabulary_size=len(vocabulary), **size)
    elif family == "electra":
        vocabulary = vocabulary_from(texts, size=800)
        tokenizer = keras_hub.models.ElectraTokenizer(vocabulary=vocabulary, lowercase=True)
        backbone = keras_hub.models.ElectraBackbone(vocab_size=len(vocabulary), embedding_dim=16, **size)
    elif family == "roberta":
        vocabulary, merges = _byte_level_vocabulary()
        tokenizer = keras_hub.models.RobertaTokenizer(vocabulary=vocabulary, merges=merges)
        backbone = keras_hub.models.RobertaBackbone(vocabulary_size=len(vocabulary), **size)
    elif family == "deberta_v3":
        tokenizer = keras_hub.models.DebertaV3Tokenizer(proto=_sentencepiece_proto(texts))
        backbone = keras_hub.models.DebertaV3Backbone(
            vocabulary_size=tokenizer.vocabulary_size(), bucket_size=16, **size
        )
    else:
        raise ValueError(f"unknown family {family}")
    backbone.save_to_preset(str(folder))
    tokenizer.save_to_preset(str(folder))
    return folder
