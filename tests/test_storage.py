"""Models and checkpoints on S3, against a real moto server on 127.0.0.1 (see tests/s3_server.py)."""

import hashlib
import json
import os
from pathlib import Path

import pytest
from s3_server import FaultyLink, MotoProcess, MotoServer, free_port, s3_environment

from entrypoint import storage
from entrypoint.storage import (
    NOT_PROMOTED_DIR,
    StorageError,
    UnusableModelError,
    current_model,
    is_s3_uri,
    latest_checkpoint,
    latest_key,
    model_key,
    parse_s3_uri,
    point_latest,
    publish_model,
    resolve_model,
    upload_checkpoint,
    upload_model,
)

BUCKET = "models-bucket"
OUTPUT = f"s3://{BUCKET}/cluster-agent/"


@pytest.fixture(scope="module")
def moto_server():
    with MotoServer() as server:
        yield server


class S3:
    """What a test needs: the server, its own boto3 client (not the code under test's), a bucket."""

    def __init__(self, server, tmp_path):
        import boto3

        self.server = server
        self.client = boto3.client(
            "s3",
            endpoint_url=server.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        self.tmp_path = tmp_path

    def body(self, key: str) -> bytes:
        return self.client.get_object(Bucket=BUCKET, Key=key)["Body"].read()

    def pointer(self) -> dict:
        return json.loads(self.body("cluster-agent/latest.json"))

    def keys(self) -> list[str]:
        return [o["Key"] for o in self.client.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


@pytest.fixture
def s3(moto_server, tmp_path, monkeypatch):
    moto_server.enforce_iam(False)
    moto_server.reset()
    for name, value in s3_environment(moto_server.url, tmp_path).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    helper = S3(moto_server, tmp_path)
    helper.client.create_bucket(Bucket=BUCKET)
    return helper


def model_file(tmp_path: Path, name: str, size: int, seed: int = 0) -> Path:
    path = tmp_path / name
    path.write_bytes(hashlib.sha256(bytes([seed])).digest() * (size // 32) + bytes(size % 32))
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(directory: Path) -> list[str]:
    return [p.name for p in directory.rglob("*") if p.name.endswith(".part") or p.name.startswith(".")]


# --------------------------------------------------------------------------------------------- URIs


def test_parse_s3_uri_normalises_the_key():
    location = parse_s3_uri("s3://my-models//cluster-agent//nightly/")
    assert (location.bucket, location.key, location.is_prefix) == ("my-models", "cluster-agent/nightly", True)
    assert parse_s3_uri("s3://my-models").is_prefix
    model = parse_s3_uri("s3://my.models/run-1/cluster_agent.pt")
    assert (model.key, model.is_prefix) == ("run-1/cluster_agent.pt", False)


@pytest.mark.parametrize(
    "uri, problem",
    [
        ("s3://", "bucket name is empty"),
        ("s3:///models/", "bucket name is empty"),
        ("s3://My-Models/x", "not a valid bucket name"),
        ("s3://ab/x", "not a valid bucket name"),
        ("s3://my..models/x", "no '..'"),
        ("s3://models-/x", "not a valid bucket name"),
        ("s3://192.168.1.10/x", "IP address"),
        ("s3://xn--models/x", "reserved"),
        ("s3://models/a/../b", "'..' are not allowed"),
        ("s3://models/a\nb", "control characters"),
        ("https://models/x", "not an S3 URI"),
    ],
)
def test_parse_s3_uri_rejects_bad_uris_in_one_line(uri, problem):
    with pytest.raises(StorageError, match=problem) as err:
        parse_s3_uri(uri)
    assert "\n" not in str(err.value)


def test_is_s3_uri():
    assert is_s3_uri("s3://bucket/x")
    assert not is_s3_uri("/models/s3://x")
    assert not is_s3_uri("S3://bucket")


def test_unsafe_run_id_is_refused_before_any_request(tmp_path):
    model = model_file(tmp_path, "m.pt", 100)
    with pytest.raises(StorageError, match="run id: '../etc' is not a valid name"):
        publish_model(model, OUTPUT, "../etc")
    with pytest.raises(StorageError, match="run id"):
        upload_checkpoint(model, OUTPUT, "a/b")


# --------------------------------------------------------------------------------------------- publish


def test_endpoint_comes_from_aws_endpoint_url(s3):
    assert storage._client().meta.endpoint_url == s3.server.url


def test_publish_uploads_a_verified_model_then_the_pointer(s3):
    model = model_file(s3.tmp_path, "cluster_agent.pt", 9 * 1024 * 1024 + 5)  # multipart: > 8 MiB
    uri = publish_model(model, OUTPUT, "run-1")
    assert uri == f"s3://{BUCKET}/cluster-agent/run-1/cluster_agent.pt"
    assert s3.body("cluster-agent/run-1/cluster_agent.pt") == model.read_bytes()
    head = s3.client.head_object(Bucket=BUCKET, Key="cluster-agent/run-1/cluster_agent.pt")
    assert head["Metadata"]["sha256"] == sha256(model)
    pointer = s3.pointer()
    assert pointer["run_id"] == "run-1"
    assert pointer["key"] == "cluster-agent/run-1/cluster_agent.pt"
    assert (pointer["sha256"], pointer["size"]) == (sha256(model), model.stat().st_size)
    assert pointer["created"].endswith("+00:00")


def test_publish_to_the_bucket_root(s3):
    model = model_file(s3.tmp_path, "m.pt", 1000)
    assert publish_model(model, f"s3://{BUCKET}", "r1") == f"s3://{BUCKET}/r1/cluster_agent.pt"
    assert json.loads(s3.body("latest.json"))["key"] == "r1/cluster_agent.pt"


def test_second_publish_moves_the_pointer(s3):
    publish_model(model_file(s3.tmp_path, "a.pt", 1000, seed=1), OUTPUT, "run-1")
    second = model_file(s3.tmp_path, "b.pt", 2000, seed=2)
    publish_model(second, OUTPUT, "run-2")
    assert s3.pointer()["run_id"] == "run-2"
    assert s3.pointer()["sha256"] == sha256(second)


def test_upload_model_leaves_latest_json_until_it_is_pointed_at(s3):
    publish_model(model_file(s3.tmp_path, "a.pt", 1000, seed=1), OUTPUT, "run-1")
    before = s3.pointer()
    second = model_file(s3.tmp_path, "b.pt", 2000, seed=2)
    uploaded = upload_model(second, OUTPUT, "run-2")
    assert uploaded.uri == f"s3://{BUCKET}/cluster-agent/run-2/cluster_agent.pt" and uploaded.sha256 == sha256(second)
    assert s3.pointer() == before  # not promoted: the default stays
    aside = upload_model(second, OUTPUT, "run-1", NOT_PROMOTED_DIR)
    assert aside.key == "cluster-agent/run-1/not-promoted/cluster_agent.pt"
    assert latest_key(OUTPUT) == model_key(OUTPUT, "run-1") == "cluster-agent/run-1/cluster_agent.pt"
    assert point_latest(OUTPUT, uploaded) == f"s3://{BUCKET}/cluster-agent/latest.json"
    assert s3.pointer()["key"] == "cluster-agent/run-2/cluster_agent.pt" and s3.pointer()["sha256"] == sha256(second)


def test_current_model_is_what_latest_json_names_or_none(s3):
    home = s3.tmp_path / "home"
    assert current_model(OUTPUT, home) is None and latest_key(OUTPUT) is None  # nothing published yet
    model = model_file(s3.tmp_path, "m.pt", 5000)
    uri = publish_model(model, OUTPUT, "run-1")
    path, location = current_model(OUTPUT, home)
    assert location == uri and path.read_bytes() == model.read_bytes()


def test_a_current_model_that_cannot_be_used_is_unusable_not_unreachable(s3):
    """A malformed pointer, a pointer to nothing, a swapped object: the store answered, its content is bad."""
    home = s3.tmp_path / "home"
    s3.client.put_object(Bucket=BUCKET, Key="cluster-agent/latest.json", Body=b"\x00garbage")
    with pytest.raises(UnusableModelError, match="not a valid model pointer"):
        current_model(OUTPUT, home)
    model = model_file(s3.tmp_path, "m.pt", 5000)
    publish_model(model, OUTPUT, "run-1")
    s3.client.delete_object(Bucket=BUCKET, Key="cluster-agent/run-1/cluster_agent.pt")
    with pytest.raises(
        UnusableModelError, match="names s3://models-bucket/cluster-agent/run-1/cluster_agent.pt, which"
    ):
        current_model(OUTPUT, home)
    s3.client.put_object(Bucket=BUCKET, Key="cluster-agent/run-1/cluster_agent.pt", Body=b"swapped")
    with pytest.raises(UnusableModelError, match="sha256 mismatch"):
        current_model(OUTPUT, home)


# --------------------------------------------------------------------------------------------- resolve


def test_resolve_model_from_a_prefix_downloads_the_latest_into_the_cache(s3):
    model = model_file(s3.tmp_path, "m.pt", 300_000)
    publish_model(model, OUTPUT, "run-1")
    home = s3.tmp_path / "home"
    path = resolve_model(OUTPUT, home)
    assert path == home / "models" / "s3-cache" / f"{sha256(model)}.pt"
    assert path.read_bytes() == model.read_bytes()
    assert leftovers(home) == []
    # without the trailing slash, the prefix is found through its latest.json as well
    assert resolve_model(OUTPUT.rstrip("/"), home) == path


def test_resolve_model_from_an_object_uri(s3):
    model = model_file(s3.tmp_path, "m.pt", 4096)
    uri = publish_model(model, OUTPUT, "run-1")
    path = resolve_model(uri, s3.tmp_path / "home")
    assert path.read_bytes() == model.read_bytes()
    assert path.name == f"{sha256(model)}.pt"


def test_cached_model_is_not_downloaded_again(s3):
    model = model_file(s3.tmp_path, "m.pt", 50_000)
    publish_model(model, OUTPUT, "run-1")
    home = s3.tmp_path / "home"
    first = resolve_model(OUTPUT, home)
    # the object is gone: only the pointer remains, so a second download would fail
    s3.client.delete_object(Bucket=BUCKET, Key="cluster-agent/run-1/cluster_agent.pt")
    assert resolve_model(OUTPUT, home) == first
    assert first.read_bytes() == model.read_bytes()


def test_corrupt_cache_file_is_downloaded_again(s3):
    model = model_file(s3.tmp_path, "m.pt", 50_000)
    publish_model(model, OUTPUT, "run-1")
    home = s3.tmp_path / "home"
    cached = resolve_model(OUTPUT, home)
    cached.write_bytes(b"truncated")
    assert resolve_model(OUTPUT, home).read_bytes() == model.read_bytes()


def test_tampered_object_fails_the_sha256_check_and_leaves_nothing(s3):
    model = model_file(s3.tmp_path, "m.pt", 50_000)
    publish_model(model, OUTPUT, "run-1")
    key = "cluster-agent/run-1/cluster_agent.pt"
    s3.client.put_object(
        Bucket=BUCKET, Key=key, Body=b"not the model", Metadata={"sha256": sha256(model)}
    )  # metadata copied, content swapped
    home = s3.tmp_path / "home"
    with pytest.raises(StorageError, match="sha256 mismatch") as err:
        resolve_model(OUTPUT, home)
    assert "\n" not in str(err.value)
    assert list((home / "models" / "s3-cache").iterdir()) == []


def test_object_without_our_metadata_is_hashed_and_cached(s3):
    s3.client.put_object(Bucket=BUCKET, Key="foreign/model.pt", Body=b"weights from elsewhere")
    path = resolve_model(f"s3://{BUCKET}/foreign/model.pt", s3.tmp_path / "home")
    assert path.name == hashlib.sha256(b"weights from elsewhere").hexdigest() + ".pt"
    assert path.read_bytes() == b"weights from elsewhere"
    assert leftovers(s3.tmp_path / "home") == []


def test_prefix_without_latest_json(s3):
    with pytest.raises(StorageError, match="no latest.json under this prefix"):
        resolve_model(f"s3://{BUCKET}/nothing-here/", s3.tmp_path / "home")
    with pytest.raises(StorageError, match="no such object and no latest.json"):
        resolve_model(f"s3://{BUCKET}/nothing-here", s3.tmp_path / "home")


def test_malformed_pointer_is_refused(s3):
    s3.client.put_object(
        Bucket=BUCKET,
        Key="cluster-agent/latest.json",
        Body=json.dumps({"key": "x", "sha256": "../../etc/passwd"}).encode(),
    )
    with pytest.raises(StorageError, match="not a valid model pointer"):
        resolve_model(OUTPUT, s3.tmp_path / "home")


def test_local_model_paths(tmp_path):
    model = model_file(tmp_path, "m.pt", 10)
    assert resolve_model(str(model), tmp_path / "home") == model
    with pytest.raises(FileNotFoundError, match="model file not found: .*absent.pt"):
        resolve_model(str(tmp_path / "absent.pt"), tmp_path / "home")


# --------------------------------------------------------------------------------------------- checkpoints


def test_checkpoints_round_trip_newest_first(s3):
    assert latest_checkpoint(OUTPUT, "run-1", s3.tmp_path / "restore") is None
    first = model_file(s3.tmp_path, "step_000100.pt", 1000, seed=1)
    second = model_file(s3.tmp_path, "step_000200.pt", 1000, seed=2)
    assert upload_checkpoint(first, OUTPUT, "run-1") == f"{OUTPUT}run-1/checkpoints/step_000100.pt"
    upload_checkpoint(second, OUTPUT, "run-1")
    upload_checkpoint(model_file(s3.tmp_path, "other.pt", 10, seed=3), OUTPUT, "run-2")
    restored = latest_checkpoint(OUTPUT, "run-1", s3.tmp_path / "restore")
    assert restored == s3.tmp_path / "restore" / "step_000200.pt"
    assert restored.read_bytes() == second.read_bytes()
    assert leftovers(s3.tmp_path / "restore") == []
    assert "cluster-agent/latest.json" not in s3.keys()  # checkpoints never move the pointer


def test_tampered_checkpoint_is_refused(s3):
    checkpoint = model_file(s3.tmp_path, "step_1.pt", 1000)
    upload_checkpoint(checkpoint, OUTPUT, "run-1")
    s3.client.put_object(
        Bucket=BUCKET,
        Key="cluster-agent/run-1/checkpoints/step_1.pt",
        Body=b"x" * 1000,
        Metadata={"sha256": sha256(checkpoint)},
    )
    with pytest.raises(StorageError, match="sha256 mismatch"):
        latest_checkpoint(OUTPUT, "run-1", s3.tmp_path / "restore")
    assert list((s3.tmp_path / "restore").iterdir()) == []


def test_checkpoint_without_metadata_is_refused(s3):
    s3.client.put_object(Bucket=BUCKET, Key="cluster-agent/run-1/checkpoints/step_1.pt", Body=b"x")
    with pytest.raises(StorageError, match="no sha256 metadata"):
        latest_checkpoint(OUTPUT, "run-1", s3.tmp_path / "restore")


# --------------------------------------------------------------------------------------------- failures


def test_missing_bucket(s3):
    model = model_file(s3.tmp_path, "m.pt", 100)
    with pytest.raises(StorageError, match="bucket 'no-such-bucket' does not exist") as err:
        publish_model(model, "s3://no-such-bucket/models/", "run-1")
    assert "\n" not in str(err.value)
    with pytest.raises(StorageError, match="does not exist"):
        resolve_model("s3://no-such-bucket/models/", s3.tmp_path / "home")
    with pytest.raises(StorageError, match="does not exist"):
        latest_checkpoint("s3://no-such-bucket/models/", "run-1", s3.tmp_path / "restore")


def test_access_denied(s3, monkeypatch):
    import boto3

    model = model_file(s3.tmp_path, "m.pt", 100)
    publish_model(model, OUTPUT, "run-1")
    iam = boto3.client(
        "iam",
        endpoint_url=s3.server.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    iam.create_user(UserName="reader-of-nothing")
    iam.put_user_policy(
        UserName="reader-of-nothing",
        PolicyName="list-only",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}],
            }
        ),
    )
    key = iam.create_access_key(UserName="reader-of-nothing")["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    s3.server.enforce_iam(True)
    try:
        with pytest.raises(StorageError, match="access denied") as err:
            publish_model(model, OUTPUT, "run-2")
        assert "\n" not in str(err.value)
        with pytest.raises(StorageError, match="access denied"):
            resolve_model(OUTPUT, s3.tmp_path / "home")
        with pytest.raises(StorageError, match="access denied") as err:  # no comparison possible: not "unusable"
            current_model(OUTPUT, s3.tmp_path / "home")
        assert not isinstance(err.value, UnusableModelError)
    finally:
        s3.server.enforce_iam(False)
    assert s3.pointer()["run_id"] == "run-1"


def test_unreachable_endpoint(s3, monkeypatch):
    closed = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", closed)
    with pytest.raises(StorageError, match=f"cannot reach the S3 endpoint {closed}") as err:
        resolve_model(OUTPUT, s3.tmp_path / "home")
    assert "\n" not in str(err.value)


def test_no_credentials(s3, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(StorageError, match="no usable AWS credentials"):
        publish_model(model_file(s3.tmp_path, "m.pt", 10), OUTPUT, "run-1")


def test_link_cut_before_the_pointer_write_keeps_the_previous_pointer(s3, monkeypatch):
    good = model_file(s3.tmp_path, "good.pt", 20_000, seed=1)
    publish_model(good, OUTPUT, "run-1")
    with FaultyLink(s3.server.port, cut_before=b"latest.json") as link:
        monkeypatch.setenv("AWS_ENDPOINT_URL", link.url)
        with pytest.raises(StorageError, match=f"writing s3://{BUCKET}/cluster-agent/latest.json: cannot reach"):
            publish_model(model_file(s3.tmp_path, "new.pt", 20_000, seed=2), OUTPUT, "run-2")
        assert link.cut_done.is_set()
    assert s3.pointer()["run_id"] == "run-1"
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.server.url)
    assert resolve_model(OUTPUT, s3.tmp_path / "home").read_bytes() == good.read_bytes()


def test_link_cut_mid_upload_leaves_no_object_and_the_previous_pointer(s3, monkeypatch):
    publish_model(model_file(s3.tmp_path, "good.pt", 20_000, seed=1), OUTPUT, "run-1")
    big = model_file(s3.tmp_path, "big.pt", 20 * 1024 * 1024, seed=2)
    with FaultyLink(s3.server.port, cut_after_bytes=6 * 1024 * 1024) as link:
        monkeypatch.setenv("AWS_ENDPOINT_URL", link.url)
        with pytest.raises(StorageError, match="uploading the model to .*cannot reach the S3 endpoint") as err:
            publish_model(big, OUTPUT, "run-2")
        assert link.cut_done.is_set()
    assert "\n" not in str(err.value)
    assert "cluster-agent/run-2/cluster_agent.pt" not in s3.keys()
    assert s3.pointer()["run_id"] == "run-1"


def test_server_killed_mid_upload(tmp_path, monkeypatch):
    with MotoProcess() as server:
        for name, value in s3_environment(server.url, tmp_path).items():
            monkeypatch.setenv(name, value)
        import boto3

        boto3.client("s3", endpoint_url=server.url).create_bucket(Bucket=BUCKET)
        big = model_file(tmp_path, "big.pt", 20 * 1024 * 1024)
        with FaultyLink(server.port, cut_after_bytes=6 * 1024 * 1024, on_cut=server.kill) as link:
            monkeypatch.setenv("AWS_ENDPOINT_URL", link.url)
            with pytest.raises(StorageError, match="uploading the model to .*cannot reach the S3 endpoint") as err:
                publish_model(big, OUTPUT, "run-1")
        assert server.process.poll() is not None
    assert "\n" not in str(err.value)
    assert os.listdir(tmp_path) == ["big.pt"]


def test_unwritable_destination_is_a_storage_error(s3):
    publish_model(model_file(s3.tmp_path, "m.pt", 100), OUTPUT, "run-1")
    blocker = s3.tmp_path / "home"
    blocker.write_text("a file where the cache directory should be")
    with pytest.raises(StorageError, match="cannot write to .*home/models/s3-cache"):
        resolve_model(OUTPUT, blocker)
