#!/usr/bin/env python3
"""Generates crates/api/src/apply/schema/table.rs, the structured-merge-diff
schema of the built-in kinds that server-side apply walks (upstream builds it
at start from the OpenAPI definitions with kube-openapi's `schemaconv`).

Input: the Kubernetes v1.32 OpenAPI definitions as JSON schema (`$defs`), e.g.
`kubernetes_validate/kubernetes-json-schema/v1.32.0-local/_definitions.json`
from the `kubernetes-validate` PyPI package, which carries upstream's
`x-kubernetes-list-type`, `x-kubernetes-list-map-keys`, `x-kubernetes-map-type`
and `x-kubernetes-patch-*` extensions.

Only what changes the walk is kept: a field whose value is a scalar (or an
atomic list, which behaves as one) reads the same as an undeclared field and is
left out; struct, map, associative list and free-form fields are listed, and so
is every struct type they reach (sorted by name, fields sorted by name).

Usage: gen_apply_schema.py _definitions.json > crates/api/src/apply/schema/table.rs
"""

import json
import sys

# Types schemaconv does not read from their definition: atomic whatever the
# value. (Quantity and IntOrString are too, but their values are scalars, so
# they are left out as scalars are.)
UNTYPED = {"io.k8s.apimachinery.pkg.runtime.RawExtension"}
SCALARS = {
    "io.k8s.apimachinery.pkg.api.resource.Quantity",
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
}


def ref_name(node):
    if not isinstance(node, dict):
        return None
    if "$ref" in node:
        return node["$ref"].split("/")[-1]
    for key in ("allOf", "oneOf", "anyOf"):
        subs = node.get(key) or []
        if len(subs) == 1:
            name = ref_name(subs[0])
            if name:
                return name
    return None


def types_of(node):
    t = node.get("type")
    if t is None:
        return []
    if isinstance(t, str):
        t = [t]
    return [x for x in t if x != "null"]


class Gen:
    def __init__(self, defs):
        self.defs = defs
        self.reached = set()
        self.queue = []

    def reach(self, name):
        if name not in self.reached:
            self.reached.add(name)
            self.queue.append(name)

    def type_kind(self, name):
        """'untyped', 'scalar', 'deduced' or 'struct' for a named type."""
        if name in UNTYPED:
            return "untyped"
        if name in SCALARS:
            return "scalar"
        d = self.defs[name]
        ts = types_of(d)
        if "properties" in d:
            return "struct"
        if not ts and "oneOf" in d:
            return "untyped"
        if not ts:
            return "deduced"  # JSON, JSONSchemaPropsOr*: any value
        if ts[0] == "object":
            if isinstance(d.get("additionalProperties"), dict):
                return "struct"
            return "deduced"  # free-form object
        return "scalar"

    def ty(self, node):
        """The Rust `Ty` of a property or item schema, or None for a scalar."""
        name = ref_name(node)
        if name:
            kind = self.type_kind(name)
            if kind == "untyped":
                return "Ty::Untyped"
            if kind == "scalar":
                return None
            if kind == "deduced":
                return "Ty::Deduced"
            self.reach(name)
            mt = node.get("x-kubernetes-map-type")
            if mt == "atomic":
                return 'Ty::RefAs("%s", true)' % name
            if mt == "granular":
                return 'Ty::RefAs("%s", false)' % name
            return 'Ty::Ref("%s")' % name
        ts = types_of(node)
        if not ts:
            if "oneOf" in node or "anyOf" in node:
                return "Ty::Untyped"
            return "Ty::Deduced"
        t = ts[0]
        if t == "array":
            items = node.get("items") or {}
            lt = node.get("x-kubernetes-list-type")
            strategy = node.get("x-kubernetes-patch-strategy")
            if lt is None and strategy in ("merge", "merge,retainKeys"):
                key = node.get("x-kubernetes-patch-merge-key")
                lt = "map" if key else "set"
                keys = [key] if key else []
            else:
                keys = node.get("x-kubernetes-list-map-keys") or []
            if lt in (None, "atomic"):
                return None  # an atomic list is a leaf, as an undeclared field's list is
            elem = self.ty(items) or "Ty::Scalar"
            if lt == "set":
                return "Ty::List(&%s, ListType::Set)" % elem
            return "Ty::List(&%s, ListType::Map(&[%s]))" % (
                elem,
                ", ".join('"%s"' % k for k in keys),
            )
        if t == "object":
            add = node.get("additionalProperties")
            atomic = node.get("x-kubernetes-map-type") == "atomic"
            if isinstance(add, dict):
                elem = self.ty(add) or "Ty::Scalar"
                return "Ty::Map(&%s, %s)" % (elem, "true" if atomic else "false")
            return "Ty::Deduced"
        return None

    def struct(self, name):
        d = self.defs[name]
        fields = []
        for pname in sorted(d.get("properties") or {}):
            ty = self.ty(d["properties"][pname])
            if ty is not None:
                fields.append((pname, ty))
        atomic = d.get("x-kubernetes-map-type") == "atomic"
        return atomic, fields


def main():
    defs = json.load(open(sys.argv[1]))["$defs"]
    gen = Gen(defs)
    kinds = []
    for name, d in defs.items():
        for gvk in d.get("x-kubernetes-group-version-kind") or []:
            if gen.type_kind(name) != "struct":
                continue
            kinds.append((gvk.get("group", ""), gvk["version"], gvk["kind"], name))
            gen.reach(name)
    kinds = sorted(set(kinds))
    # Keep one definition per (group, version, kind): meta types such as
    # DeleteOptions are listed under every group.
    seen = set()
    unique = []
    for k in kinds:
        if k[:3] in seen:
            continue
        seen.add(k[:3])
        unique.append(k)

    structs = {}
    while gen.queue:
        name = gen.queue.pop()
        structs[name] = gen.struct(name)

    out = []
    out.append("//! The structured-merge-diff schema of the built-in kinds, as upstream's")
    out.append("//! `schemaconv` derives it from the Kubernetes v1.32 OpenAPI definitions:")
    out.append("//! struct, map and associative-list fields and the struct types they reach.")
    out.append("//! Scalar and atomic-list fields are left out (they walk as undeclared")
    out.append("//! fields do).")
    out.append("//!")
    out.append("//! @generated by `crates/api/tools/gen_apply_schema.py`; do not edit by hand.")
    out.append("")
    out.append("use super::{Def, ListType, Ty};")
    out.append("")
    out.append("pub(super) static DEFS: &[Def] = &[")
    for name in sorted(structs):
        atomic, fields = structs[name]
        out.append('    Def::new("%s", %s, &[' % (name, "true" if atomic else "false"))
        for pname, ty in fields:
            out.append('        ("%s", %s),' % (pname, ty))
        out.append("    ]),")
    out.append("];")
    out.append("")
    out.append("/// (group, version, kind) to the definition of the kind's root type.")
    out.append("pub(super) static KINDS: &[(&str, &str, &str, &str)] = &[")
    for g, v, k, name in unique:
        out.append('    ("%s", "%s", "%s", "%s"),' % (g, v, k, name))
    out.append("];")
    print("\n".join(out))


if __name__ == "__main__":
    main()
