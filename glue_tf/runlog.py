"""The run log: every line printed and appended to ``<out>/run.log``."""

from __future__ import annotations

import sys
import time
from pathlib import Path


class RunLog:
    def __init__(self, path: Path | None = None, stream=None, enabled: bool = True):
        self.path = Path(path) if path else None
        self.stream = stream or sys.stdout
        self.enabled = enabled
        if self.path and enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, message: str) -> None:
        if not self.enabled:
            return
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}"
        print(line, file=self.stream, flush=True)
        if self.path:
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")
