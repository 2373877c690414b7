"""Kubeconfig credentials as a hostile user writes them, through the real CLI in real subprocesses:
files the kubeconfig names (tokens, certificates, keys, CAs) that never end or never open,
exec credential plugins that hang, talk without end, are missing or fail, tokens with line breaks,
and TLS settings. Each is one line on stderr and exit 5 in bounded time (the tests set low timeouts
and give the command a generous outer limit: they assert that it returned, never how fast); no
credential ever appears in a message or a report; no plugin outlives the command.
"""

import json
import os
import signal
import stat
import subprocess
import sys
import time

import psutil
import pytest
from conftest import ROOT, run_cli
from kube_server import FakeKubeServer, load_into, write_certificate, write_kubeconfig

OUTER_LIMIT = 120  # seconds; a command that hangs fails the test through subprocess's timeout
TOKEN = "s3cr3t-b34r3r-t0k3n-9f8e7d"
EXEC_API = "client.authentication.k8s.io/v1"
DIAGNOSE = ["diagnose", "--no-simulation", "--policy", "expert", "--steps", "3"]


def one_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "internal error" not in lines[0] and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@pytest.fixture
def server():
    with FakeKubeServer(token=TOKEN) as fake:
        load_into(fake, "healthy")
        yield fake


def diagnose(kubeconfig, *args, timeout=OUTER_LIMIT):
    return run_cli(*DIAGNOSE, *args, env={"KUBECONFIG": str(kubeconfig)}, timeout=timeout)


def plugin(**fields) -> dict:
    return {"exec": {"apiVersion": EXEC_API, **fields}}


def script(path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def processes_with(marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if marker in " ".join(proc.info["cmdline"] or []):
            found.append(proc)
    return found


# ------------------------------------------------------------------- files a kubeconfig names


def test_a_token_file_that_never_ends_is_exit_5_without_reading_it(tmp_path, server):
    huge = tmp_path / "huge-token"
    with open(huge, "wb") as fh:
        fh.truncate(4 * 1024**3)  # 4 GiB, sparse: read whole, it would exhaust memory
    for token_file, fragment in (
        ("/dev/zero", "is a character device, not a regular file"),
        (huge, "is larger than 1 MiB"),
    ):
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server.url, user={"tokenFile": str(token_file)})
        result = diagnose(kubeconfig)
        assert result.returncode == 5, result.stderr
        line = one_line(result)
        assert f"tokenFile {token_file} {fragment}" in line and "user 'cluster-rl'" in line
    assert server.requests == []


def test_a_fifo_as_token_file_certificate_key_or_ca_is_refused_not_waited_on(tmp_path, server):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    cert, key = write_certificate(tmp_path)
    https = "https://127.0.0.1:1"  # never contacted: the files are refused first
    for url, user, cluster, field in (
        (server.url, {"tokenFile": str(fifo)}, {}, "tokenFile"),
        (https, {"token": TOKEN}, {"certificate-authority": str(fifo)}, "cluster certificate-authority"),
        (https, {"client-certificate": str(fifo), "client-key": str(key)}, {}, "user client-certificate"),
        (https, {"client-certificate": str(cert), "client-key": "/dev/zero"}, {}, "user client-key"),
    ):
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", url, user=user, cluster=cluster)
        result = diagnose(kubeconfig)
        assert result.returncode == 5, result.stderr
        line = one_line(result)
        assert field in line and "not a regular file" in line
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_a_token_file_with_a_trailing_newline_works_and_no_message_or_report_holds_the_token(tmp_path, server):
    """`echo TOKEN > file` writes a newline, which kubectl strips; sent as is, the header would be
    refused with the whole token printed. Neither stderr, stdout nor the report may hold it."""
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server.url, user={"tokenFile": "token"})  # relative
    report = tmp_path / "report.json"
    result = diagnose(kubeconfig, "-o", "json", "--report", report)
    assert result.returncode == 0, result.stderr
    assert json.loads(report.read_text())["mode"] == "cluster"
    assert TOKEN not in result.stdout + result.stderr + report.read_text()
    # a wrong token: the 401 message names the server, not what was sent
    token_file.write_text("wrong-" + TOKEN + "\n")
    result = diagnose(kubeconfig, "-o", "json")
    assert result.returncode == 5 and "rejected the credentials (401" in one_line(result)
    assert TOKEN not in result.stdout + result.stderr
    # a line break inside a token cannot be sent in a header: refused without echoing it
    for user in ({"token": TOKEN + "\nX-Injected: 1"}, {"tokenFile": "token"}):
        token_file.write_text(TOKEN + "\r\nmore\n")
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server.url, user=user)
        result = diagnose(kubeconfig)
        assert result.returncode == 5, result.stderr
        assert "line break" in one_line(result) and TOKEN not in result.stderr + result.stdout


def test_a_malformed_user_entry_is_named_in_the_message_without_its_values(tmp_path):
    """The client names kubeconfig entries by their whole content: a token one level too high
    (no `user:` key) used to be printed in the error."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'http://127.0.0.1:1'}}]\n"
        f"users: [{{name: u, token: {TOKEN}}}]\ncontexts: [{{name: x, context: {{cluster: c, user: u}}}}]\n"
        "current-context: x\n"
    )
    result = diagnose(kubeconfig)
    assert result.returncode == 5, result.stderr
    assert one_line(result).endswith(f"Expected key user in {kubeconfig}/users[name=u]")
    assert TOKEN not in result.stderr


# ------------------------------------------------------------------------ exec plugins


def test_a_plugin_that_never_returns_is_stopped_at_the_deadline_with_its_process_group(tmp_path, server):
    marker = "600.0371"  # a sleep only this test starts
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server.url, user=plugin(command="/bin/sleep", args=[marker]))
    result = diagnose(kubeconfig, "--api-timeout", "1")
    assert result.returncode == 5, result.stderr
    line = one_line(result)
    assert "credential plugin /bin/sleep did not finish within 3 s" in line
    assert processes_with(marker) == [] and server.requests == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_plugin_dies_with_the_command(tmp_path, server, sig):
    """The plugin's whole process group when the command is stopped; the plugin itself (the
    kernel's parent-death signal) even when the command is killed outright."""
    marker = f"600.04{int(sig)}"
    body = f"/bin/sleep {marker} &\nexec /bin/sleep {marker}\n"  # a child in its group, then itself
    kubeconfig = write_kubeconfig(
        tmp_path / "kubeconfig", server.url, user=plugin(command=script(tmp_path / "hang.sh", body))
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "entrypoint.cli", *DIAGNOSE, "--api-timeout", "60"],
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + OUTER_LIMIT
        while len(processes_with(marker)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        plugins = processes_with(marker)
        assert len(plugins) == 2
        (leader,) = [p for p in plugins if p.ppid() == proc.pid]  # the plugin the command started
        proc.send_signal(sig)
        proc.wait(timeout=30)
        # stopped, the command kills the plugin's group; killed outright, the kernel kills the plugin
        expected = plugins if sig == signal.SIGTERM else [leader]
        gone, alive = psutil.wait_procs(expected, timeout=30)
        assert alive == []
    finally:
        proc.kill()
        proc.communicate()
        for leftover in processes_with(marker):
            leftover.kill()
    assert proc.returncode == -sig


def test_a_plugin_that_prints_without_end_is_stopped_at_the_output_limit(tmp_path, server):
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server.url, user=plugin(command="/usr/bin/yes"))
    result = diagnose(kubeconfig, "--api-timeout", "30")
    assert result.returncode == 5, result.stderr
    assert "credential plugin /usr/bin/yes printed more than 1 MiB" in one_line(result)
    assert server.requests == []


def test_a_missing_or_failing_plugin_is_exit_5_and_never_a_run_without_credentials(tmp_path):
    """Against a server that takes anonymous requests, the client used to log `ERROR:root:...` and
    go on unauthenticated (exit 0): the command must stop before any request."""
    failing = script(tmp_path / "login.sh", "echo 'token expired: run cloud login' >&2\nexit 3\n")
    cases = (
        (plugin(command="kubelogin-missing", installHint="install kubelogin"), "kubelogin-missing not found (install kubelogin)"),
        (plugin(command=failing), f"{failing} exited with status 3: token expired: run cloud login"),
        (plugin(command=script(tmp_path / "mute.sh", "exit 0\n")), "printed no ExecCredential"),
        (plugin(command=script(tmp_path / "empty.sh", f"echo '{{\"apiVersion\": \"{EXEC_API}\", \"kind\": \"ExecCredential\", \"status\": {{}}}}'\n")), "printed no credential"),
    )  # fmt: skip
    with FakeKubeServer(token=None) as anonymous:
        load_into(anonymous, "healthy")
        for user, fragment in cases:
            kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", anonymous.url, user=user)
            result = diagnose(kubeconfig)
            assert result.returncode == 5, result.stderr
            line = one_line(result)
            assert "credential plugin" in line and fragment in line and "ERROR" not in result.stderr
        assert anonymous.requests == []


def test_a_working_plugin_authenticates_and_its_token_is_never_shown(tmp_path, server):
    credential = {"apiVersion": EXEC_API, "kind": "ExecCredential", "status": {"token": TOKEN}}
    body = f"test -n \"$KUBERNETES_EXEC_INFO\" || exit 9\necho '{json.dumps(credential)}'\n"
    kubeconfig = write_kubeconfig(
        tmp_path / "kubeconfig", server.url, user=plugin(command="./plugin.sh", env=[{"name": "A", "value": "1"}])
    )
    script(tmp_path / "plugin.sh", body)  # relative to the kubeconfig's directory, as client-go resolves it
    result = diagnose(kubeconfig, "-o", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["mode"] == "cluster" and TOKEN not in result.stdout + result.stderr


# --------------------------------------------------------------------------------- TLS


@pytest.fixture
def tls_server(tmp_path):
    cert, key = write_certificate(tmp_path)
    with FakeKubeServer(token=TOKEN, tls=(str(cert), str(key))) as fake:
        load_into(fake, "healthy")
        yield fake, cert


def test_insecure_skip_tls_verify_is_one_warning_line(tmp_path, tls_server):
    server, _ = tls_server
    kubeconfig = write_kubeconfig(
        tmp_path / "kubeconfig", server.url, token=TOKEN, cluster={"insecure-skip-tls-verify": True}
    )
    result = diagnose(kubeconfig, "-o", "json")
    assert result.returncode == 0, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("warning: ") and "insecure-skip-tls-verify" in line
    assert len(server.requests) > 20  # every request went out, and still one line


def test_a_certificate_the_client_does_not_trust_is_exit_5_at_once_and_a_trusted_one_works(tmp_path, tls_server):
    server, cert = tls_server
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server.url, token=TOKEN)
    result = diagnose(kubeconfig)
    assert result.returncode == 5, result.stderr
    line = one_line(result)
    assert server.url in line and "certificate" in line and "certificate-authority" in line
    assert server.connections_accepted == 1  # not retried: it would fail the same way
    kubeconfig = write_kubeconfig(
        tmp_path / "kubeconfig", server.url, token=TOKEN, cluster={"certificate-authority": str(cert)}
    )
    result = diagnose(kubeconfig, "-o", "json")
    assert result.returncode == 0 and result.stderr == "", result.stderr


def test_a_bearer_token_over_plain_http_is_one_warning_line(tmp_path):
    """Off loopback, a token sent without TLS can be read on the way: say so once, then go on
    (192.0.2.1 is TEST-NET-1, never routed: the command then fails to connect, exit 5)."""
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", "http://192.0.2.1:6443", token=TOKEN)
    result = diagnose(kubeconfig, "--api-timeout", "1")
    assert result.returncode == 5, result.stderr
    warning, error = result.stderr.strip().splitlines()
    assert warning.startswith("warning: ") and "plain http://" in warning and "token" in warning
    assert error.startswith("cluster-rl: API server http://192.0.2.1:6443")
    assert TOKEN not in result.stderr
