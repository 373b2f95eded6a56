"""Renders a training run's report.json as the docs/RESULTS.md section, beside Hugging Face's figures.

The Hugging Face rows are the measurements of docs/REFERENCE.md (transformers'
trainer, same MiniLM checkpoint and data, on this machine); every number of ours
comes from the run's report.json and run.log.

    python -m bench.results_doc --run runs/minilm-full --command "make train-all ..." > docs/RESULTS.md
    python -m bench.results_doc --seeds-run runs/seeds42 [runs/more ...]   # the fresh-seed table (mean ± std, intervals)
    python -m bench.results_doc --sweep recipes/all-minilm-l6-v2.json   # glue-tf tune's table, per task
    python -m bench.results_doc --sweep sweeps/all-minilm-l6-v2   # a sweep's points finished so far
    python -m bench.results_doc --reproduces runs/recipe42 runs/rerun   # does a rerun of the recipe reproduce?
"""

from __future__ import annotations

import argparse
import collections
import json
import platform
import re
import sys
from pathlib import Path

from glue_tf.metrics import METRIC_LABELS, round_score
from glue_tf.recipes import RECIPE_FIELDS
from glue_tf.tasks import TASKS

# docs/REFERENCE.md: Hugging Face trainer, best of its two learning rates, and wall time of that run.
HUGGING_FACE = {
    "cola": ({"matthews_corrcoef": 20.8}, 397, "lr 1e-4"),
    "sst2": ({"accuracy": 89.0}, 4250, "lr 2e-5"),
    "mrpc": ({"f1": 86.1, "accuracy": 79.9}, 462, "lr 1e-4"),
    "stsb": ({"pearson": 80.8, "spearman": 81.2}, 615, "lr 2e-5"),
    "rte": ({"accuracy": 56.3}, 555, "lr 1e-4"),
    "wnli": ({"accuracy": 49.3}, 88, "lr 2e-5"),
}


def _fmt(task, values):
    return " / ".join(f"{METRIC_LABELS[m]} {round_score(values[k]):.1f}" for k, _, m in task.score_components if k in values)


def render(run: Path, command: str) -> str:
    report = json.loads((run / "report.json").read_text())
    log = (run / "run.log").read_text()
    precision = re.search(r"precision (\S+) \((.*?)\); ", log)
    lines = [
        "# Results: `make train-all` with the default MiniLM backbone",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {platform.machine()}, 2 cores, CPU only; precision "
        f"{precision.group(1) if precision else '?'} ({precision.group(2) if precision else '?'}). "
        f"Backbone: all-MiniLM-L6-v2 (6 layers, hidden 384) from `models/pretrained/`. "
        f"Total wall time {report['wall_seconds']:.0f} s.",
        "",
        f"**{report['summary_line']}**",
        "",
        "| task | glue-tf dev (best epoch) | HF trainer dev | glue-tf wall s | HF wall s | train ex/s | padding eff. | per-epoch dev score |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, row in report["tasks"].items():
        task = TASKS[name]
        hf = HUGGING_FACE.get(name)
        epochs = ", ".join(f"{round_score(e['dev_score']):.1f}" for e in row.get("epochs") or [])
        ours = _fmt(task, row["dev"]) if row["dev"] else "–"
        lines.append(
            f"| {task.display_name} | {ours} ({row.get('best_epoch') or '–'}) | "
            f"{_fmt(task, hf[0]) + ' (' + hf[2] + ')' if hf else '–'} | "
            f"{row['wall_seconds']:.0f} | {hf[1] if hf else '–'} | "
            f"{row['train_examples_per_second']:.1f} | {100 * row['padding_efficiency']:.1f}% | {epochs} |"
            if row.get("wall_seconds") else
            f"| {task.display_name} | {ours} | – | – | – | – | – | scored with {row.get('export')} |"
        )
    if report["skipped"]:
        lines += ["", "Not trained here:", ""]
        lines += [f"- {TASKS[n].display_name}: {reason}" for n, reason in report["skipped"].items()]
    lines += [
        "",
        "Reading the table: dev metrics are the best epoch's (the export); Hugging Face's are after its",
        "last epoch at its better learning rate. Wall time is the whole task (tokenization, training,",
        "per-epoch dev evaluation, export, test predictions); train ex/s excludes evaluation. CoLA's,",
        "MRPC's and STS-B's figures were taken while the test suite shared the two cores, so their",
        "wall times and ex/s are pessimistic. The small dev sets (RTE, MRPC, WNLI) move by several",
        "points between seeds.",
    ]
    lines += ["", "Task scores: " + ", ".join(
        f"{TASKS[n].display_name} {round_score(r['score']):.1f}" for n, r in report["tasks"].items() if r["score"] is not None)]
    return "\n".join(lines) + "\n"


def hugging_face_score(name: str) -> float | None:
    """Hugging Face's best-recipe dev figure (docs/REFERENCE.md) as a task score (mean of its components)."""
    from glue_tf.metrics import task_score

    return task_score(TASKS[name], HUGGING_FACE[name][0]) if name in HUGGING_FACE else None


def render_seeds(runs: list[Path]) -> str:
    """The runs' per-task mean ± std over their seeds, the bootstrap interval, each seed's score and Hugging Face's
    best recipe, then the mean over tasks under both ``--below-majority`` policies (``glue_tf.report.build``
    on the runs' own ``result.json`` files: nothing is retrained). Several runs of the same seeds, each over
    some of the tasks, make one table (tasks trained in different sessions); a task in two of them is refused."""
    from glue_tf import report
    from glue_tf.run_dir import RunDir

    results, found_in = {}, {}
    for run in runs:
        for name in [n for n in TASKS if RunDir(run).result(n).is_file()]:
            if name in found_in:
                raise SystemExit(f"--seeds-run: {TASKS[name].display_name} is in both {found_in[name]} and {run}")
            results[name], found_in[name] = json.loads(RunDir(run).result(name).read_text()), run
    seed_lists = {name: [s["seed"] for s in result.get("seeds") or []] for name, result in results.items()}
    if len({tuple(seeds) for seeds in seed_lists.values()}) > 1:  # the per-seed GLUE score pairs seed k of every task
        raise SystemExit(f"--seeds-run: the tasks trained different seeds ({seed_lists}); one table needs the same ones")
    built = {policy: report.build(results, {}, below_majority=policy) for policy in ("model", "majority")}
    lines = ["| task | mean ± std over seeds | 95% CI over dev examples | each seed | majority class | "
             "Hugging Face, best recipe | mean − HF |", "|---|---|---|---|---|---|---|"]
    for name, row in built["model"]["tasks"].items():
        seeds = results[name].get("seeds") or []
        each = ", ".join(f"{s['seed']}: {s['best_score']:.1f}" for s in seeds)
        ci = row.get("dev_score_ci95")
        hf = hugging_face_score(name)
        mean, std = row["dev_score_mean"], row.get("dev_score_std") or 0.0
        gap = f"{mean - hf:+.1f}" + (" (beyond max(1, std))" if mean - hf < -max(1.0, std) else "") if hf else "–"
        lines.append(f"| {TASKS[name].display_name} | {mean:.1f} ± {std:.1f} | "
                     f"{f'[{ci[0]:.1f}, {ci[1]:.1f}]' if ci else '–'} | {each} | {row['majority_score']:.1f} | "
                     f"{f'{hf:.1f}' if hf else '–'} | {gap} |")
    lines.append("")
    for policy, label in (("model", "the model's own answers"), ("majority", "`--below-majority majority`")):
        summary, spread = built[policy], built[policy]["glue_score_std"]
        majority = [TASKS[n].display_name for n, r in summary["tasks"].items() if r["counted"] == "majority"]
        lines.append(f"- Mean over the {len(summary['present'])} tasks, {label}: "
                     f"**{summary['mean_over_present']:.1f}**" + (f" ± {spread:.1f} (std of the per-seed means)"
                                                                   if spread is not None else "")
                     + (f"; the majority class stands in for {', '.join(majority)}" if majority else ""))
    return "\n".join(lines) + "\n"


def render_sweep(path: Path) -> str:
    """``glue-tf tune``'s table: per task, every grid point's held-out mean ± std and each seed's score, and the
    CPUs they ran on. From the recipe the sweep wrote, the chosen point in bold and how it was chosen; from a
    sweep folder (``sweeps/<backbone-name>``) while it runs, the points finished so far, nothing chosen yet."""
    if path.is_dir():
        tasks = _finished_points(path)
        selection = f"not yet made: the points finished so far in {path}"
    else:
        recipe = json.loads(path.read_text())
        tasks = {name: {**entry, "seeds": entry["sweep"]["seeds"]} for name, entry in recipe["tasks"].items()}
        selection = recipe.get("selection", "?")
    lines = []
    for name, entry in sorted(tasks.items(), key=lambda item: list(TASKS).index(item[0])):
        count = len(entry["points"])
        lines += [f"**{TASKS[name].display_name}**: {count} point{'s' * (count != 1)} x {len(entry['seeds'])} seeds "
                  f"({', '.join(map(str, entry['seeds']))}), {entry['precision']}; held-out score in points", "",
                  "| learning rate | epochs | batch | warm-up | dropout | held-out mean ± std | each seed |",
                  "|---|---|---|---|---|---|---|"]
        for point in entry["points"]:
            chosen = all(point[f] == entry.get(f) for f in RECIPE_FIELDS)
            cells = [f"{point['learning_rate']:.0e}".replace("e-0", "e-"), str(point["epochs"]),
                     str(point["batch_size"]), f"{point['warmup_fraction']:g}", f"{point['dropout']:g}",
                     f"{point['mean']:.1f} ± {point['std']:.1f}",
                     ", ".join(f"{score:.1f}" for score in point["scores"])]
            lines.append("| " + " | ".join(f"**{c}**" if chosen else c for c in cells) + " |")
        ran_on = collections.Counter(_machine_words(point.get("machine")) for point in entry["points"])
        lines += ["", "Ran on " + "; ".join(f"{words}: {n} of the points" for words, n in ran_on.items()) + ".", ""]
    lines.append(f"Selection: {selection}.")
    return "\n".join(lines) + "\n"


def _finished_points(sweep: Path) -> dict:
    """Per task, the ``point.json`` records under a sweep folder, in the grid's order, shaped like a recipe's
    entries (tune reuses a record only under its own settings, so a task's points share seeds and precision;
    a folder that mixes them shows every precision it holds)."""
    tasks = {}
    for record_path in sorted(sweep.glob("*/*/point.json")):
        tasks.setdefault(record_path.parent.parent.name, []).append(json.loads(record_path.read_text()))
    return {name: {"points": sorted(points, key=lambda point: tuple(point[f] for f in RECIPE_FIELDS)),
                   "seeds": points[0]["seeds"],
                   "precision": "/".join(sorted({point["precision"] for point in points}))}
            for name, points in tasks.items()}


def _machine_words(machine: dict | None) -> str:
    """A point's CPU as glue_tf.cpu.describe recorded it, in words."""
    if not machine:
        return "a machine its record does not name"
    return (f"{machine['cpu']} (family {machine['family']}, model {machine['model']}; "
            f"{', '.join(machine['vector_flags'])}; {machine['cores']} cores)")


def render_reproduction(reported: Path, rerun: Path) -> str:
    """Whether ``rerun`` (a ``train-all`` of the same recipe, data and precision) reproduces the figures of
    ``reported``: per task both hold, the rerun's mean within two of the reported standard deviations of
    the reported mean (issue 28's rule; a reported std of 0 or none leaves no margin, and says so)."""
    reported_tasks, rerun_tasks = (json.loads((run / "report.json").read_text())["tasks"] for run in (reported, rerun))
    lines = ["| task | reported mean ± std (seeds) | rerun mean (seeds) | rerun − reported | reproduces |",
             "|---|---|---|---|---|"]
    verdicts = []
    for name in [n for n in TASKS if n in reported_tasks and n in rerun_tasks]:
        was, now = reported_tasks[name], rerun_tasks[name]
        std = was.get("dev_score_std") or 0.0
        gap = now["dev_score_mean"] - was["dev_score_mean"]
        verdicts.append(abs(gap) <= 2 * std)
        verdict = f"yes: {abs(gap):.1f} ≤" if verdicts[-1] else f"no: {abs(gap):.1f} >"
        lines.append(f"| {TASKS[name].display_name} | {was['dev_score_mean']:.1f} ± {std:.1f} ({was.get('seeds', 1)}) "
                     f"| {now['dev_score_mean']:.1f} ({now.get('seeds', 1)}) | {gap:+.1f} | {verdict} 2 × {std:.1f} |")
    lines += ["", f"{sum(verdicts)} of {len(verdicts)} tasks reproduce (rerun mean within 2 reported stds)."]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path)
    parser.add_argument("--command")
    parser.add_argument("--seeds-run", type=Path, nargs="+", metavar="RUN",
                        help="print the fresh-seed table of these run folders (the same seeds, each over its tasks) instead")
    parser.add_argument("--sweep", type=Path, metavar="RECIPE_OR_SWEEP",
                        help="print the sweep table of this recipe file, or of a sweep folder's finished points, instead")
    parser.add_argument("--reproduces", type=Path, nargs=2, metavar=("REPORTED_RUN", "RERUN"),
                        help="print whether RERUN reproduces REPORTED_RUN's per-task means instead")
    args = parser.parse_args()
    if args.reproduces:
        sys.stdout.write(render_reproduction(*args.reproduces))
    elif args.sweep:
        sys.stdout.write(render_sweep(args.sweep))
    elif args.seeds_run:
        sys.stdout.write(render_seeds(args.seeds_run))
    elif args.run and args.command:
        sys.stdout.write(render(args.run, args.command))
    else:
        parser.error("give --run and --command, --seeds-run, --sweep or --reproduces")
    return 0


if __name__ == "__main__":
    sys.exit(main())
