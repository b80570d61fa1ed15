#!/usr/bin/env python3
"""Check the chart's companion values files and the provider arguments the chart renders.

    chart_extras.py CHART_DIR RENDERED_DEFAULT --out FILE [--binary BIN [--args-from RENDERED]...]

- driver-values.yaml (for the Secrets Store CSI Driver chart): the settings our provider needs
  are there, and the CSIDriver object the driver chart renders from them is written to FILE.
- sync-controller-values.yaml (for the Secrets Store Sync Controller chart): the provider sidecar
  listens on unix:///provider/azure.sock in the controller's volume, with the same image and
  security context as the chart's DaemonSet (RENDERED_DEFAULT, `helm template` with defaults);
  the controller's Deployment, built as that chart builds it, is written to FILE.
- With --binary: the provider binary parses the container arguments of RENDERED_DEFAULT, of
  every --args-from render and of the sidecar (`BIN ARGS... --version` exits 0 only if every
  flag is accepted).

FILE is then validated with kubernetes-validate by the caller. Exit status 1 on any problem.
"""

import argparse
import pathlib
import subprocess
import sys

import yaml

SOCKET_ARG = "--endpoint=unix:///provider/azure.sock"
DRIVER_AUDIENCES = {"api://AzureADTokenExchange", "api://AKSIdentityBinding"}
SYNC_HOST_DIR = "/var/run/secrets-store-sync-providers"


def load(path):
    return yaml.safe_load(pathlib.Path(path).read_text())


def daemonset_container(rendered):
    for doc in yaml.safe_load_all(pathlib.Path(rendered).read_text()):
        if doc and doc.get("kind") == "DaemonSet":
            return doc["spec"]["template"]["spec"]["containers"][0]
    return None


def check_driver(values, chart_values, problems):
    audiences = {t.get("audience") for t in values.get("tokenRequests") or []}
    if not DRIVER_AUDIENCES <= audiences:
        problems.append(f"driver-values.yaml: tokenRequests must list {sorted(DRIVER_AUDIENCES)}")
    if not (values.get("syncSecret") or {}).get("enabled"):
        problems.append("driver-values.yaml: syncSecret.enabled must be true")
    if values.get("enableSecretRotation") is not True:
        problems.append("driver-values.yaml: enableSecretRotation must be true")
    if values.get("rotationPollInterval") != "2m":
        problems.append("driver-values.yaml: rotationPollInterval must be 2m")
    if (values.get("linux") or {}).get("providersDir") != chart_values["linux"]["providersDir"]:
        problems.append("driver-values.yaml: linux.providersDir differs from the chart's linux.providersDir")
    # As the driver chart's templates/csidriver.yaml renders it.
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "CSIDriver",
        "metadata": {"name": "secrets-store.csi.k8s.io"},
        "spec": {
            "podInfoOnMount": True,
            "attachRequired": False,
            "volumeLifecycleModes": ["Ephemeral"],
            "requiresRepublish": bool(values.get("enableSecretRotation")),
            "tokenRequests": values.get("tokenRequests") or [],
        },
    }


def check_sync(values, daemonset, problems):
    audiences = [t.get("audience") for t in values.get("tokenRequestAudience") or []]
    if "api://AzureADTokenExchange" not in audiences:
        problems.append("sync-controller-values.yaml: tokenRequestAudience must list api://AzureADTokenExchange")
    containers = values.get("providerContainer") or []
    providers = [c for c in containers if SOCKET_ARG in (c.get("args") or [])]
    if len(providers) != 1:
        problems.append(f"sync-controller-values.yaml: exactly one providerContainer must have {SOCKET_ARG}")
        return None, []
    sidecar = providers[0]
    if {"name": "providervol", "mountPath": "/provider"} not in [
            {k: m.get(k) for k in ("name", "mountPath")} for m in sidecar.get("volumeMounts") or []]:
        problems.append("sync-controller-values.yaml: the sidecar must mount volume providervol at /provider")
    if daemonset is not None:
        if sidecar.get("securityContext") != daemonset.get("securityContext"):
            problems.append("sync-controller-values.yaml: securityContext differs from the chart's DaemonSet:\n"
                            f"  sidecar:   {sidecar.get('securityContext')}\n"
                            f"  daemonset: {daemonset.get('securityContext')}")
        if sidecar.get("image") != daemonset.get("image"):
            problems.append(f"sync-controller-values.yaml: image {sidecar.get('image')} differs from the "
                            f"chart's default {daemonset.get('image')}")
    # As the sync controller chart's templates/secrets-store-sync-controller.yaml renders it.
    manager = {
        "name": "manager",
        "image": "registry.invalid/secrets-store-sync/controller:v0.0.4",
        "args": ["--provider-volume=/provider",
                 "--token-request-audience=" + ", ".join(audiences)],
        "volumeMounts": [{"mountPath": "/provider", "name": "providervol"}],
    }
    labels = {"control-plane": "controller-manager"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "secrets-store-sync-controller-manager", "namespace": "secrets-store-sync-controller"},
        "spec": {
            "selector": {"matchLabels": labels},
            "replicas": 1,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "containers": containers + [manager],
                    "serviceAccountName": "secrets-store-sync-controller-manager",
                    "volumes": [{"name": "providervol",
                                 "hostPath": {"path": SYNC_HOST_DIR, "type": "DirectoryOrCreate"}}],
                },
            },
        },
    }
    return deployment, sidecar.get("args") or []


def check_args(binary, label, args, problems):
    result = subprocess.run([binary, *args, "--version"], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        problems.append(f"{label}: the provider binary rejects the arguments {args}:\n{result.stderr.strip()}")
    return result.returncode == 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chart")
    parser.add_argument("rendered_default")
    parser.add_argument("--out", required=True)
    parser.add_argument("--binary")
    parser.add_argument("--args-from", action="append", default=[], metavar="RENDERED",
                        help="another render whose DaemonSet arguments --binary checks (repeatable)")
    args = parser.parse_args()
    chart = pathlib.Path(args.chart)
    problems = []
    daemonset = daemonset_container(args.rendered_default)
    if daemonset is None:
        problems.append(f"{args.rendered_default}: no DaemonSet rendered")
    csidriver = check_driver(load(chart / "driver-values.yaml"), load(chart / "values.yaml"), problems)
    deployment, sidecar_args = check_sync(load(chart / "sync-controller-values.yaml"), daemonset, problems)
    with open(args.out, "w") as out:
        yaml.safe_dump_all([d for d in (csidriver, deployment) if d], out, sort_keys=False)
    checked = 0
    if args.binary:
        runs = [("sync-controller-values.yaml", sidecar_args)]
        for rendered in [args.rendered_default, *args.args_from]:
            container = daemonset_container(rendered)
            if container:
                runs.append((rendered, container.get("args") or []))
        checked = sum(check_args(args.binary, label, a, problems) for label, a in runs)
    for problem in problems:
        print(f"ERROR - {problem}")
    print(f"{'FAILED' if problems else 'passed'}: driver-values.yaml, sync-controller-values.yaml"
          + (f", provider arguments of {checked} containers" if args.binary else ""))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
