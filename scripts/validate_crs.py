#!/usr/bin/env python3
"""Validate the custom resources in Kubernetes manifests, and check the examples hang together.

    validate_crs.py [--quiet] --crds DIR --rest OUT FILE...

- SecretProviderClass and SecretSync documents (any kind with a CRD in DIR) are validated against
  the CRD's openAPIV3Schema with jsonschema, strictly: unknown fields are errors, as with
  `kubectl apply --validate=strict`. CEL rules (x-kubernetes-validations) are not evaluated.
- SecretProviderClasses must use `provider: azure`, and their parameters must be what the
  provider accepts: the `objects` YAML (an `array:` of YAML strings), object fields, identity
  mode flags, vault name, file names.
- Within each file, references must resolve: a pod volume's secretProviderClass, its
  nodePublishSecretRef (a Secret labelled secrets-store.csi.k8s.io/used=true), a pod's
  serviceAccountName, secretObjects[].data[].objectName and SecretSync sourcePath (files the
  provider would write).
- Duplicate mapping keys are errors (PyYAML, and so kubernetes-validate, silently keep the last).
- Every other document is written to OUT, for kubernetes-validate.

Exit status 1 if anything failed; each problem is printed as FILE: KIND/NAME: message.
"""

import argparse
import copy
import pathlib
import re
import sys

import jsonschema
import yaml

BOOLS = {"1", "t", "T", "true", "TRUE", "True", "0", "f", "F", "false", "FALSE", "False"}
TRUE = {"1", "t", "T", "true", "TRUE", "True"}
OBJECT_FIELDS = {"objectName", "objectType", "objectVersion", "objectAlias", "objectFormat",
                 "objectEncoding", "filePermission", "objectVersionHistory",
                 # beyond the Go provider
                 "optional", "jsonPaths", "jsonOnly", "keyvaultName"}
VAULT_NAME = re.compile(r"[-A-Za-z0-9]{3,24}")
SPC_PARAMETERS = {"keyvaultName", "tenantID", "tenantId", "cloudName", "cloudEnvFileName",
                  "usePodIdentity", "useVMManagedIdentity", "userAssignedIdentityID", "clientID",
                  "useAzureTokenProxy", "objects"}
OBJECT_META = {"name", "namespace", "labels", "annotations", "generateName", "finalizers",
               "ownerReferences"}
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
POD_TEMPLATE_KINDS = {"Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "Job"}


class UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses duplicate mapping keys (the API server does; PyYAML keeps the last)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def strict(schema):
    """The structural schema with unknown fields forbidden wherever the API server would prune."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if not isinstance(node, dict):
            return
        if (node.get("type") == "object" and "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")):
            node["additionalProperties"] = False
        for key in ("properties", "patternProperties"):
            for child in node.get(key, {}).values():
                walk(child)
        for key in ("items", "additionalProperties"):
            walk(node.get(key))
        for key in ("allOf", "anyOf", "oneOf"):
            for child in node.get(key, []):
                walk(child)

    walk(schema)
    return schema


def load_crds(directory):
    schemas = {}
    for path in sorted(pathlib.Path(directory).glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            spec = crd["spec"]
            for version in spec["versions"]:
                if version.get("served", True):
                    key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                    schemas[key] = strict(version["schema"]["openAPIV3Schema"])
    if not schemas:
        sys.exit(f"no CustomResourceDefinitions found in {directory}")
    return schemas


def check_file_name(name):
    if not name:
        return "file name must not be empty"
    if name.startswith("/"):
        return "file name must be a relative path"
    if ".." in name:
        return "file name must not contain '..'"
    if any(part in ("", ".") for part in name.split("/")):
        return "file name must not contain empty or '.' path elements"
    return None


def spc_files(spc, err):
    """Check an azure SecretProviderClass's parameters; return the file paths it would produce."""
    params = spc["spec"].get("parameters") or {}
    for key in sorted(set(params) - SPC_PARAMETERS):
        err(f"parameter {key!r} is not read by the provider (parameter names are case-sensitive)")
    name = params.get("keyvaultName", "")
    if name and not VAULT_NAME.fullmatch(name):
        err(f"keyvaultName {name!r} must match [-a-zA-Z0-9]{{3,24}}")
    if not (params.get("tenantID") or params.get("tenantId")):
        err("tenantID is not provided")
    modes = [m for m in ("usePodIdentity", "useVMManagedIdentity", "useAzureTokenProxy")
             if m in params]
    for mode in modes:
        if params[mode] not in BOOLS:
            err(f"{mode}: {params[mode]!r} is not a boolean")
    if sum(params[m] in TRUE for m in modes) > 1:
        err("only one identity mode can be enabled at a time")
    if params.get("useAzureTokenProxy") in TRUE and not params.get("clientID"):
        err("clientID is required for identity binding")
    try:
        outer = yaml.safe_load(params.get("objects", ""))
        entries = outer["array"]
        assert isinstance(entries, list)
    except Exception:  # noqa: BLE001 - any shape problem is reported the same way
        err("objects must be a YAML string holding 'array:' with a list of YAML strings")
        return set()
    files = set()
    own_vaults = 0
    for index, entry in enumerate(entries):
        where = f"objects[{index}]"
        if not isinstance(entry, str):
            err(f"{where}: each element must be a YAML string (use '- |'), not {type(entry).__name__}")
            continue
        obj = yaml.safe_load(entry)
        if not isinstance(obj, dict):
            err(f"{where}: not a YAML mapping")
            continue
        for key in sorted(set(obj) - OBJECT_FIELDS):
            err(f"{where}: unknown field {key!r} (field names are case-sensitive)")
        obj_type = obj.get("objectType")
        if obj_type not in ("secret", "key", "cert"):
            err(f"{where}: objectType {obj_type!r} must be secret, key or cert")
        if not re.fullmatch(r"[-A-Za-z0-9]{1,127}", str(obj.get("objectName", ""))):
            err(f"{where}: objectName {obj.get('objectName')!r} must match [-a-zA-Z0-9]{{1,127}}")
        fmt = str(obj.get("objectFormat", "pem")).lower()
        if fmt not in ("pem", "pfx"):
            err(f"{where}: invalid objectFormat: {obj['objectFormat']}, should be PEM or PFX")
        if fmt == "pfx" and obj_type != "secret":
            err(f"{where}: PFX format only supported for objectType: secret")
        if "objectEncoding" in obj:
            if str(obj["objectEncoding"]).lower() not in ("utf-8", "base64", "hex"):
                err(f"{where}: invalid objectEncoding: {obj['objectEncoding']}")
            if obj_type != "secret":
                err(f"{where}: objectEncoding only supported for objectType: secret")
        if "filePermission" in obj and not re.fullmatch(r"0?[0-7]{3}", str(obj["filePermission"])):
            err(f"{where}: filePermission {obj['filePermission']!r} must be octal, e.g. \"0644\"")
        history = obj.get("objectVersionHistory", 0)
        if not isinstance(history, int) or isinstance(history, bool) or history < 0:
            err(f"{where}: objectVersionHistory must be a non-negative integer")
            history = 0
        for flag in ("optional", "jsonOnly"):
            if flag in obj and str(obj[flag]) not in BOOLS | {"True", "False"}:
                err(f"{where}: {flag} {obj[flag]!r} is not a boolean")
        if "keyvaultName" in obj:
            own_vaults += 1
            if not VAULT_NAME.fullmatch(str(obj["keyvaultName"])):
                err(f"{where}: keyvaultName {obj['keyvaultName']!r} must match [-a-zA-Z0-9]{{3,24}}")
        paths = []
        json_paths = obj.get("jsonPaths") or []
        if not isinstance(json_paths, list):
            err(f"{where}: jsonPaths must be a list of {{path, objectAlias, filePermission}}")
            json_paths = []
        if json_paths and (obj_type != "secret" or fmt == "pfx"):
            err(f"{where}: jsonPaths only apply to secrets written as text")
        for j, selection in enumerate(json_paths):
            if not isinstance(selection, dict) or not selection.get("path") \
                    or not selection.get("objectAlias"):
                err(f"{where}.jsonPaths[{j}]: needs path and objectAlias")
                continue
            for key in sorted(set(selection) - {"path", "objectAlias", "filePermission"}):
                err(f"{where}.jsonPaths[{j}]: unknown field {key!r}")
            paths.append(str(selection["objectAlias"]))
        json_only = str(obj.get("jsonOnly", "false")) in TRUE | {"True"}
        if json_only and not json_paths:
            err(f"{where}: jsonOnly needs jsonPaths")
        if not json_only or obj.get("objectAlias"):
            paths.insert(0, str(obj.get("objectAlias") or obj.get("objectName") or ""))
        for path in paths:
            problem = check_file_name(path)
            if problem:
                err(f"{where}: {problem}")
            if history > 1:
                files.update(f"{path}/{i}" for i in range(history))
            else:
                files.add(path)
    if not name and not (entries and own_vaults == len(entries)):
        err("keyvaultName is not provided (on the class or on every object)")
    return files


def pod_spec(doc):
    if doc["kind"] == "Pod":
        return doc.get("spec") or {}
    if doc["kind"] in POD_TEMPLATE_KINDS:
        return ((doc.get("spec") or {}).get("template") or {}).get("spec") or {}
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return None


def check_references(docs, err_for):
    by_kind = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], {})[(doc.get("metadata") or {}).get("name")] = doc
    files = {name: spc_files(spc, err_for(spc)) for name, spc in by_kind.get("SecretProviderClass", {}).items()
             if spc["spec"].get("provider") == "azure"}
    for name, spc in by_kind.get("SecretProviderClass", {}).items():
        err = err_for(spc)
        if spc["spec"].get("provider") != "azure":
            err("spec.provider must be azure")
        for secret in spc["spec"].get("secretObjects") or []:
            if not secret.get("type"):
                err(f"secretObjects {secret.get('secretName')}: type is required by the driver")
            for item in secret.get("data") or []:
                if item.get("objectName") not in files.get(name, set()):
                    err(f"secretObjects {secret.get('secretName')}: objectName {item.get('objectName')!r} "
                        f"is not a file this class produces ({sorted(files.get(name, []))})")
                if secret.get("type") == "kubernetes.io/tls" and item.get("key") not in ("tls.crt", "tls.key"):
                    err(f"secretObjects {secret.get('secretName')}: key {item.get('key')!r} is not supported for kubernetes.io/tls")
    for sync in by_kind.get("SecretSync", {}).values():
        err = err_for(sync)
        spc_name = sync["spec"].get("secretProviderClassName")
        if spc_name not in files:
            err(f"secretProviderClassName {spc_name!r} is not an azure SecretProviderClass in this file")
        for item in sync["spec"].get("secretObject", {}).get("data", []):
            if spc_name in files and item.get("sourcePath") not in files[spc_name]:
                err(f"sourcePath {item.get('sourcePath')!r} is not a file {spc_name} produces ({sorted(files[spc_name])})")
        if sync["spec"].get("serviceAccountName") not in by_kind.get("ServiceAccount", {}):
            err(f"serviceAccountName {sync['spec'].get('serviceAccountName')!r} is not defined in this file")
    for doc in docs:
        spec = pod_spec(doc)
        if spec is None:
            continue
        err = err_for(doc)
        sa = spec.get("serviceAccountName")
        if sa and sa not in by_kind.get("ServiceAccount", {}):
            err(f"serviceAccountName {sa!r} is not defined in this file")
        for volume in spec.get("volumes") or []:
            csi = volume.get("csi")
            if not csi or csi.get("driver") != "secrets-store.csi.k8s.io":
                continue
            spc = (csi.get("volumeAttributes") or {}).get("secretProviderClass")
            if spc not in files:
                err(f"volume {volume['name']}: secretProviderClass {spc!r} is not an azure SecretProviderClass in this file")
            ref = (csi.get("nodePublishSecretRef") or {}).get("name")
            if ref:
                secret = by_kind.get("Secret", {}).get(ref)
                if not secret:
                    err(f"volume {volume['name']}: nodePublishSecretRef {ref!r} is not defined in this file")
                elif (secret["metadata"].get("labels") or {}).get("secrets-store.csi.k8s.io/used") != "true":
                    err(f"Secret {ref} needs the label secrets-store.csi.k8s.io/used: \"true\"")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crds", required=True, help="directory of CustomResourceDefinition YAML files")
    parser.add_argument("--rest", required=True, help="write the non-custom documents here")
    parser.add_argument("--quiet", action="store_true", help="print nothing unless something fails")
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()
    schemas = load_crds(args.crds)
    failures = []
    rest = []
    checked = 0
    for path in args.files:
        def err_for(doc, path=path):
            label = f"{path}: {doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"
            return lambda message: failures.append(f"{label}: {message}")

        try:
            docs = [d for d in yaml.load_all(pathlib.Path(path).read_text(), Loader=UniqueKeyLoader)
                    if d is not None]
        except yaml.YAMLError as exc:
            failures.append(f"{path}: invalid YAML: {exc}")
            continue
        valid = []
        for doc in docs:
            if not isinstance(doc, dict) or not doc.get("kind") or not doc.get("apiVersion"):
                failures.append(f"{path}: a document without apiVersion and kind")
                continue
            err = err_for(doc)
            meta = doc.get("metadata") or {}
            if not DNS_SUBDOMAIN.match(str(meta.get("name", ""))) or len(str(meta.get("name"))) > 253:
                err("metadata.name must be a DNS subdomain")
            for key in sorted(set(meta) - OBJECT_META):
                err(f"metadata.{key} is not expected in a manifest")
            schema = schemas.get((doc["apiVersion"], doc["kind"]))
            if schema is None:
                rest.append(doc)
            else:
                checked += 1
                for error in jsonschema.Draft7Validator(schema).iter_errors(doc):
                    location = ".".join(str(p) for p in error.absolute_path) or "(root)"
                    err(f"{location}: {error.message}")
            valid.append(doc)
        try:
            check_references(valid, err_for)
        except (AttributeError, KeyError, TypeError) as exc:  # shapes the schemas already reject
            failures.append(f"{path}: could not check references ({exc!r}); fix the errors above first")
    with open(args.rest, "w") as out:
        yaml.safe_dump_all(rest, out, sort_keys=False)
    for failure in failures:
        print(f"ERROR - {failure}")
    if failures or not args.quiet:
        print(f"{'FAILED' if failures else 'passed'}: {checked} custom resources against their CRDs, "
              f"{len(rest)} other documents left for kubernetes-validate, {len(args.files)} files")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
