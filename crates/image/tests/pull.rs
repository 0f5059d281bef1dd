//! Pulling from a real registry (Debian's `docker-registry`) on a loopback
//! port, with images pushed by the test.

use std::collections::HashSet;
use std::fs;

use image::layer::Compression;
use image::testing::{self, LayerBuilder, TestImage, TestLayer, TestRegistry};
use image::{Credentials, ImageConfig, Store};

fn store(dir: &tempfile::TempDir) -> Store {
    Store::open(dir.path().join("images")).unwrap()
}

#[tokio::test]
async fn pulls_a_gzip_image_by_tag_and_by_digest() {
    let registry = TestRegistry::start().unwrap();
    let built = testing::busybox_image("busybox").unwrap();
    let digest = registry.push("test/busybox", "v1", &built).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);

    let name = format!("{}/test/busybox:v1", registry.host());
    let image = store.pull(&name, None).await.unwrap();
    assert_eq!(image.id, built.id());
    assert_eq!(image.repo_tags, std::slice::from_ref(&name));
    assert_eq!(
        image.repo_digests,
        [format!("{}/test/busybox@{digest}", registry.host())]
    );
    assert_eq!(image.config.cmd, ["sh"]);
    assert!(image.layers[0].join("bin/busybox").is_file());
    assert_eq!(store.resolve(&name), Some(image.clone()));

    // Pulling again fetches the manifest only and writes nothing; by
    // digest works too.
    let index = dir.path().join("images/images.json");
    let inode =
        |p: &std::path::Path| std::os::unix::fs::MetadataExt::ino(&fs::metadata(p).unwrap());
    let before = inode(&index);
    store.pull(&name, None).await.unwrap();
    assert_eq!(inode(&index), before);
    let again = store.pull(&image.repo_digests[0], None).await.unwrap();
    assert_eq!(again.id, image.id);
    assert_eq!(store.list().unwrap().len(), 1);
}

#[tokio::test]
async fn pulls_an_image_with_a_zstd_layer() {
    let registry = TestRegistry::start().unwrap();
    let base = TestLayer::new(testing::busybox_layer().unwrap(), Compression::Gzip);
    let top = TestLayer::new(
        LayerBuilder::new()
            .dir("srv", 0o755)
            .file("srv/index.html", b"hello from zstd", 0o644)
            .whiteout("bin/wget")
            .finish(),
        Compression::Zstd,
    );
    let built = TestImage::new(
        Some("web"),
        vec![base, top],
        &ImageConfig {
            entrypoint: vec!["httpd".into(), "-f".into()],
            working_dir: "/srv".into(),
            exposed_ports: vec!["80/tcp".into()],
            ..ImageConfig::default()
        },
    );
    registry.push("web", "zstd", &built).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);

    let image = store
        .pull(&format!("{}/web:zstd", registry.host()), None)
        .await
        .unwrap();
    assert_eq!(image.layers.len(), 2);
    assert_eq!(
        fs::read(image.layers[1].join("srv/index.html")).unwrap(),
        b"hello from zstd"
    );
    assert_eq!(image.config.entrypoint, ["httpd", "-f"]);
    assert_eq!(image.config.working_dir, "/srv");
    assert_eq!(image.config.exposed_ports, ["80/tcp"]);
}

#[tokio::test]
async fn a_missing_image_is_not_found_in_containerd_words() {
    let registry = TestRegistry::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let name = format!("{}/nope:latest", registry.host());
    let err = store(&dir)
        .pull(&format!("{}/nope", registry.host()), None)
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert_eq!(
        err.to_string(),
        format!("failed to resolve reference \"{name}\": {name}: not found")
    );
}

#[tokio::test]
async fn an_index_resolves_to_its_linux_amd64_manifest() {
    let registry = TestRegistry::start().unwrap();
    let amd64 = testing::busybox_image("x").unwrap();
    let arm64 = TestImage::new(
        None,
        vec![TestLayer::new(
            LayerBuilder::new().file("arm", b"", 0o644).finish(),
            Compression::Gzip,
        )],
        &ImageConfig::default(),
    );
    registry
        .push("multi", &arm64.manifest_digest, &arm64)
        .unwrap();
    registry
        .push("multi", &amd64.manifest_digest, &amd64)
        .unwrap();
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": image::spec::OCI_INDEX,
        "manifests": [
            {"mediaType": image::spec::OCI_MANIFEST, "digest": arm64.manifest_digest, "size": arm64.manifest.len(),
             "platform": {"architecture": "arm64", "os": "linux"}},
            {"mediaType": image::spec::OCI_MANIFEST, "digest": amd64.manifest_digest, "size": amd64.manifest.len(),
             "platform": {"architecture": "amd64", "os": "linux"}},
        ],
    }))
    .unwrap();
    registry
        .push_manifest("multi", "v1", image::spec::OCI_INDEX, &index)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);

    let image = store
        .pull(&format!("{}/multi:v1", registry.host()), None)
        .await
        .unwrap();
    assert_eq!(image.id, amd64.id());
    // The repo digest is the index's, as `crictl images --digests` shows.
    assert_eq!(
        image.repo_digests,
        [format!(
            "{}/multi@{}",
            registry.host(),
            image::sha256_digest(&index)
        )]
    );
}

#[tokio::test]
async fn a_registry_wanting_basic_auth_needs_the_pull_secret() {
    let registry = TestRegistry::start_with_basic_auth().unwrap();
    registry
        .push("private/app", "v1", &testing::busybox_image("x").unwrap())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    let name = format!("{}/private/app:v1", registry.host());

    let err = store.pull(&name, None).await.unwrap_err();
    assert!(err.is_unauthorized(), "{err}");
    assert_eq!(
        err.to_string(),
        format!("failed to resolve reference \"{name}\": pull access denied, repository does not exist or may require authorization: server message: unauthorized: authentication required")
    );
    let wrong = Credentials {
        username: "user".into(),
        password: "wrong".into(),
    };
    assert!(store
        .pull(&name, Some(&wrong))
        .await
        .unwrap_err()
        .is_unauthorized());

    let secret = format!(
        r#"{{"auths":{{"{}":{{"auth":"dXNlcjpzM2NyZXQ="}}}}}}"#,
        registry.host()
    );
    let credentials =
        image::auth::from_docker_config_json(secret.as_bytes(), &registry.host()).unwrap();
    let image = store.pull(&name, Some(&credentials)).await.unwrap();
    assert!(image.layers[0].join("bin/busybox").is_file());
}

#[tokio::test]
async fn a_mirror_in_registries_yaml_serves_docker_hub_names() {
    let registry = TestRegistry::start().unwrap();
    let built = testing::busybox_image("busybox").unwrap();
    registry.push("library/busybox", "latest", &built).unwrap();
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("registries.yaml"),
        format!(
            "mirrors:\n  docker.io:\n    endpoint:\n      - \"http://{}\"\n",
            registry.host()
        ),
    )
    .unwrap();
    let store = store(&dir);

    let image = store.pull("busybox", None).await.unwrap();
    assert_eq!(image.id, built.id());
    assert_eq!(image.repo_tags, ["docker.io/library/busybox:latest"]);
    assert!(store.resolve("busybox").is_some());
}

#[tokio::test]
async fn two_pulls_of_one_image_at_once_both_succeed_and_store_it_once() {
    let registry = TestRegistry::start().unwrap();
    let built = testing::busybox_image("x").unwrap();
    registry.push("same", "v1", &built).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    let name = format!("{}/same:v1", registry.host());

    let (a, b) = tokio::join!(store.pull(&name, None), store.pull(&name, None));
    assert_eq!(a.unwrap().id, b.unwrap().id);
    assert_eq!(store.list().unwrap().len(), 1);
    assert_eq!(
        fs::read_dir(dir.path().join("images/layers/sha256"))
            .unwrap()
            .count(),
        1
    );
    store.remove(&name, &HashSet::new()).unwrap();
    assert_eq!(
        fs::read_dir(dir.path().join("images/layers/sha256"))
            .unwrap()
            .count(),
        0
    );
}

#[tokio::test]
async fn an_https_mirror_is_trusted_through_registries_yaml_tls_settings() {
    let registry = TestRegistry::start().unwrap();
    let built = TestImage::new(
        Some("app"),
        vec![TestLayer::new(
            LayerBuilder::new().file("tls", b"ok", 0o644).finish(),
            Compression::Gzip,
        )],
        &ImageConfig::default(),
    );
    registry.push("app", "v1", &built).unwrap();
    let key = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let https = registry
        .serve_tls(&key.cert.pem(), &key.signing_key.serialize_pem())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    fs::write(&ca, key.cert.pem()).unwrap();
    let config = |tls: &str| {
        format!(
            "mirrors:\n  registry.test:\n    endpoint:\n      - https://{host}\nconfigs:\n  \"{host}\":\n    tls:\n{tls}",
            host = https.host()
        )
    };
    let registries = dir.path().join("registries.yaml");
    let name = "registry.test/app:v1";

    // The self-signed certificate is not trusted by default; the mirror's
    // error is the one told (the registry's own host does not resolve).
    fs::write(&registries, config("      {}\n")).unwrap();
    let err = store(&dir).pull(name, None).await.unwrap_err();
    assert!(
        err.to_string().contains("invalid peer certificate"),
        "{err}"
    );

    fs::write(
        &registries,
        config(&format!("      ca_file: {}\n", ca.display())),
    )
    .unwrap();
    let image = store(&dir).pull(name, None).await.unwrap();
    assert_eq!(fs::read(image.layers[0].join("tls")).unwrap(), b"ok");

    let other = tempfile::tempdir().unwrap();
    fs::write(
        other.path().join("registries.yaml"),
        config("      insecure_skip_verify: true\n"),
    )
    .unwrap();
    let image = store(&other).pull(name, None).await.unwrap();
    assert_eq!(image.id, built.id());
}

#[tokio::test]
async fn an_image_whose_config_is_not_json_is_malformed_and_leaves_nothing() {
    let registry = TestRegistry::start().unwrap();
    registry
        .push("broken", "v1", &testing::malformed_image())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    let err = store
        .pull(&format!("{}/broken:v1", registry.host()), None)
        .await
        .unwrap_err();
    assert!(err.is_malformed(), "{err}");
    assert!(
        err.to_string().starts_with("invalid image config sha256:"),
        "{err}"
    );
    assert_eq!(
        fs::read_dir(dir.path().join("images/blobs/sha256"))
            .unwrap()
            .count(),
        0
    );
}

#[tokio::test]
async fn a_layer_that_comes_twice_is_fetched_once_and_stacked_once() {
    let registry = TestRegistry::start().unwrap();
    let empty = TestLayer::new(LayerBuilder::new().finish(), Compression::Gzip);
    let app = TestLayer::new(
        LayerBuilder::new().file("app", b"1", 0o755).finish(),
        Compression::Zstd,
    );
    let built = TestImage::new(
        None,
        vec![empty.clone(), app.clone(), empty.clone()],
        &ImageConfig::default(),
    );
    registry.push("twice", "v1", &built).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);

    let image = store
        .pull(&format!("{}/twice:v1", registry.host()), None)
        .await
        .unwrap();
    let layers = dir.path().join("images/layers/sha256");
    assert_eq!(
        image.layers,
        [
            layers.join(&app.diff_id[7..]),
            layers.join(&empty.diff_id[7..])
        ]
    );
    assert_eq!(fs::read_dir(&layers).unwrap().count(), 2);
}
