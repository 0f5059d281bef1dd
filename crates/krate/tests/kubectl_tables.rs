//! `kubectl get` against the real server prints the columns and cells a
//! v1.32 cluster prints: the server-side `Table` for each kind, rendered by
//! the real kubectl, with and without `-o wide`.

mod support;

use apiserver::table::age;
use support::Cluster;

/// A cell that must be a fresh object's age (`0s`, `3s`...).
const FRESH: &str = "<fresh age>";

/// kubectl's table output, checked against `headers` and cut into cells at
/// the header's column starts (kubectl left-aligns every column).
fn parse(out: &str, headers: &[&str]) -> Vec<Vec<String>> {
    let mut lines = out.lines();
    let header = lines.next().unwrap_or_default();
    let names: Vec<&str> = header
        .split("  ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(names, headers, "header of:\n{out}");
    let mut starts = Vec::new();
    let mut from = 0;
    for h in headers {
        let at = from + header[from..].find(h).unwrap();
        starts.push(at);
        from = at + h.len();
    }
    lines
        .map(|line| {
            (0..starts.len())
                .map(|i| {
                    let end = starts
                        .get(i + 1)
                        .copied()
                        .unwrap_or(line.len())
                        .min(line.len());
                    line.get(starts[i].min(end)..end)
                        .unwrap_or("")
                        .trim()
                        .to_string()
                })
                .collect()
        })
        .collect()
}

/// Asserts the rows, where a `FRESH` cell matches any age under a minute.
fn assert_rows(out: &str, headers: &[&str], expected: &[Vec<String>]) {
    let rows = parse(out, headers);
    assert_eq!(rows.len(), expected.len(), "rows of:\n{out}");
    for (row, want) in rows.iter().zip(expected) {
        assert_eq!(row.len(), want.len());
        for (i, (cell, want)) in row.iter().zip(want).enumerate() {
            if want == FRESH {
                let secs = cell.strip_suffix('s').and_then(|n| n.parse::<u32>().ok());
                assert!(
                    secs.is_some_and(|s| s < 60),
                    "{} is not a fresh age in:\n{out}",
                    headers[i]
                );
            } else {
                assert_eq!(cell, want, "column {} of:\n{out}", headers[i]);
            }
        }
    }
}

fn cells(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|s| s.to_string()).collect()
}

fn create(c: &Cluster, json: &str) {
    c.ok_stdin(&["create", "-f", "-", "--validate=false"], json);
}

fn patch_status(c: &Cluster, kind: &str, name: &str, status: &str) {
    c.ok(&[
        "patch",
        kind,
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        &format!(r#"{{"status":{status}}}"#),
    ]);
}

const LONG_AGO: &str = "2024-01-01T00:00:00Z";

#[test]
fn pods_print_ready_status_restarts_and_wide_columns() {
    let c = Cluster::start();
    create(
        &c,
        r#"{"apiVersion":"v1","kind":"List","items":[
          {"apiVersion":"v1","kind":"Pod","metadata":{"name":"web-0"},"spec":{"nodeName":"node-1","containers":[{"name":"app","image":"nginx:1.27"},{"name":"log","image":"busybox"}]}},
          {"apiVersion":"v1","kind":"Pod","metadata":{"name":"init-1"},"spec":{"initContainers":[{"name":"migrate","image":"m"},{"name":"seed","image":"s"}],"containers":[{"name":"app","image":"a"}]}},
          {"apiVersion":"v1","kind":"Pod","metadata":{"name":"done"},"spec":{"nodeName":"node-2","containers":[{"name":"job","image":"j"}],"readinessGates":[{"conditionType":"example.com/lb"}]}},
          {"apiVersion":"v1","kind":"Pod","metadata":{"name":"gated"},"spec":{"schedulingGates":[{"name":"example.com/gate"}],"containers":[{"name":"app","image":"a"}]}}
        ]}"#,
    );
    patch_status(
        &c,
        "pod",
        "web-0",
        &format!(
            r#"{{"phase":"Running","podIP":"10.42.0.5","podIPs":[{{"ip":"10.42.0.5"}}],
               "conditions":[{{"type":"Ready","status":"False"}}],
               "containerStatuses":[
                 {{"name":"app","ready":true,"restartCount":3,"image":"nginx:1.27","imageID":"","started":true,
                   "state":{{"running":{{"startedAt":"{LONG_AGO}"}}}},"lastState":{{"terminated":{{"exitCode":1,"finishedAt":"{LONG_AGO}"}}}}}},
                 {{"name":"log","ready":false,"restartCount":0,"image":"busybox","imageID":"","state":{{"waiting":{{"reason":"CrashLoopBackOff"}}}}}}]}}"#
        ),
    );
    patch_status(
        &c,
        "pod",
        "init-1",
        r#"{"phase":"Pending","conditions":[{"type":"Initialized","status":"False"}],
           "initContainerStatuses":[
             {"name":"migrate","ready":false,"restartCount":0,"image":"m","imageID":"","state":{"terminated":{"exitCode":0,"reason":"Completed"}}},
             {"name":"seed","ready":false,"restartCount":0,"image":"s","imageID":"","state":{"running":{}}}],
           "containerStatuses":[{"name":"app","ready":false,"restartCount":0,"image":"a","imageID":"","state":{"waiting":{"reason":"PodInitializing"}}}]}"#,
    );
    patch_status(
        &c,
        "pod",
        "done",
        r#"{"phase":"Succeeded","podIP":"10.42.1.7","conditions":[{"type":"example.com/lb","status":"True"}],
           "containerStatuses":[{"name":"job","ready":false,"restartCount":0,"image":"j","imageID":"","state":{"terminated":{"exitCode":0,"reason":"Completed"}}}]}"#,
    );
    patch_status(
        &c,
        "pod",
        "gated",
        r#"{"phase":"Pending","conditions":[{"type":"PodScheduled","status":"False","reason":"SchedulingGated"}]}"#,
    );

    let restarts = format!("3 ({} ago)", age(LONG_AGO));
    assert_rows(
        &c.ok(&["get", "pods"]),
        &["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        &[
            cells(&["done", "0/1", "Completed", "0", FRESH]),
            cells(&["gated", "0/1", "SchedulingGated", "0", FRESH]),
            cells(&["init-1", "0/1", "Init:1/2", "0", FRESH]),
            cells(&["web-0", "1/2", "CrashLoopBackOff", &restarts, FRESH]),
        ],
    );
    assert_rows(
        &c.ok(&["get", "pods", "-o", "wide"]),
        &[
            "NAME",
            "READY",
            "STATUS",
            "RESTARTS",
            "AGE",
            "IP",
            "NODE",
            "NOMINATED NODE",
            "READINESS GATES",
        ],
        &[
            cells(&[
                "done",
                "0/1",
                "Completed",
                "0",
                FRESH,
                "10.42.1.7",
                "node-2",
                "<none>",
                "1/1",
            ]),
            cells(&[
                "gated",
                "0/1",
                "SchedulingGated",
                "0",
                FRESH,
                "<none>",
                "<none>",
                "<none>",
                "<none>",
            ]),
            cells(&[
                "init-1", "0/1", "Init:1/2", "0", FRESH, "<none>", "<none>", "<none>", "<none>",
            ]),
            cells(&[
                "web-0",
                "1/2",
                "CrashLoopBackOff",
                &restarts,
                FRESH,
                "10.42.0.5",
                "node-1",
                "<none>",
                "<none>",
            ]),
        ],
    );
    // One object, by name, prints the same row.
    assert_rows(
        &c.ok(&["get", "pod", "web-0"]),
        &["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        &[cells(&[
            "web-0",
            "1/2",
            "CrashLoopBackOff",
            &restarts,
            FRESH,
        ])],
    );
}

#[test]
fn services_print_type_cluster_ip_external_ip_and_ports() {
    let c = Cluster::start();
    create(
        &c,
        r#"{"apiVersion":"v1","kind":"List","items":[
          {"apiVersion":"v1","kind":"Service","metadata":{"name":"web"},"spec":{"selector":{"app":"web","tier":"fe"},"ports":[{"name":"http","port":80,"targetPort":8080},{"name":"dns","port":53,"protocol":"UDP"}]}},
          {"apiVersion":"v1","kind":"Service","metadata":{"name":"np"},"spec":{"type":"NodePort","selector":{"app":"web"},"externalIPs":["192.0.2.10"],"ports":[{"port":80,"nodePort":30080}]}},
          {"apiVersion":"v1","kind":"Service","metadata":{"name":"lb"},"spec":{"type":"LoadBalancer","ports":[{"port":443,"nodePort":31443}]}},
          {"apiVersion":"v1","kind":"Service","metadata":{"name":"lb-ready"},"spec":{"type":"LoadBalancer","ports":[{"port":443,"nodePort":31444}]}},
          {"apiVersion":"v1","kind":"Service","metadata":{"name":"db"},"spec":{"clusterIP":"None","selector":{"app":"db"}}},
          {"apiVersion":"v1","kind":"Service","metadata":{"name":"ext"},"spec":{"type":"ExternalName","externalName":"db.example.com"}}
        ]}"#,
    );
    patch_status(
        &c,
        "service",
        "lb-ready",
        r#"{"loadBalancer":{"ingress":[{"ip":"203.0.113.9"},{"hostname":"lb.example.com"}]}}"#,
    );
    let ip = |name: &str| c.ok(&["get", "service", name, "-o", "jsonpath={.spec.clusterIP}"]);
    let (web, np, lb, lb_ready, kubernetes) = (
        ip("web"),
        ip("np"),
        ip("lb"),
        ip("lb-ready"),
        ip("kubernetes"),
    );
    assert!(web.starts_with("10.43."), "{web}");

    let headers = [
        "NAME",
        "TYPE",
        "CLUSTER-IP",
        "EXTERNAL-IP",
        "PORT(S)",
        "AGE",
        "SELECTOR",
    ];
    let out = c.ok(&["get", "services", "-o", "wide"]);
    let rows = parse(&out, &headers);
    let kubernetes_age = rows
        .iter()
        .find(|r| r[0] == "kubernetes")
        .map(|r| r[5].clone())
        .unwrap();
    assert_rows(
        &out,
        &headers,
        &[
            cells(&[
                "db",
                "ClusterIP",
                "None",
                "<none>",
                "<none>",
                FRESH,
                "app=db",
            ]),
            cells(&[
                "ext",
                "ExternalName",
                "<none>",
                "db.example.com",
                "<none>",
                FRESH,
                "<none>",
            ]),
            cells(&[
                "kubernetes",
                "ClusterIP",
                &kubernetes,
                "<none>",
                "443/TCP",
                &kubernetes_age,
                "<none>",
            ]),
            cells(&[
                "lb",
                "LoadBalancer",
                &lb,
                "<pending>",
                "443:31443/TCP",
                FRESH,
                "<none>",
            ]),
            cells(&[
                "lb-ready",
                "LoadBalancer",
                &lb_ready,
                "203.0.113.9,lb.example.com",
                "443:31444/TCP",
                FRESH,
                "<none>",
            ]),
            cells(&[
                "np",
                "NodePort",
                &np,
                "192.0.2.10",
                "80:30080/TCP",
                FRESH,
                "app=web",
            ]),
            cells(&[
                "web",
                "ClusterIP",
                &web,
                "<none>",
                "80/TCP,53/UDP",
                FRESH,
                "app=web,tier=fe",
            ]),
        ],
    );
    assert_rows(
        &c.ok(&["get", "service", "web"]),
        &headers[..6],
        &[cells(&[
            "web",
            "ClusterIP",
            &web,
            "<none>",
            "80/TCP,53/UDP",
            FRESH,
        ])],
    );
}

#[test]
fn deployments_print_ready_up_to_date_available_and_wide_columns() {
    // The API alone: no controller adds objects (kube-root-ca.crt, ReplicaSets, pods).
    let c = Cluster::start_with(&["--disable-controllers"]);
    create(
        &c,
        r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},"spec":{"replicas":3,
             "selector":{"matchLabels":{"app":"web"},"matchExpressions":[{"key":"tier","operator":"In","values":["fe","be"]}]},
             "template":{"metadata":{"labels":{"app":"web","tier":"fe"}},"spec":{"containers":[{"name":"nginx","image":"nginx:1.27"},{"name":"log","image":"busybox:1.36"}]}}}}"#,
    );
    assert_rows(
        &c.ok(&["get", "deployments"]),
        &["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
        &[cells(&["web", "0/3", "0", "0", FRESH])],
    );
    patch_status(
        &c,
        "deployment",
        "web",
        r#"{"replicas":3,"updatedReplicas":3,"readyReplicas":2,"availableReplicas":2,"observedGeneration":1}"#,
    );
    assert_rows(
        &c.ok(&["get", "deploy", "-o", "wide"]),
        &[
            "NAME",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR",
        ],
        &[cells(&[
            "web",
            "2/3",
            "3",
            "2",
            FRESH,
            "nginx,log",
            "nginx:1.27,busybox:1.36",
            "app=web,tier in (be,fe)",
        ])],
    );
}

#[test]
fn nodes_print_status_roles_version_and_node_info() {
    let c = Cluster::start();
    create(
        &c,
        r#"{"apiVersion":"v1","kind":"List","items":[
          {"apiVersion":"v1","kind":"Node","metadata":{"name":"node-1","labels":{"node-role.kubernetes.io/control-plane":"","node-role.kubernetes.io/etcd":"true"}}},
          {"apiVersion":"v1","kind":"Node","metadata":{"name":"node-2"},"spec":{"unschedulable":true}}
        ]}"#,
    );
    patch_status(
        &c,
        "node",
        "node-1",
        r#"{"conditions":[{"type":"MemoryPressure","status":"False"},{"type":"Ready","status":"True","reason":"KubeletReady"}],
           "addresses":[{"type":"InternalIP","address":"192.168.1.10"},{"type":"Hostname","address":"node-1"}],
           "nodeInfo":{"kubeletVersion":"v1.32.0","osImage":"Debian GNU/Linux 12 (bookworm)","kernelVersion":"6.1.0-18-amd64",
             "containerRuntimeVersion":"runc://1.1.12","kubeProxyVersion":"","machineID":"","systemUUID":"","bootID":"","operatingSystem":"linux","architecture":"amd64"}}"#,
    );
    patch_status(
        &c,
        "node",
        "node-2",
        r#"{"conditions":[{"type":"Ready","status":"Unknown","reason":"NodeStatusUnknown"}]}"#,
    );
    assert_rows(
        &c.ok(&["get", "nodes"]),
        &["NAME", "STATUS", "ROLES", "AGE", "VERSION"],
        &[
            cells(&["node-1", "Ready", "control-plane,etcd", FRESH, "v1.32.0"]),
            cells(&["node-2", "NotReady,SchedulingDisabled", "<none>", FRESH, ""]),
        ],
    );
    assert_rows(
        &c.ok(&["get", "nodes", "-o", "wide"]),
        &[
            "NAME",
            "STATUS",
            "ROLES",
            "AGE",
            "VERSION",
            "INTERNAL-IP",
            "EXTERNAL-IP",
            "OS-IMAGE",
            "KERNEL-VERSION",
            "CONTAINER-RUNTIME",
        ],
        &[
            cells(&[
                "node-1",
                "Ready",
                "control-plane,etcd",
                FRESH,
                "v1.32.0",
                "192.168.1.10",
                "<none>",
                "Debian GNU/Linux 12 (bookworm)",
                "6.1.0-18-amd64",
                "runc://1.1.12",
            ]),
            cells(&[
                "node-2",
                "NotReady,SchedulingDisabled",
                "<none>",
                FRESH,
                "",
                "<none>",
                "<none>",
                "<unknown>",
                "<unknown>",
                "<unknown>",
            ]),
        ],
    );
}

#[test]
fn events_print_last_seen_object_and_wide_columns() {
    let c = Cluster::start();
    create(
        &c,
        r#"{"apiVersion":"v1","kind":"List","items":[
          {"apiVersion":"v1","kind":"Event","metadata":{"name":"web-0.17c1"},
           "involvedObject":{"kind":"Pod","name":"web-0","namespace":"default","fieldPath":"spec.containers{app}"},
           "reason":"BackOff","message":"Back-off restarting failed container","type":"Warning",
           "source":{"component":"kubelet","host":"node-1"},"firstTimestamp":"2024-01-01T00:00:00Z","lastTimestamp":"2024-01-02T00:00:00Z","count":5},
          {"apiVersion":"v1","kind":"Event","metadata":{"name":"node-1.17c2"},
           "involvedObject":{"kind":"Node","name":"node-1"},"reason":"RegisteredNode","message":"Registered Node node-1 in Controller","type":"Normal",
           "eventTime":"2024-01-03T00:00:00.000000Z","reportingComponent":"node-controller","reportingInstance":"node-1","action":"RegisterNode","source":{}}
        ]}"#,
    );
    let (first, last, registered) = (
        age("2024-01-01T00:00:00Z"),
        age("2024-01-02T00:00:00Z"),
        age("2024-01-03T00:00:00Z"),
    );
    assert_rows(
        &c.ok(&["get", "events"]),
        &["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
        &[
            cells(&[
                &registered,
                "Normal",
                "RegisteredNode",
                "node/node-1",
                "Registered Node node-1 in Controller",
            ]),
            cells(&[
                &last,
                "Warning",
                "BackOff",
                "pod/web-0",
                "Back-off restarting failed container",
            ]),
        ],
    );
    assert_rows(
        &c.ok(&["get", "events", "-o", "wide"]),
        &[
            "LAST SEEN",
            "TYPE",
            "REASON",
            "OBJECT",
            "SUBOBJECT",
            "SOURCE",
            "MESSAGE",
            "FIRST SEEN",
            "COUNT",
            "NAME",
        ],
        &[
            cells(&[
                &registered,
                "Normal",
                "RegisteredNode",
                "node/node-1",
                "",
                "node-controller, node-1",
                "Registered Node node-1 in Controller",
                &registered,
                "1",
                "node-1.17c2",
            ]),
            cells(&[
                &last,
                "Warning",
                "BackOff",
                "pod/web-0",
                "spec.containers{app}",
                "kubelet, node-1",
                "Back-off restarting failed container",
                &first,
                "5",
                "web-0.17c1",
            ]),
        ],
    );
}

#[test]
fn jobs_and_cron_jobs_print_status_completions_and_schedule() {
    // The API alone: no controller adds objects (kube-root-ca.crt, ReplicaSets, pods).
    let c = Cluster::start_with(&["--disable-controllers"]);
    create(
        &c,
        r#"{"apiVersion":"v1","kind":"List","items":[
          {"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"pi"},"spec":{"completions":2,"selector":{"matchLabels":{"job":"pi"}},"manualSelector":true,
            "template":{"metadata":{"labels":{"job":"pi"}},"spec":{"restartPolicy":"Never","containers":[{"name":"pi","image":"perl:5.34"}]}}}},
          {"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"wide"},"spec":{"parallelism":3,"template":{"spec":{"restartPolicy":"Never","containers":[{"name":"w","image":"w"}]}}}},
          {"apiVersion":"batch/v1","kind":"CronJob","metadata":{"name":"hello"},"spec":{"schedule":"*/5 * * * *","timeZone":"Etc/UTC",
            "jobTemplate":{"spec":{"template":{"spec":{"restartPolicy":"OnFailure","containers":[{"name":"hello","image":"busybox:1.28"}]}}}}}}
        ]}"#,
    );
    patch_status(
        &c,
        "job",
        "pi",
        r#"{"succeeded":2,"startTime":"2024-01-01T00:00:00Z","completionTime":"2024-01-01T00:01:15Z",
           "conditions":[{"type":"SuccessCriteriaMet","status":"True"},{"type":"Complete","status":"True"}]}"#,
    );
    patch_status(
        &c,
        "cronjob",
        "hello",
        r#"{"lastScheduleTime":"2024-01-01T00:00:00Z"}"#,
    );
    let out = c.ok(&["get", "jobs", "-o", "wide"]);
    let headers = [
        "NAME",
        "STATUS",
        "COMPLETIONS",
        "DURATION",
        "AGE",
        "CONTAINERS",
        "IMAGES",
        "SELECTOR",
    ];
    let selector_of_wide = parse(&out, &headers)
        .iter()
        .find(|r| r[0] == "wide")
        .map(|r| r[7].clone())
        .unwrap();
    assert_rows(
        &out,
        &headers,
        &[
            cells(&[
                "pi",
                "Complete",
                "2/2",
                "75s",
                FRESH,
                "pi",
                "perl:5.34",
                "job=pi",
            ]),
            cells(&[
                "wide",
                "Running",
                "0/1 of 3",
                "",
                FRESH,
                "w",
                "w",
                &selector_of_wide,
            ]),
        ],
    );
    assert_rows(
        &c.ok(&["get", "cronjobs"]),
        &[
            "NAME",
            "SCHEDULE",
            "TIMEZONE",
            "SUSPEND",
            "ACTIVE",
            "LAST SCHEDULE",
            "AGE",
        ],
        &[cells(&[
            "hello",
            "*/5 * * * *",
            "Etc/UTC",
            "False",
            "0",
            &age("2024-01-01T00:00:00Z"),
            FRESH,
        ])],
    );
}

#[test]
fn kinds_without_printers_show_name_and_created_at() {
    let c = Cluster::start();
    create(
        &c,
        r#"{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRole","metadata":{"name":"pod-reader"},
            "rules":[{"apiGroups":[""],"resources":["pods"],"verbs":["get","list"]}]}"#,
    );
    let created = c.ok(&[
        "get",
        "clusterrole",
        "pod-reader",
        "-o",
        "jsonpath={.metadata.creationTimestamp}",
    ]);
    assert_rows(
        &c.ok(&["get", "clusterrole", "pod-reader"]),
        &["NAME", "CREATED AT"],
        &[cells(&["pod-reader", &created])],
    );
}
