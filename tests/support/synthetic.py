"""MNLI and QQP files in their real GLUE TSV formats, made from real sentences (neither is available here)."""

from __future__ import annotations

from pathlib import Path

MNLI_COLUMNS = [
    "index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
    "sentence1_parse", "sentence2_parse", "sentence1", "sentence2",
]
MNLI_LABELS = ["entailment", "neutral", "contradiction"]


def write_mnli(glue_dir: Path, pairs: list[tuple[str, str]], sizes=None) -> Path:
    """Writes MNLI/{train,dev_matched,dev_mismatched,test_matched,test_mismatched}.tsv from ``pairs``."""
    sizes = sizes or {"train": 48, "dev_matched": 24, "dev_mismatched": 24, "test_matched": 12, "test_mismatched": 12}
    folder = Path(glue_dir) / "MNLI"
    folder.mkdir(parents=True, exist_ok=True)
    position = 0
    for name, count in sizes.items():
        labelled = not name.startswith("test")
        extra = ["label1", "gold_label"] if name == "train" else ["label1", "label2", "label3", "label4", "label5", "gold_label"]
        rows = ["\t".join(MNLI_COLUMNS + (extra if labelled else []))]
        for i in range(count):
            premise, hypothesis = pairs[position % len(pairs)]
            position += 1
            label = MNLI_LABELS[(position * 7) % 3]
            fields = [str(i), str(1000 + i), f"{1000 + i}e", "fiction", "( a )", "( b )", "(ROOT a)", "(ROOT b)", premise, hypothesis]
            if labelled:
                fields += [label] * (len(extra) - 1) + [label]
            rows.append("\t".join(fields))
        (folder / f"{name}.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder
