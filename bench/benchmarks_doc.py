"""Renders the benchmark sections of docs/BENCHMARKS.md from the JSON lines the bench scripts write.

    python -m bench.benchmarks_doc --train runs/bench/train.jsonl --infer runs/bench/infer.jsonl \
        [--report runs/minilm-full/report.json] [--predict runs/bench/predict.jsonl] \
        [--evaluate runs/bench/evaluate.jsonl] [--serving runs/bench/serving.jsonl] \
        [--agreement runs/bench/agreement.jsonl] [--end-to-end runs/bench/end_to_end.jsonl] --doc docs/BENCHMARKS.md

Three sections, each between its markers, the rest of the page kept: ``speed``
(``bench/speed.py``: fine-tuning, inference, step profile, end to end),
``training-kernels`` (the step profile with TensorFlow's oneDNN on and off
beside PyTorch's, and ``bench/end_to_end.py`` runs) and ``inference-paths`` (issue 12's targets: ``glue-tf predict`` as whole
processes, ``glue-tf evaluate`` as whole processes and its chosen signature in-process,
the service, and the agreement of the signatures). Whole-process benchmarks run in
alternating rounds show each round and quote the ratio of the medians. Every figure
comes from the files; each starts with the CPU model and the flags the figures depend on.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

BEGIN, END = "<!-- speed:begin (bench/benchmarks_doc.py) -->", "<!-- speed:end -->"
PATHS_BEGIN, PATHS_END = "<!-- inference-paths:begin (bench/benchmarks_doc.py) -->", "<!-- inference-paths:end -->"
BASELINE = "hf-dynamic"
TARGET = 2.0
PATH_CONTENDERS = ("glue-tf-chosen", "glue-tf-serving-default", "glue-tf-serving-default-by-characters", BASELINE)
# The fine-tuning kernels section: one per kind of CPU, since its figures answer different targets on each.
# The update rows of bench/step_profile.py that the whole-step summary adds to forward+backward.
SUMMARY_UPDATES = ("tensorflow: fused AdamW (XLA apply)", "torch: AdamW (fused) + clip_grad_norm_")
TRAINING_SECTIONS = {False: "training-kernels", True: "training-kernels-bf16"}  # by: does the CPU have bf16 units


def _training_markers(bf16_units: bool) -> tuple[str, str]:
    name = TRAINING_SECTIONS[bf16_units]
    return f"<!-- {name}:begin (bench/benchmarks_doc.py) -->", f"<!-- {name}:end -->"


def _has_bf16_units(machine: dict | None) -> bool:
    """From a record's machine (its ISA flags), else this machine's."""
    from glue_tf import precision

    if machine and "isa" in machine:
        return bool(set(precision.CPU_BF16_FLAGS) & set(machine["isa"]))
    return precision.Machine.from_cpu().bf16_units


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


def _per_task_rows(records: list[dict], header: list[str], cells) -> list[str]:
    """A markdown table of one row per record, its last column the speed-up over hf-dynamic on the same task.

    ``header``: the columns after ``task`` and ``contender`` and before the speed-up; ``cells(record)``
    gives their values. A failed record gets its error instead."""
    base = {r["task"]: r for r in records if r["contender"] == BASELINE and "error" not in r}
    columns = ["task", "contender", *header, "vs. hf-dynamic"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in records:
        if "error" in r:
            lines.append(f"| {r['task']} | {r['contender']} | failed: {r['error'][:60]} |" + " |" * len(header))
            continue
        ref = base.get(r["task"])
        ratio = f"**{r['examples_per_second'] / ref['examples_per_second']:.2f}x**" if ref else "–"
        lines.append("| " + " | ".join([r["task"], r["contender"], *cells(r), ratio]) + " |")
    return lines


def _table(records: list[dict], title: str) -> list[str]:
    def cells(r):
        return [f"{r['examples_per_second']:.1f}", f"{r['real_tokens_per_second']:.0f}", f"{100 * r['padding_efficiency']:.1f}%"]

    return [f"### {title}", ""] + _per_task_rows(records, ["examples/s", "real tokens/s", "padding efficiency"], cells) + [""]


def _profile_table(rows: list[dict]) -> list[str]:
    """The step profile; with oneDNN and precision columns where the rows carry them (newer runs)."""
    onednn = any("onednn" in r for r in rows)
    lines = ["### Step profile: batch 32, fixed length (`bench/step_profile.py`)", "",
             f"| length | precision | framework |{' oneDNN |' if onednn else ''} piece | XLA | ms | tokens/s |",
             f"|---|---|---|{'---|' if onednn else ''}---|---|---|---|"]
    for r in rows:
        state = {True: " on |", False: " off |"}.get(r.get("onednn"), " |") if onednn else ""
        piece = f"{r['step']}: {r['update']}" if r.get("update") else r["step"]  # which update, side by side
        lines.append(f"| {r['length']} | {_precision(r)} | {r['framework']} |{state} {piece} | "
                     f"{'on' if r['xla'] else 'off'} | {r['ms']:.0f} | {r['tokens_per_second']} |")
    return lines + [""]


def _precision(row: dict) -> str:
    return row.get("precision", "float32")  # runs before bench/step_profile.py had --precisions: float32


def _step_summary(rows: list[dict]) -> list[str]:
    """One training step (forward+backward, XLA off, plus the clipped optimizer update) per length and setting."""
    steps = {}
    for r in rows:
        if r.get("update") not in (None, *SUMMARY_UPDATES):
            continue  # bench/step_profile.py's side-by-side updates: the recipe's and PyTorch's fused count
        if r["step"] in ("forward+backward", "optimizer (clip 1.0)") and (not r["xla"] or "update" in r):
            if r["framework"] == "torch" or r.get("update", "").startswith("torch"):
                name = f"PyTorch {_precision(r)}"
            else:
                name = f"TensorFlow {_precision(r)}" + (f", oneDNN {'on' if r['onednn'] else 'off'}" if "onednn" in r else "")
            steps.setdefault((r["length"], name), 0.0)
            steps[(r["length"], name)] += r["ms"]
    lengths = sorted({length for length, _ in steps})
    names = list(dict.fromkeys(name for _, name in steps))
    lines = ["Whole step (forward+backward and the clipped AdamW update), ms:", "",
             "| setting | " + " | ".join(f"length {n}" for n in lengths) + " |", "|---|" + "---|" * len(lengths)]
    lines += [f"| {name} | " + " | ".join(f"{steps.get((n, name), float('nan')):.0f}" for n in lengths) + " |"
              for name in names]
    return lines + [""]


def _end_to_end_runs(records: list[dict]) -> list[str]:
    """``bench/end_to_end.py`` records: glue-tf's ``train-all`` against Hugging Face's trainer, one invocation.

    A row per task (glue-tf's time for it inside its one process, Hugging Face's whole process), then all
    tasks: both as whole processes."""
    pairs, ours = [], None
    for record in records:  # glue-tf's record, then one Hugging Face record per precision it ran at
        ours = record if record.get("contender") == "glue-tf" else ours
        if record.get("contender") == "hf-trainer" and ours is not None:
            pairs.append((ours, record))
    if not pairs:
        return []
    lines = ["### Fine-tuning end to end (`bench/end_to_end.py`)", "",
             "| tasks | epochs | precision, glue-tf / Hugging Face | glue-tf wall s | Hugging Face wall s | speed-up "
             "| dev score, glue-tf / Hugging Face |",
             "|---|---|---|---|---|---|---|"]

    def row(name, epochs, precisions, ours, theirs, score):
        ratio = f"**{theirs / ours:.2f}x**" if ours and theirs else "–"
        return f"| {name} | {epochs} | {precisions} | {ours or 0:.0f} | {theirs or 0:.0f} | {ratio} | {score} |"

    for ours, theirs in pairs:
        epochs = ours.get("epochs", "")
        precisions = f"{ours.get('precision', 'float32')} / {theirs.get('precision', 'float32')}"  # older runs: float32
        if "error" in ours:
            lines.append(f"| {','.join(theirs['tasks'])} | {epochs} | {precisions} | failed: {ours['error']} | | | |")
            continue
        scores = {task: f"{ours['tasks'].get(task, float('nan')):.1f} / {score:.1f}"
                  for task, score in theirs["tasks"].items() if isinstance(score, (int, float))}
        walls = ours.get("task_walls", {})
        if len(theirs["tasks"]) > 1 and walls:
            lines += [row(task, epochs, precisions, walls.get(task), theirs["task_walls"].get(task), scores.get(task, "–"))
                      for task in theirs["tasks"]]
        lines.append(row(",".join(theirs["tasks"]) + " (whole processes)", epochs, precisions, ours["wall_seconds"],
                         theirs["wall_seconds"], "; ".join(f"{t} {v}" for t, v in scores.items())))
    return lines + ["", "glue-tf runs `glue-tf train-all` once for all the tasks: tokenize, train with a dev "
                        "evaluation per epoch, export (signatures measured), predict the test split; a task's row is "
                        "its time inside that process (start-up is in the whole-process row). Hugging Face runs its "
                        "`Trainer` with dynamic padding per task in a fresh process, trained then scored on dev, at "
                        "its best precision on the CPU (`--bf16` where it has bf16 units, float32 elsewhere) and, "
                        "where a row says so, at its float32 default.", ""]


def _end_to_end_rounds(records: list[dict]) -> list[str]:
    """``bench/end_to_end.py`` in alternating rounds, the newest invocation of each task set (CoLA alone, then
    MRPC and RTE together, say): per Hugging Face precision, a row per task (glue-tf's time inside its one
    process) and one for all its tasks (whole processes), medians and each round's dev scores."""
    newest = {}
    for runs, verdict in _blocks(records, "end_to_end-ratio"):
        newest[tuple(verdict["tasks"])] = (runs, verdict)
    lines = ["### Fine-tuning end to end, median of alternating rounds (`bench/end_to_end.py`)", "",
             "| tasks | epochs | precision, glue-tf / Hugging Face | glue-tf median wall s | Hugging Face median "
             "wall s | rounds' walls s, glue-tf / Hugging Face | ratio of medians | dev score per round, glue-tf / "
             "Hugging Face |", "|---|---|---|---|---|---|---|---|"]
    for runs, verdict in newest.values():
        lines += _end_to_end_block_rows([r for r in runs if r.get("kind") == "end_to_end" and "round" in r], verdict)
    counts = [(v["rounds"], ",".join(v["tasks"])) for _, v in newest.values()]
    rounds = (str(counts[0][0]) if len({n for n, _ in counts}) == 1
              else ", ".join(f"{n} ({tasks})" for n, tasks in counts))
    return lines + ["", f"Median of {rounds} alternating rounds; glue-tf runs `glue-tf train-all` once "
                        "for all the tasks into a fresh folder each round (a task's row is its time inside that "
                        "process), Hugging Face its `Trainer` per task in a fresh process.", ""]


def _end_to_end_block_rows(runs: list[dict], verdict: dict) -> list[str]:
    """One invocation's rows: per Hugging Face precision, each task's medians, then its tasks as a whole."""
    walls, task_walls, precision = verdict["median_wall_seconds"], verdict["task_median_walls"], verdict["precision"]
    tasks, epochs = verdict["tasks"], verdict.get("epochs", "")
    lines = []
    for theirs, ratio in verdict["vs_hf"].items():
        precisions = f"{precision.get('glue-tf')} / {precision.get(theirs)}"
        rows = [(task, task_walls["glue-tf"].get(task), task_walls[theirs].get(task), task) for task in tasks]
        rows = rows if len(tasks) > 1 else []  # a task's ratio: of its medians; the whole run's: the verdict's
        for name, ours_wall, their_wall, task in rows + [(",".join(tasks) + " (whole processes)", walls.get("glue-tf"),
                                                           walls.get(theirs), None)]:
            shown = ratio if task is None else (their_wall / ours_wall if ours_wall and their_wall else None)
            rounds = " / ".join(_round_walls(runs, contender, task) for contender in ("glue-tf", theirs))
            scores = " / ".join(_round_scores(verdict["dev_scores"].get(contender, []), [task] if task else tasks)
                                for contender in ("glue-tf", theirs))
            lines.append(f"| {name} | {epochs} | {precisions} | {_seconds(ours_wall)} | {_seconds(their_wall)} | "
                         f"{rounds} | {f'**{shown:.2f}x**' if shown else '–'} | {scores} |")
    return lines


def _seconds(wall: float | None) -> str:
    return f"{wall:.0f}" if wall else "failed"


def _round_walls(runs: list[dict], contender: str, task: str | None) -> str:
    """A contender's wall in each round, whole (``task`` None) or of one task; ``failed`` where it failed."""
    walls = [(r.get("task_walls") or {}).get(task) if task else r.get("wall_seconds")
             for r in runs if r["contender"] == contender]
    return ", ".join(f"{wall:.0f}" if wall else "failed" for wall in walls)


def _round_scores(per_round: list[dict | None], tasks: list[str]) -> str:
    """Dev scores of each round (points), tasks joined by ``;`` within a round."""
    def score(scores, task):
        value = (scores or {}).get(task)
        return f"{value:.1f}" if isinstance(value, (int, float)) else "–"

    return ", ".join("; ".join(score(scores, task) for task in tasks) for scores in per_round)


def render_training(profile: list[dict], end_to_end: list[dict]) -> tuple[str, str, str]:
    """The fine-tuning kernels section, and its markers: the step (oneDNN on and off, each precision) beside
    PyTorch's, and end-to-end runs. CPUs with bf16 units get a section of their own."""
    sample = next((r for r in end_to_end if r.get("machine")), {})
    begin, end = _training_markers(_has_bf16_units(sample.get("machine")))
    lines = [begin, ""]
    if sample:
        lines += [_machine_line(sample["machine"]), ""]
    if profile:
        lines += _profile_table(profile) + _step_summary(profile)
    if any(r.get("kind") == "end_to_end-ratio" for r in end_to_end):
        lines += _end_to_end_rounds(end_to_end)
    else:  # runs before --rounds
        lines += _end_to_end_runs([r for r in end_to_end if r.get("kind") == "end_to_end"])
    return begin, end, "\n".join(lines + [end])


ROOFLINE_BEGIN, ROOFLINE_END = "<!-- roofline:begin (bench/benchmarks_doc.py) -->", "<!-- roofline:end -->"


def _model_shape_rates(roofline: list[dict]) -> dict:
    """``(dtype, tokens) -> GFLOP/s`` over the model's products at ``tokens`` rows, each product at the best
    rate any framework or setting reached on it (FLOPs summed over the time the products take at those rates)."""
    from bench.roofline import shapes

    best = {}
    for r in roofline:
        key = (r["dtype"], r["m"], r["k"], r["n"])
        best[key] = max(best.get(key, 0.0), r["gflops"])
    rates = {}
    for dtype in {r["dtype"] for r in roofline}:
        for tokens in {r["m"] for r in roofline if r["k"] != r["m"]}:
            products = [(m, k, n) for m, k, n in shapes(tokens) if (dtype, m, k, n) in best]
            if len(products) == len(shapes(tokens)):
                seconds = sum(2 * m * k * n / best[(dtype, m, k, n)] for m, k, n in products)
                rates[(dtype, tokens)] = sum(2 * m * k * n for m, k, n in products) / seconds
    return rates


ROOFLINE_SETTINGS = (("tensorflow", True), ("tensorflow", False), ("torch", None))  # the rate table's columns


def _rate_table(roofline: list[dict], rates: dict) -> list[str]:
    from bench.roofline import SQUARE

    lines = ["Measured rates, GFLOP/s (`python -m bench.roofline`; model shapes: the layer's products, forward and "
             "backward, FLOPs over their summed time; best: each product at its best rate over all settings):", "",
             "| products | dtype | TensorFlow oneDNN on | TensorFlow oneDNN off | PyTorch | best |", "|---|---|---|---|---|---|"]
    for dtype in sorted({r["dtype"] for r in roofline}):
        square = [max([r["gflops"] for r in roofline if r["m"] == SQUARE and r["dtype"] == dtype
                       and (r["framework"], r.get("onednn")) == setting], default=float("nan"))
                  for setting in ROOFLINE_SETTINGS]
        lines.append(f"| {SQUARE}^3 | {dtype} | " + " | ".join(f"{c:.0f}" for c in square) + f" | {max(square):.0f} |")
        per_setting = [_model_shape_rates([r for r in roofline if (r["framework"], r.get("onednn")) == setting])
                       for setting in ROOFLINE_SETTINGS]
        for (d, tokens), rate in sorted(rates.items()):
            if d == dtype:
                cells = " | ".join(f"{each.get((d, tokens), float('nan')):.0f}" for each in per_setting)
                lines.append(f"| model shapes, {tokens} tokens | {dtype} | {cells} | {rate:.0f} |")
    return lines + [""]


def render_roofline(profile: list[dict], roofline: list[dict]) -> str:
    """The measured matrix-product rate, and each profiled forward pass and training step against it: its
    matrix-product FLOPs (``bench.roofline.matmul_flops``), their time at the measured rate, measured/that."""
    from bench.common import TRAIN_BATCH
    from bench.roofline import bert_config, matmul_flops

    rates = _model_shape_rates(roofline)
    lines = [ROOFLINE_BEGIN, ""]
    if roofline and roofline[0].get("machine"):
        lines += [_machine_line(roofline[0]["machine"]), ""]
    lines += _rate_table(roofline, rates)
    lines += ["Each profiled piece against that rate (the model's sizes from the backbone's config.json; "
              "batch 32; backward counted as twice the forward):", "",
              "| length | precision | framework | oneDNN | piece | XLA | GFLOP | ms at the rate | ms measured | ratio |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    config = bert_config()
    for r in profile:
        measured_tokens = sorted({t for d, t in rates if d == _precision(r)})
        if r["step"] not in ("forward", "forward+backward") or not measured_tokens:
            continue
        tokens = min(measured_tokens, key=lambda t: abs(t - 32 * r["length"]))
        flops = matmul_flops(config, r["length"], TRAIN_BATCH, train=r["step"] != "forward")
        floor = 1000 * flops / (rates[(_precision(r), tokens)] * 1e9)
        onednn = {True: "on", False: "off"}.get(r.get("onednn"), "")
        lines.append(f"| {r['length']} | {_precision(r)} | {r['framework']} | {onednn} | {r['step']} | "
                     f"{'on' if r['xla'] else 'off'} | {flops / 1e9:.1f} | {floor:.0f} | {r['ms']:.0f} | "
                     f"{r['ms'] / floor:.2f}x |")
    return "\n".join(lines + ["", ROOFLINE_END])


def _end_to_end(report: dict) -> list[str]:
    from bench.results_doc import HUGGING_FACE

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


def _machine_line(m: dict) -> str:
    """The CPU model, its count, the ISA flags the figures depend on, versions and date."""
    versions = ", ".join(f"{k} {v}" for k, v in m.get("versions", {}).items() if v)
    isa = m.get("isa", [])
    bf16 = "bf16 units" if {"avx512_bf16", "amx_bf16"} & set(isa) else "no bf16 units"
    model = f"{m['cpu_model']}, " if m.get("cpu_model") else ""
    return (f"Machine: {model}{m.get('cpus')} CPUs, {m.get('machine')}, flags {'/'.join(isa) or '?'} ({bf16}); "
            f"{versions}; {m.get('date')}.")


def _predict_table(records: list[dict]) -> list[str]:
    runs = [r for r in records if r.get("kind") == "predict"]
    if not runs:
        return []
    rows = runs[0]["rows"]
    verdict = next((r for r in records if r.get("kind") == "predict-ratio"), None)
    title = f"### `glue-tf predict` over {rows:,} SST-2 training sentences, whole processes (`bench/predict_speed.py`)"
    if verdict and "median_wall_seconds" in verdict:
        lines = [title, "", *_rounds_header([]), *_rounds_rows(runs, verdict, []), "",
                 f"Median of {verdict['rounds']} alternating rounds."]
    else:
        lines = [title, "", *_single_run_predict_rows(runs)]
    if verdict and "glue-tf-auto" in verdict.get("vs_hf", {}):
        lines += ["", f"Target ≥ {verdict.get('target', TARGET)}x for `--precision auto`: "
                      f"{verdict['vs_hf']['glue-tf-auto']:.2f}x, {'met' if verdict['met'] else 'not met'}. Labels of "
                      f"`auto` and `serving_default` agree on "
                      f"{100 * (verdict.get('auto_vs_default_label_agreement') or 0):.2f}% of rows."]
    return lines + [""]


def _single_run_predict_rows(runs: list[dict]) -> list[str]:
    """The predict table of a run before ``--rounds``: one run per contender, ratios of those runs."""
    base = next((r for r in runs if r["contender"] == "hf" and "wall_seconds" in r), None)
    lines = ["| contender | runs | wall s (start-up included) | rows/s | Hugging Face wall / this wall |",
             "|---|---|---|---|---|"]
    for r in runs:
        if "error" in r:
            lines.append(f"| {r['contender']} | failed: {r['error'][:60]} | | | |")
            continue
        ratio = base["wall_seconds"] / r["wall_seconds"] if base else None
        lines.append(f"| {r['contender']} | {_runs_as(r)} | {r['wall_seconds']:.1f} | {r['rows_per_second']:.0f} | "
                     f"{f'**{ratio:.2f}x**' if ratio else '–'} |")
    return lines


def _runs_as(run: dict) -> str:
    """What a whole-process inference run ran: glue-tf's signature, or Hugging Face's setting."""
    return run.get("signature") or f"transformers, {run.get('precision')}, dynamic padding, batches of 64"


def _rounds_header(lead: list[str]) -> list[str]:
    """The header of a whole-process benchmark run in alternating rounds (:func:`_rounds_rows`); ``lead``:
    the verdict's fields shown before ``contender`` (``task``, ``rows``), none for a table of one task."""
    header = [*lead, "contender", "runs", "median wall s (start-up included)", "rounds' walls s",
              "rows/s at the median", "Hugging Face median / this median"]
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]


def _rounds_rows(runs: list[dict], verdict: dict, lead: list[str]) -> list[str]:
    """Per contender its median wall, each round's wall, rows/s at the median and the ratio of medians
    (Hugging Face's median over this one's), the medians and ratios from ``verdict``."""
    by_contender = {}
    for run in runs:
        by_contender.setdefault(run["contender"], []).append(run)
    lead_cells = [str(verdict.get(cell, "")) for cell in lead]
    lines = []
    for name, of in by_contender.items():
        median = verdict["median_wall_seconds"].get(name)
        walls = ", ".join(f"{r['wall_seconds']:.1f}" if "wall_seconds" in r else "failed" for r in of)
        if median is None:
            error = next((r["error"] for r in of if "error" in r), "no run")
            lines.append("| " + " | ".join([*lead_cells, name, f"failed: {str(error)[:60]}", "", walls, "", ""]) + " |")
            continue
        runs_as = next((_runs_as(r) for r in of if "wall_seconds" in r), "–")
        ratio = verdict.get("vs_hf", {}).get(name)
        lines.append("| " + " | ".join([*lead_cells, name, runs_as, f"{median:.1f}", walls,
                                        f"{verdict['rows'] / median:.0f}",
                                        f"**{ratio:.2f}x**" if ratio else "–"]) + " |")
    return lines


def _evaluate_process_table(records: list[dict]) -> list[str]:
    """``bench/evaluate_speed.py``: the newest alternating-rounds run of each task, and its target."""
    blocks = {}
    for runs, verdict in _blocks(records, "evaluate-ratio"):
        blocks[verdict["task"]] = (runs, verdict)
    if not blocks:
        return []
    lines = ["### `glue-tf evaluate` on the dev split against Hugging Face, whole processes "
             "(`bench/evaluate_speed.py`)", ""]
    table = _rounds_header(["task", "rows"])
    for runs, verdict in blocks.values():
        table += _rounds_rows([r for r in runs if r.get("kind") == "evaluate"], verdict, ["task", "rows"])
    verdicts = [verdict for _, verdict in blocks.values()]
    target = verdicts[0].get("target")
    met = ", ".join(f"{v['task']} {'met' if v['met'] else 'not met'}" for v in verdicts)
    rounds = verdicts[0].get("rounds")
    return lines + table + ["", f"Median of {rounds} alternating rounds per task. Target ≥ {target}x: {met}.", ""]


def _blocks(records: list[dict], verdict_kind: str) -> list[tuple[list[dict], dict]]:
    """``(runs, verdict)`` per verdict record of ``verdict_kind``, the runs the records since the one before."""
    blocks, runs = [], []
    for record in records:
        if record.get("kind") == verdict_kind:
            blocks.append((runs, record))
            runs = []
        else:
            runs.append(record)
    return blocks


def _evaluate_table(infer: list[dict]) -> list[str]:
    runs = [r for r in infer if r["contender"] in PATH_CONTENDERS]
    if not any(r["contender"] != BASELINE for r in runs):
        return []

    def cells(r):
        runs_as = r.get("signature") or f"transformers, {r.get('precision', 'float32')}"
        setup = f"{r['load_seconds'] + r['warmup_seconds']:.1f}" if "load_seconds" in r else "–"
        return [runs_as, f"{r['examples_per_second']:.1f}", f"{100 * r['padding_efficiency']:.1f}%", setup]

    header = ["runs", "examples/s", "padding efficiency", "load + warm-up s"]
    return (["### `glue-tf evaluate` in-process, after load and warm-up (`bench/speed.py infer`)", ""]
            + _per_task_rows(runs, header, cells)
            + ["", f"Target: `glue-tf-chosen` ≥ {TARGET}x hf-dynamic on every task.", ""])


def _serving_table(records: list[dict]) -> list[str]:
    from bench.serving_load import tables

    text = tables(records)
    return ["### Service: single-instance requests, one run (`bench/serving_load.py`)", "", text, ""] if text else []


def _agreement_table(records: list[dict]) -> list[str]:
    from bench.agreement import table

    if not any(r.get("kind") == "agreement" for r in records):
        return []
    verdict = next((r for r in records if r.get("kind") == "agreement-verdict"), {})
    return ["### `serving_compiled` and `serving_bfloat16` against `serving_default`, full dev splits "
            "(`bench/agreement.py`)", "",
            "Labels identical, probabilities within 1e-4 and STS-B scores within 1e-3; bf16's dev score at most "
            "0.3 points below float32's.", "", table(records), "",
            f"All passed: {'yes' if verdict.get('passed') else 'no'}.", ""]


def render_paths(infer: list[dict], predict: list[dict], serving: list[dict], agreement: list[dict],
                 evaluate: list[dict]) -> str:
    """The section of issue 12's targets: the chosen signature against serving_default and Hugging Face."""
    predict, serving, agreement = _latest_block(predict), _latest_block(serving), _latest_block(agreement)
    sample = next((r for r in (*predict, *evaluate, *infer, *serving, *agreement) if r.get("machine")), {})
    lines = [PATHS_BEGIN, "", _machine_line(sample.get("machine", {})), ""]
    lines += _predict_table(predict)
    lines += _evaluate_process_table(evaluate)
    lines += _evaluate_table(_latest_run(infer))
    lines += _serving_table(serving)
    lines += _agreement_table(agreement)
    return "\n".join(lines + [PATHS_END])


def _latest_block(records: list[dict]) -> list[dict]:
    """The records of the newest invocation of a script that appends one block per run, ended by a verdict."""
    ends = [i for i, r in enumerate(records) if r.get("kind", "").endswith(("-ratio", "-verdict"))]
    start = ends[-2] + 1 if len(ends) > 1 else 0
    return records[start:]


def render(train: list[dict], infer: list[dict], report: dict | None, profile: list[dict] | None = None) -> str:
    lines = [BEGIN, ""]
    sample = (train or infer or [{}])[0]
    lines += [
        f"{_machine_line(sample.get('machine', {}))} Batch 32 (inference 64), max length 128, float32 unless "
        "named, same checkpoint and data for all.",
        "",
    ]
    if train:
        steps = train[0].get("steps")
        warm = train[0].get("warmup")
        lines += _table(_latest_run(train), f"Fine-tuning: {steps} timed steps after {warm} warm-up steps")
    if infer:
        lines += _table([r for r in _latest_run(infer) if r["contender"] not in PATH_CONTENDERS[:-1]],
                        "Inference: the whole dev split, batches of 64, tokenization included")
    if profile:
        lines += _profile_table(profile)
    if report:
        lines += _end_to_end(report)
    lines.append(END)
    return "\n".join(lines)


def _replace(text: str, begin: str, end: str, section: str) -> str:
    """``text`` with the part between ``begin`` and ``end`` replaced by ``section`` (appended if absent)."""
    if begin in text and end in text:
        return text[: text.index(begin)] + section + text[text.index(end) + len(end):]
    return text.rstrip() + "\n\n" + section + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=Path)
    parser.add_argument("--infer", type=Path)
    parser.add_argument("--profile", type=Path, help="JSON lines of bench/step_profile.py")
    parser.add_argument("--report", type=Path, help="report.json of a full train-all run")
    parser.add_argument("--predict", type=Path, help="JSON lines of bench/predict_speed.py")
    parser.add_argument("--evaluate", type=Path, help="JSON lines of bench/evaluate_speed.py")
    parser.add_argument("--serving", type=Path, help="JSON lines of bench/serving_load.py")
    parser.add_argument("--agreement", type=Path, help="JSON lines of bench/agreement.py")
    parser.add_argument("--training-profile", type=Path,
                        help="JSON lines of bench/step_profile.py with oneDNN on and off, for the training-kernels section")
    parser.add_argument("--end-to-end", type=Path, help="JSON lines of bench/end_to_end.py")
    parser.add_argument("--roofline", type=Path, help="JSON lines of bench/roofline.py (with --training-profile)")
    parser.add_argument("--doc", type=Path, default=Path("docs/BENCHMARKS.md"))
    args = parser.parse_args(argv)
    report = json.loads(args.report.read_text()) if args.report and args.report.is_file() else None
    text = args.doc.read_text(encoding="utf-8") if args.doc.is_file() else "# Benchmarks\n"
    if args.train:  # the speed section is rendered whole, from a run that has its fine-tuning table
        text = _replace(text, BEGIN, END, render(_records(args.train), _records(args.infer), report,
                                                 _records(args.profile)))
    paths = [_records(args.infer), _records(args.predict), _records(args.serving), _records(args.agreement),
             _records(args.evaluate)]
    if any(paths[1:]) or any(r["contender"] in PATH_CONTENDERS[:-1] for r in paths[0]):
        text = _replace(text, PATHS_BEGIN, PATHS_END, render_paths(*paths))
    if args.training_profile or args.end_to_end:
        text = _replace(text, *render_training(_records(args.training_profile), _records(args.end_to_end)))
    if args.roofline:
        text = _replace(text, ROOFLINE_BEGIN, ROOFLINE_END,
                        render_roofline(_records(args.training_profile), _records(args.roofline)))
    args.doc.write_text(text, encoding="utf-8")
    print(f"wrote {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
