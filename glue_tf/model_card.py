"""``MODEL_CARD.md`` for an export version, from its ``metadata.json`` alone.

The headings follow Hugging Face's model-card template (``modelcard_template.md``
in ``huggingface_hub``) and the YAML front matter its hub reads (licence,
datasets, metrics, base model), so a version folder uploaded to a hub renders
as a card there. Everything in it comes from the metadata, so the card and the
figures a service reports cannot disagree.
"""

from __future__ import annotations

from glue_tf.tasks import Task

FILE = "MODEL_CARD.md"

_INTENDED_USE = (
    "Research and evaluation on the GLUE task it was trained for: scoring English {what}, "
    "comparing backbones and recipes, and serving predictions for that task."
)
_LIMITS = (
    "Trained on GLUE's {task} training split only; expect lower scores on text unlike it (other domains, "
    "informal or non-English text). Inputs longer than {length} tokens are truncated. The dev figures below "
    "are on GLUE's public dev split; they are not leaderboard test scores. The model inherits the biases of "
    "its pretrained checkpoint and of the GLUE data."
)


def _points(value) -> str:
    return "–" if value is None else f"{value:.1f}"


def _front_matter(task: Task, metadata: dict) -> list[str]:
    backbone = metadata.get("backbone", {})
    lines = ["---", "library_name: keras-hub", "pipeline_tag: text-classification", "tags:", "- glue",
             f"- {task.name}", "- tensorflow", "datasets:", "- nyu-mll/glue", "metrics:"]
    lines += [f"- {key}" for key, _, _ in task.score_components]
    if backbone.get("license"):
        lines.append(f"license: {backbone['license']}")
    if backbone.get("checkpoint"):
        lines.append(f"base_model: {backbone['checkpoint']}")
    return lines + ["---", ""]


def _results(task: Task, metadata: dict) -> list[str]:
    """One row per score component: the exported seed, the seeds' mean ± std, human."""
    dev = metadata.get("dev_metrics") or {}
    mean, std = metadata.get("dev_mean") or {}, metadata.get("dev_std") or {}
    seeds = len(metadata.get("seeds") or []) or 1
    rows = ["| metric | exported model | " + (f"mean ± std over {seeds} seeds | " if seeds > 1 else "")
            + "human |", "|---|---|" + ("---|" if seeds > 1 else "") + "---|"]
    for key, _, _ in task.score_components:
        spread = f"{_points(mean.get(key))} ± {_points(std.get(key))} | " if seeds > 1 else ""
        rows.append(f"| {key} | {_points(dev.get(key))} | {spread}{_points(task.human_baseline.get(key))} |")
    majority = metadata.get("majority_score")
    if majority is not None:
        rows += ["", f"Majority-class baseline (the training split's most frequent label on every dev example): "
                     f"{_points(majority)}."]
    interval = metadata.get("dev_score_ci95")
    if interval:
        method = metadata.get("dev_score_ci95_method")
        rows += ["", f"95% bootstrap interval of the task score over dev examples{f' ({method})' if method else ''}"
                     f"{' (of the mean over seeds)' if seeds > 1 else ''}: [{interval[0]:.1f}, {interval[1]:.1f}]."]
    return rows


def _signatures(metadata: dict) -> list[str]:
    rows = ["| signature | precision | compiled | examples/s where measured | dev score |", "|---|---|---|---|---|"]
    for name, entry in sorted((metadata.get("signatures") or {}).items()):
        rows.append(f"| `{name}` | {entry.get('precision')} | {entry.get('compiled')} | "
                    f"{entry.get('examples_per_second') or '–'} | {_points(entry.get('dev_score'))} |")
    return rows


def _how_to_use(task: Task, metadata: dict) -> list[str]:
    fields = ", ".join(f'"{field}": "..."' for field in task.text_features)
    minimum = (metadata.get("requires") or {}).get("tf_serving_min")
    return [
        "```python", "import tensorflow as tf", "import tensorflow_text  # registers the tokenizer's ops",
        "", 'model = tf.saved_model.load("path/to/this/version")',
        f'outputs = model.signatures["serving_default"]({", ".join(f"{f}=tf.constant([...])" for f in task.text_features)})',
        "```", "",
        f"Over REST: `glue-tf serve --model-dir <run folder>` then `POST /predict/{task.name}` with "
        f'`{{"instances": [{{{fields}}}]}}`.',
        f"Stock TF Serving needs release {minimum} or newer (the tokenizer's tensorflow-text ops: "
        f"{', '.join(metadata['requires']['custom_ops'])})." if minimum else "",
        "", "The fine-tuned Keras model is in `keras/`: "
        "`keras_hub.models.TextClassifier.from_preset(\"path/to/this/version/keras\")` reloads it with its preprocessor.",
    ]


def render(task: Task, metadata: dict) -> str:
    """The card as Markdown."""
    backbone, data = metadata.get("backbone", {}), metadata.get("data", {})
    config, versions = metadata.get("training_config", {}), metadata.get("versions", {})
    what = "sentence pairs" if len(task.text_features) > 1 else "sentences"
    lines = _front_matter(task, metadata) + [
        f"# Model Card for glue-tf {task.display_name}, version {metadata.get('version')}", "",
        "## Model Details", "", "### Model Description", "",
        f"A {backbone.get('class', 'KerasHub')} backbone ({backbone.get('parameters', '?')} parameters) fine-tuned "
        f"on GLUE {task.display_name} by glue-tf, exported as a TensorFlow SavedModel that takes raw text.", "",
        f"- **Finetuned from:** {backbone.get('checkpoint') or backbone.get('spec')} ({backbone.get('source', '?')})",
        f"- **License:** {backbone.get('license') or 'see the base checkpoint'}",
        f"- **Labels:** {', '.join(task.label_names) or f'a score in {task.score_range}'}", "",
        "## Uses", "", "### Direct Use", "", _INTENDED_USE.format(what=what), "",
        "### Out-of-Scope Use", "", "Decisions about people, and any task other than the one above.", "",
        "## Bias, Risks, and Limitations", "",
        _LIMITS.format(task=task.display_name, length=metadata.get("max_seq_length")), "",
        "## Training Details", "", "### Training Data", "",
        f"GLUE {task.display_name} from {data.get('source', '?')}: {data.get('train_examples', '?')} training "
        f"examples; dev: {data.get('dev_examples', '?')}.", "",
        "### Training Procedure", "", "#### Training Hyperparameters", "",
        *[f"- {key}: {config[key]}" for key in sorted(config) if config[key] is not None],
        f"- precision: {metadata.get('precision')}", "",
        "## Evaluation", "", "### Testing Data, Factors & Metrics", "",
        f"GLUE {task.display_name} dev split, official metrics in points (0-100).", "",
        "### Results", "", *_results(task, metadata), "",
        "## Technical Specifications", "", "### Signatures", "", *_signatures(metadata), "",
        "### Software", "", *[f"- {name}: {version}" for name, version in versions.items()], "",
        "## How to Get Started with the Model", "", *_how_to_use(task, metadata), "",
    ]
    return "\n".join(lines)
