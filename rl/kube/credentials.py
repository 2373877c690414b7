"""The credentials a kubeconfig names, made safe to use before the `kubernetes` client sees them.

Left to itself the client reads a token file, certificate or key without a size limit or a
deadline (a FIFO hangs it, /dev/zero fills memory), runs an exec plugin with neither a deadline nor
a limit on its output, and carries on without credentials when the plugin fails. `secure_credentials`
takes those over for the active context, in the client's own order (auth-provider, token or
tokenFile, exec):

- files the kubeconfig names (`tokenFile`, `client-certificate`, `client-key`,
  `certificate-authority`) must be regular files of at most MAX_CREDENTIAL_FILE_BYTES, read
  within the deadline; a token file's surrounding whitespace is stripped, as kubectl does;
- an exec plugin runs in its own process group within the deadline, its output read up to
  MAX_PLUGIN_OUTPUT_BYTES; on the deadline, the limit, or the end of this process, the group is
  killed (the plugin also gets the kernel's parent-death signal). A plugin that is missing, fails,
  or prints no credential raises KubeConfigError naming it: there is never a run without them;
- a token an HTTP header cannot carry (a line break inside) is refused.

No message names a credential's value: plugin output is never echoed, and `redact` takes the
values of the active user out of any error text.
"""

import base64
import ctypes
import json
import os
import selectors
import shutil
import signal
import stat
import subprocess
import threading
import time

from rl.files import file_kind
from rl.kube.errors import KubeConfigError

MAX_CREDENTIAL_FILE_BYTES = 1024 * 1024  # a certificate chain or a token is a few KiB
MAX_PLUGIN_OUTPUT_BYTES = 1024 * 1024  # an ExecCredential is a few KiB
MAX_PLUGIN_STDERR_BYTES = 64 * 1024
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
SECRET_KEYS = ("token", "password", "client-key-data", "client-certificate-data")


def secure_credentials(loader, kubeconfig: str, deadline_s: float) -> None:
    """Check and read what the active context's user and cluster name, within `deadline_s`
    seconds each, and put the results where the client takes them from (in place)."""
    user = loader._user.value if loader._user is not None else None
    cluster = loader._cluster
    user_name = loader._current_context["context"].safe_get("user") or "?"
    where = f"kubeconfig {kubeconfig}: user {user_name!r}"
    if isinstance(user, dict) and "auth-provider" not in user:
        base = _base_path(loader._user.path)
        if user.get("token") or user.get("tokenFile"):
            if isinstance(user.get("token"), str):
                user["token"] = user["token"].strip()  # a YAML block scalar ends in a newline
            if not user.get("token") and user.get("tokenFile"):
                path = _resolve(base, user["tokenFile"])
                data = read_credential_file(path, f"{where}: tokenFile", deadline_s)
                user["token"] = data.decode("utf-8", "replace").strip()  # `echo TOKEN > file` adds a newline
                del user["tokenFile"]
                if not user["token"]:
                    raise KubeConfigError(f"{where}: tokenFile {path} is empty")
        elif "exec" in user:
            status = run_exec_plugin(user["exec"], base, cluster.value, f"{where}: credential plugin", deadline_s)
            del user["exec"]
            if "token" in status:
                user["token"] = status["token"]
            else:
                user["client-certificate-data"] = _b64(status["clientCertificateData"])
                user["client-key-data"] = _b64(status["clientKeyData"])
                user.pop("client-certificate", None)
                user.pop("client-key", None)
    if str(cluster.safe_get("server") or "").startswith("https"):  # the client reads TLS files for https only
        files = [(cluster, "certificate-authority", "cluster")]
        if loader._user is not None:
            files += [(loader._user, "client-certificate", "user"), (loader._user, "client-key", "user")]
        for node, key, owner in files:
            value = node.value
            if isinstance(value, dict) and value.get(key) and not value.get(f"{key}-data"):
                path = _resolve(_base_path(node.path), value[key])
                read_credential_file(path, f"kubeconfig {kubeconfig}: {owner} {key}", deadline_s)
                value[key] = path  # absolute: the client reads the file that was checked


def check_token(configuration, kubeconfig: str) -> None:
    """The bearer token must fit in an HTTP header: http.client would refuse it later, printing it."""
    token = (configuration.api_key or {}).get("BearerToken") or ""
    if any(ord(c) < 0x20 or ord(c) == 0x7F or ord(c) > 0xFF for c in str(token)):
        raise KubeConfigError(
            f"kubeconfig {kubeconfig}: the user's token holds a line break or another character an HTTP "
            "header cannot carry"
        )


def redact(text: str, loader) -> str:
    """`text` with the active user's credential values taken out."""
    user = loader._user.value if loader is not None and loader._user is not None else None
    if not isinstance(user, dict):
        return text
    for key in SECRET_KEYS:
        value = user.get(key)
        if isinstance(value, str) and len(value) >= 4:
            text = text.replace(value, "<redacted>")
    return text


def read_credential_file(path: str, what: str, deadline_s: float) -> bytes:
    """A regular file's bytes, at most MAX_CREDENTIAL_FILE_BYTES, read within `deadline_s`
    (a file on a hung network mount is given up on, its reading thread left behind)."""
    outcome: list = []

    def read():
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO opens without waiting for a writer
            with os.fdopen(fd, "rb") as fh:
                info = os.fstat(fd)
                if not stat.S_ISREG(info.st_mode):
                    outcome.append(KubeConfigError(f"{what} {path} is {file_kind(info.st_mode)}, not a regular file"))
                    return
                if info.st_size > MAX_CREDENTIAL_FILE_BYTES:
                    outcome.append(KubeConfigError(f"{what} {path} is larger than {_limit(MAX_CREDENTIAL_FILE_BYTES)}"))
                    return
                data = fh.read(MAX_CREDENTIAL_FILE_BYTES + 1)
            if len(data) > MAX_CREDENTIAL_FILE_BYTES:
                outcome.append(KubeConfigError(f"{what} {path} is larger than {_limit(MAX_CREDENTIAL_FILE_BYTES)}"))
            else:
                outcome.append(data)
        except OSError as err:
            outcome.append(KubeConfigError(f"{what} {path} cannot be read: {(err.strerror or str(err)).lower()}"))

    reader = threading.Thread(target=read, name="credential-file", daemon=True)
    reader.start()
    reader.join(deadline_s)
    if not outcome:
        raise KubeConfigError(f"{what} {path} could not be read within {deadline_s:g} s")
    if isinstance(outcome[0], Exception):
        raise outcome[0]
    return outcome[0]


def run_exec_plugin(spec, base: str, cluster: dict, what: str, deadline_s: float) -> dict:
    """Run a kubeconfig `exec` credential plugin; its ExecCredential `status` (token, or client
    certificate and key), checked. Raises KubeConfigError naming the plugin, never its output."""
    if not isinstance(spec, dict) or not isinstance(spec.get("command"), str) or not spec["command"]:
        raise KubeConfigError(f"{what}: exec.command is missing")
    command = spec["command"]
    api_version = spec.get("apiVersion")
    if not isinstance(api_version, str) or not api_version:
        raise KubeConfigError(f"{what} {command}: exec.apiVersion is missing")
    args = spec.get("args") or []
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise KubeConfigError(f"{what} {command}: exec.args must be a list of strings")
    env = dict(os.environ)
    for item in spec.get("env") or []:
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("name"), str)
            or not isinstance(item.get("value"), str)
        ):
            raise KubeConfigError(f"{what} {command}: exec.env entries need a name and a value")
        env[item["name"]] = item["value"]
    info = {"apiVersion": api_version, "kind": "ExecCredential", "spec": {"interactive": False}}
    if spec.get("provideClusterInfo"):
        info["spec"]["cluster"] = cluster
    env["KUBERNETES_EXEC_INFO"] = json.dumps(info)
    executable = _find_plugin(command, base, env.get("PATH"))
    if executable is None:
        hint = spec.get("installHint")
        hint = f" ({' '.join(str(hint).split())[:200]})" if hint else ""
        raise KubeConfigError(f"{what} {command} not found{hint}")
    out, err, returncode = _run_bounded(executable, args, env, what, command, deadline_s)
    if returncode != 0:
        how = f"was killed by {_signal_name(-returncode)}" if returncode < 0 else f"exited with status {returncode}"
        said = _last_line(err)
        raise KubeConfigError(f"{what} {command} {how}" + (f": {said}" if said else ""))
    try:
        credential = json.loads(out)
    except (ValueError, RecursionError):
        credential = None
    status = credential.get("status") if isinstance(credential, dict) else None
    if not isinstance(status, dict) or credential.get("kind") != "ExecCredential":
        raise KubeConfigError(f"{what} {command} printed no ExecCredential (expected JSON with kind and status)")
    if credential.get("apiVersion") != api_version:
        raise KubeConfigError(f"{what} {command} answered in apiVersion other than {api_version}")
    token = status.get("token")
    if isinstance(token, str) and token.strip():
        return {"token": token.strip()}
    cert, key = status.get("clientCertificateData"), status.get("clientKeyData")
    if isinstance(cert, str) and cert and isinstance(key, str) and key:
        return {"clientCertificateData": cert, "clientKeyData": key}
    raise KubeConfigError(
        f"{what} {command} printed no credential (status needs a token, or clientCertificateData and clientKeyData)"
    )


def _run_bounded(executable: str, args: list[str], env: dict, what: str, command: str, deadline_s: float):
    """stdout, stderr and the exit status of the plugin, within the deadline and output limits;
    its process group is killed on any way out but its own exit."""
    libc = _libc()

    def die_with_us():  # in the child, before exec: the kernel kills it if this process dies
        if libc is not None:
            libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)

    try:
        proc = subprocess.Popen(
            [executable, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,  # its own process group, killed as one
            preexec_fn=die_with_us,
        )
    except OSError as err:
        raise KubeConfigError(f"{what} {command} cannot be started: {(err.strerror or str(err)).lower()}") from None
    proc.started = time.monotonic()
    finished = False
    previous = _on_termination()
    try:
        out, err = _collect(proc, what, command, deadline_s)
        remaining = max(0.0, deadline_s - (time.monotonic() - proc.started))
        try:
            returncode = proc.wait(remaining)
        except subprocess.TimeoutExpired:
            raise KubeConfigError(
                f"{what} {command} did not finish within {deadline_s:g} s (3 x --api-timeout); it was stopped"
            ) from None
        finished = True
        return out, err, returncode
    except _Terminated as stop:
        _kill_group(proc)
        _restore_termination(previous)
        os.kill(os.getpid(), stop.signum)  # end as the signal would have, now that the plugin is gone
        raise
    finally:
        _restore_termination(previous)
        if not finished:
            _kill_group(proc)
        proc.stdout.close()
        proc.stderr.close()


def _collect(proc, what: str, command: str, deadline_s: float) -> tuple[bytes, bytes]:
    chunks = {proc.stdout: [], proc.stderr: []}
    sizes = {proc.stdout: 0, proc.stderr: 0}
    limits = {proc.stdout: MAX_PLUGIN_OUTPUT_BYTES, proc.stderr: MAX_PLUGIN_STDERR_BYTES}
    with selectors.DefaultSelector() as selector:
        for pipe in chunks:
            os.set_blocking(pipe.fileno(), False)
            selector.register(pipe, selectors.EVENT_READ)
        while selector.get_map():
            remaining = deadline_s - (time.monotonic() - proc.started)
            if remaining <= 0:
                raise KubeConfigError(
                    f"{what} {command} did not finish within {deadline_s:g} s (3 x --api-timeout); it was stopped"
                )
            for key, _ in selector.select(remaining):
                data = os.read(key.fileobj.fileno(), 64 * 1024)
                if not data:
                    selector.unregister(key.fileobj)
                    continue
                pipe = key.fileobj
                sizes[pipe] += len(data)
                if sizes[pipe] > limits[pipe]:
                    if pipe is proc.stdout:
                        raise KubeConfigError(
                            f"{what} {command} printed more than {_limit(MAX_PLUGIN_OUTPUT_BYTES)}; it was stopped"
                        )
                    continue  # stderr past its limit is dropped, the plugin goes on
                chunks[pipe].append(data)
    return b"".join(chunks[proc.stdout]), b"".join(chunks[proc.stderr])


class _Terminated(BaseException):
    """SIGTERM or SIGHUP while a plugin runs: kill it, then end as the signal would have."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _on_termination():
    """While the plugin runs, SIGTERM and SIGHUP (whose default is to end this process without
    clean-up) raise _Terminated, so the plugin's group is killed first (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        raise _Terminated(signum)

    previous = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) == signal.SIG_DFL:
            previous[sig] = signal.signal(sig, handler)
    return previous


def _restore_termination(previous) -> None:
    for sig, handler in (previous or {}).items():
        signal.signal(sig, handler)
    if previous:
        previous.clear()


def _kill_group(proc) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        pass


def _find_plugin(command: str, base: str, path: str | None) -> str | None:
    """The plugin's executable: a path (relative ones from the kubeconfig's directory, as
    client-go resolves them) or a name looked up in PATH."""
    if os.sep in command:
        candidate = command if os.path.isabs(command) else os.path.join(base, command)
        return candidate if os.path.isfile(candidate) else None
    return shutil.which(command, path=path)


def _libc():
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def _base_path(config_path) -> str:
    return os.path.abspath(os.path.dirname(config_path)) if config_path else os.getcwd()


def _resolve(base: str, path) -> str:
    if not isinstance(path, str) or not path:
        raise KubeConfigError("a kubeconfig file path is empty or not a string")
    return os.path.normpath(os.path.join(base, os.path.expanduser(path)))


def _b64(text: str) -> str:
    return base64.standard_b64encode(text.encode()).decode()


def _last_line(data: bytes) -> str:
    lines = [line for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
    if not lines:
        return ""
    text = "".join(c for c in lines[-1] if c.isprintable())
    return " ".join(text.split())[:200]


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _limit(size: int) -> str:
    return f"{size // 1024 // 1024} MiB" if size >= 1024 * 1024 else f"{size // 1024} KiB"
