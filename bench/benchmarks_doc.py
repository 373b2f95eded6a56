"""Renders the speed section of docs/BENCHMARKS.md from the JSON lines of ``bench/speed.py``.

    python bench/benchmarks_doc.py --train runs/bench/train.jsonl --infer runs/bench/infer.jsonl \
        [--report runs/minilm-full/report.json] --doc docs/BENCHMARKS.md

Only the part between the ``speed`` markers is replaced; every figure comes from the files.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

BEGIN, END = "<!-- speed:begin (bench/benchmarks_doc.py) -->", "<!-- speed:end -->"
BASELINE = "hf-dynamic"


def _records(path: Path | None) -> list[dict]:
    if not path or not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _latest_run(records: list[dict]) -> list[dict]:
    """The records of the newest invocation (a file may hold several, appended)."""
    latest = {}
    for record in records:
        latest[(record["task"], record["contender"])] = record
    return list(latest.values())


def _table(records: list[dict], title: str) -> list[str]:
    base = {r["task"]: r for r in records if r["contender"] == BASELINE and "error" not in r}
    lines = [f"### {title}", "", "| task | contender | examples/s | real tokens/s | padding efficiency | vs. hf-dynamic |",
             "|---|---|---|---|---|---|"]
    for r in records:
        if "error" in r:
            lines.append(f"| {r['task']} | {r['contender']} | failed: {r['error'][:60]} | | | |")
            continue
        ref = base.get(r["task"])
        ratio = r["examples_per_second"] / ref["examples_per_second"] if ref else None
        lines.append(
            f"| {r['task']} | {r['contender']} | {r['examples_per_second']:.1f} | {r['real_tokens_per_second']:.0f} | "
            f"{100 * r['padding_efficiency']:.1f}% | {f'**{ratio:.2f}x**' if ratio else '–'} |"
        )
    return lines + [""]


def _profile_table(rows: list[dict]) -> list[str]:
    lines = ["### Step profile: batch 32, fixed length (`bench/step_profile.py`)", "",
             "| length | framework | piece | XLA | ms | tokens/s |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['length']} | {r['framework']} | {r['step']} | {'on' if r['xla'] else 'off'} | "
                     f"{r['ms']:.0f} | {r['tokens_per_second']} |")
    return lines + [""]


def _end_to_end(report: dict) -> list[str]:
    from results_doc import HUGGING_FACE

    rows = [r for r in report["tasks"].items() if r[1].get("wall_seconds")]
    ours = sum(r["wall_seconds"] for _, r in rows)
    theirs = [HUGGING_FACE[name][1] for name, _ in rows if name in HUGGING_FACE]
    lines = ["### End to end: six tasks with `make train-all`", "",
             "| task | glue-tf wall (s) | Hugging Face wall (s), docs/REFERENCE.md |", "|---|---|---|"]
    for name, row in rows:
        hf = HUGGING_FACE.get(name)
        lines.append(f"| {row['display_name']} | {row['wall_seconds']:.0f} | {hf[1] if hf else '–'} ({hf[2] if hf else ''}) |")
    lines.append(f"| all | {ours:.0f} | {sum(theirs):.0f} |")
    lines += ["", "glue-tf's column is the whole `make train-all` run of docs/RESULTS.md (tokenize, 3 epochs "
              "with a dev evaluation each, export, test predictions); Hugging Face's is the trainer's wall time per "
              "task measured on this machine for docs/REFERENCE.md, at the learning rate whose dev score "
              "RESULTS.md compares with. `bench/end_to_end.py` reruns both side by side (hours on 2 cores).", ""]
    return lines


def render(train: list[dict], infer: list[dict], report: dict | None, profile: list[dict] | None = None) -> str:
    lines = [BEGIN, ""]
    sample = (train or infer or [{}])[0]
    m = sample.get("machine", {})
    versions = ", ".join(f"{k} {v}" for k, v in m.get("versions", {}).items() if v)
    lines += [
        f"Machine: {m.get('cpus')} CPUs, {m.get('machine')}, ISA {'/'.join(m.get('isa', [])) or '?'}; {versions}; "
        f"{m.get('date')}. Batch 32 (inference 64), max length 128, float32, same checkpoint and data for all.",
        "",
    ]
    if train:
        steps = train[0].get("steps")
        warm = train[0].get("warmup")
        lines += _table(_latest_run(train), f"Fine-tuning: {steps} timed steps after {warm} warm-up steps")
    if infer:
        lines += _table(_latest_run(infer), "Inference: the whole dev split, batches of 64, tokenization included")
    if profile:
        lines += _profile_table(profile)
    if report:
        lines += _end_to_end(report)
    lines.append(END)
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=Path)
    parser.add_argument("--infer", type=Path)
    parser.add_argument("--profile", type=Path, help="JSON lines of bench/step_profile.py")
    parser.add_argument("--report", type=Path, help="report.json of a full train-all run")
    parser.add_argument("--doc", type=Path, default=Path("docs/BENCHMARKS.md"))
    args = parser.parse_args(argv)
    report = json.loads(args.report.read_text()) if args.report and args.report.is_file() else None
    section = render(_records(args.train), _records(args.infer), report, _records(args.profile))
    text = args.doc.read_text(encoding="utf-8") if args.doc.is_file() else "# Benchmarks\n"
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + section + text[text.index(END) + len(END):]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    args.doc.write_text(text, encoding="utf-8")
    print(f"wrote {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
