"""Models and checkpoints on S3 (or any S3-compatible store), with verified, atomic downloads.

Layout under an output prefix `s3://bucket/prefix/`:

    prefix/<run-id>/cluster_agent.pt          the published model of one run
    prefix/<run-id>/checkpoints/<name>.pt     checkpoints of that run, for resuming
    prefix/latest.json                        {"run_id", "key", "sha256", "size", "created"}: the default model

Every object carries its SHA-256 as user metadata (`x-amz-meta-sha256`). `latest.json` is written
only after the model upload has been confirmed by a HEAD of the object, and S3 replaces objects
whole, so a failed or interrupted publish leaves the previous pointer in place. `train` moves it
only to a model it promotes (`upload_model`, then `point_latest`).

boto3 uses its standard credential chain and honours AWS_ENDPOINT_URL (MinIO, Ceph, moto). Every
failure surfaces as StorageError with a one-line message; the CLI exits with code 4 for it.
boto3 is imported inside the functions that talk to S3, so importing this module stays cheap.
"""

import hashlib
import ipaddress
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from entrypoint.names import check_name

MODEL_FILE_NAME = "cluster_agent.pt"
POINTER_FILE_NAME = "latest.json"
CHECKPOINTS_DIR = "checkpoints"
NOT_PROMOTED_DIR = "not-promoted"  # <run-id>/not-promoted/cluster_agent.pt: see upload_model
SHA256_METADATA_KEY = "sha256"
MULTIPART_CHUNK_BYTES = 8 * 1024 * 1024
MAX_ATTEMPTS = 3  # botocore "standard" retry mode: bounded, with jittered backoff
DEFAULT_TIMEOUT_S = 60.0  # one S3 request, all its attempts together (--s3-timeout, spec s3Timeout)
MAX_CONNECT_TIMEOUT_S = 5.0
# Each attempt may take a quarter of the timeout: three attempts, and a quarter left for botocore's
# jittered backoff between them (at most a few seconds), so a request that never gets an answer
# fails within the timeout.
ATTEMPT_SHARE = 1 / (MAX_ATTEMPTS + 1)
_URL_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_FILE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class StorageError(Exception):
    """An S3 or local storage failure the user can act on; str() is one line."""


class UnusableModelError(StorageError):
    """The store answered, but what it holds is no usable model: a malformed latest.json, a pointer to a
    missing object, an object whose SHA-256 does not match."""


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str  # normalised: no leading, trailing or doubled "/"; "" for the bucket root
    is_prefix: bool  # the URI ended with "/" (or named the bucket root)

    def uri(self, key: str | None = None) -> str:
        return f"s3://{self.bucket}/{self.key if key is None else key}"

    def join(self, *parts: str) -> str:
        return "/".join(p for p in (self.key, *parts) if p)


def is_s3_uri(value: str) -> bool:
    return isinstance(value, str) and value.startswith("s3://")


def check_location(value: str, what: str) -> str:
    """A local path or an s3:// URI; any other URL scheme (ftp://, http://, gs://) raises
    StorageError instead of becoming a local directory named after the scheme."""
    if not isinstance(value, str) or not value.strip():
        raise StorageError(f"{what}: must not be empty")
    if "\0" in value or len(value) > 4096:
        raise StorageError(f"{what}: {value[:60]!r} is not a usable path")
    if is_s3_uri(value):
        parse_s3_uri(value)
    elif _URL_SCHEME_RE.match(value):
        scheme = value.split("://", 1)[0]
        raise StorageError(
            f"{what}: unsupported scheme {scheme}:// (only local paths and s3://bucket/prefix/ are supported)"
        )
    return value


class _Timeout:
    """The time one S3 request may take, all attempts together; set once per command."""

    seconds = DEFAULT_TIMEOUT_S


def set_timeout(seconds: float | None) -> None:
    """Bound every later S3 request to about `seconds` (None: the default)."""
    if seconds is None:
        _Timeout.seconds = DEFAULT_TIMEOUT_S
        return
    if not (isinstance(seconds, int | float) and 1 <= seconds <= 3600):
        raise StorageError(f"S3 timeout: must be from 1 to 3600 seconds, got {seconds!r}")
    _Timeout.seconds = float(seconds)


def _attempt_timeout() -> float:
    return max(0.25, _Timeout.seconds * ATTEMPT_SHARE)


def parse_s3_uri(uri: str) -> S3Location:
    """Split and validate `s3://bucket/key...`; raise StorageError naming what is wrong."""
    if not is_s3_uri(uri):
        raise StorageError(f"{uri!r}: not an S3 URI (expected s3://bucket/prefix/)")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in uri):
        raise StorageError(f"{uri!r}: contains control characters")
    bucket, _, key = uri[len("s3://") :].partition("/")
    _check_bucket_name(uri, bucket)
    segments = [s for s in key.split("/") if s]
    if any(s in (".", "..") for s in segments):
        raise StorageError(f"{uri}: '.' and '..' are not allowed in S3 keys")
    normalised = "/".join(segments)
    if len(normalised.encode()) > 900:  # leaves room for "/<run-id>/checkpoints/<name>" under 1024
        raise StorageError(f"{uri}: the key is too long")
    return S3Location(bucket, normalised, is_prefix=key.endswith("/") or not normalised)


def _check_bucket_name(uri: str, bucket: str) -> None:
    if not bucket:
        raise StorageError(f"{uri}: the bucket name is empty")
    problem = None
    if not _BUCKET_RE.fullmatch(bucket):
        problem = "3-63 lowercase letters, digits, '.' or '-', starting and ending with a letter or digit"
    elif ".." in bucket or ".-" in bucket or "-." in bucket:
        problem = "no '..', '.-' or '-.'"
    elif bucket.startswith(("xn--", "sthree-")) or bucket.endswith(("-s3alias", "--ol-s3")):
        problem = "reserved prefix or suffix"
    else:
        try:
            ipaddress.IPv4Address(bucket)
            problem = "must not look like an IP address"
        except ValueError:
            pass
    if problem:
        raise StorageError(f"{uri}: {bucket!r} is not a valid bucket name ({problem})")


def _output_location(output: str) -> S3Location:
    location = parse_s3_uri(output)
    return S3Location(location.bucket, location.key, is_prefix=True)


def _check_run_id(run_id: str) -> str:
    try:
        return check_name(run_id, "run id")
    except ValueError as err:
        raise StorageError(str(err)) from None


# ---------------------------------------------------------------------------------------------
# Talking to S3


def _client():
    import boto3
    from botocore.config import Config

    per_attempt = _attempt_timeout()
    config = Config(
        retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS},
        connect_timeout=min(MAX_CONNECT_TIMEOUT_S, per_attempt),
        read_timeout=per_attempt,
    )
    return boto3.session.Session().client("s3", config=config)


def _endpoint(client) -> str:
    return client.meta.endpoint_url if client is not None else "S3"


@contextmanager
def _s3_errors(action: str, uri: str, client=None) -> Iterator[None]:
    """Turn boto3/botocore/OS exceptions into a one-line StorageError."""
    try:
        yield
    except StorageError:
        raise
    except Exception as err:  # noqa: BLE001 - every failure becomes one line
        raise StorageError(_describe_error(err, action, uri, client)) from err


def _root_cause(err: BaseException) -> BaseException:
    import boto3.exceptions

    while isinstance(err, boto3.exceptions.S3TransferFailedError | boto3.exceptions.S3UploadFailedError) and (
        err.__cause__ or err.__context__
    ):
        err = err.__cause__ or err.__context__
    return err


def _describe_error(err: BaseException, action: str, uri: str, client) -> str:
    from botocore import exceptions as bce

    err = _root_cause(err)
    where = f"{action} {uri}"
    if isinstance(err, bce.ClientError):
        error = err.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code == "NoSuchBucket":
            return f"{where}: bucket {uri[5:].split('/')[0]!r} does not exist"
        if (
            code
            in (
                "AccessDenied",
                "403",
                "AllAccessDisabled",
                "InvalidAccessKeyId",
                "SignatureDoesNotMatch",
                "ExpiredToken",
                "InvalidToken",
            )
            or status == 403
        ):
            return f"{where}: access denied ({code or status}); check the credentials and the bucket policy"
        if code in ("NoSuchKey", "404", "NotFound") or status == 404:
            return f"{where}: no such object"
        message = error.get("Message") or ""
        return f"{where}: S3 error {code or status}" + (f": {message}" if message else "")
    if isinstance(err, bce.NoCredentialsError | bce.PartialCredentialsError):
        return (
            f"{where}: no usable AWS credentials (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
            "AWS_PROFILE, or use an instance or pod role)"
        )
    for kind, what in (
        (bce.ConnectTimeoutError, "connection timed out"),
        (bce.ReadTimeoutError, "read timed out"),
        (bce.EndpointConnectionError, "could not connect"),
        (bce.ConnectionClosedError, "connection closed"),
        (bce.HTTPClientError, "connection failed"),
    ):
        if isinstance(err, kind):
            endpoint = _endpoint(client)
            return (
                f"{where}: cannot reach the S3 endpoint {endpoint} ({what} after {MAX_ATTEMPTS} attempts "
                f"of {_attempt_timeout():g} s; --s3-timeout sets the limit)"
            )
    if isinstance(err, OSError) and err.filename:
        return f"{where}: {err.strerror or 'I/O error'}: {err.filename}"
    return f"{where}: {type(err).__name__}: {_one_line(err)}"


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text[:300] or type(err).__name__


def _sha256_of(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _upload_verified(client, local_path: Path, location: S3Location, key: str, action: str) -> tuple[str, int]:
    """Upload with the SHA-256 as metadata, then HEAD the object to confirm it landed whole."""
    from boto3.s3.transfer import TransferConfig

    uri = location.uri(key)
    with _s3_errors(action, uri, client):
        digest, size = _sha256_of(local_path)
        transfer = TransferConfig(
            multipart_threshold=MULTIPART_CHUNK_BYTES,
            multipart_chunksize=MULTIPART_CHUNK_BYTES,
            max_concurrency=4,
        )
        client.upload_file(
            str(local_path),
            location.bucket,
            key,
            Config=transfer,
            ExtraArgs={"Metadata": {SHA256_METADATA_KEY: digest}, "ContentType": "application/octet-stream"},
        )
        head = client.head_object(Bucket=location.bucket, Key=key)
    if head.get("ContentLength") != size or head.get("Metadata", {}).get(SHA256_METADATA_KEY) != digest:
        raise StorageError(f"{action} {uri}: the uploaded object does not match {local_path} (size or sha256)")
    return digest, size


def publish_model(local_path: Path, output: str, run_id: str) -> str:
    """Upload the model to `<output>/<run-id>/cluster_agent.pt`, then point `<output>/latest.json` at it.

    Returns the S3 URI of the model. The pointer is written last, so readers never see a partial model.
    """
    uploaded = upload_model(local_path, output, run_id)
    point_latest(output, uploaded)
    return uploaded.uri


@dataclass(frozen=True)
class UploadedModel:
    """A model object under an output prefix, as `latest.json` describes it."""

    run_id: str
    key: str
    sha256: str
    size: int
    uri: str


def upload_model(local_path: Path, output: str, run_id: str, folder: str | None = None) -> UploadedModel:
    """Upload the model to `<output>/<run-id>/cluster_agent.pt` (verified), leaving `latest.json` as it is.

    `folder` (NOT_PROMOTED_DIR) puts it one level down, `<output>/<run-id>/<folder>/cluster_agent.pt`:
    a model that is not promoted must not replace the object latest.json names when a run name
    comes back (a nightly job's)."""
    location = _output_location(output)
    run_id = _check_run_id(run_id)
    key = location.join(run_id, folder or "", MODEL_FILE_NAME)
    digest, size = _upload_verified(_client(), Path(local_path), location, key, "uploading the model to")
    return UploadedModel(run_id, key, digest, size, location.uri(key))


def point_latest(output: str, model: UploadedModel) -> str:
    """Make `<output>/latest.json` name an uploaded model (S3 replaces the object whole); returns its URI."""
    location = _output_location(output)
    pointer = {
        "run_id": model.run_id,
        "key": model.key,
        "sha256": model.sha256,
        "size": model.size,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    pointer_key = location.join(POINTER_FILE_NAME)
    client = _client()
    with _s3_errors("writing", location.uri(pointer_key), client):
        client.put_object(
            Bucket=location.bucket,
            Key=pointer_key,
            ContentType="application/json",
            Body=json.dumps(pointer, indent=2).encode() + b"\n",
        )
    return location.uri(pointer_key)


def model_key(output: str, run_id: str) -> str:
    """The key of a run's model under `output`: `<prefix>/<run-id>/cluster_agent.pt`."""
    return _output_location(output).join(_check_run_id(run_id), MODEL_FILE_NAME)


def latest_key(output: str) -> str | None:
    """The key `<output>/latest.json` names; None when there is none. UnusableModelError when it is malformed."""
    location = _output_location(output)
    pointer = _read_pointer(_client(), location, location.key)
    return pointer["key"] if pointer is not None else None


def pointer_uri(output: str) -> str:
    """The URI of `<output>/latest.json`."""
    location = _output_location(output)
    return location.uri(location.join(POINTER_FILE_NAME))


def upload_checkpoint(local_path: Path, output: str, run_id: str) -> str:
    """Upload a checkpoint to `<output>/<run-id>/checkpoints/<file name>`; returns its S3 URI."""
    location = _output_location(output)
    run_id = _check_run_id(run_id)
    name = Path(local_path).name
    if not _FILE_NAME_RE.fullmatch(name) or ".." in name:
        raise StorageError(f"{local_path}: checkpoint file name is not safe as an S3 key")
    key = location.join(run_id, CHECKPOINTS_DIR, name)
    _upload_verified(_client(), Path(local_path), location, key, "uploading the checkpoint to")
    return location.uri(key)


def latest_checkpoint(output: str, run_id: str, dest_dir: Path) -> Path | None:
    """Download the newest checkpoint of `run_id` into `dest_dir` (verified); None if the run has none."""
    location = _output_location(output)
    run_id = _check_run_id(run_id)
    prefix = location.join(run_id, CHECKPOINTS_DIR) + "/"
    client = _client()
    newest = None
    with _s3_errors("listing checkpoints in", location.uri(prefix), client):
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=location.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                name = obj["Key"][len(prefix) :]
                if "/" in name or not name.endswith(".pt") or not _FILE_NAME_RE.fullmatch(name):
                    continue
                # S3 times have one-second resolution; names break ties (trainers number them).
                if newest is None or (obj["LastModified"], obj["Key"]) > (
                    newest["LastModified"],
                    newest["Key"],
                ):
                    newest = obj
    if newest is None:
        return None
    name = newest["Key"][len(prefix) :]
    return _download_verified(
        client, location, newest["Key"], Path(dest_dir) / name, expected_sha256=None, require_metadata=True
    )


def _download_verified(
    client, location: S3Location, key: str, dest: Path, expected_sha256: str | None, require_metadata: bool
) -> Path:
    """GET `key` into `dest` through the atomic-write helper; check its SHA-256 against the expected
    value and the object's own metadata; the file appears only when it matches."""
    from rl.files import atomic_file  # importing `rl` loads the simulator: only when downloading

    uri = location.uri(key)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(dest) as fh:
            with _s3_errors("downloading", uri, client):
                response = client.get_object(Bucket=location.bucket, Key=key)
                recorded = response.get("Metadata", {}).get(SHA256_METADATA_KEY)
                if require_metadata and not recorded:
                    raise StorageError(
                        f"downloading {uri}: the object has no sha256 metadata "
                        "(not uploaded by cluster-rl); refusing to use it unverified"
                    )
                digest = hashlib.sha256()
                for chunk in response["Body"].iter_chunks(1024 * 1024):
                    digest.update(chunk)
                    fh.write(chunk)
            actual = digest.hexdigest()
            for expected in (expected_sha256, recorded):
                if expected and expected != actual:
                    raise UnusableModelError(
                        f"downloading {uri}: sha256 mismatch (expected {expected[:12]}..., got "
                        f"{actual[:12]}...); the object is corrupt or was replaced"
                    )
    except OSError as err:
        raise StorageError(f"downloading {uri}: cannot write to {dest.parent}: {err.strerror or err}") from None
    return dest


def _read_pointer(client, location: S3Location, prefix_key: str) -> dict | None:
    """The parsed `latest.json` under `prefix_key`, or None when there is none."""
    from botocore.exceptions import ClientError

    pointer_key = "/".join(p for p in (prefix_key, POINTER_FILE_NAME) if p)
    uri = location.uri(pointer_key)
    with _s3_errors("reading", uri, client):
        try:
            body = client.get_object(Bucket=location.bucket, Key=pointer_key)["Body"].read(64 * 1024)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
    try:
        pointer = json.loads(body)
        key, sha256 = pointer["key"], pointer["sha256"]
    except RecursionError:
        raise StorageError(f"{uri}: not a valid model pointer (JSON nested too deeply)") from None
    except (ValueError, KeyError, TypeError):
        raise UnusableModelError(f"{uri}: not a valid model pointer (expected JSON with 'key' and 'sha256')") from None
    if not isinstance(key, str) or not key or not isinstance(sha256, str) or not _SHA256_RE.fullmatch(sha256):
        raise UnusableModelError(f"{uri}: not a valid model pointer ('key' or 'sha256' is malformed)")
    return pointer


def _head_or_none(client, location: S3Location, key: str) -> dict | None:
    from botocore.exceptions import ClientError

    with _s3_errors("looking up", location.uri(key), client):
        try:
            return client.head_object(Bucket=location.bucket, Key=key)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return None
            raise


def _cached(cache_dir: Path, sha256: str) -> Path | None:
    path = cache_dir / f"{sha256}.pt"
    if path.is_file() and _sha256_of(path)[0] == sha256:
        return path
    return None


def resolve_model(ref: str, home: Path) -> Path:
    """A local model file for `ref`: a local path, an S3 object URI, or an S3 prefix holding latest.json.

    S3 models are cached under `home/models/s3-cache/<sha256>.pt` and only downloaded when the cache
    lacks a file with that SHA-256. A missing local file raises FileNotFoundError (a model problem,
    exit code 3); everything S3 raises StorageError (exit code 4).
    """
    if not is_s3_uri(ref):
        path = Path(ref).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"model file not found: {ref}")
        return path
    location = parse_s3_uri(ref)
    cache_dir = Path(home) / "models" / "s3-cache"
    client = _client()
    key, expected = None, None
    if not location.is_prefix:
        head = _head_or_none(client, location, location.key)
        if head is not None:
            key = location.key
            expected = head.get("Metadata", {}).get(SHA256_METADATA_KEY)
            if expected and not _SHA256_RE.fullmatch(expected):
                raise StorageError(f"{ref}: the object's sha256 metadata is malformed")
    if key is None:
        pointer = _read_pointer(client, location, location.key)
        if pointer is None:
            what = (
                "no latest.json under this prefix"
                if location.is_prefix
                else "no such object and no latest.json under it"
            )
            raise StorageError(f"{ref}: {what} (nothing published there yet?)")
        key, expected = pointer["key"], pointer["sha256"]
    if expected and (hit := _cached(cache_dir, expected)):
        return hit
    if expected:
        return _download_verified(client, location, key, cache_dir / f"{expected}.pt", expected, False)
    # An object uploaded by other tools, without our metadata: hash it on the way in.
    scratch = _download_verified(client, location, key, cache_dir / f".unverified-{os.getpid()}.pt", None, False)
    digest, _ = _sha256_of(scratch)
    final = cache_dir / f"{digest}.pt"
    os.replace(scratch, final)
    return final


def current_model(output: str, home: Path) -> tuple[Path, str] | None:
    """The model `<output>/latest.json` names, as a verified local file (cached like `resolve_model`)
    and its S3 URI; None when nothing was published there yet.

    UnusableModelError when latest.json is malformed, names an object that does not exist, or one
    whose SHA-256 differs; StorageError when S3 cannot be read (endpoint, credentials, permissions).
    """
    location = _output_location(output)
    client = _client()
    pointer = _read_pointer(client, location, location.key)
    if pointer is None:
        return None
    key, expected = pointer["key"], pointer["sha256"]
    uri = location.uri(key)
    if (hit := _cached(Path(home) / "models" / "s3-cache", expected)) is not None:
        return hit, uri
    if _head_or_none(client, location, key) is None:
        raise UnusableModelError(f"{pointer_uri(output)} names {uri}, which does not exist")
    return _download_verified(
        client, location, key, Path(home) / "models" / "s3-cache" / f"{expected}.pt", expected, False
    ), uri


def upload_report(data: bytes, uri: str, content_type: str = "application/json") -> str:
    """Write a report to an S3 object URI (a key ending in '/' gets `report.json`)."""
    location = parse_s3_uri(uri)
    key = location.join("report.json") if location.is_prefix else location.key
    client = _client()
    with _s3_errors("writing the report to", location.uri(key), client):
        client.put_object(Bucket=location.bucket, Key=key, ContentType=content_type, Body=data)
    return location.uri(key)
