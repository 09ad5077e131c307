use serde_yaml_ng::Value;

use super::documents::split;
use super::*;

const PLAIN: &str = include_str!("../../../manifests/examples/agent-plain.yaml");
const BASE: &str = include_str!("../../../manifests/base/agent.yaml");
const ENVOY: &str = include_str!("../../../envoy/sidecar.yaml");
const ACTBRIDGE: &str = include_str!("../../../deploy/actbridge.yaml");

fn template() -> Template {
    Template::embedded().expect("the embedded template is valid")
}

fn run(input: &str) -> Result<Report, InjectError> {
    inject_yaml(input, &template())
}

fn refusal(input: &str) -> (ObjectRef, Refusal) {
    match run(input) {
        Err(InjectError::Refused { object, refusal }) => (*object, refusal),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn docs(text: &str) -> Vec<Value> {
    split(text)
        .into_iter()
        .map(|c| serde_yaml_ng::from_str::<Value>(&c.text).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

fn names(list: &Value) -> Vec<&str> {
    list.as_sequence()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect()
}

/// A Deployment whose pod spec is `spec` (YAML, indented for `template.spec`).
fn deployment(spec: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web, namespace: shop}}\nspec:\n  \
         selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    \
         spec:\n{spec}"
    )
}

const APP: &str = "      containers:\n      - name: app\n        image: nginx\n        ports: [{containerPort: 8080}]\n";

#[test]
fn injecting_the_plain_example_gives_the_base_deployment() {
    let report = run(PLAIN).unwrap();
    let got = docs(&report.output);
    let want = docs(BASE);
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0]["spec"]["template"]["spec"], want[0]["spec"]["template"]["spec"],
        "the pod spec of manifests/base/agent.yaml differs from `actbridge inject` of \
         manifests/examples/agent-plain.yaml: change the template, the plain example and the base together"
    );
    assert_eq!(got[0], want[0], "the rest of the Deployment differs");
    assert_eq!(report.injected.len(), 1);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
}

#[test]
fn injecting_twice_is_injecting_once() {
    let once = run(PLAIN).unwrap();
    let twice = run(&once.output).unwrap();
    assert_eq!(twice.output, once.output);
    assert!(twice.injected.is_empty());
    assert_eq!(twice.already_injected.len(), 1);
}

#[test]
fn the_base_deployment_is_recognised_as_injected_and_kept_verbatim() {
    let report = run(BASE).unwrap();
    assert_eq!(report.already_injected.len(), 1);
    assert_eq!(report.output.trim(), BASE.trim());
}

#[test]
fn sidecars_are_added_in_their_places() {
    let input = deployment(
        "      initContainers:\n      - {name: migrate, image: busybox}\n      containers:\n      \
         - {name: app, image: nginx, ports: [{containerPort: 8080}]}\n      volumes:\n      - {name: data, emptyDir: {}}\n",
    );
    let out = docs(&run(&input).unwrap().output);
    let pod = &out[0]["spec"]["template"];
    assert_eq!(pod["metadata"]["annotations"][INJECTED_ANNOTATION], "true");
    assert_eq!(pod["metadata"]["labels"]["app"], "web");
    // The capture runs before every other init container.
    assert_eq!(
        names(&pod["spec"]["initContainers"]),
        ["actbridge-capture", "migrate"]
    );
    assert_eq!(
        names(&pod["spec"]["containers"]),
        ["app", "envoy", "actbridge"]
    );
    assert_eq!(
        names(&pod["spec"]["volumes"])[..2],
        ["data", "actbridge-config"]
    );
}

#[test]
fn every_workload_kind_is_injected_where_it_keeps_its_pod_template() {
    let pod_spec = "spec:\n  containers: [{name: app, image: x, ports: [{containerPort: 8080}]}]\n";
    let indent = |n: usize| {
        pod_spec
            .lines()
            .map(|l| format!("{}{l}\n", " ".repeat(n)))
            .collect::<String>()
    };
    let cases = [
        (
            format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\n{pod_spec}"),
            vec![],
        ),
        (
            format!(
                "apiVersion: batch/v1\nkind: CronJob\nmetadata: {{name: c}}\nspec:\n  schedule: '* * * * *'\n  \
                 jobTemplate:\n    spec:\n      template:\n{}",
                indent(8)
            ),
            vec!["spec", "jobTemplate", "spec", "template"],
        ),
        (
            format!(
                "apiVersion: batch/v1\nkind: Job\nmetadata: {{name: j}}\nspec:\n  template:\n{}",
                indent(4)
            ),
            vec!["spec", "template"],
        ),
        (
            format!(
                "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {{name: s}}\nspec:\n  template:\n{}",
                indent(4)
            ),
            vec!["spec", "template"],
        ),
        (
            format!(
                "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {{name: d}}\nspec:\n  template:\n{}",
                indent(4)
            ),
            vec!["spec", "template"],
        ),
        (
            format!(
                "apiVersion: v1\nkind: PodTemplate\nmetadata: {{name: t}}\ntemplate:\n{}",
                indent(2)
            ),
            vec!["template"],
        ),
    ];
    for (input, path) in cases {
        let out = docs(&run(&input).unwrap().output);
        let mut node = &out[0];
        for k in &path {
            node = &node[*k];
        }
        assert_eq!(
            names(&node["spec"]["containers"]),
            ["app", "envoy", "actbridge"],
            "{input}"
        );
        assert_eq!(node["metadata"]["annotations"][INJECTED_ANNOTATION], "true");
    }
}

#[test]
fn objects_without_pods_pass_through_as_written() {
    let cm = "# my config, with a comment\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  mode: 0644   # stays as written\n";
    let svc = "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 80}]}\n";
    let input = format!("{cm}---\n{}---\n{svc}", deployment(APP));
    let report = run(&input).unwrap();
    assert_eq!(report.passed_through, 2);
    assert_eq!(report.injected.len(), 1);
    let parts: Vec<&str> = report.output.split("---\n").collect();
    assert_eq!(parts.len(), 3);
    assert_eq!(parts[0], cm);
    assert_eq!(parts[2], svc);
}

#[test]
fn a_list_has_its_items_injected() {
    let input = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata: {name: s}\n\
         - apiVersion: v1\n  kind: Pod\n  metadata: {name: p}\n  spec:\n    containers: [{name: app, image: x}]\n";
    let report = run(input).unwrap();
    let out = docs(&report.output);
    assert_eq!(
        names(&out[0]["items"][1]["spec"]["containers"]),
        ["app", "envoy", "actbridge"]
    );
    assert_eq!(report.passed_through, 1);
}

#[test]
fn yaml_1_1_octal_file_modes_keep_their_meaning() {
    let input = deployment(&format!(
        "{APP}      volumes:\n      - name: s\n        secret: {{secretName: s, defaultMode: 0644, items: [{{key: k, path: k, mode: 0400}}]}}\n"
    ));
    let out = docs(&run(&input).unwrap().output);
    let secret = &out[0]["spec"]["template"]["spec"]["volumes"][0]["secret"];
    assert_eq!(secret["defaultMode"].as_i64(), Some(0o644));
    assert_eq!(secret["items"][0]["mode"].as_i64(), Some(0o400));
}

#[test]
fn a_pod_without_the_app_port_gets_a_warning() {
    let input = deployment(
        "      containers:\n      - {name: app, image: x, ports: [{containerPort: 3000}]}\n",
    );
    let report = run(&input).unwrap();
    assert_eq!(report.warnings.len(), 1);
    assert!(
        report.warnings[0].contains("port 8080"),
        "{:?}",
        report.warnings
    );
    assert!(report.warnings[0].starts_with("Deployment shop/web"));
}

#[test]
fn an_unknown_kind_is_refused() {
    let (object, r) = refusal(
        "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: r}\nspec: {template: {spec: {containers: []}}}\n",
    );
    assert_eq!(object.kind, "Rollout");
    assert!(matches!(r, Refusal::UnknownKind { ref kind, .. } if kind == "Rollout"));
    // A known kind in an API group that does not serve it is unknown too.
    let (_, r) = refusal(&deployment(APP).replace("apps/v1", "extensions/v1beta1"));
    assert!(matches!(r, Refusal::UnknownKind { .. }), "{r:?}");
}

#[test]
fn a_document_that_is_not_an_object_is_refused() {
    let (object, r) = refusal("- just\n- a list\n");
    assert_eq!(r, Refusal::NotAnObject);
    assert_eq!(object.document, 1);
}

#[test]
fn a_workload_without_a_pod_template_is_refused() {
    let (_, r) = refusal(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {replicas: 1}\n",
    );
    assert_eq!(
        r,
        Refusal::NoPodTemplate {
            path: "spec.template".into()
        }
    );
    let (_, r) =
        refusal("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: []\n");
    assert!(
        matches!(r, Refusal::Malformed { ref path, .. } if path == "spec.containers"),
        "{r:?}"
    );
}

#[test]
fn host_network_is_refused() {
    let (object, r) = refusal(&deployment(&format!("      hostNetwork: true\n{APP}")));
    assert_eq!(
        r,
        Refusal::HostNetwork {
            path: "spec.template.spec".into()
        }
    );
    let msg = InjectError::Refused {
        object: Box::new(object),
        refusal: r,
    }
    .to_string();
    assert!(
        msg.starts_with("Deployment shop/web (document 1, line 1)"),
        "{msg}"
    );
    assert!(msg.contains("hostNetwork"), "{msg}");
}

#[test]
fn an_app_container_running_as_a_sidecar_uid_is_refused() {
    for (uid, sidecar) in [(1337, "envoy"), (1338, "actbridge")] {
        let (_, r) = refusal(&deployment(&format!(
            "{APP}        securityContext: {{runAsUser: {uid}}}\n"
        )));
        assert!(
            matches!(&r, Refusal::ReservedUid { container, uid: u, sidecar: s, .. }
                if container == "app" && *u == uid && s == sidecar),
            "{r:?}"
        );
    }
    // Set for the whole pod, it applies to a container that sets none.
    let (_, r) = refusal(&deployment(&format!(
        "      securityContext: {{runAsUser: 1337}}\n{APP}"
    )));
    assert!(
        matches!(&r, Refusal::ReservedUid { set_at, .. } if set_at == "spec.template.spec.securityContext"),
        "{r:?}"
    );
    // An init container of the app is checked too.
    let (_, r) = refusal(&deployment(&format!(
        "      initContainers:\n      - {{name: setup, image: x, securityContext: {{runAsUser: 1338}}}}\n{APP}"
    )));
    assert!(
        matches!(&r, Refusal::ReservedUid { container, .. } if container == "setup"),
        "{r:?}"
    );
    // The container's own UID wins over the pod's.
    run(&deployment(&format!(
        "      securityContext: {{runAsUser: 1337}}\n{APP}        securityContext: {{runAsUser: 1000}}\n"
    )))
    .unwrap();
}

#[test]
fn a_container_with_a_sidecar_name_is_refused_unless_the_pod_is_marked() {
    for name in ["envoy", "actbridge", "actbridge-capture"] {
        let (_, r) = refusal(&deployment(&format!(
            "{APP}      - {{name: {name}, image: mine}}\n"
        )));
        assert!(
            matches!(&r, Refusal::NameTaken { name: n, .. } if n == name),
            "{r:?}"
        );
    }
}

#[test]
fn a_volume_with_a_sidecar_name_is_refused() {
    let (_, r) = refusal(&deployment(&format!(
        "{APP}      volumes:\n      - {{name: actbridge-config, emptyDir: {{}}}}\n"
    )));
    assert_eq!(
        r,
        Refusal::VolumeTaken {
            name: "actbridge-config".into()
        }
    );
}

#[test]
fn a_marked_pod_missing_a_sidecar_is_refused() {
    let injected = run(PLAIN).unwrap().output;
    let mut doc = docs(&injected).remove(0);
    let containers = doc["spec"]["template"]["spec"]["containers"]
        .as_sequence_mut()
        .unwrap();
    containers.retain(|c| c["name"] != "envoy");
    let (_, r) = refusal(&serde_yaml_ng::to_string(&doc).unwrap());
    assert!(
        matches!(&r, Refusal::PartiallyInjected { missing, .. } if missing == "envoy"),
        "{r:?}"
    );
}

#[test]
fn a_port_the_sidecars_use_is_refused() {
    for (port, _) in RESERVED_PORTS {
        let (_, r) = refusal(&deployment(&format!(
            "      containers:\n      - {{name: app, image: x, ports: [{{containerPort: 8080}}, {{containerPort: {port}}}]}}\n"
        )));
        assert!(
            matches!(&r, Refusal::PortConflict { container, port: p, .. } if container == "app" && *p == i64::from(port)),
            "{port}: {r:?}"
        );
    }
}

#[test]
fn one_refused_object_refuses_the_whole_input() {
    let input = format!(
        "{}---\n{}",
        deployment(APP),
        deployment(&format!("      hostNetwork: true\n{APP}"))
    );
    let err = run(&input).unwrap_err().to_string();
    assert!(err.contains("document 2, line"), "{err}");
}

#[test]
fn invalid_yaml_names_the_document() {
    let err = run("apiVersion: v1\nkind: ConfigMap\n---\nkey: [unclosed\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("document 2 (line 3): not valid YAML"),
        "{err}"
    );
}

#[test]
fn documents_split_at_markers_only() {
    let chunks = split(
        "# leading comment\n---\na: 1\n--- # a comment on the marker\nb: |\n  --- not a marker\n...\nignored: after end\n---\r\nc: 3\r\n",
    );
    let texts: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "# leading comment\n",
            "a: 1\n",
            "# a comment on the marker\nb: |\n  --- not a marker\n",
            "c: 3\r\n"
        ]
    );
    assert_eq!(chunks[2].line, 4);
    assert_eq!(docs("---\n---\nx: 1\n---\n").len(), 1);
}

#[test]
fn the_template_refuses_keys_it_would_ignore() {
    let t = TEMPLATE_YAML.replace(
        "spec:\n  initContainers:",
        "spec:\n  hostAliases: []\n  initContainers:",
    );
    let err = Template::from_yaml(&t).unwrap_err().to_string();
    assert!(err.contains("spec.hostAliases"), "{err}");
    let t = TEMPLATE_YAML.replace("actbridge.io/injected: \"true\"", "other: \"true\"");
    assert!(Template::from_yaml(&t).is_err());
}

// === The template agrees with the files the sidecars run ===

fn yaml(text: &str) -> Value {
    serde_yaml_ng::from_str(text).unwrap()
}

fn env_of<'a>(c: &'a Value, name: &str) -> &'a str {
    c["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .and_then(|e| e["value"].as_str())
        .unwrap_or_else(|| panic!("no env {name}"))
}

#[test]
fn the_reserved_ports_are_the_ports_envoy_and_actbridge_listen_on() {
    let reserved: Vec<i64> = RESERVED_PORTS.iter().map(|(p, _)| i64::from(*p)).collect();
    let envoy = yaml(ENVOY);
    let mut listening = vec![
        envoy["admin"]["address"]["socket_address"]["port_value"]
            .as_i64()
            .unwrap(),
    ];
    for l in envoy["static_resources"]["listeners"]
        .as_sequence()
        .unwrap()
    {
        listening.push(
            l["address"]["socket_address"]["port_value"]
                .as_i64()
                .unwrap(),
        );
    }
    let ab = yaml(ACTBRIDGE);
    for key in ["ext_proc", "sds", "admin"] {
        let addr = ab["listen"][key].as_str().unwrap();
        // Unix sockets (the shipped ext_proc and SDS) take no port.
        if !addr.starts_with("unix://") {
            listening.push(addr.rsplit(':').next().unwrap().parse().unwrap());
        }
    }
    let t = yaml(TEMPLATE_YAML);
    for c in t["spec"]["containers"].as_sequence().unwrap() {
        for p in c["ports"].as_sequence().unwrap() {
            listening.push(p["containerPort"].as_i64().unwrap());
        }
    }
    let init = &t["spec"]["initContainers"][0];
    for key in ["INBOUND_PORT", "OUTBOUND_PORT", "INBOUND_EXCLUDE_PORTS"] {
        listening.push(env_of(init, key).parse().unwrap());
    }
    for p in listening {
        assert!(reserved.contains(&p), "port {p} is not in RESERVED_PORTS");
    }
}

#[test]
fn the_capture_exempts_exactly_the_sidecars_uids() {
    let t = template();
    let uids = t.reserved_uids();
    assert_eq!(uids, [(1337, "envoy"), (1338, "actbridge")]);
    let raw = yaml(TEMPLATE_YAML);
    let init = &raw["spec"]["initContainers"][0];
    assert_eq!(env_of(init, "ENVOY_UID"), "1337");
    assert_eq!(env_of(init, "ACTBRIDGE_UID"), "1338");
    assert_eq!(env_of(init, "OUTBOUND_EXCLUDE_CIDRS"), "");
    assert_eq!(env_of(init, "OUTBOUND_EXCLUDE_PORTS"), "");
}

#[test]
fn the_app_port_is_envoys_app_cluster() {
    let envoy = yaml(ENVOY);
    let app = envoy["static_resources"]["clusters"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "app")
        .unwrap();
    let port = &app["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
        ["port_value"];
    assert_eq!(port.as_i64(), Some(i64::from(APP_PORT)));
}
