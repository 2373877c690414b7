"""The example job specs in jobs/ are valid and run: locally, to a real S3-compatible server, and
against a (fake) real cluster, chained the way the nightly and diagnosis CronJobs chain them."""

import json
from pathlib import Path

import pytest
from conftest import ROOT, run_cli
from kube_server import FakeKubeServer, load_into, write_kubeconfig
from s3_server import MotoServer, s3_environment

JOBS = ROOT / "jobs"
FAST = ["--total-steps", "2048", "--num-envs", "64"]


@pytest.mark.parametrize("spec", sorted(p.name for p in JOBS.glob("*.yaml")))
def test_example_specs_validate(spec):
    result = run_cli("run", "--check", JOBS / spec)
    assert result.returncode == 0, result.stderr


def test_train_sim_example_runs_under_its_own_name(home, tmp_path):
    result = run_cli(
        "train", "--job", JOBS / "train-sim.yaml", *FAST, env={"CLUSTER_CODE_HOME": str(home)}, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    done = json.loads(result.stdout.splitlines()[-1])
    assert done["event"] == "done" and done["run_id"] == "train-sim"
    assert Path(done["model"]) == tmp_path / "models" / "train-sim" / "cluster_agent.pt"


def test_nightly_s3_then_diagnose_cluster_examples(home, tmp_path):
    with MotoServer() as moto:
        env = {**s3_environment(moto.url, tmp_path), "CLUSTER_CODE_HOME": str(home)}
        import boto3

        boto3.client(
            "s3",
            endpoint_url=moto.url,
            region_name="us-east-1",
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        ).create_bucket(Bucket="my-models")
        trained = run_cli("train", "--job", JOBS / "train-nightly-s3.yaml", *FAST, env=env, cwd=tmp_path)
        assert trained.returncode == 0, trained.stderr
        done = json.loads(trained.stdout.splitlines()[-1])
        assert done["model"] == "s3://my-models/cluster-agent/nightly-sim/cluster_agent.pt"

        server = FakeKubeServer().start()
        try:
            load_into(server, "healthy", "failures/crashloop.yaml")
            kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server.url, context="prod")
            # the spec looks at `default`; the broken app of this fixture lives in `shop` (flags override specs)
            diagnosed = run_cli(
                "diagnose",
                "--job",
                JOBS / "diagnose-cluster.yaml",
                "--namespace",
                "shop",
                "-o",
                "json",
                env={**env, "KUBECONFIG": str(kubeconfig)},
                cwd=tmp_path,
            )
        finally:
            server.stop()
        assert diagnosed.returncode == 0, diagnosed.stderr
        report = json.loads((tmp_path / "reports" / "diagnose-prod.json").read_text())
        assert report["mode"] == "cluster" and report["model"] == "s3://my-models/cluster-agent/"
        assert report == json.loads(diagnosed.stdout)
        assert any("CrashLoopBackOff" in f["issue"] for f in report["findings"])
        assert list((home / "models" / "s3-cache").glob("*.pt"))  # the model came down from S3, verified
