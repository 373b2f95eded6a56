"""The deployed serving stack in the foreground: nginx (deploy/nginx/glue-tf.conf) in front of gunicorn.

gunicorn's gthread workers give a connection a thread as soon as it is readable and have no
read timeout, so clients that send half a request hold threads for as long as they like;
gunicorn's deployment docs prescribe a buffering proxy in front for exactly this. This script
runs that stack anywhere, the same way: `make serve-deployed` on a machine, the serving image's
entrypoint, and (``--proxy-only``) the proxy sidecar of deploy/kubernetes.

    python scripts/serve_deployed.py --model-dir runs/latest --port 8080

The proxy listens on every interface at ``--port`` (else ``PORT``); gunicorn listens at
``--gunicorn-bind`` (default: a free loopback port) and trusts ``X-Forwarded-For`` only from the
proxy. Settings are the service's own ``GLUE_TF_*`` variables: the proxy's body limit is
``GLUE_TF_MAX_BODY_BYTES``, and since the port is open to other hosts the job endpoints need
``GLUE_TF_API_TOKEN`` unless ``GLUE_TF_ALLOW_ANONYMOUS_JOBS=1``. The generated nginx config,
its pid file and buffered bodies go to ``$GLUE_TF_STATE_DIR/proxy``. Both logs go to stdout;
SIGTERM or SIGINT stops both (gunicorn drains for ``GLUE_TF_GRACEFUL_TIMEOUT``), and if either
exits the other is stopped and its exit status is this script's.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the checkout's serving package when run from a clone

from serving.settings import ServerSettings, Settings, SettingsError, check_exposure  # noqa: E402

TEMPLATE = REPO / "deploy" / "nginx" / "glue-tf.conf"
GUNICORN_CONF = REPO / "serving" / "gunicorn.conf.py"
PROXY_ADDRESS = "127.0.0.1"  # where the proxy reaches gunicorn from: the one address gunicorn trusts
PLACEHOLDER = re.compile(r"@[A-Z_]+@")


def render(template: str, fields: dict[str, object]) -> str:
    """The template with each ``@NAME@`` replaced; a field the template lacks, or one left unfilled, is an error."""
    for name, value in fields.items():
        marker = f"@{name}@"
        if marker not in template:
            raise ValueError(f"{TEMPLATE.name}: no {marker} to fill")
        template = template.replace(marker, str(value))
    left = sorted(set(PLACEHOLDER.findall(template)))
    if left:
        raise ValueError(f"{TEMPLATE.name}: placeholders nothing fills: {', '.join(left)}")
    return template


def free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind((PROXY_ADDRESS, 0))
        return sock.getsockname()[1]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", help="a training run's --out folder (else GLUE_TF_MODEL_DIR)")
    parser.add_argument("--port", type=int, help="the proxy's port on every interface (else PORT, else 8080)")
    parser.add_argument("--gunicorn-bind", help="gunicorn's host:port behind the proxy (default: a free "
                        "loopback port)")
    parser.add_argument("--proxy-only", metavar="UPSTREAM", help="run only nginx, in front of the gunicorn at "
                        "this host:port (the Kubernetes sidecar)")
    parser.add_argument("--template", default=str(TEMPLATE), help="the nginx config template")
    parser.add_argument("--gunicorn-conf", default=str(GUNICORN_CONF), help="gunicorn's config file")
    return parser.parse_args(argv)


def proxy_config(args, settings: Settings, server: ServerSettings, upstream: str) -> Path:
    """Writes the filled-in nginx config into ``<state dir>/proxy`` and returns its path."""
    state = Path(settings.state_dir, "proxy").resolve()
    state.mkdir(parents=True, exist_ok=True)
    text = render(Path(args.template).read_text(encoding="utf-8"), {
        "LISTEN": server.port, "UPSTREAM": upstream, "MAX_BODY_BYTES": settings.max_body_bytes,
        "STATE": state, "TIMEOUT": server.timeout + 10})
    path = state / "nginx.conf"
    path.write_text(text, encoding="utf-8")
    return path


def start(args, environ: dict) -> list[subprocess.Popen]:
    """Checks the settings the way the service will, then starts gunicorn (unless proxy-only) and nginx."""
    settings = Settings.from_env()
    server = ServerSettings.from_env(bind=f"0.0.0.0:{environ['PORT']}")  # what clients reach: the proxy
    check_exposure(settings, server)
    upstream = args.proxy_only or args.gunicorn_bind or f"{PROXY_ADDRESS}:{free_loopback_port()}"
    config = proxy_config(args, settings, server, upstream)
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    # Both logs on this process's stdout.
    processes = []
    if not args.proxy_only:
        gunicorn_env = {**environ, "GLUE_TF_BIND": upstream, "FORWARDED_ALLOW_IPS": PROXY_ADDRESS}
        processes.append(subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", args.gunicorn_conf],
                                          env=gunicorn_env, stderr=subprocess.STDOUT))
    processes.append(subprocess.Popen([nginx, "-e", "stderr", "-p", str(config.parent), "-c", str(config)],
                                      env=environ, stderr=subprocess.STDOUT))
    print(f"serve_deployed: nginx on :{server.port} (config {config}) -> gunicorn at {upstream}", flush=True)
    return processes


def stop(processes: list[subprocess.Popen], grace: float) -> None:
    """gunicorn drains (SIGTERM) and nginx finishes what it holds (SIGQUIT); whatever outlasts ``grace`` is killed."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGQUIT if Path(process.args[0]).name == "nginx" else signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    environ = dict(os.environ)
    if args.model_dir:
        environ["GLUE_TF_MODEL_DIR"] = args.model_dir
    environ["PORT"] = str(args.port or environ.get("PORT") or 8080)
    os.environ.update(environ)  # the settings below read what the children will
    try:
        processes = start(args, environ)
    except (SettingsError, ValueError, OSError) as error:
        print(f"serve_deployed: {error}", file=sys.stderr)
        return 2
    stopping = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda number, frame: stopping.append(number))
    while not stopping and all(process.poll() is None for process in processes):
        time.sleep(0.2)
    exited = next((process for process in processes if process.poll() is not None), None)
    stop(processes, ServerSettings.from_env().graceful_timeout + 5)
    if exited is not None and not stopping:
        print(f"serve_deployed: {Path(exited.args[0]).name} exited with {exited.returncode}; stopped the rest",
              file=sys.stderr, flush=True)
        return exited.returncode or 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
