"""A small GLUE folder in the classic TSV layout, written by the tests (no ``../shared`` needed).

Every task of ``download_glue_data.py``'s layout, in the formats of the real
files and with their quirks, so the reader under test sees what it sees in
GLUE: CoLA's headerless train/dev (4 columns, ``*`` marks) and a dev file with
no final newline, SST-2's lower-cased tokens and trailing space, MRPC's BOM and
``#1 String`` columns, STS-B's 10 columns and scores written as ``5.000`` or
``0``, QQP's ``id/qid1/qid2``, MNLI's parse columns with one annotator label in
train and five in dev (matched and mismatched), label names in QNLI, RTE and
MNLI, ids in WNLI, AX as ``diagnostic/diagnostic.tsv``, test splits
unlabelled, bare quotes and non-ASCII text.

Sentences are built from a few word lists, deterministically, and each label
follows from the text (a negation, a scrambled word order, a sentiment word,
how many parts two sentences share), so a model can learn something in a few
steps. :data:`SIZES` gives every split's row count; tests assert against it.
"""

from __future__ import annotations

import random
from pathlib import Path

SIZES = {
    "cola": {"train": 240, "validation": 64, "test": 48},
    "sst2": {"train": 640, "validation": 64, "test": 48},
    "mrpc": {"train": 200, "validation": 64, "test": 48},
    "stsb": {"train": 200, "validation": 64, "test": 48},
    "qqp": {"train": 200, "validation": 64, "test": 48},
    "mnli": {"train": 200, "validation_matched": 48, "validation_mismatched": 48, "test_matched": 24,
             "test_mismatched": 24},
    "qnli": {"train": 200, "validation": 64, "test": 48},
    "rte": {"train": 200, "validation": 64, "test": 48},
    "wnli": {"train": 120, "validation": 40, "test": 32},
    "ax": {"test": 64},
}

SUBJECTS = ["the cat", "a dog", "the teacher", "my sister", "the old farmer", "a young doctor", "the committee",
            "our neighbours", "the police", "José", "the children", "a tall man", "the pilot", "the company",
            "her brother", "the students"]
# (past tense, base form, a synonym in the past tense)
VERBS = [("saw", "see", "noticed"), ("liked", "like", "enjoyed"), ("found", "find", "discovered"),
         ("painted", "paint", "coloured"), ("followed", "follow", "tracked"), ("bought", "buy", "purchased"),
         ("repaired", "repair", "fixed"), ("visited", "visit", "toured"), ("cleaned", "clean", "washed"),
         ("sold", "sell", "traded"), ("built", "build", "made"), ("carried", "carry", "moved")]
OBJECTS = ["the old bridge", "a red car", "the small house", "the café", "a heavy box", "the new school",
           "an empty boat", "the garden gate", "a wooden chair", "the city museum", "a broken clock",
           "the village church", "a blue bicycle", "the tall tower", "an old piano", "the train station"]
PLACES = ["in the park", "at the market", "near the river", "after the storm", "on Tuesday", "before noon",
          "in the morning", "during the winter", "at night", "last week"]
POSITIVE = ["wonderful", "moving", "funny", "brilliant", "charming", "delightful"]
NEGATIVE = ["dull", "tedious", "awful", "clumsy", "boring", "lifeless"]


class _Writer:
    """Draws sentences for one task from its own seeded generator."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)

    def parts(self) -> list:
        return [self.rng.choice(SUBJECTS), self.rng.choice(VERBS), self.rng.choice(OBJECTS), self.rng.choice(PLACES)]

    def other(self, parts: list, index: int) -> list:
        """``parts`` with part ``index`` replaced by a different one."""
        pool = [SUBJECTS, VERBS, OBJECTS, PLACES][index]
        changed = list(parts)
        changed[index] = self.rng.choice([p for p in pool if p != parts[index]])
        return changed

    def labels(self, count: int, classes: int) -> list[int]:
        """Balanced labels in a seeded order."""
        labels = [i % classes for i in range(count)]
        self.rng.shuffle(labels)
        return labels


def sentence(parts) -> str:
    subject, verb, obj, place = parts
    return f"{subject[0].upper()}{subject[1:]} {verb[0]} {obj} {place}."


def _negated(parts) -> str:
    subject, verb, obj, place = parts
    return f"{subject[0].upper()}{subject[1:]} did not {verb[1]} {obj} {place}."


def _write(path: Path, rows: list[str], final_newline: bool = True, bom: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(rows) + ("\n" if final_newline else "")
    path.write_text(("\ufeff" if bom else "") + text, encoding="utf-8")


def _splits(task_name: str):
    """``(split, file name, row count, labelled)`` for each split of the task, in registry order."""
    from glue_tf.tasks import TASKS

    task = TASKS[task_name]
    for split, count in SIZES[task_name].items():
        yield split, task.splits[split], count, not split.startswith("test") and not task.eval_only


def _cola(root: Path, w: _Writer) -> None:
    for split, name, count, labelled in _splits("cola"):
        rows = [] if labelled else ["index\tsentence"]
        labels = w.labels(count, 2)
        for i in range(count):
            subject, verb, obj, place = w.parts()
            if labels[i]:
                text = sentence((subject, verb, obj, place))
            else:  # a scrambled word order: the verb last
                text = f"{subject[0].upper()}{subject[1:]} {obj} {place} {verb[0]}."
            source = ("gj04", "bc01", "r-67", "ks08")[i % 4]
            rows.append(f"{source}\t{labels[i]}\t{'' if labels[i] else '*'}\t{text}" if labelled else f"{i}\t{text}")
        # The real dev.tsv ends without a newline.
        _write(root / "CoLA" / name, rows, final_newline=split != "validation")


def _sst2(root: Path, w: _Writer) -> None:
    for _, name, count, labelled in _splits("sst2"):
        rows = ["sentence\tlabel" if labelled else "index\tsentence"]
        labels = w.labels(count, 2)
        for i in range(count):
            adjective = w.rng.choice(POSITIVE if labels[i] else NEGATIVE)
            _, _, obj, place = w.parts()
            text = f"a {adjective} film about {obj} {place} , really {adjective} ."
            # Train and dev rows end with a space before the tab, as in SST-2.
            rows.append(f"{text} \t{labels[i]}" if labelled else f"{i}\t{text}")
        _write(root / "SST-2" / name, rows)


def _mrpc(root: Path, w: _Writer) -> None:
    for _, name, count, labelled in _splits("mrpc"):
        rows = ["Quality\t#1 ID\t#2 ID\t#1 String\t#2 String" if labelled else "index\t#1 ID\t#2 ID\t#1 String\t#2 String"]
        labels = w.labels(count, 2)
        for i in range(count):
            parts = w.parts()
            subject, verb, obj, place = parts
            if labels[i]:  # the same event in other words, quoted as the news does
                second = f'"{subject[0].upper()}{subject[1:]} {verb[2]} {obj} {place}," a spokesman said.'
            else:
                second = sentence(w.other(w.other(parts, 2), 1))
            ids = f"{100000 + 7 * i}\t{100003 + 7 * i}"
            rows.append(f"{labels[i] if labelled else i}\t{ids}\t{sentence(parts)}\t{second}")
        _write(root / "MRPC" / name, rows, bom=labelled)


def _stsb(root: Path, w: _Writer) -> None:
    header = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2"
    for _, name, count, labelled in _splits("stsb"):
        rows = [header + ("\tscore" if labelled else "")]
        for i in range(count):
            parts = w.parts()
            changed = list(parts)
            kept = w.rng.randint(0, 4)
            for index in w.rng.sample(range(4), 4 - kept):
                changed = w.other(changed, index)
            score = 5.0 * kept / 4
            fields = [str(i), "main-captions", "MSRvid", "2012test", f"{i + 1:04d}", "none", "none", sentence(parts),
                      sentence(changed)]
            if labelled:  # "5.000" mostly, a bare "0" now and then, as in the real files
                fields.append("0" if score == 0 and i % 2 else f"{score:.3f}")
            rows.append("\t".join(fields))
        _write(root / "STS-B" / name, rows)


def _question(parts, wording: int) -> str:
    subject, verb, obj, _ = parts
    return (f"Why did {subject} {verb[1]} {obj}?", f"What made {subject} {verb[1]} {obj}?")[wording]


def _qqp(root: Path, w: _Writer) -> None:
    for _, name, count, labelled in _splits("qqp"):
        rows = ["id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate" if labelled else "id\tquestion1\tquestion2"]
        labels = w.labels(count, 2)
        for i in range(count):
            parts = w.parts()
            second = _question(parts if labels[i] else w.other(parts, 2), 1)
            pair = f"{_question(parts, 0)}\t{second}"
            rows.append(f"{300000 + i}\t{2 * i + 1}\t{2 * i + 2}\t{pair}\t{labels[i]}" if labelled else f"{i}\t{pair}")
        _write(root / "QQP" / name, rows)


MNLI_COLUMNS = ["index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
                "sentence1_parse", "sentence2_parse", "sentence1", "sentence2"]
NLI_LABELS = ["entailment", "neutral", "contradiction"]


def _hypothesis(w: _Writer, parts, label: str) -> str:
    subject, verb, obj, place = parts
    if label == "entailment":
        return f"{subject[0].upper()}{subject[1:]} {verb[0]} {obj}."
    if label == "contradiction":
        return _negated(parts)
    return f"{subject[0].upper()}{subject[1:]} {verb[0]} {obj} with {w.rng.choice(SUBJECTS)}."


def _mnli(root: Path, w: _Writer) -> None:
    for split, name, count, labelled in _splits("mnli"):
        annotators = 1 if split == "train" else 5
        extra = [f"label{k + 1}" for k in range(annotators)] + ["gold_label"] if labelled else []
        rows = ["\t".join(MNLI_COLUMNS + extra)]
        labels = w.labels(count, 3)
        genres = ("letters", "oup") if "mismatched" in split else ("fiction", "government")
        for i in range(count):
            parts = w.parts()
            gold = NLI_LABELS[labels[i]]
            fields = [str(i), str(1000 + i), f"{1000 + i}{'ecn'[i % 3]}", genres[i % 2], "( a b )", "( c d )",
                      "(ROOT (S a b))", "(ROOT (S c d))", sentence(parts), _hypothesis(w, parts, gold)]
            if labelled:  # one annotator disagrees now and then; the gold label is the majority
                votes = [gold] * annotators
                if annotators > 1 and i % 3 == 0:
                    votes[-1] = NLI_LABELS[(labels[i] + 1) % 3]
                fields += votes + [gold]
            rows.append("\t".join(fields))
        _write(root / "MNLI" / name, rows)


def _pairs(root: Path, w: _Writer, task_name: str, folder: str, names: tuple[str, str], make_pair) -> None:
    """QNLI, RTE, WNLI: ``index``, two text columns, then ``label`` (as ``make_pair`` writes it)."""
    for _, name, count, labelled in _splits(task_name):
        rows = [f"index\t{names[0]}\t{names[1]}" + ("\tlabel" if labelled else "")]
        labels = w.labels(count, 2)
        for i in range(count):
            first, second, label = make_pair(w, labels[i])
            rows.append(f"{i}\t{first}\t{second}" + (f"\t{label}" if labelled else ""))
        _write(root / folder / name, rows)


def _qnli_pair(w: _Writer, entails: int):
    parts = w.parts()
    subject, verb, obj, place = parts
    question = f"When did {subject} {verb[1]} {obj}?"
    context = sentence(parts) if entails else sentence(w.other(w.other(parts, 0), 2))
    return question, f"{context} Nobody was surprised.", "entailment" if entails else "not_entailment"


def _rte_pair(w: _Writer, entails: int):
    parts = w.parts()
    premise = f"{sentence(parts)} {sentence(w.parts())}"
    hypothesis = _hypothesis(w, parts, "entailment" if entails else "contradiction")
    return premise, hypothesis, "entailment" if entails else "not_entailment"


def _wnli_pair(w: _Writer, entails: int):
    subject, verb, obj, place = w.parts()
    other = w.rng.choice([s for s in SUBJECTS if s != subject])
    premise = f"{subject[0].upper()}{subject[1:]} {verb[0]} {obj} because {other} asked. It was {place}."
    doer = subject if entails else other
    return premise, f"{doer[0].upper()}{doer[1:]} {verb[0]} {obj}.", str(entails)


def _ax(root: Path, w: _Writer) -> None:
    rows = ["index\tsentence1\tsentence2"]
    for i in range(SIZES["ax"]["test"]):
        parts = w.parts()
        rows.append(f"{i}\t{sentence(parts)}\t{_hypothesis(w, parts, NLI_LABELS[i % 3])}")
    _write(root / "diagnostic" / "diagnostic.tsv", rows, final_newline=False)  # as the real file


def write_glue_dir(root) -> Path:
    """Writes every task's files under ``root`` (created if needed); returns ``root``."""
    root = Path(root)
    for seed, write in enumerate((_cola, _sst2, _mrpc, _stsb, _qqp, _mnli, _ax)):
        write(root, _Writer(seed))
    _pairs(root, _Writer(10), "qnli", "QNLI", ("question", "sentence"), _qnli_pair)
    _pairs(root, _Writer(11), "rte", "RTE", ("sentence1", "sentence2"), _rte_pair)
    _pairs(root, _Writer(12), "wnli", "WNLI", ("sentence1", "sentence2"), _wnli_pair)
    return root
