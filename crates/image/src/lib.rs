//! The node's OCI image store: images pulled from registries speaking the OCI
//! distribution API or imported from OCI/docker archives, each layer verified
//! by digest and unpacked once into a content-addressed directory that the
//! runtime stacks with overlayfs.
