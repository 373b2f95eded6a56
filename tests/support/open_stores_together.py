"""Opens new SQLite job stores from several processes at once, as gunicorn's workers do at boot.

Usage: open_stores_together.py FOLDER [PROCESSES] [TRIALS]. Forks from this small interpreter (forking
pytest's, with TensorFlow's threads in it, can deadlock); prints one JSON line: the errors, if any.
"""

import json
import multiprocessing
import sys
from pathlib import Path

from serving.jobs import StoreUnavailable
from serving.jobs.sqlite import SqliteJobStore


def _open(path, barrier, answers):
    barrier.wait()
    try:
        SqliteJobStore(path)
        answers.put("opened")
    except StoreUnavailable as error:
        answers.put(str(error))


def main(folder: Path, processes: int, trials: int) -> list[str]:
    context = multiprocessing.get_context("fork")
    errors = []
    for trial in range(trials):
        barrier, answers = context.Barrier(processes), context.Queue()
        workers = [context.Process(target=_open, args=(folder / f"{trial}.sqlite3", barrier, answers))
                   for _ in range(processes)]
        for worker in workers:
            worker.start()
        errors += [answer for answer in (answers.get(timeout=60) for _ in workers) if answer != "opened"]
        for worker in workers:
            worker.join(timeout=60)
    return errors


if __name__ == "__main__":
    folder, *counts = sys.argv[1:]
    print(json.dumps(main(Path(folder), *(map(int, counts) if counts else (8, 20)))))
