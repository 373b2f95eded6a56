"""`make quickstart`: the whole loop in a few minutes -- train, export, serve, ask, stop.

Fine-tunes one small task (SST-2 by default) on a capped random sample for one
epoch with the default MiniLM backbone, exports it, starts the REST service on
a free loopback port with ``glue-tf serve``, waits for ``/readyz``, sends one
``POST /predict/<task>`` and one TF Serving ``POST /v1/models/<task>:predict``
request and prints their real responses, then stops the service it started
(also when a step fails or on Ctrl-C). Data comes from the same flags as
``train-all``: ``--glue-dir``, ``--tfds-manual-dir``, else tfds.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from glue_tf.config import DEFAULT_BACKBONE  # noqa: E402

# Texts for the two requests, by task (each task's own fields).
EXAMPLES = {
    "sst2": [{"sentence": "a gripping, funny and moving film"}, {"sentence": "dull, predictable and far too long"}],
    "rte": [{"sentence1": "A man is eating a sandwich in the park.", "sentence2": "Someone is eating."},
            {"sentence1": "A man is eating a sandwich in the park.", "sentence2": "Nobody is eating."}],
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", choices=sorted(EXAMPLES), default="sst2")
    parser.add_argument("--glue-dir", help="GLUE TSV folder (else tfds)")
    parser.add_argument("--tfds-manual-dir", help="folder with the official GLUE archives for tfds")
    parser.add_argument("--tfds-data-dir", help="tfds data_dir (default $TFDS_DATA_DIR or ~/tensorflow_datasets)")
    parser.add_argument("--backbone", default=DEFAULT_BACKBONE)
    parser.add_argument("--max-train-examples", type=int, default=2000)
    parser.add_argument("--max-eval-examples", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--out", default="runs/quickstart")
    parser.add_argument("--ready-timeout", type=float, default=300, help="seconds to wait for /readyz")
    return parser.parse_args(argv)


def glue_tf(*args: str) -> list[str]:
    return [sys.executable, "-m", "glue_tf.cli", *args]


def train_command(args) -> list[str]:
    command = glue_tf("train", "--task", args.task, "--backbone", args.backbone, "--epochs", str(args.epochs),
                      "--max-train-examples", str(args.max_train_examples),
                      "--max-eval-examples", str(args.max_eval_examples), "--out", args.out)
    for flag in ("glue_dir", "tfds_manual_dir", "tfds_data_dir"):
        if getattr(args, flag):
            command += [f"--{flag.replace('_', '-')}", getattr(args, flag)]
    return command


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def post(base: str, path: str, body: dict, timeout: float = 60) -> tuple[int, str]:
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


class Service:
    """``glue-tf serve`` on a free loopback port, in its own process group, stopped by ``stop``."""

    def __init__(self, model_dir: str, log_path: Path):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = open(log_path, "w")
        self.process = subprocess.Popen(
            glue_tf("serve", "--model-dir", model_dir, "--bind", f"127.0.0.1:{self.port}", "--workers", "1"),
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the service exited ({self.process.returncode}); see {self.log_path}")
            try:
                with urllib.request.urlopen(self.base + "/readyz", timeout=5) as response:
                    if response.status == 200:
                        return
            except (OSError, urllib.error.HTTPError):
                pass
            time.sleep(0.5)
        raise TimeoutError(f"the service was not ready after {timeout:.0f}s; see {self.log_path}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # gunicorn's master and its workers
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()


def show(base: str, path: str, body: dict) -> None:
    """Prints the request as a curl command, then the service's real answer."""
    status, text = post(base, path, body)
    print(f"\n$ curl -s {base}{path} -H 'Content-Type: application/json' -d '{json.dumps(body)}'")
    print(f"HTTP {status}\n{text.strip()}")
    if status != 200:
        raise RuntimeError(f"{path} answered {status}")


def main(argv=None) -> int:
    args = parse_args(argv)
    # SIGTERM (a supervisor, `timeout`) unwinds like Ctrl-C, so the service is always stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    print(f"quickstart: training {args.task} on {args.max_train_examples} examples, {args.epochs} epoch(s), "
          f"into {args.out}", flush=True)
    trained = subprocess.run(train_command(args))
    if trained.returncode != 0:
        return trained.returncode
    print(f"quickstart: trained and exported in {time.monotonic() - started:.0f}s; starting the service", flush=True)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    service = Service(args.out, Path(args.out) / "quickstart-serve.log")
    try:
        service.wait_ready(args.ready_timeout)
        print(f"quickstart: service ready at {service.base} (log: {service.log_path})")
        examples = EXAMPLES[args.task]
        show(service.base, f"/predict/{args.task}", {"instances": examples})
        show(service.base, f"/v1/models/{args.task}:predict", {"instances": examples})
    finally:
        service.stop()
    print(f"\nquickstart: service stopped; {time.monotonic() - started:.0f}s in all. "
          f"Serve it again with: glue-tf serve --model-dir {args.out}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
    except (RuntimeError, TimeoutError) as error:
        sys.exit(f"quickstart: {error}")
