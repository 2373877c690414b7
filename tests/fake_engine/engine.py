#!/usr/bin/env python3
"""A fake `docker`/`podman` for the host shim's unit tests.

Run with FAKE_ENGINE_KIND=docker or podman (what `--version` claims to be), it appends one
JSON line per call to $FAKE_ENGINE_DIR/calls.jsonl: the argv, whether stdin was a terminal, and the
values of the variables named by `-e NAME` flags as the engine would read them. Local images are
the lines of $FAKE_ENGINE_DIR/images.

Behaviour knobs (environment): FAKE_ENGINE_INFO_RC (`info`, default 0), FAKE_ENGINE_PULL_RC,
FAKE_ENGINE_RUN_RC (`run`'s exit code, default 0), FAKE_ENGINE_RUN_WAIT=1 (`run` waits for a signal,
records it and exits 128+signal; it writes $FAKE_ENGINE_DIR/running first).
"""

import json
import os
import signal
import sys
import time


def state_path(name):
    return os.path.join(os.environ["FAKE_ENGINE_DIR"], name)


def images():
    try:
        with open(state_path("images")) as f:
            return [line.strip() for line in f if line.strip()]
    except FileNotFoundError:
        return []


def set_images(refs):
    with open(state_path("images"), "w") as f:
        f.write("".join(ref + "\n" for ref in refs))


def record(entry):
    with open(state_path("calls.jsonl"), "a") as f:
        f.write(json.dumps(entry) + "\n")


def main(argv):
    kind = os.environ.get("FAKE_ENGINE_KIND", "docker")
    passed = {}
    for i, arg in enumerate(argv[:-1]):
        if arg == "-e" and "=" not in argv[i + 1]:
            passed[argv[i + 1]] = os.environ.get(argv[i + 1])
    record({"argv": argv, "kind": kind, "stdin_tty": os.isatty(0), "env": passed})
    command = argv[0] if argv else ""
    if command == "--version":
        print("podman version 4.3.1" if kind == "podman" else "Docker version 27.3.1, build ce12230")
        return 0
    if command == "info":
        return int(os.environ.get("FAKE_ENGINE_INFO_RC", "0"))
    if command == "image" and argv[1:2] == ["inspect"]:
        return 0 if argv[2] in images() else 1
    if command == "pull":
        code = int(os.environ.get("FAKE_ENGINE_PULL_RC", "0"))
        if code == 0:
            set_images(images() + [argv[-1]])
        return code
    if command == "rmi":
        set_images([ref for ref in images() if ref != argv[-1]])
        return 0
    if command == "build":
        set_images(images() + [argv[argv.index("-t") + 1]])
        return 0
    if command == "run":
        if os.environ.get("FAKE_ENGINE_RUN_WAIT") == "1":
            received = []

            def on_signal(signum, _frame):
                received.append(signum)

            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(signum, on_signal)
            with open(state_path("running"), "w") as f:
                f.write(str(os.getpid()))
            deadline = time.monotonic() + 60
            while not received and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.2)  # a duplicate delivery would arrive in this window
            record({"signals": received})
            return 128 + received[0] if received else 124
        return int(os.environ.get("FAKE_ENGINE_RUN_RC", "0"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
