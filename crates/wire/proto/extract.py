#!/usr/bin/env python3
"""Extract the protobuf schemas kubectl was built with and print them as .proto files.

Go's gogo/protobuf generated code embeds every generated.proto as a gzipped
FileDescriptorProto. This reads them out of the kubectl binary and prints
proto2 source equivalent to the descriptor (comments are not in descriptors),
adding to each field the `json` struct tag of its Go field, read from the Go
reflection data in the same binary, as the `(krate.json)` option.

usage: python3 extract.py /usr/bin/kubectl crates/wire/proto
  (needs the python `protobuf` package: pip install protobuf). Rewrites
  proto/k8s.io/api and proto/k8s.io/apimachinery; the struct-tag reader
  expects a Go 1.20+ linux/amd64 ELF (kubectl v1.32 is built with Go 1.23).
"""
import re, struct, sys, zlib, os, subprocess
from google.protobuf import descriptor_pb2 as d

# FieldOptions field 65001 (gogoproto.nullable), varint 0.
NON_NULLABLE = bytes([0xc8, 0xde, 0x1f, 0x00])

LABEL = {1: "optional", 2: "required", 3: "repeated"}
TYPE = {1: "double", 2: "float", 3: "int64", 4: "uint64", 5: "int32", 6: "fixed64", 7: "fixed32",
        8: "bool", 9: "string", 12: "bytes", 13: "uint32", 15: "sfixed32", 16: "sfixed64",
        17: "sint32", 18: "sint64"}

def go_json_tags(path):
    """The Go struct tags kubectl's reflection data carries, by (package path, type name):
    {proto field number: json tag}. Read from the ELF's .rodata: every abi.StructType whose
    fields have `protobuf:"..."` tags (Go 1.23 amd64 layout)."""
    data = open(path, "rb").read()
    e_shoff, = struct.unpack_from("<Q", data, 0x28)
    e_shentsize, e_shnum, e_shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    secs = [struct.unpack_from("<IIQQQQ", data, e_shoff + i * e_shentsize) for i in range(e_shnum)]
    strtab_off = secs[e_shstrndx][4]
    def secname(n):
        return data[strtab_off + n:data.index(b"\0", strtab_off + n)].decode()
    sections = {secname(s[0]): (s[3], s[4], s[5]) for s in secs}
    maps = [v for v in sections.values() if v[0]]
    def v2o(va):
        for addr, off, size in maps:
            if addr <= va < addr + size:
                return off + (va - addr)
        return None
    def varint(o):
        n = shift = 0
        while True:
            b = data[o]; o += 1
            n |= (b & 0x7F) << shift; shift += 7
            if b < 0x80:
                return n, o
    def name_at(va):  # abi.Name: flags, varint len, name, [varint len, tag]
        o = v2o(va)
        if o is None or data[o] & 0xF0:
            return None
        n, p = varint(o + 1)
        if n == 0 or n > 200:
            return None
        name = data[p:p + n]; p += n
        tag = b""
        if data[o] & 2:
            t, p = varint(p)
            if t > 4000:
                return None
            tag = data[p:p + t]
        try:
            return name.decode(), tag.decode()
        except UnicodeDecodeError:
            return None
    addr, off, size = sections[".rodata"]  # also moduledata.types: NameOffs are relative to it
    tags = {}
    for o in range(off, off + size - 88, 8):
        if data[o + 23] & 0x1F != 25:  # abi.Struct
            continue
        fptr, flen, fcap = struct.unpack_from("<QQQ", data, o + 56)
        fo = v2o(fptr) if 0 < flen == fcap <= 300 else None
        if fo is None or not data[o + 20] & 1:  # TFlagUncommon: named type
            continue
        fields = [name_at(struct.unpack_from("<Q", data, fo + 24 * i)[0]) for i in range(flen)]
        if None in fields or not any('protobuf:"' in t for _, t in fields):
            continue
        type_name = name_at(addr + struct.unpack_from("<i", data, o + 40)[0])
        pkg = name_at(addr + struct.unpack_from("<i", data, o + 80)[0])
        if not type_name or not pkg:
            continue
        by_number = {}
        for _, t in fields:
            pb = re.search(r'protobuf:"(?:bytes|varint|fixed32|fixed64),(\d+),', t)
            js = re.search(r'json:"([^"]*)"', t)
            if pb and js:
                by_number[int(pb.group(1))] = js.group(1)
        short = type_name[0].split(".")[-1]
        tags[(pkg[0], short)] = by_number
    return tags

def scan(path):
    data = open(path, "rb").read()
    out = {}
    for m in re.finditer(rb"\x1f\x8b\x08\x00\x00\x00\x00\x00", data):
        try:
            raw = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data[m.start():m.start() + 1 << 20])
            fd = d.FileDescriptorProto.FromString(raw)
        except Exception:
            continue
        if fd.name.startswith(("k8s.io/api/", "k8s.io/apimachinery/")) and fd.name.endswith("generated.proto"):
            out[fd.name] = fd
    return out

def ftype(f, maps):
    if f.type in (11, 14):
        return f.type_name
    return TYPE[f.type]

def field_line(f, maps, ind, tag):
    if f.type == 11 and f.type_name in maps:
        k, v = maps[f.type_name]
        opts = [] if tag is None else [f"(krate.json) = {quote(tag)}"]
        o = f" [{', '.join(opts)}]" if opts else ""
        return f"{ind}map<{ftype(k, maps)}, {ftype(v, maps)}> {f.name} = {f.number}{o};"
    opts = []
    if f.HasField("default_value"):
        opts.append(f"default = {f.default_value}")
    if f.options.HasField("packed"):
        opts.append(f"packed = {'true' if f.options.packed else 'false'}")
    if NON_NULLABLE in f.options.SerializeToString():
        # gogoproto.nullable=false: a Go value field (not a pointer). The only
        # gogo option kept; it tells "unset" from "set to zero" for scalars.
        opts.append("(gogoproto.nullable) = false")
    if tag is not None:
        # The Go field's json tag: its name, omitempty, inline ("-" for custom marshalers).
        opts.append(f"(krate.json) = {quote(tag)}")
    o = f" [{', '.join(opts)}]" if opts else ""
    return f"{ind}{LABEL[f.label]} {ftype(f, maps)} {f.name} = {f.number}{o};"

def quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'

def message(m, scope, lines, ind, tags, go_pkg):
    full = f"{scope}.{m.name}"
    maps = {}
    for n in m.nested_type:
        if n.options.map_entry:
            maps[f"{full}.{n.name}"] = (n.field[0], n.field[1])
    lines.append(f"{ind}message {m.name} {{")
    for n in m.nested_type:
        if not n.options.map_entry:
            message(n, full, lines, ind + "  ", tags, go_pkg)
    for e in m.enum_type:
        enum(e, lines, ind + "  ")
    go = tags.get((go_pkg, m.name), {})
    for f in m.field:
        lines.append(field_line(f, maps, ind + "  ", go.get(f.number)))
    lines.append(f"{ind}}}")
    lines.append("")

def enum(e, lines, ind):
    lines.append(f"{ind}enum {e.name} {{")
    for v in e.value:
        lines.append(f"{ind}  {v.name} = {v.number};")
    lines.append(f"{ind}}}")

GOGO = "github.com/gogo/protobuf/gogoproto/gogo.proto"

KRATE = "krate/options.proto"

def render(fd, origin, tags):
    assert not fd.service and not fd.extension
    lines = [f"// {origin}", "// Regenerate with crates/wire/proto/extract.py; do not edit by hand.", "",
             f'syntax = "{fd.syntax or "proto2"}";', "", f"package {fd.package};", ""]
    for dep in fd.dependency:
        lines.append(f'import "{dep}";')
    if GOGO not in fd.dependency:
        lines.append(f'import "{GOGO}";')
    lines.append(f'import "{KRATE}";')
    lines.append("")
    if fd.options.HasField("go_package"):
        lines.append(f'option go_package = "{fd.options.go_package}";')
        lines.append("")
    for e in fd.enum_type:
        enum(e, lines, "")
    for m in fd.message_type:
        message(m, "." + fd.package, lines, "", tags, fd.options.go_package)
    return "\n".join(lines).rstrip() + "\n"

def main():
    kubectl, outdir = sys.argv[1], sys.argv[2]
    ver = subprocess.run([kubectl, "version", "--client", "-o", "json"], capture_output=True, text=True).stdout
    gv = re.search(r'"gitVersion":\s*"([^"]+)"', ver).group(1)
    gc = re.search(r'"gitCommit":\s*"([^"]+)"', ver).group(1)
    origin = f"Schema embedded in kubectl {gv} (gitCommit {gc}) as a FileDescriptorProto."
    files = scan(os.path.realpath(kubectl))
    tags = go_json_tags(os.path.realpath(kubectl))
    for name, fd in sorted(files.items()):
        p = os.path.join(outdir, name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        open(p, "w").write(render(fd, origin, tags))
        print(name)

main()
