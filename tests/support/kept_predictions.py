"""What a seed's kept dev predictions (:mod:`glue_tf.dev_predictions`) score, to hold them against its record."""

from glue_tf import dev_predictions, evaluation


def components(task, seed_folder) -> dict[str, float]:
    """The task's score components (points) of the predictions kept in ``seed_folder``."""
    kept = dev_predictions.load(seed_folder / dev_predictions.FILE_NAME)
    return evaluation.score(task, {split: rows["labels"] for split, rows in kept.items()},
                            {split: rows["predictions"] for split, rows in kept.items()})
