#!/bin/sh
# Removes from an image's venv what cluster-rl never runs (both Dockerfiles, after `pip check`):
#   slim.sh SITE_PACKAGES
# - kubernetes/aio: the asyncio twin of the Kubernetes client (41 MB); cluster-rl uses the sync one.
# - botocore's models of AWS services other than S3 and those its credential providers call (STS for
#   assume-role and EKS web identity, SSO, SSO-OIDC, sign-in): 27 MB of 450 services' JSON.
# - TensorBoard's data server binary, web app and gRPC (grpcio, 43 MB together): the image writes
#   event files, it never serves them (run `tensorboard` where the runs are).
# (Not torchgen: torch imports it; not setuptools: pufferlib imports torch.utils.cpp_extension, which
# imports it.)
# warm.py, which runs after this, imports what a run imports, so a cut that breaks one fails the build.
set -eu
site=${1:?usage: slim.sh SITE_PACKAGES}
rm -rf "$site/kubernetes/aio" "$site/tensorboard_data_server/bin" "$site/tensorboard/webfiles.zip"
for service in "$site"/botocore/data/*/; do
    case $(basename "$service") in
    s3 | sts | sso | sso-oidc | signin) ;;
    *) rm -rf "$service" ;;
    esac
done
pip uninstall --yes --quiet grpcio
