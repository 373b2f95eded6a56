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


# ~50 plain English sentences, written here so tiny models need no GLUE data (a clone without ../shared).
SENTENCES = [
    "The cat sat on the mat.",
    "A dog barked at the mailman all morning.",
    "She gave him the book that he wanted.",
    "The children played in the park until it got dark.",
    "John thinks that Mary left early.",
    "Who did you say that you saw yesterday?",
    "The committee approved the new budget on Tuesday.",
    "It is raining in the city again.",
    "Many students finished the exam before noon.",
    "The company reported higher profits this quarter.",
    "He is taller than his older brother.",
    "They will arrive at the station by train.",
    "The old bridge was closed for repairs.",
    "We bought fresh bread and cheese at the market.",
    "The teacher asked the class a difficult question.",
    "Nobody knew where the keys had gone.",
    "The price of oil fell sharply last week.",
    "A man is playing a guitar on the street.",
    "A woman is slicing an onion in the kitchen.",
    "Two boys are riding bikes down the hill.",
    "The government announced new rules for banks.",
    "Shares of the firm rose five percent in early trading.",
    "The river flooded the small village after the storm.",
    "My sister likes to read novels at night.",
    "The scientists published their results in a journal.",
    "Bill ate the peaches quickly.",
    "The more you read, the more you learn.",
    "Sarah seems to have been happy.",
    "The doctor examined the patient carefully.",
    "Heavy snow blocked the road to the airport.",
    "The museum opens at nine and closes at five.",
    "A plane landed safely despite the strong wind.",
    "The police arrested two men near the bank.",
    "Our neighbours painted their house blue.",
    "The film won three awards at the festival.",
    "He said that the meeting had been cancelled.",
    "The board of directors met to discuss the merger.",
    "Water boils at one hundred degrees.",
    "The baby is sleeping in the next room.",
    "She has lived in Paris for ten years.",
    "The team lost the final game by one point.",
    "Fresh fruit is good for your health.",
    "The students who studied hard passed the test.",
    "A cat is chasing a mouse across the floor.",
    "The president will visit three countries next month.",
    "The book was written by a famous author.",
    "I wonder whether he will come to the party.",
    "The workers went on strike for higher wages.",
    "The sun rises in the east every morning.",
    "The army captured the town after a long battle.",
]


def _spread(backbone, network, preprocessor, task, factor: float = 8.0) -> None:
    """Makes an untrained model's answers depend on its input, so tests can tell answers apart.

    At KerasHub's initialisation (0.02) a random 2-layer BERT gives every text
    nearly the same ``[CLS]`` vector (logits differ by ~1e-5). Scaling its
    kernels by ``factor`` (about Glorot's scale for 32 wide) makes the texts
    differ; the head is then rescaled on :data:`SENTENCES` to logits of mean 0
    and std 1.5 (labels of both kinds), or raw STS-B scores of mean 2.5 and std
    1 (inside the clip range).
    """
    import keras
    import numpy as np

    for weight in backbone.weights:
        if len(weight.shape) >= 2 and "embedding" not in weight.path:
            weight.assign(weight.numpy() * factor)
    head = [layer for layer in network._flatten_layers() if isinstance(layer, keras.layers.Dense)
            and layer.name == "logits"][-1]
    texts = tuple(np.array(SENTENCES[i::len(task.text_features)][:25]) for i in range(len(task.text_features)))
    packed = preprocessor(x=texts)
    logits = network({name: packed[name] for name in network.input}, training=False).numpy()
    mean, std = logits.mean(axis=0), logits.std(axis=0) + 1e-12
    centre, spread = (2.5, 1.0) if task.is_regression else (0.0, 1.5)
    scale = spread / std
    head.kernel.assign(head.kernel.numpy() * scale)
    head.bias.assign((head.bias.numpy() - mean) * scale + centre)


def labelled_sentences(task) -> list[dict]:
    """:data:`SENTENCES` as labelled examples of ``task`` (labels in turn): dev examples an export measures on."""
    fields = task.text_features
    rows = [SENTENCES[i : i + len(fields)] for i in range(0, len(SENTENCES) - len(fields) + 1, len(fields))]
    return [{**dict(zip(fields, row)), "idx": i, "label": float(i % 6) if task.is_regression else i % task.num_outputs}
            for i, row in enumerate(rows)]


def make_tiny_exports(folder, tasks=("cola", "mrpc", "stsb", "rte"), seed: int = 0,
                      sequence_length: int = 64, measured: bool = False) -> Path:
    """A run folder ``folder`` with ``models/<task>/1/`` exports of an untrained tiny BERT for each task.

    Built from :data:`SENTENCES` only (no GLUE data, so it works in a clone
    without ``../shared``): a 2-layer, 32-wide random BERT per task with a
    random head, spread (see :func:`_spread`) so answers differ between texts,
    exported with the metadata the service reads (``task``, ``backbone``; no
    ``dev_metrics``: nothing was evaluated). Deterministic for a given
    ``seed``; a few seconds per task. ``measured``: each export measures its
    signatures on :func:`labelled_sentences` (as a training run's export does
    on its dev split), compiling every grid shape: some 15-40 s more per task
    on 2 cores, fewer at a short ``sequence_length``. Returns ``folder``.
    """
    import keras

    from glue_tf import backbones, export
    from glue_tf import model as glue_model
    from glue_tf.tasks import TASKS

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # make_bert_preset seeds before it builds the tokenizer and the backbone.
    preset = make_bert_preset(folder / "tiny_bert_preset", vocabulary_from(SENTENCES, size=400), seed=seed)
    for offset, name in enumerate(tasks):
        task = TASKS[name]
        keras.utils.set_random_seed(seed + offset)
        backbone, preprocessor = backbones.load(str(preset), sequence_length)
        network = glue_model.build(backbone, task)
        _spread(backbone, network, preprocessor, task)
        vocabulary_size = int(preprocessor.tokenizer.vocabulary_size())
        metadata = {
            "label_names": list(task.label_names),
            "text_features": list(task.text_features),
            "backbone": {"spec": str(preset), "class": type(backbone).__name__,
                         "vocabulary_size": vocabulary_size, "parameters": int(backbone.count_params())},
            "vocabulary_size": vocabulary_size,
            "max_seq_length": sequence_length,
            "precision": "float32",
            "untrained": True,
            "seed": seed + offset,
        }
        export.export(network, preprocessor, task, folder, metadata=metadata,
                      dev_examples=labelled_sentences(task) if measured else None)
    return folder
