#!/usr/bin/env python3
"""Check the chart's companion values files and the provider arguments the chart renders.

    chart_extras.py CHART_DIR RENDERED_DEFAULT --out FILE [--binary BIN [--args-from RENDERED]...]
                    [--helm HELM] [--case VALUES=RENDERED]...

- driver-values.yaml (for the Secrets Store CSI Driver chart): the settings our provider needs
  are there, and the CSIDriver object the driver chart renders from them is written to FILE.
- sync-controller-values.yaml (for the Secrets Store Sync Controller chart): the provider sidecar
  listens on unix:///provider/azure.sock in the controller's volume, with the same image and
  security context as the chart's DaemonSet (RENDERED_DEFAULT, `helm template` with defaults);
  the controller's Deployment, built as that chart builds it, is written to FILE.
- With --binary: the provider binary parses the container arguments of RENDERED_DEFAULT, of
  every --args-from render and of the sidecar (`BIN ARGS... --version` exits 0 only if every
  flag is accepted).
- Optional features (proxy.*, clientIdFromServiceAccount, sendCertificateChain, serveStaleOnError): the proxy
  environment variables, the flags and the ServiceAccount-reader ClusterRole and binding appear
  exactly when their values ask for them, in every --case render (the values file it was
  rendered from, over the chart's values.yaml) and, with --helm, in renders of a matrix of
  values made here (each feature alone, without rbac.install, linux.enabled=false), and the
  values the chart must refuse (a proxy variable set twice, windows.enabled).

FILE is then validated with kubernetes-validate by the caller. Exit status 1 on any problem.
"""

import argparse
import copy
import pathlib
import subprocess
import sys
import tempfile

import yaml

SOCKET_ARG = "--endpoint=unix:///provider/azure.sock"
DRIVER_AUDIENCES = {"api://AzureADTokenExchange", "api://AKSIdentityBinding"}
SYNC_HOST_DIR = "/var/run/secrets-store-sync-providers"
NAMESPACE = "kube-system"
PROXY_ENV = {"httpsProxy": "HTTPS_PROXY", "httpProxy": "HTTP_PROXY", "noProxy": "NO_PROXY"}
FEATURE_FLAGS = {"clientIdFromServiceAccount": "--client-id-from-service-account",
                 "sendCertificateChain": "--send-certificate-chain"}
READER_RULES = [{"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["get"]}]
RBAC_KINDS = {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
# Values layered over the chart's values.yaml and rendered with --helm: (label, values).
FEATURE_MATRIX = [
    ("defaults", {}),
    ("proxy.httpsProxy alone", {"proxy": {"httpsProxy": "http://proxy.example.com:3128"}}),
    ("proxy.* with noProxy as a string",
     {"proxy": {"httpsProxy": "http://user:pass@proxy.example.com:3128", "httpProxy": "http://proxy.example.com:80",
                "noProxy": "169.254.169.254, .svc.cluster.local"}}),
    ("proxy.noProxy as a list, with linux.env",
     {"proxy": {"noProxy": ["169.254.169.254", "10.0.0.0/16"]},
      "linux": {"env": [{"name": "AZURE_ENVIRONMENT_FILEPATH", "value": "/etc/env.json"}]}}),
    ("clientIdFromServiceAccount", {"clientIdFromServiceAccount": True}),
    ("clientIdFromServiceAccount, own ServiceAccount name",
     {"clientIdFromServiceAccount": True, "fullnameOverride": "akv", "serviceAccount": {"name": "akv-sa"}}),
    ("clientIdFromServiceAccount without rbac.install",
     {"clientIdFromServiceAccount": True, "rbac": {"install": False}, "serviceAccount": {"name": "existing-sa"}}),
    ("sendCertificateChain", {"sendCertificateChain": True}),
    ("serveStaleOnError with the recommended window", {"serveStaleOnError": "30m"}),
    ("everything, linux.enabled=false",
     {"linux": {"enabled": False}, "clientIdFromServiceAccount": True, "sendCertificateChain": True,
      "proxy": {"httpsProxy": "http://proxy.example.com:3128"}}),
]
# Values the chart must refuse: (label, values, text of the error).
FEATURE_REFUSALS = [
    ("HTTPS_PROXY in proxy.httpsProxy and linux.env",
     {"proxy": {"httpsProxy": "http://proxy.example.com:3128"},
      "linux": {"env": [{"name": "HTTPS_PROXY", "valueFrom": {"secretKeyRef": {"name": "p", "key": "url"}}}]}},
     "linux.env sets HTTPS_PROXY"),
    ("no_proxy in linux.env and proxy.noProxy",
     {"proxy": {"noProxy": "169.254.169.254"}, "linux": {"env": [{"name": "no_proxy", "value": "x"}]}},
     "linux.env sets no_proxy"),
    ("windows.enabled (no Windows image exists)", {"windows": {"enabled": True}},
     "windows.enabled: Windows nodes are not supported"),
]


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


def merge_values(base, override):
    """Helm's coalescing of a values file over the chart's defaults (null deletes a key)."""
    merged = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_values(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def expected_proxy_env(values):
    proxy = values.get("proxy") or {}
    env = []
    for key, name in PROXY_ENV.items():
        value = proxy.get(key)
        if isinstance(value, list):
            value = ",".join(value)
        if value:
            env.append({"name": name, "value": str(value)})
    return env


def check_features(label, values, docs, problems):
    """The optional features render exactly what their values ask for, and nothing otherwise."""
    def err(message):
        problems.append(f"{label}: {message}")

    docs = [d for d in docs if d]
    daemonsets = [d for d in docs if d.get("kind") == "DaemonSet"]
    rbac = [d for d in docs if d.get("kind") in RBAC_KINDS]
    linux = values.get("linux") or {}
    if not linux.get("enabled", True):
        if docs:
            err(f"linux.enabled=false must render nothing, got {[d.get('kind') for d in docs]}")
        return
    if len(daemonsets) != 1:
        err(f"expected one DaemonSet, got {len(daemonsets)}")
        return
    pod = daemonsets[0]["spec"]["template"]["spec"]
    container = pod["containers"][0]

    # Proxy variables first, exactly those set, then linux.env unchanged.
    env = container.get("env") or []
    want_env = expected_proxy_env(values) + list(linux.get("env") or [])
    if env != want_env:
        err(f"container env is {env}, expected {want_env}")
    names = [e.get("name", "").upper() for e in env]
    for name in PROXY_ENV.values():
        if names.count(name) > 1:
            err(f"{name} is set {names.count(name)} times")

    # Each feature flag appears once, as =true, exactly when its value is true.
    args = container.get("args") or []
    for key, flag in FEATURE_FLAGS.items():
        given = [a for a in args if a == flag or a.startswith(flag + "=")]
        want = [flag + "=true"] if values.get(key) is True else []
        if given != want:
            err(f"{key}={values.get(key)!r}: arguments {given}, expected {want}")
    stale = [a for a in args if a.startswith("--serve-stale-on-error")]
    want = [f"--serve-stale-on-error={values['serveStaleOnError']}"] if values.get("serveStaleOnError") else []
    if stale != want:
        err(f"serveStaleOnError={values.get('serveStaleOnError')!r}: arguments {stale}, expected {want}")

    # RBAC: the ServiceAccount reader and its binding, only with clientIdFromServiceAccount and
    # rbac.install; no other roles ever.
    install = (values.get("rbac") or {}).get("install", True)
    if not (values.get("clientIdFromServiceAccount") is True and install):
        if rbac:
            err(f"unexpected RBAC objects {[(d['kind'], d['metadata']['name']) for d in rbac]}")
        return
    roles = [d for d in rbac if d["kind"] == "ClusterRole"]
    bindings = [d for d in rbac if d["kind"] == "ClusterRoleBinding"]
    others = [d for d in rbac if d["kind"] not in ("ClusterRole", "ClusterRoleBinding")]
    if len(roles) != 1 or len(bindings) != 1 or others:
        err(f"expected one ClusterRole and one ClusterRoleBinding, got {[d['kind'] for d in rbac]}")
        return
    role, binding = roles[0], bindings[0]
    if role.get("rules") != READER_RULES:
        err(f"ClusterRole rules are {role.get('rules')}, expected {READER_RULES}")
    ref = binding.get("roleRef") or {}
    if ref != {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role["metadata"]["name"]}:
        err(f"ClusterRoleBinding roleRef {ref} does not name ClusterRole {role['metadata']['name']}")
    subject = {"kind": "ServiceAccount", "name": pod.get("serviceAccountName"), "namespace": NAMESPACE}
    if binding.get("subjects") != [subject]:
        err(f"ClusterRoleBinding subjects {binding.get('subjects')}, expected [{subject}]")
    accounts = [d["metadata"]["name"] for d in docs if d.get("kind") == "ServiceAccount"]
    if pod.get("serviceAccountName") not in accounts:
        err(f"the bound ServiceAccount {pod.get('serviceAccountName')!r} is not rendered")


def render(helm, chart, override, workdir):
    """helm template with OVERRIDE as a values file: (exit status, documents or error text)."""
    values_file = pathlib.Path(workdir) / "values.yaml"
    values_file.write_text(yaml.safe_dump(override))
    result = subprocess.run([helm, "template", "akv-csi-provider", str(chart), "--namespace", NAMESPACE,
                             "-f", str(values_file)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return result.returncode, result.stderr.strip()
    return 0, list(yaml.safe_load_all(result.stdout))


def check_feature_matrix(helm, chart, chart_values, problems):
    with tempfile.TemporaryDirectory() as workdir:
        for label, override in FEATURE_MATRIX:
            status, out = render(helm, chart, override, workdir)
            if status != 0:
                problems.append(f"feature matrix, {label}: helm template failed: {out}")
            else:
                check_features(f"feature matrix, {label}", merge_values(chart_values, override), out, problems)
        for label, override, text in FEATURE_REFUSALS:
            status, out = render(helm, chart, override, workdir)
            if status == 0 or text not in out:
                problems.append(f"feature matrix, {label}: expected helm to refuse with {text!r}, got "
                                + ("success" if status == 0 else repr(out)))
    return len(FEATURE_MATRIX) + len(FEATURE_REFUSALS)


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
    parser.add_argument("--helm", help="helm binary, to render the feature matrix")
    parser.add_argument("--case", action="append", default=[], metavar="VALUES=RENDERED",
                        help="a render and the values file it came from, for the feature checks (repeatable)")
    args = parser.parse_args()
    chart = pathlib.Path(args.chart)
    problems = []
    chart_values = load(chart / "values.yaml")
    features = 0
    for case in args.case:
        values_file, _, rendered = case.partition("=")
        if not rendered:
            parser.error(f"--case {case!r}: expected VALUES=RENDERED")
        docs = list(yaml.safe_load_all(pathlib.Path(rendered).read_text()))
        check_features(pathlib.Path(values_file).name, merge_values(chart_values, load(values_file)), docs, problems)
        features += 1
    if args.helm:
        features += check_feature_matrix(args.helm, chart, chart_values, problems)
    daemonset = daemonset_container(args.rendered_default)
    if daemonset is None:
        problems.append(f"{args.rendered_default}: no DaemonSet rendered")
    csidriver = check_driver(load(chart / "driver-values.yaml"), chart_values, problems)
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
          + (f", optional features in {features} renders" if features else "")
          + (f", provider arguments of {checked} containers" if args.binary else ""))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
