#!/usr/bin/env python3
"""`cluster-code-rl`: runs cluster-rl's container image from the host.

Its commands and flags are those of `cluster-code rl`, so a cluster-code that knows the image hands
`rl ...` over as it is (integrations/cluster-code/):

    setup [--cuda] [--force] [--image REF] [--build [DIR]]   pick, pull (or build) the image, write config
    status                                                   engine, image, GPU, models, container status
    remove [--purge] [--yes]                                 remove the image, disable the config section
    train [-e N] [-s N] [--no-simulation] [-v] [...]         run `cluster-rl train` in the container
    diagnose [-m PATH] [-s N] [--no-simulation] [...]        run `cluster-rl diagnose` in the container
    evaluate [-m PATH] [...]                                 run `cluster-rl evaluate` in the container
    python [ARGS]                                            the image's Python (cluster-code's pythonPath)

cluster-code as released runs `pythonPath` instead: setup points it at a small executable under the
home that runs `python` here, so cluster-code's probes and the scripts it writes run in the image.

The container sees the host's paths: the home, a script's directory, a model or kubeconfig outside
the home are mounted at their own paths (unless the image itself uses that place: then /data,
/models, /kube), so every path the container prints is one the user can open.

A single file, standard library only, for Python 3.8 and later: installed as a console script and
runnable as `python3 entrypoint/shim.py`. The exit codes are in docs/images.md ("The host shim").
"""

import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile

VERSION = "0.1.0"  # keep in step with pyproject.toml (a test checks)
PROG = "cluster-code-rl"
PUBLISHED_IMAGE = "ghcr.io/cluster-code/cluster-code-rl"
LOCAL_IMAGE = "localhost/cluster-code-rl"
MODEL_FILE_NAME = "cluster_agent.pt"
CONTAINER_HOME = "/data"
CONTAINER_KUBECONFIG_DIR = "/kube"
CONTAINER_MODEL_DIR = "/models"
VENV_KEYS = ("pythonPath", "envPath")
# cluster-code's default envPath (its getDefaultEnvPath): `rl train` checks `<it>/bin/python` whatever
# config.json says, so the executable that runs the image's Python lives there.
PYTHON_ENV_DIR = "pufferlib-env"
WRAPPER_MARK = "# cluster-code-rl python wrapper"
# Places the image itself uses: a host path under one of them is mounted at /data, /models or /kube.
IMAGE_DIRS = (
    "/bin",
    "/boot",
    "/data",
    "/dev",
    "/etc",
    "/kube",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/models",
    "/opt",
    "/proc",
    "/run",
    "/sbin",
    "/script",
    "/sys",
    "/usr",
    "/var",
)
CONTAINER_SCRIPT_DIR = "/script"
# Tells the image's cluster-rl which command the user types, for the hints it prints.
PROG_ENV = "CLUSTER_RL_PROG"
# Host variables that must not reach the container as they are: the home is set explicitly, the engine
# is ours.
ENV_NOT_PASSED = ("CLUSTER_CODE_HOME", "CLUSTER_CODE_RL_ENGINE")
CONTAINER_COMMANDS = ("train", "diagnose", "evaluate")
# cluster-code's own keys in trainingConfig (the trainer's settings are added by the image's setup).
CLUSTER_CODE_TRAINING_DEFAULTS = {"episodes": 100, "simulation": True}

EXIT_OK = 0
EXIT_FAILURE = 1  # no engine, or the engine failed (pull, build, remove), or not set up
EXIT_USAGE = 2  # bad flags, unreadable config.json, refusing to prompt without a terminal
EXIT_MODEL = 3  # -m names no file
EXIT_CLUSTER = 5  # --no-simulation and no kubeconfig
EXIT_DEVICE = 6  # setup --cuda on a host with no NVIDIA GPU (without --force)
EXIT_INTERRUPTED = 130


class ShimError(Exception):
    def __init__(self, message, code=EXIT_FAILURE):
        Exception.__init__(self, message)
        self.message = message
        self.code = code


# --------------------------------------------------------------------------- paths and config


def cluster_code_home():
    return os.path.abspath(os.path.expanduser(os.environ.get("CLUSTER_CODE_HOME") or "~/.cluster-code"))


def config_path():
    return os.path.join(cluster_code_home(), "config.json")


def read_config():
    """The whole config.json as a dict ({} when there is none); a broken file is a usage error."""
    path = config_path()
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        raise ShimError(f"cannot read {path}: {err}", EXIT_USAGE) from None
    if not isinstance(config, dict):
        raise ShimError(f"{path}: expected a JSON object at the top level", EXIT_USAGE)
    return config


def write_config(config):
    """Writes config.json atomically: a temporary file in the same directory, then a rename.

    An existing file keeps its permission bits, a new one is private; a symlink is written through.
    """
    path = os.path.realpath(config_path())
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    try:
        mode = os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        mode = 0o600
    fd, tmp = tempfile.mkstemp(prefix=".config.json.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(config, f, indent=2, ensure_ascii=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def rl_section(config):
    """The `pufferlib` section ({} when absent); anything but an object there is a usage error."""
    section = config.get("pufferlib")
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise ShimError(f"{config_path()}: pufferlib: expected a JSON object", EXIT_USAGE)
    return section


def configured_image():
    section = rl_section(read_config())
    image = section.get("image")
    if not section.get("enabled") or not isinstance(image, str) or not image:
        raise ShimError(f"not set up: run `{PROG} setup` (or `cluster-code rl setup`) first")
    return image, section.get("variant", "cpu")


# --------------------------------------------------------------------------- engine


class Engine:
    def __init__(self, path, kind):
        self.path = path
        self.kind = kind  # "docker" or "podman"

    def run(self, args, capture=True):
        """Runs the engine to completion; returns (exit code, stdout)."""
        try:
            result = subprocess.run(
                [self.path] + list(args),
                stdout=subprocess.PIPE if capture else None,
                stderr=subprocess.PIPE if capture else None,
                text=True,
            )
        except OSError as err:
            raise ShimError(f"cannot run {self.path}: {err}") from None
        return result.returncode, (result.stdout or "") if capture else ""

    def version(self):
        code, out = self.run(["--version"])
        return out.strip().splitlines()[0] if code == 0 and out.strip() else "unknown version"

    def has_image(self, ref):
        return self.run(["image", "inspect", ref])[0] == 0

    def gpu_flags(self):
        # podman exposes GPUs through CDI; docker through the NVIDIA container toolkit's --gpus.
        return ["--device", "nvidia.com/gpu=all"] if self.kind == "podman" else ["--gpus", "all"]


def _kind_of(path):
    """docker or podman: what the engine says it is (podman also ships a `docker` command)."""
    try:
        out = subprocess.run(
            [path, "--version"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    if "podman" in out.lower() or "podman" in os.path.basename(path).lower():
        return "podman"
    return "docker"


def _docker_answers(path):
    try:
        return (
            subprocess.run([path, "info"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30).returncode
            == 0
        )
    except (OSError, subprocess.SubprocessError):
        return False


def find_engine():
    """CLUSTER_CODE_RL_ENGINE if set; else docker when its daemon answers; else podman."""
    chosen = os.environ.get("CLUSTER_CODE_RL_ENGINE")
    if chosen:
        path = shutil.which(chosen)
        if not path:
            raise ShimError(f"CLUSTER_CODE_RL_ENGINE={chosen}: no such executable")
        return Engine(path, _kind_of(path))
    docker = shutil.which("docker")
    if docker and _docker_answers(docker):
        # podman's docker-compatible CLI also answers `docker info`: ask what it is.
        return Engine(docker, _kind_of(docker))
    podman = shutil.which("podman")
    if podman:
        return Engine(podman, "podman")
    if docker:
        raise ShimError(
            "docker is installed but its daemon does not answer (`docker info` failed): start it, or install podman"
        )
    raise ShimError(
        "no container engine found: install Docker (and start its daemon) or Podman "
        "(e.g. `apt-get install podman`), or set CLUSTER_CODE_RL_ENGINE"
    )


# --------------------------------------------------------------------------- host facts


def host_gpus():
    """Names of the host's NVIDIA GPUs ([] when none); nvidia-smi first, else the device node."""
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            result = subprocess.run(
                [smi, "-L"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, timeout=30
            )
            names = [line.strip() for line in result.stdout.splitlines() if line.strip()]
            if result.returncode == 0 and names:
                return names
        except (OSError, subprocess.SubprocessError):
            pass
    return ["/dev/nvidia0"] if os.path.exists("/dev/nvidia0") else []


def models_found():
    directory = os.path.join(cluster_code_home(), "models")
    found = []
    for root, _dirs, files in os.walk(directory):
        for name in sorted(files):
            if name.endswith(".pt"):
                path = os.path.join(root, name)
                found.append((path, os.path.getsize(path)))
    return sorted(found)


# --------------------------------------------------------------------------- container runs


def _is_inside(path, directory):
    path, directory = os.path.realpath(path), os.path.realpath(directory)
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


def container_view(path):
    """Where the container sees a host path: the same path, or None where the image uses that place."""
    path = os.path.abspath(path)
    if path in ("/", "/tmp") or any(path == d or path.startswith(d + "/") for d in IMAGE_DIRS):
        return None
    return path


def home_view(home):
    return container_view(home) or CONTAINER_HOME


def _inside_container(path, mounts):
    """The container's path for a host path under one of the (host, container) mounts, else None."""
    for host, inside in mounts:
        if _is_inside(path, host):
            relative = os.path.relpath(os.path.realpath(path), os.path.realpath(host))
            return inside if relative == "." else inside.rstrip("/") + "/" + relative.replace(os.sep, "/")
    return None


def _kubeconfig_mounts():
    """Mount flags for the kubeconfig(s) and the KUBECONFIG value inside the container."""
    value = os.environ.get("KUBECONFIG") or os.path.join(os.path.expanduser("~"), ".kube", "config")
    paths = [p for p in value.split(os.pathsep) if p]
    existing = [os.path.abspath(os.path.expanduser(p)) for p in paths if os.path.isfile(os.path.expanduser(p))]
    if not existing:
        searched = os.pathsep.join(paths)
        raise ShimError(f"--no-simulation needs a kubeconfig: none found at {searched} (set KUBECONFIG)", EXIT_CLUSTER)
    flags, inside = [], []
    for i, path in enumerate(existing):
        target = container_view(path) or f"{CONTAINER_KUBECONFIG_DIR}/config" + (f"-{i}" if i else "")
        flags += ["-v", f"{path}:{target}:ro"]
        inside.append(target)
    return flags, ["-e", "KUBECONFIG=" + ":".join(inside)]


def _rewrite_model_args(args, home):
    """Rewrites -m/--model PATH to the container's view; returns (args, mount flags)."""
    out, mounts = [], []
    i = 0
    while i < len(args):
        arg = args[i]
        value = None
        if arg in ("-m", "--model") and i + 1 < len(args):
            flag, value, i = arg, args[i + 1], i + 2
        elif arg.startswith("--model="):
            flag, value, i = "--model", arg[len("--model=") :], i + 1
        elif arg.startswith("-m") and len(arg) > 2 and not arg.startswith("--"):
            flag, value, i = "-m", arg[2:], i + 1
        else:
            out.append(arg)
            i += 1
            continue
        if "://" in value:  # an s3:// URI: the container fetches it
            out += [flag, value]
            continue
        path = os.path.abspath(os.path.expanduser(value))
        if not os.path.isfile(path):
            raise ShimError(f"model file not found: {value}", EXIT_MODEL)
        inside = _inside_container(path, [(home, home_view(home))])
        if inside is None:
            inside = container_view(path) or f"{CONTAINER_MODEL_DIR}/{len(mounts) // 2}-{os.path.basename(path)}"
            mounts += ["-v", f"{path}:{inside}:ro"]
        out += [flag, inside]
    return out, mounts


def passed_environment():
    """`-e NAME` flags for the AWS_* and CLUSTER_CODE_* variables (values stay out of argv)."""
    flags = []
    for name in sorted(os.environ):
        if (name.startswith("AWS_") or name.startswith("CLUSTER_CODE_")) and name not in ENV_NOT_PASSED:
            flags += ["-e", name]
    return flags


def _run_prefix(engine, variant, tty, stdin=False):
    """`run` and the flags every container run has: removed at exit, as the user, the GPU for cuda."""
    args = ["run", "--rm", "--init"]
    if tty:
        args.append("-it")
    elif stdin:
        args.append("-i")
    if hasattr(os, "getuid"):
        # As the calling user, so what the container writes under the home stays the user's.
        args += ["-u", f"{os.getuid()}:{os.getgid()}"]
        if engine.kind == "podman" and os.geteuid() != 0:
            args.append("--userns=keep-id")  # rootless podman: the same uid inside as outside
    if variant == "cuda":
        args += engine.gpu_flags()
    return args


def _home_flags(home):
    """The home mounted where the container sees it, and what the image's cluster-rl needs to know."""
    view = home_view(home)
    return ["-v", f"{home}:{view}", "-e", f"CLUSTER_CODE_HOME={view}", "-e", f"{PROG_ENV}={PROG}"]


def container_run_args(engine, image, variant, command_args, no_simulation, tty):
    """The engine's argv (after the engine itself) for running `cluster-rl COMMAND_ARGS` in the image."""
    home = cluster_code_home()
    os.makedirs(home, exist_ok=True)
    args = _run_prefix(engine, variant, tty) + _home_flags(home) + ["-w", home_view(home)]
    args += passed_environment()
    command_args, model_mounts = _rewrite_model_args(list(command_args), home)
    args += model_mounts
    if no_simulation:
        mounts, env = _kubeconfig_mounts()
        # The API server is often on the host's loopback (kind, minikube, kubectl proxy).
        args += mounts + env + ["--network", "host"]
    return args + [image] + command_args


def _script_index(argv):
    """The index of the script in a python command line, or None (-c, -m, stdin, the REPL)."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "-" or arg in ("-c", "-m"):
            return None
        if arg == "--":
            return i + 1 if i + 1 < len(argv) else None
        if arg.startswith("--"):
            i += 2 if arg == "--check-hash-based-pycs" else 1
            continue
        if arg.startswith("-") and len(arg) > 1:
            for k, letter in enumerate(arg[1:], start=1):
                if letter in "cm":
                    return None  # -uc CODE, -Bm MODULE: the rest are its arguments
                if letter in "WX":
                    i += 1 if k < len(arg) - 1 else 2  # the value is attached, or the next argument
                    break
            else:
                i += 1
            continue
        return i
    return None


def python_run_args(engine, image, variant, python_args, tty):
    """The engine's argv for running the image's Python with PYTHON_ARGS, as a Python on the host would.

    The home is mounted where the container sees it (its own path, normally); a script outside the
    home has its directory mounted at its own path too, read-write as a host Python would have it. The
    working directory is the caller's when it is mounted, else the script's directory, else the home.
    """
    home = cluster_code_home()
    os.makedirs(home, exist_ok=True)
    args = _run_prefix(engine, variant, tty, stdin=True) + _home_flags(home)
    mounts = [(home, home_view(home))]
    python_args = list(python_args)
    workdir = None
    index = _script_index(python_args)
    if index is not None:
        script = os.path.abspath(os.path.expanduser(python_args[index]))
        directory = os.path.dirname(script)
        # The host's root is never mounted whole: a script there stays as it is (and is not found).
        if directory != "/" and os.path.isdir(directory) and _inside_container(directory, mounts) is None:
            inside = container_view(directory) or CONTAINER_SCRIPT_DIR
            args += ["-v", f"{directory}:{inside}"]
            mounts.append((directory, inside))
        workdir = _inside_container(directory, mounts)
        # A script that does not exist stays as it is: the image's Python says so.
        python_args[index] = _inside_container(script, mounts) or python_args[index]
    try:
        cwd = os.getcwd()
    except OSError:  # the caller's directory was deleted
        cwd = None
    workdir = (cwd and _inside_container(cwd, mounts)) or workdir or home_view(home)
    args += ["-w", workdir] + passed_environment()
    return args + ["--entrypoint", "python", image] + python_args


def run_in_container(engine, args, tty=False):
    """Runs the engine in the foreground, forwarding SIGINT/SIGTERM/SIGHUP; returns its exit code."""
    try:
        # Without a terminal, signals reach the engine only through us (its own process group), so
        # a signal sent to our group is not delivered twice. With one, Ctrl-C travels through the tty.
        proc = subprocess.Popen([engine.path] + args, start_new_session=not tty)
    except OSError as err:
        raise ShimError(f"cannot run {engine.path}: {err}") from None

    def forward(signum, _frame):
        try:
            proc.send_signal(signum)
        except OSError:
            pass

    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if signum is not None:
            previous[signum] = signal.signal(signum, forward)
    try:
        while True:
            try:
                code = proc.wait()
                break
            except KeyboardInterrupt:  # pragma: no cover - the handler above replaces the default
                continue
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 128 - code if code < 0 else code


# --------------------------------------------------------------------------- commands


def python_env_dir(home):
    return os.path.join(home, PYTHON_ENV_DIR)


def python_wrapper_path(home):
    return os.path.join(python_env_dir(home), "bin", "python")


def is_python_wrapper(path):
    """Whether PATH is the executable setup writes (and so ours to replace or delete)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return WRAPPER_MARK in f.read(4096)
    except OSError:
        return False


def _wrapper_text(home, engine):
    quote = shlex.quote
    lines = [
        "#!/bin/sh",
        WRAPPER_MARK + ": cluster-code's pythonPath, written by `cluster-code-rl setup`.",
        "# Runs the Python of the image that config.json's pufferlib section names, with this home and the",
        "# script's directory mounted at their own paths (`cluster-code-rl python`). `cluster-code-rl remove`",
        "# deletes it.",
        f"CLUSTER_CODE_HOME={quote(home)}",
        f'if [ -z "${{CLUSTER_CODE_RL_ENGINE:-}}" ]; then CLUSTER_CODE_RL_ENGINE={quote(engine.path)}; fi',
        "export CLUSTER_CODE_HOME CLUSTER_CODE_RL_ENGINE",
    ]
    if os.environ.get("CONTAINERS_CONF"):  # podman's settings for this host, as setup had them
        conf = quote(os.path.abspath(os.environ["CONTAINERS_CONF"]))
        lines.append(f'if [ -z "${{CONTAINERS_CONF:-}}" ]; then CONTAINERS_CONF={conf}; export CONTAINERS_CONF; fi')
    lines.append(f'exec {quote(sys.executable)} {quote(os.path.abspath(__file__))} python "$@"')
    return "\n".join(lines) + "\n"


def install_python_wrapper(home, engine):
    """Writes <home>/pufferlib-env/bin/python; returns where an old virtualenv there was moved, or None."""
    env_dir = python_env_dir(home)
    wrapper = python_wrapper_path(home)
    moved = None
    if os.path.lexists(env_dir) and not is_python_wrapper(wrapper):
        moved, n = env_dir + ".venv-old", 1
        while os.path.lexists(moved):
            moved, n = f"{env_dir}.venv-old-{n}", n + 1
        os.rename(env_dir, moved)
    os.makedirs(os.path.dirname(wrapper), exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".python.", dir=os.path.dirname(wrapper))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(_wrapper_text(home, engine))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o755)
        os.replace(tmp, wrapper)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return moved


def cmd_setup(argv):
    parser = _parser("setup", "Pick and pull (or build) the cluster-rl image and enable it in config.json.")
    parser.add_argument("--cuda", action="store_true", help="the CUDA image (needs an NVIDIA GPU)")
    parser.add_argument(
        "--force",
        action="store_true",
        help="pull or build again even if the image is present; allow --cuda without a GPU",
    )
    parser.add_argument("--image", metavar="REF", help="use this image (local or remote); no pull if present")
    parser.add_argument(
        "--build",
        nargs="?",
        const=".",
        metavar="DIR",
        help="build the image from a cluster-code-rl checkout (default: .)",
    )
    opts = parser.parse_args(argv)
    if opts.image and opts.build:
        raise ShimError("--image and --build exclude each other", EXIT_USAGE)
    variant = "cuda" if opts.cuda else "cpu"
    config = read_config()  # a broken config.json stops us before anything is pulled
    if variant == "cuda" and not host_gpus() and not opts.force:
        raise ShimError(
            "--cuda: no NVIDIA GPU on this host (nvidia-smi -L lists none, no /dev/nvidia0); "
            "use the CPU image, or --force",
            EXIT_DEVICE,
        )
    engine = find_engine()

    if opts.build:
        image = f"{LOCAL_IMAGE}:{variant}"
        _build(engine, os.path.abspath(opts.build), variant, image)
    else:
        image = opts.image or f"{PUBLISHED_IMAGE}:{VERSION}-{variant}"
        if opts.force or not engine.has_image(image):
            print(f"pulling {image}")
            code, _ = engine.run(["pull", image], capture=False)
            if code != 0:
                raise ShimError(f"{engine.kind} pull {image} failed (exit {code})")
        else:
            print(f"using {image} (present)")

    home = cluster_code_home()
    models = os.path.join(home, "models")
    os.makedirs(models, exist_ok=True)
    section = rl_section(config)
    old_venv = section.get("envPath") or section.get("pythonPath")
    moved = install_python_wrapper(home, engine)
    section["enabled"] = True
    section["image"] = image
    section["variant"] = variant
    # What cluster-code as released runs: its probes and the scripts it writes then run in the image.
    section["pythonPath"] = python_wrapper_path(home)
    section["envPath"] = python_env_dir(home)
    # cluster-code reads modelPath as a directory (it lists it, and saves and loads cluster_agent.pt in
    # it); earlier versions of this shim wrote the file's path, which is replaced.
    if section.get("modelPath") in (None, os.path.join(models, MODEL_FILE_NAME)):
        section["modelPath"] = models
    section.setdefault("trainingConfig", dict(CLUSTER_CODE_TRAINING_DEFAULTS))
    config["pufferlib"] = section
    write_config(config)
    print(f"configured {config_path()}: image {image} ({variant})")
    print(f"wrote {section['pythonPath']}: cluster-code's pythonPath, the image's Python")
    if moved:
        print(f"moved the old virtualenv from {python_env_dir(home)} to {moved}: delete it when no longer needed")
    elif old_venv and not _is_inside(old_venv, python_env_dir(home)):
        print(
            f"the old virtualenv at {old_venv} is no longer used and was left in place: delete it when no longer needed"
        )

    # The image's own setup adds the trainer's defaults to trainingConfig (keeping the values above)
    # and creates runs/ and checkpoints/; with --cuda it also checks that torch can use the GPU.
    gpu = variant == "cuda" and bool(host_gpus())
    command = ["setup", "--cuda"] if gpu else ["setup"]
    sys.stdout.flush()
    return run_in_container(engine, container_run_args(engine, image, variant if gpu else "cpu", command, False, False))


def _build(engine, checkout, variant, image):
    script = os.path.join(checkout, "scripts", "build-image.sh")
    dockerfile = os.path.join(checkout, "Dockerfile.cuda" if variant == "cuda" else "Dockerfile")
    if os.path.isfile(script):
        env = dict(os.environ, ENGINE=engine.path)
        command = ["bash", script, variant, image]
    elif os.path.isfile(dockerfile):
        env = None
        command = [engine.path, "build", "-f", dockerfile, "-t", image, checkout]
    else:
        raise ShimError(f"--build {checkout}: not a cluster-code-rl checkout (no {dockerfile})", EXIT_USAGE)
    print(f"building {image} from {checkout}")
    try:
        code = subprocess.run(command, cwd=checkout, env=env).returncode
    except OSError as err:
        raise ShimError(f"cannot run {command[0]}: {err}") from None
    if code != 0:
        raise ShimError(f"building {image} failed (exit {code})")


def cmd_status(argv):
    _parser("status", "Show the engine, image, GPU and models, then the container's own status.").parse_args(argv)
    healthy = True
    try:
        engine = find_engine()
        print(f"engine:   {engine.path} ({engine.version()})")
    except ShimError as err:
        engine = None
        healthy = False
        print(f"engine:   none: {err.message}")
    section = rl_section(read_config())
    image, variant = section.get("image"), section.get("variant", "cpu")
    if not section.get("enabled") or not image:
        print(f"image:    not set up (run `{PROG} setup`)")
        image, healthy = None, False
    else:
        present = engine is not None and engine.has_image(image)
        print(f"image:    {image} ({variant}), {'present' if present else 'missing'}")
        healthy = healthy and present
    wrapper = python_wrapper_path(cluster_code_home())
    if is_python_wrapper(wrapper):
        print(f"python:   {wrapper} (cluster-code's pythonPath: the image's Python)")
    else:
        print(f"python:   none for cluster-code (run `{PROG} setup`)")
    gpus = host_gpus()
    print("gpu:      " + ("; ".join(gpus) if gpus else "no NVIDIA GPU"))
    models = models_found()
    models_dir = os.path.join(cluster_code_home(), "models")
    print("models:   " + (f"{len(models)} in {models_dir}" if models else "none"))
    for path, size in models:
        print(f"          {path} ({size / 1e6:.1f} MB)")
    if not healthy:
        return EXIT_FAILURE
    print("container:")
    sys.stdout.flush()
    return run_in_container(engine, container_run_args(engine, image, variant, ["status"], False, False))


def cmd_remove(argv):
    parser = _parser(
        "remove",
        "Remove the image, disable the pufferlib section, delete runs and checkpoints; models stay unless --purge.",
    )
    parser.add_argument("--purge", action="store_true", help="also delete the models under ~/.cluster-code/models")
    parser.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    opts = parser.parse_args(argv)
    config = read_config()  # a broken config.json stops us before anything is removed
    section = rl_section(config)
    image = section.get("image")
    home = cluster_code_home()
    env_dir = python_env_dir(home)
    wrapper = env_dir if is_python_wrapper(python_wrapper_path(home)) else None
    # pythonPath/envPath go when they are ours; a venv of the user's elsewhere stays configured.
    ours = [key for key in VENV_KEYS if isinstance(section.get(key), str) and _is_inside(section[key], env_dir)]
    doomed = [os.path.join(home, d) for d in ("runs", "checkpoints") + (("models",) if opts.purge else ())]
    doomed = [d for d in doomed if os.path.lexists(d)]
    plan = (
        ([f"remove the image {image}"] if image else [])
        + ([f"disable the pufferlib section of {config_path()}"] if section.get("enabled") or ours else [])
        + ([f"delete {wrapper} (cluster-code's pythonPath)"] if wrapper else [])
        + [f"delete {d}" for d in doomed]
    )
    if not plan:
        print("nothing to remove")
        return EXIT_OK
    if not opts.yes:
        if not sys.stdin.isatty():
            raise ShimError(
                f"remove: refusing to {' and '.join(plan)} without confirmation: stdin is not a terminal; pass --yes",
                EXIT_USAGE,
            )
        print("This will:\n" + "\n".join("  " + step for step in plan))
        if input("Go ahead? [y/N] ").strip().lower() not in ("y", "yes"):
            print("nothing removed")
            return EXIT_OK
    if image:
        engine = find_engine()
        if engine.has_image(image):
            code, _ = engine.run(["rmi", image], capture=False)
            if code != 0:
                raise ShimError(f"{engine.kind} rmi {image} failed (exit {code})")
            print(f"removed the image {image}")
    if section.get("enabled") or ours:
        section["enabled"] = False
        for key in ours:
            del section[key]
        config["pufferlib"] = section
        write_config(config)
        print(f"disabled the pufferlib section of {config_path()} (other settings kept)")
    if wrapper:
        shutil.rmtree(wrapper)
        print(f"deleted {wrapper}")
    for path in doomed:
        if os.path.islink(path) or not os.path.isdir(path):
            os.unlink(path)  # a symlink goes itself, never what it points to
        else:
            shutil.rmtree(path)
        print(f"deleted {path}")
    models = os.path.join(home, "models")
    if not opts.purge and os.path.isdir(models) and os.listdir(models):
        print(f"kept the models in {models} (--purge deletes them)")
    return EXIT_OK


def cmd_container(command, argv):
    """train/diagnose/evaluate: the flags go to the container's cluster-rl as they are."""
    image, variant = configured_image()
    engine = find_engine()
    no_simulation = "--no-simulation" in argv
    tty = sys.stdin.isatty() and sys.stdout.isatty()
    args = container_run_args(engine, image, variant, [command] + list(argv), no_simulation, tty)
    return run_in_container(engine, args, tty)


def cmd_python(argv):
    """python ARGS: the image's Python; what cluster-code runs as its pythonPath."""
    if argv[:1] == ["--shim-help"]:
        print(PYTHON_HELP % {"prog": PROG})
        return EXIT_OK
    image, variant = configured_image()
    engine = find_engine()
    tty = sys.stdin.isatty() and sys.stdout.isatty()
    return run_in_container(engine, python_run_args(engine, image, variant, argv, tty), tty)


PYTHON_HELP = """usage: %(prog)s python [PYTHON ARGS]

Runs the image's Python with PYTHON ARGS (`--help` is Python's own). The home (~/.cluster-code) and,
for a script outside it, the script's directory are mounted read-write at their own paths, so the
paths a script reads and writes are the host's; `import cluster_env` gives cluster-code-rl's
ClusterEnv. `%(prog)s setup` writes ~/.cluster-code/pufferlib-env/bin/python, which runs this, as
config.json's pythonPath: cluster-code's `rl status|train|diagnose` then run in the image."""


# --------------------------------------------------------------------------- entry point


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise ShimError(f"{self.prog}: {message} (see `{self.prog} --help`)", EXIT_USAGE)


def _parser(command, description):
    return _Parser(prog=f"{PROG} {command}", description=description)


USAGE = """usage: %(prog)s COMMAND [ARGS]

Run cluster-code-rl's container image (docker, else podman; CLUSTER_CODE_RL_ENGINE overrides).

commands:
  setup [--cuda] [--force] [--image REF] [--build [DIR]]
                  pick and pull (or build) the image; enable it in ~/.cluster-code/config.json, with
                  a pythonPath that runs the image's Python (for cluster-code as released)
  status          engine, image, GPU, models, then the container's own status
  remove [--purge] [--yes]
                  remove the image, disable the config section, delete the pythonPath, runs/ and
                  checkpoints/ (models stay unless --purge)
  train [-e N] [-s N] [--no-simulation] [-v] ...
  diagnose [-m PATH] [-s N] [--no-simulation] ...
  evaluate [-m PATH] ...
                  run that cluster-rl command in the container (`%(prog)s train --help` for its flags),
                  with ~/.cluster-code mounted at its own path; the kubeconfig only with --no-simulation
  python [ARGS]   the image's Python, with the home and a script's directory mounted at their own
                  paths: what setup makes cluster-code's pythonPath (`%(prog)s python --shim-help`)

exit codes: 0 ok, 1 engine missing or failed / not set up, 2 usage, 3 model file missing,
  5 no kubeconfig, 6 --cuda without a GPU, 130 interrupted; train/diagnose/evaluate: the container's.
"""


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if not argv or argv[0] in ("-h", "--help", "help"):
            (sys.stdout if argv else sys.stderr).write(USAGE % {"prog": PROG})
            return EXIT_OK if argv else EXIT_USAGE
        if argv[0] == "--version":
            print(f"{PROG} {VERSION}")
            return EXIT_OK
        command, rest = argv[0], argv[1:]
        if command == "setup":
            return cmd_setup(rest)
        if command == "status":
            return cmd_status(rest)
        if command == "remove":
            return cmd_remove(rest)
        if command in CONTAINER_COMMANDS:
            return cmd_container(command, rest)
        if command == "python":
            return cmd_python(rest)
        raise ShimError(f"unknown command {command!r} (see `{PROG} --help`)", EXIT_USAGE)
    except ShimError as err:
        sys.stderr.write(f"{PROG}: {err.message}\n")
        return err.code
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return EXIT_INTERRUPTED
    except OSError as err:
        sys.stderr.write(f"{PROG}: {err}\n")
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
