//! How `Cni` drives plugins, checked with recording stand-in plugins (shell
//! scripts that log their stdin and environment and answer with a canned
//! result), so no namespace or root is needed.

use std::fs;
use std::path::{Path, PathBuf};

use net::cni::{self, Cni, CniConfig, PodRef, PortMapping};
use net::DefaultNetwork;
use serde_json::{json, Value};

const FAKE_PLUGIN: &str = r#"#!/bin/sh
# Records the invocation, then answers: fail-<command>-<name> holds an
# error result, result-<name>.json the ADD result.
root=$(dirname "$0")/..
name=$(basename "$0")
cat > "$root/log/$CNI_COMMAND-$name.json"
env | grep '^CNI_' | sort > "$root/log/$CNI_COMMAND-$name.env"
echo "$CNI_COMMAND $name" >> "$root/log/order"
fail="$root/fail-$CNI_COMMAND-$name"
if [ -f "$fail" ]; then cat "$fail"; exit 1; fi
if [ "$CNI_COMMAND" = ADD ]; then cat "$root/result-$name.json"; fi
exit 0
"#;

struct Fixture {
    dir: tempfile::TempDir,
    cni: Cni,
}

impl Fixture {
    fn new(plugins: &[&str]) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for sub in ["bin", "log", "net.d", "cache"] {
            fs::create_dir(root.join(sub)).unwrap();
        }
        for plugin in plugins.iter().chain(&["loopback"]) {
            let path = root.join("bin").join(plugin);
            fs::write(&path, FAKE_PLUGIN).unwrap();
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
            fs::write(
                root.join(format!("result-{plugin}.json")),
                json!({"cniVersion": "1.0.0"}).to_string(),
            )
            .unwrap();
        }
        let cni = Cni::new(CniConfig {
            conf_dir: root.join("net.d"),
            // The first directory does not exist: plugins are looked up in order.
            bin_dirs: vec![root.join("missing-bin"), root.join("bin")],
            cache_dir: root.join("cache"),
        });
        Fixture { dir, cni }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn result(&self, plugin: &str, result: Value) {
        fs::write(
            self.root().join(format!("result-{plugin}.json")),
            result.to_string(),
        )
        .unwrap();
    }

    fn stdin(&self, command: &str, plugin: &str) -> Value {
        let path = self.root().join(format!("log/{command}-{plugin}.json"));
        serde_json::from_slice(
            &fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        )
        .unwrap()
    }

    fn env(&self, command: &str, plugin: &str) -> String {
        fs::read_to_string(self.root().join(format!("log/{command}-{plugin}.env"))).unwrap()
    }

    fn order(&self) -> Vec<String> {
        fs::read_to_string(self.root().join("log/order"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn netns(&self) -> PathBuf {
        let path = self.root().join("netns");
        fs::write(&path, "").unwrap();
        path
    }

    fn cache_file(&self, network: &str, id: &str, ifname: &str) -> PathBuf {
        self.root()
            .join(format!("cache/results/{network}-{id}-{ifname}"))
    }
}

fn pod() -> PodRef {
    PodRef {
        namespace: "default".into(),
        name: "web".into(),
        uid: "5d1c1b6e-0000-4000-8000-000000000001".into(),
    }
}

fn two_plugin_list(name: &str) -> String {
    json!({
        "cniVersion": "1.0.0",
        "name": name,
        "plugins": [
            {"type": "fake-ipam", "subnet": "10.9.0.0/24"},
            {"type": "fake-ports", "capabilities": {"portMappings": true, "bandwidth": true}},
        ],
    })
    .to_string()
}

#[tokio::test]
async fn plugins_run_in_order_with_the_previous_result_and_their_capabilities() {
    let f = Fixture::new(&["fake-ipam", "fake-ports"]);
    fs::write(
        f.root().join("net.d/10-test.conflist"),
        two_plugin_list("testnet"),
    )
    .unwrap();
    let ipam_result = json!({
        "cniVersion": "1.0.0",
        "interfaces": [{"name": "eth0", "sandbox": "/x"}],
        "ips": [{"interface": 0, "address": "10.9.0.7/24", "gateway": "10.9.0.1"}],
    });
    f.result("fake-ipam", ipam_result.clone());
    let mut final_result = ipam_result.clone();
    final_result["ips"]
        .as_array_mut()
        .unwrap()
        .push(json!({"interface": 0, "address": "fd09::7/64"}));
    f.result("fake-ports", final_result.clone());
    let netns = f.netns();

    let ips = f
        .cni
        .add(
            "sandbox1",
            &netns,
            &pod(),
            &[
                PortMapping {
                    protocol: "TCP".into(),
                    container_port: 80,
                    host_port: 8080,
                    host_ip: String::new(),
                },
                PortMapping {
                    protocol: "udp".into(),
                    container_port: 53,
                    host_port: 0,
                    host_ip: String::new(),
                },
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        ips,
        vec![
            "10.9.0.7".parse::<std::net::IpAddr>().unwrap(),
            "fd09::7".parse().unwrap()
        ]
    );
    assert_eq!(
        f.order(),
        ["ADD loopback", "ADD fake-ipam", "ADD fake-ports"]
    );

    let lo = f.stdin("ADD", "loopback");
    assert_eq!(lo["name"], "cni-loopback");
    assert!(f.env("ADD", "loopback").contains("CNI_IFNAME=lo\n"));

    let first = f.stdin("ADD", "fake-ipam");
    assert_eq!(first["name"], "testnet");
    assert_eq!(first["cniVersion"], "1.0.0");
    assert_eq!(first["subnet"], "10.9.0.0/24");
    assert!(first.get("prevResult").is_none());
    assert!(first.get("runtimeConfig").is_none());

    let second = f.stdin("ADD", "fake-ports");
    assert_eq!(second["prevResult"], ipam_result);
    // Only mappings with a host port, protocol lower-cased; no bandwidth
    // argument was given, so none is passed.
    assert_eq!(
        second["runtimeConfig"],
        json!({"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]})
    );

    let env = f.env("ADD", "fake-ports");
    assert!(env.contains("CNI_COMMAND=ADD\n"), "{env}");
    assert!(env.contains("CNI_CONTAINERID=sandbox1\n"), "{env}");
    assert!(
        env.contains(&format!("CNI_NETNS={}\n", netns.display())),
        "{env}"
    );
    assert!(env.contains("CNI_IFNAME=eth0\n"), "{env}");
    assert!(
        env.contains(
            "CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=sandbox1;K8S_POD_UID=5d1c1b6e-0000-4000-8000-000000000001\n"
        ),
        "{env}"
    );
    assert!(
        env.contains(&format!(
            "CNI_PATH={}:{}\n",
            f.root().join("missing-bin").display(),
            f.root().join("bin").display()
        )),
        "{env}"
    );

    // The result is cached in libcni's format.
    let cached: Value =
        serde_json::from_slice(&fs::read(f.cache_file("testnet", "sandbox1", "eth0")).unwrap())
            .unwrap();
    assert_eq!(cached["kind"], "cniCacheV1");
    assert_eq!(cached["containerId"], "sandbox1");
    assert_eq!(cached["networkName"], "testnet");
    assert_eq!(cached["ifName"], "eth0");
    assert_eq!(cached["result"], final_result);
    assert!(f.cache_file("cni-loopback", "sandbox1", "lo").exists());

    assert_eq!(f.cni.attached().unwrap(), ["sandbox1"]);
    f.cni.check("sandbox1", &netns, &pod()).await.unwrap();
    assert_eq!(f.stdin("CHECK", "fake-ports")["prevResult"], final_result);
}

#[tokio::test]
async fn del_runs_the_cached_config_in_reverse_with_the_cached_result() {
    let f = Fixture::new(&["fake-ipam", "fake-ports", "other"]);
    fs::write(
        f.root().join("net.d/10-test.conflist"),
        two_plugin_list("testnet"),
    )
    .unwrap();
    let result = json!({"cniVersion": "1.0.0", "ips": [{"address": "10.9.0.8/24"}]});
    f.result("fake-ports", result.clone());
    let netns = f.netns();
    let mapping = PortMapping {
        protocol: "tcp".into(),
        container_port: 80,
        host_port: 8081,
        host_ip: "127.0.0.1".into(),
    };
    f.cni
        .add("sandbox2", &netns, &pod(), &[mapping])
        .await
        .unwrap();

    // The config changes while the pod runs: DEL still undoes what ADD did.
    fs::remove_file(f.root().join("net.d/10-test.conflist")).unwrap();
    fs::write(
        f.root().join("net.d/05-new.conflist"),
        json!({"cniVersion": "1.0.0", "name": "newnet", "plugins": [{"type": "other"}]})
            .to_string(),
    )
    .unwrap();
    fs::remove_file(f.root().join("log/order")).unwrap();

    // The namespace is gone: CNI_NETNS is empty.
    fs::remove_file(&netns).unwrap();
    f.cni.del("sandbox2", Some(&netns), &pod()).await.unwrap();
    assert_eq!(
        f.order(),
        ["DEL fake-ports", "DEL fake-ipam", "DEL loopback"]
    );
    let del = f.stdin("DEL", "fake-ipam");
    assert_eq!(del["name"], "testnet");
    assert_eq!(del["prevResult"], result);
    assert_eq!(
        f.stdin("DEL", "fake-ports")["runtimeConfig"],
        json!({"portMappings": [{"hostPort": 8081, "containerPort": 80, "protocol": "tcp", "hostIP": "127.0.0.1"}]})
    );
    assert!(f.env("DEL", "fake-ipam").contains("CNI_NETNS=\n"));
    assert!(!f.cache_file("testnet", "sandbox2", "eth0").exists());
    assert!(!f.cache_file("cni-loopback", "sandbox2", "lo").exists());
    assert!(f.cni.attached().unwrap().is_empty());

    // A second DEL has no cache: the current config's plugins are asked,
    // without a previous result, and nothing fails.
    fs::remove_file(f.root().join("log/order")).unwrap();
    f.cni.del("sandbox2", None, &pod()).await.unwrap();
    assert_eq!(f.order(), ["DEL other", "DEL loopback"]);
    assert!(f.stdin("DEL", "other").get("prevResult").is_none());

    let err = f
        .cni
        .check("sandbox2", &f.netns(), &pod())
        .await
        .unwrap_err();
    assert!(matches!(err, cni::Error::NotAttached { .. }), "{err}");
}

#[tokio::test]
async fn an_error_result_becomes_the_error_with_the_plugins_message() {
    let f = Fixture::new(&["fake-ipam", "fake-ports"]);
    fs::write(
        f.root().join("net.d/10-test.conflist"),
        two_plugin_list("testnet"),
    )
    .unwrap();
    fs::write(
        f.root().join("fail-ADD-fake-ports"),
        json!({"cniVersion": "1.0.0", "code": 7, "msg": "no more addresses", "details": "range full"}).to_string(),
    )
    .unwrap();
    let err = f
        .cni
        .add("sandbox3", &f.netns(), &pod(), &[])
        .await
        .unwrap_err();
    match &err {
        cni::Error::Plugin {
            plugin,
            network,
            command,
            code,
            message,
        } => {
            assert_eq!(plugin, "fake-ports");
            assert_eq!(network, "testnet");
            assert_eq!(*command, "add");
            assert_eq!(*code, Some(7));
            assert_eq!(message, "no more addresses; range full");
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        r#"plugin type="fake-ports" name="testnet" failed (add): no more addresses; range full"#
    );
    // What the first plugin set up was deleted again; nothing is cached.
    assert_eq!(
        f.order(),
        [
            "ADD loopback",
            "ADD fake-ipam",
            "ADD fake-ports",
            "DEL fake-ports",
            "DEL fake-ipam",
            "DEL loopback"
        ]
    );
    assert!(!f.cache_file("testnet", "sandbox3", "eth0").exists());

    // A plugin that fails without a word says so.
    fs::write(f.root().join("fail-ADD-fake-ports"), "").unwrap();
    let err = f
        .cni
        .add("sandbox3", &f.netns(), &pod(), &[])
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("netplugin failed with no error message"),
        "{err}"
    );
}

#[tokio::test]
async fn a_missing_plugin_or_config_is_named_in_the_error() {
    let f = Fixture::new(&["fake-ipam"]);
    assert!(matches!(f.cni.status(), Err(cni::Error::NoConfig(_))));
    let err = f
        .cni
        .add("sandbox4", &f.netns(), &pod(), &[])
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "no network config found in {}",
            f.root().join("net.d").display()
        )
    );

    fs::write(
        f.root().join("net.d/10-test.conflist"),
        two_plugin_list("testnet"),
    )
    .unwrap();
    assert_eq!(
        f.cni.status().unwrap_err().to_string(),
        format!(
            "failed to find plugin \"fake-ports\" in path [{} {}]",
            f.root().join("missing-bin").display(),
            f.root().join("bin").display()
        )
    );
    let err = f
        .cni
        .add("../escape", &f.netns(), &pod(), &[])
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"invalid characters in containerID: "../escape""#
    );
    let err = f
        .cni
        .add("sandbox4", &f.netns(), &pod(), &[])
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "failed to find plugin \"fake-ports\" in path [{} {}]",
            f.root().join("missing-bin").display(),
            f.root().join("bin").display()
        )
    );
}

#[test]
fn the_default_config_is_written_when_missing_kept_when_current_and_never_over_a_users() {
    let dir = tempfile::tempdir().unwrap();
    let conf_dir = dir.path().join("net.d");
    let cni = Cni::new(CniConfig {
        conf_dir: conf_dir.clone(),
        ..CniConfig::default()
    });
    let network = DefaultNetwork {
        bridge: "krt-x".into(),
        pod_cidr: "10.200.9.0/24".into(),
        ..DefaultNetwork::default()
    };

    // A user's config (even a single-plugin .conf) wins.
    fs::create_dir_all(&conf_dir).unwrap();
    let user = r#"{"cniVersion":"1.0.0","name":"mine","type":"ptp"}"#;
    fs::write(conf_dir.join("99-mine.conf"), user).unwrap();
    assert!(!cni.ensure_default_config(&network).unwrap());
    assert!(!conf_dir.join(cni::DEFAULT_CONFIG_FILE).exists());
    assert_eq!(cni.network().unwrap().name, "mine");
    assert_eq!(
        fs::read_to_string(conf_dir.join("99-mine.conf")).unwrap(),
        user
    );

    // An empty (or missing) directory gets the default, once.
    fs::remove_dir_all(&conf_dir).unwrap();
    assert!(cni.ensure_default_config(&network).unwrap());
    let path = conf_dir.join(cni::DEFAULT_CONFIG_FILE);
    let written = fs::read_to_string(&path).unwrap();
    assert_eq!(written, net::default_config(&network));
    let modified = fs::metadata(&path).unwrap().modified().unwrap();
    assert!(cni.ensure_default_config(&network).unwrap());
    assert_eq!(
        fs::metadata(&path).unwrap().modified().unwrap(),
        modified,
        "a current default is left as it is"
    );
    let list = cni.network().unwrap();
    assert_eq!(list.name, "krate");
    assert_eq!(list.plugins[0]["bridge"], "krt-x");
    assert_eq!(
        fs::read_dir(&conf_dir).unwrap().count(),
        1,
        "no temporary file is left"
    );

    // A default of other settings (the node got another pod CIDR) is
    // rewritten.
    let moved = DefaultNetwork {
        pod_cidr: "10.200.10.0/24".into(),
        ..network.clone()
    };
    assert!(cni.ensure_default_config(&moved).unwrap());
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        net::default_config(&moved)
    );
}

#[tokio::test]
async fn del_takes_a_plugins_not_found_as_already_deleted() {
    let f = Fixture::new(&["fake-ipam", "fake-ports"]);
    fs::write(
        f.root().join("net.d/10-test.conflist"),
        two_plugin_list("testnet"),
    )
    .unwrap();
    let netns = f.netns();
    f.cni.add("sandbox5", &netns, &pod(), &[]).await.unwrap();
    f.cni.status().unwrap();

    fs::write(
        f.root().join("fail-DEL-fake-ports"),
        json!({"code": 999, "msg": "container veth not found"}).to_string(),
    )
    .unwrap();
    f.cni.del("sandbox5", Some(&netns), &pod()).await.unwrap();
    assert!(!f.cache_file("testnet", "sandbox5", "eth0").exists());

    // Any other failure is the caller's to retry.
    f.cni.add("sandbox6", &netns, &pod(), &[]).await.unwrap();
    fs::write(
        f.root().join("fail-DEL-fake-ports"),
        json!({"code": 999, "msg": "iptables is locked"}).to_string(),
    )
    .unwrap();
    let err = f
        .cni
        .del("sandbox6", Some(&netns), &pod())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"plugin type="fake-ports" name="testnet" failed (delete): iptables is locked"#
    );
    assert!(f.cache_file("testnet", "sandbox6", "eth0").exists());
}
