"""Checks of the rendered manifests and of the kind workflow that a schema cannot make.

Run by tests/k8s/check-manifests.sh (`make k8s-check`):

    check_manifests.py --actbridge BIN NAME=RENDERED.yaml ...

NAME is `base` or an overlay's directory name. Exits 1 listing every failure.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile

import yaml

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
SECRET_MOUNT = "/run/secrets/actbridge/client-secret"
POLICY_SUFFIXES = (".rego", ".yaml", ".yml", ".json")
# The actbridge config each kustomization's actbridge-config ConfigMap must hold.
CONFIG_SOURCE = {
    "base": "deploy/actbridge.yaml",
    "demo": "manifests/overlays/demo/actbridge.yaml",
    "keycloak": "manifests/overlays/keycloak/actbridge.yaml",
}
# Objects the user creates: referenced, deliberately not rendered.
USER_CREATED = {
    "base": {("Secret", "actbridge-client-secret")},
    "keycloak": {("Secret", "actbridge-client-secret")},
    "demo": set(),
}
# Images the workflow builds and loads, as the manifests name them.
LOCAL_IMAGES = ("actbridge:dev", "actbridge-capture-init:dev")

failures = []


def fail(msg):
    failures.append(msg)


def read(rel):
    with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
        return f.read()


def generated(objects, kind, name):
    """The object kustomize generated as NAME (with its content-hash suffix)."""
    pattern = re.compile(re.escape(name) + r"(-[a-z0-9]{10})?$")
    found = [o for o in objects if o["kind"] == kind and pattern.match(o["metadata"]["name"])]
    return found[0] if len(found) == 1 else None


def pod_templates(objects):
    for o in objects:
        if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"):
            yield o, o["spec"]["template"]
        elif o["kind"] == "CronJob":
            yield o, o["spec"]["jobTemplate"]["spec"]["template"]
        elif o["kind"] == "Pod":
            yield o, o


def policy_files():
    files = {}
    for dirpath, _, names in os.walk(os.path.join(ROOT, "policies")):
        for n in names:
            if n.endswith(POLICY_SUFFIXES) and not n.startswith("."):
                with open(os.path.join(dirpath, n), encoding="utf-8") as f:
                    files[n] = f.read()
    return files


def check_config_maps(name, objects):
    envoy = generated(objects, "ConfigMap", "actbridge-envoy")
    if envoy is None:
        fail(f"{name}: no ConfigMap actbridge-envoy")
    elif envoy.get("data") != {"sidecar.yaml": read("envoy/sidecar.yaml")}:
        fail(f"{name}: ConfigMap actbridge-envoy is not exactly envoy/sidecar.yaml (make k8s-sync)")

    policies = generated(objects, "ConfigMap", "actbridge-policies")
    want = policy_files()
    if policies is None:
        fail(f"{name}: no ConfigMap actbridge-policies")
    else:
        got = policies.get("data", {})
        missing = sorted(set(want) - set(got))
        extra = sorted(set(got) - set(want))
        if missing or extra:
            fail(
                f"{name}: ConfigMap actbridge-policies keys differ from policies/: missing {missing}, "
                f"extra {extra} (list them in manifests/base/kustomization.yaml; make k8s-sync)"
            )
        for k in sorted(set(want) & set(got)):
            if got[k] != want[k]:
                fail(f"{name}: ConfigMap actbridge-policies `{k}` differs from policies/ (make k8s-sync)")

    config = generated(objects, "ConfigMap", "actbridge-config")
    if config is None:
        fail(f"{name}: no ConfigMap actbridge-config")
    elif config.get("data") != {"actbridge.yaml": read(CONFIG_SOURCE[name])}:
        fail(f"{name}: ConfigMap actbridge-config is not {CONFIG_SOURCE[name]}")
    return config, policies


def check_references(name, objects):
    """Every ConfigMap, Secret and ServiceAccount a pod names exists (or is the user's)."""
    have = {(o["kind"], o["metadata"]["name"]) for o in objects}
    for obj, tpl in pod_templates(objects):
        spec = tpl["spec"]
        where = f"{name}: {obj['kind']} {obj['metadata']['name']}"
        refs = []
        for v in spec.get("volumes", []):
            if "configMap" in v:
                refs.append(("ConfigMap", v["configMap"]["name"]))
            if "secret" in v:
                refs.append(("Secret", v["secret"]["secretName"]))
        if "serviceAccountName" in spec:
            refs.append(("ServiceAccount", spec["serviceAccountName"]))
        for ref in refs:
            if ref not in have and ref not in USER_CREATED[name]:
                fail(f"{where}: refers to {ref[0]} {ref[1]}, which is not rendered")
        mounts = {m["name"] for c in spec["containers"] + spec.get("initContainers", [])
                  for m in c.get("volumeMounts", [])}
        volumes = {v["name"] for v in spec.get("volumes", [])}
        for m in sorted(mounts - volumes):
            fail(f"{where}: mounts volume `{m}`, which the pod does not have")


def check_agent(name, objects):
    agent = next((o for o in objects if o["kind"] == "Deployment"
                  and o["metadata"]["name"] == "summarizer-tech"), None)
    if agent is None:
        fail(f"{name}: no Deployment summarizer-tech")
        return
    tpl = agent["spec"]["template"]
    if tpl["metadata"].get("annotations", {}).get("actbridge.io/injected") != "true":
        fail(f"{name}: summarizer-tech is not marked actbridge.io/injected")
    spec = tpl["spec"]
    names = [c["name"] for c in spec["containers"]]
    if not {"envoy", "actbridge"} <= set(names):
        fail(f"{name}: summarizer-tech lacks a sidecar: {names}")
    if [c["name"] for c in spec.get("initContainers", [])][:1] != ["actbridge-capture"]:
        fail(f"{name}: summarizer-tech's first init container is not actbridge-capture")
    pod_uid = spec.get("securityContext", {}).get("runAsUser")
    for c in spec["containers"]:
        if c["name"] in ("envoy", "actbridge"):
            continue
        uid = c.get("securityContext", {}).get("runAsUser", pod_uid)
        if uid in (1337, 1338) or uid is None:
            fail(f"{name}: app container {c['name']} runs as {uid}: set a UID other than 1337/1338")


def check_actbridge_config(name, config, policies, actbridge):
    """The rendered config, laid out as in the pod, passes `actbridge check-config`."""
    if config is None or policies is None:
        return
    with tempfile.TemporaryDirectory() as etc:
        secret = os.path.join(etc, "client-secret")
        with open(secret, "w", encoding="utf-8") as f:
            f.write("x\n")
        os.mkdir(os.path.join(etc, "policies"))
        for k, v in policies["data"].items():
            with open(os.path.join(etc, "policies", k), "w", encoding="utf-8") as f:
                f.write(v)
        text = config["data"]["actbridge.yaml"]
        if SECRET_MOUNT not in text:
            fail(f"{name}: the actbridge config does not read the client secret from {SECRET_MOUNT}")
        path = os.path.join(etc, "actbridge.yaml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text.replace(SECRET_MOUNT, secret))
        run = subprocess.run([actbridge, "check-config", path], capture_output=True, text=True)
        if run.returncode != 0:
            fail(f"{name}: actbridge check-config refuses the actbridge-config ConfigMap: {run.stderr.strip()}")


def check_demo_issuer(objects, config):
    """The demo's sidecar trusts, and exchanges at, the token service the overlay runs."""
    sts = next((o for o in objects if o["kind"] == "Deployment"
                and o["metadata"]["name"] == "actbridge-sts"), None)
    realm_cm = generated(objects, "ConfigMap", "actbridge-sts-realm")
    if sts is None or realm_cm is None or config is None:
        fail("demo: the token service (Deployment actbridge-sts, ConfigMap actbridge-sts-realm) is missing")
        return
    if realm_cm["data"].get("realm.yaml") != read("demo/realm.yaml"):
        fail("demo: ConfigMap actbridge-sts-realm is not exactly demo/realm.yaml (make k8s-sync)")
    args = sts["spec"]["template"]["spec"]["containers"][0]["args"]
    opt = lambda flag: args[args.index(flag) + 1] if flag in args else None
    public_url, listen = opt("--public-url"), opt("--listen")
    realm = yaml.safe_load(realm_cm["data"]["realm.yaml"])["realm"]
    cfg = yaml.safe_load(config["data"]["actbridge.yaml"])
    issuer = f"{public_url}/realms/{realm}"
    if [i["issuer"] for i in cfg["issuers"]] != [issuer]:
        fail(f"demo: the sidecar's issuer is not the token service's {issuer}")
    if cfg["outbound"]["token_endpoint"] != f"{issuer}/protocol/openid-connect/token":
        fail(f"demo: the sidecar's token endpoint is not the token service's ({issuer})")
    port = int(listen.rsplit(":", 1)[1]) if listen else None
    svc = next((o for o in objects if o["kind"] == "Service" and o["metadata"]["name"] == "actbridge-sts"), None)
    if svc is None or f"http://{svc['metadata']['name']}:{svc['spec']['ports'][0]['port']}" != public_url:
        fail(f"demo: no Service answers at the token service's public URL {public_url}")
    policy = next((o for o in objects if o["kind"] == "NetworkPolicy"), None)
    egress_ports = [p["port"] for rule in (policy or {}).get("spec", {}).get("egress", [])
                    for peer in rule.get("to", [])
                    if peer.get("podSelector", {}).get("matchLabels", {}).get("app") == "actbridge-sts"
                    for p in rule.get("ports", [])]
    if egress_ports != [port]:
        fail(f"demo: the NetworkPolicy does not let the agent reach the token service on port {port}")


def check_workflow(path):
    """The workflow is YAML with what GitHub requires, and it builds and applies what the
    manifests name."""
    rel = os.path.relpath(path, ROOT)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        wf = yaml.safe_load(text)
    except (OSError, yaml.YAMLError) as e:
        fail(f"{rel}: {e}")
        return
    if not isinstance(wf, dict):
        fail(f"{rel}: not a mapping")
        return
    # PyYAML reads YAML 1.1, where a bare `on` key is the boolean true; GitHub reads `on`.
    if "on" not in wf and True not in wf:
        fail(f"{rel}: no `on` (the events that run it)")
    jobs = wf.get("jobs")
    if not isinstance(jobs, dict) or not jobs:
        fail(f"{rel}: no `jobs`")
        return
    runs = []
    for job_id, job in jobs.items():
        if not isinstance(job, dict) or "runs-on" not in job:
            fail(f"{rel}: job `{job_id}` has no `runs-on`")
            continue
        steps = job.get("steps")
        if not isinstance(steps, list) or not steps:
            fail(f"{rel}: job `{job_id}` has no `steps`")
            continue
        for i, step in enumerate(steps):
            if not isinstance(step, dict) or ("uses" in step) == ("run" in step):
                fail(f"{rel}: job `{job_id}` step {i} needs exactly one of `uses` and `run`")
                continue
            if "uses" in step:
                ref = step["uses"].partition("@")[2]
                if not re.fullmatch(r"v\d+\.\d+\.\d+|[0-9a-f]{40}", ref):
                    fail(f"{rel}: job `{job_id}` step {i}: `{step['uses']}` is not pinned to a release or a commit")
            else:
                runs.append(step["run"])
    script = "\n".join(runs)
    for image in LOCAL_IMAGES:
        if f"-t {image}" not in script:
            fail(f"{rel}: does not build {image}, which the manifests use")
        if image not in script.split("kind load docker-image", 1)[-1]:
            fail(f"{rel}: does not load {image} into kind")
    if "--target capture-init" not in script:
        fail(f"{rel}: does not build the capture-init target")
    if "kubectl apply -k manifests/overlays/demo" not in script:
        fail(f"{rel}: does not apply manifests/overlays/demo")
    for rel_script in re.findall(r"(tests/k8s/[\w.-]+\.sh)", script):
        if not os.path.isfile(os.path.join(ROOT, rel_script)):
            fail(f"{rel}: runs {rel_script}, which does not exist")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--actbridge", required=True)
    p.add_argument("--workflow", default=os.path.join(ROOT, ".github", "workflows", "kind.yml"))
    p.add_argument("rendered", nargs="+", help="NAME=FILE")
    a = p.parse_args()
    for item in a.rendered:
        name, _, path = item.partition("=")
        with open(path, encoding="utf-8") as f:
            objects = [o for o in yaml.safe_load_all(f) if o]
        config, policies = check_config_maps(name, objects)
        check_references(name, objects)
        check_agent(name, objects)
        check_actbridge_config(name, config, policies, a.actbridge)
        if name == "demo":
            check_demo_issuer(objects, config)
    check_workflow(a.workflow)
    for f in failures:
        print(f"k8s-check: {f}", file=sys.stderr)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
