#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Check that docs/netlink/mmk.yaml, the netlink spec of the mmk family,
matches the code that implements it:

  - the spec uses only keys of the kernel's genetlink-c spec format;
  - uapi/linux/mmk_netlink.h has exactly the names and values the spec
    gives (family, attributes, commands, multicast groups), named as the
    kernel's ynl-gen names them, and the definitions the spec takes from
    uapi/linux/mmk.h have the spec's names and values there;
  - kmod/mmk_netlink.c puts each attribute with the spec's type, puts
    exactly the attributes the spec lists in replies and events, has a
    policy for exactly the request attributes, with the spec's checks, an
    op for each do/dump and sends each notification;
  - tools/mmkctl/mmkctl.c parses each attribute with the spec's type.

Prints TAP (one test per area); exits 1 if any failed.

usage: check-netlink-spec.py [SPEC [UAPI_HEADER [MMK_HEADER [KERNEL_C [MMKCTL_C]]]]]
(paths default to those of this repository).
"""

import os
import re
import sys

try:
    import yaml
except ImportError:
    print("1..0 # SKIP python3-yaml is not installed (run 'make deps')")
    sys.exit(1)

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULTS = [
    "docs/netlink/mmk.yaml",
    "uapi/linux/mmk_netlink.h",
    "uapi/linux/mmk.h",
    "kmod/mmk_netlink.c",
    "tools/mmkctl/mmkctl.c",
]

# Keys of Documentation/netlink/genetlink-c.yaml (the kernel's schema),
# as far as this family could use them.
TOP_KEYS = {"name", "doc", "protocol", "uapi-header", "c-family-name", "c-version-name",
            "max-by-define", "cmd-max-name", "cmd-cnt-name", "definitions",
            "attribute-sets", "operations", "mcast-groups"}
DEF_KEYS = {"name", "header", "type", "doc", "value", "value-start", "entries", "render-max",
            "enum-name", "name-prefix"}
SET_KEYS = {"name", "name-prefix", "enum-name", "doc", "subset-of", "attr-cnt-name",
            "attr-max-name", "attributes"}
ATTR_KEYS = {"name", "type", "doc", "value", "type-value", "byte-order", "multi-attr",
             "nested-attributes", "enum", "enum-as-flags", "checks", "sub-type",
             "display-hint", "name-prefix"}
ATTR_TYPES = {"unused", "pad", "flag", "binary", "uint", "sint", "u8", "u16", "u32", "u64",
              "s32", "s64", "string", "nest", "array-nest", "nest-type-value"}
CHECK_KEYS = {"flags-mask", "min", "max", "min-len", "max-len", "exact-len"}
OPS_KEYS = {"enum-model", "name-prefix", "enum-name", "async-prefix", "async-enum", "list"}
OP_KEYS = {"name", "doc", "value", "attribute-set", "flags", "dont-validate", "config-cond",
           "do", "dump", "notify", "event", "mcgrp"}
SUBOP_KEYS = {"request", "reply", "pre", "post"}
MCGRP_KEYS = {"name", "c-define-name", "flags"}


class Check:
    """One TAP test: collects failures."""

    def __init__(self, name):
        self.name = name
        self.errors = []

    def fail(self, msg):
        self.errors.append(msg)

    def expect(self, cond, msg):
        if not cond:
            self.fail(msg)


def c_upper(name):
    return name.upper().replace("-", "_")


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def c_int(expr, defines):
    """Value of a simple C integer expression of the headers."""
    expr = expr.strip()
    expr = re.sub(r"(?<=[0-9a-fA-F])[uUlL]+\b", "", expr)
    for _ in range(8):
        new = re.sub(r"\b[A-Za-z_]\w*\b", lambda m: str(defines.get(m.group(0), m.group(0))),
                     expr)
        if new == expr:
            break
        expr = new
    if not re.fullmatch(r"[0-9a-fA-FxX()+\-*<|& ]+", expr):
        raise ValueError(expr)
    return int(eval(expr, {"__builtins__": {}}))  # digits and operators only


def c_defines(text):
    defines = {}
    for m in re.finditer(r"^#define[ \t]+(\w+)[ \t]+(.+?)[ \t]*$", text, re.M):
        defines[m.group(1)] = m.group(2)
    out = {}
    for k, v in defines.items():
        if v.startswith('"'):
            out[k] = v
            continue
        try:
            out[k] = c_int(v, defines)
        except (ValueError, SyntaxError):
            pass
    return out


def c_enums(text, defines):
    """Every enum in @text: list of (enum name or None, [(entry, value)])."""
    enums = []
    for m in re.finditer(r"\benum\s*(\w*)\s*\{(.*?)\}", text, re.S):
        entries, nxt, known = [], 0, dict(defines)
        for item in m.group(2).split(","):
            item = item.strip()
            if not item:
                continue
            if "=" in item:
                name, expr = (s.strip() for s in item.split("=", 1))
                value = c_int(expr, known)
            else:
                name, value = item, nxt
            entries.append((name, value))
            known[name] = value
            nxt = value + 1
        enums.append((m.group(1) or None, entries))
    return enums


def check_schema(spec, t):
    def keys(obj, allowed, where):
        if not isinstance(obj, dict):
            t.fail(f"{where}: not a mapping")
            return
        for k in obj:
            t.expect(k in allowed, f"{where}: key '{k}' is not in the genetlink-c format")

    keys(spec, TOP_KEYS, "top level")
    for k in ("name", "doc", "attribute-sets", "operations"):
        t.expect(k in spec, f"required key '{k}' missing")
    t.expect(spec.get("protocol", "genetlink") in ("genetlink", "genetlink-c"),
             "protocol must be genetlink or genetlink-c")
    for d in spec.get("definitions", []):
        keys(d, DEF_KEYS, f"definition {d.get('name')}")
        t.expect(d.get("type") in ("const", "enum", "flags"), f"definition {d.get('name')}: type")
    for s in spec.get("attribute-sets", []):
        keys(s, SET_KEYS, f"attribute-set {s.get('name')}")
        for a in s.get("attributes", []):
            where = f"attribute {s.get('name')}.{a.get('name')}"
            keys(a, ATTR_KEYS, where)
            t.expect(a.get("type") in ATTR_TYPES, f"{where}: type '{a.get('type')}'")
            keys(a.get("checks", {}), CHECK_KEYS, f"{where} checks")
    ops = spec.get("operations", {})
    keys(ops, OPS_KEYS, "operations")
    for op in ops.get("list", []):
        where = f"operation {op.get('name')}"
        keys(op, OP_KEYS, where)
        t.expect("doc" in op, f"{where}: no doc")
        for sub in ("do", "dump"):
            if sub in op:
                keys(op[sub], SUBOP_KEYS, f"{where} {sub}")
    for g in spec.get("mcast-groups", {}).get("list", []):
        keys(g, MCGRP_KEYS, f"mcast group {g.get('name')}")


def spec_model(spec):
    """Names and values as ynl-gen would render them."""
    family = spec["name"]
    attrs = {}
    sets = {}
    for s in spec["attribute-sets"]:
        prefix = s.get("name-prefix", f"{family}-a-{s['name']}-")
        value, entries = 1, []
        for a in s["attributes"]:
            value = a.get("value", value)
            entries.append((c_upper(prefix + a["name"]), value, a))
            attrs[a["name"]] = a
            value += 1
        sets[s["name"]] = (prefix, entries)
    ops = spec["operations"]
    prefix = ops.get("name-prefix", f"{family}-cmd-")
    value, cmds = 1, []
    for op in ops["list"]:
        value = op.get("value", value)
        cmds.append((c_upper(prefix + op["name"]), value, op))
        value += 1
    return attrs, sets, cmds


def op_cnames(spec, cmds, op, names):
    """C names of attributes @names of @op's attribute set (a notification
    uses the set of the operation it mirrors)."""
    _, sets, _ = spec_model(spec)
    if "notify" in op:
        op = next(o for _, _, o in cmds if o["name"] == op["notify"])
    prefix, entries = sets[op["attribute-set"]]
    known = {a["name"] for _, _, a in entries}
    out = set()
    for n in names:
        if n not in known:
            raise KeyError(f"operation {op['name']}: {n} is not in set {op['attribute-set']}")
        out.add(c_upper(prefix + n))
    return out


def check_uapi(spec, uapi, t):
    text = strip_comments(uapi)
    defines = c_defines(text)
    enums = c_enums(text, defines)
    family = spec["name"]
    _, sets, cmds = spec_model(spec)

    name_define = c_upper(spec.get("c-family-name", family + "-family-name"))
    version_define = c_upper(spec.get("c-version-name", family + "-family-version"))
    t.expect(defines.get(name_define) == f'"{family}"',
             f"{name_define} should be \"{family}\", is {defines.get(name_define)}")
    t.expect(defines.get(version_define) == 1,
             f"{version_define} should be 1, is {defines.get(version_define)}")

    def find_enum(first):
        for _, entries in enums:
            if entries and entries[0][0] == first:
                return entries
        return None

    for sname, (prefix, entries) in sets.items():
        want = [(n, v) for n, v, _ in entries]
        max_name = c_upper(prefix + "max")
        want += [("__" + max_name, entries[-1][1] + 1), (max_name, entries[-1][1])]
        got = find_enum(want[0][0])
        t.expect(got == want, f"attribute set {sname}: header has {got}, spec says {want}")

    want = [(n, v) for n, v, _ in cmds]
    max_name = c_upper(spec["operations"].get("name-prefix", family + "-cmd-") + "max")
    want += [("__" + max_name, cmds[-1][1] + 1), (max_name, cmds[-1][1])]
    got = find_enum(want[0][0])
    t.expect(got == want, f"commands: header has {got}, spec says {want}")

    groups = spec.get("mcast-groups", {}).get("list", [])
    for g in groups:
        d = g.get("c-define-name", c_upper(f"{family}-mcgrp-{g['name']}"))
        t.expect(defines.get(d) == f'"{g["name"]}"', f"{d} should be \"{g['name']}\"")
    in_header = {k for k in defines if k.startswith(c_upper(f"{family}-mcgrp-"))}
    in_spec = {g.get("c-define-name", c_upper(f"{family}-mcgrp-{g['name']}")) for g in groups}
    t.expect(in_header == in_spec, f"multicast groups: header {in_header}, spec {in_spec}")


def check_definitions(spec, mmk_h, t):
    text = strip_comments(mmk_h)
    defines = c_defines(text)
    enums = c_enums(text, defines)
    for d in spec.get("definitions", []):
        prefix = d.get("name-prefix", f"{spec['name']}-{d['name']}-")
        t.expect(d.get("header") == "linux/mmk.h",
                 f"definition {d['name']}: only definitions from linux/mmk.h are checked")
        names = [e if isinstance(e, str) else e["name"] for e in d.get("entries", [])]
        if d["type"] == "enum":
            value, want = d.get("value-start", 0), []
            for e in d["entries"]:
                if isinstance(e, dict):
                    value = e.get("value", value)
                want.append((c_upper(prefix + (e if isinstance(e, str) else e["name"])), value))
                value += 1
            if not d.get("enum-name"):
                # An anonymous enum: the header may give its values as #defines.
                for cname, v in want:
                    t.expect(defines.get(cname) == v,
                             f"{cname}: mmk.h has {defines.get(cname)}, spec says {v}")
                continue
            got = [entries for ename, entries in enums if ename == d.get("enum-name")]
            t.expect(got and got[0] == want,
                     f"enum {d.get('enum-name')}: mmk.h has {got}, spec says {want}")
        elif d["type"] == "flags":
            for i, n in enumerate(names):
                cname = c_upper(prefix + n)
                t.expect(defines.get(cname) == 1 << (d.get("value-start", 0) + i),
                         f"flag {cname}: mmk.h has {defines.get(cname)}, spec says "
                         f"{1 << (d.get('value-start', 0) + i)}")


PUT_TYPES = {"u32": "u32", "u64_64bit": "u64", "string": "string", "u8": "u8", "u16": "u16",
             "s32": "s32", "s64": "s64", "flag": "flag"}
POLICY_TYPES = {"u32": "NLA_U32", "u64": "NLA_U64", "u8": "NLA_U8", "u16": "NLA_U16",
                "string": "NLA_NUL_STRING", "flag": "NLA_FLAG"}
MNL_TYPES = {"u32": "MNL_TYPE_U32", "u64": "MNL_TYPE_U64", "u8": "MNL_TYPE_U8",
             "u16": "MNL_TYPE_U16", "string": "MNL_TYPE_NUL_STRING", "flag": "MNL_TYPE_FLAG"}


def check_kernel(spec, uapi, mmk_h, kernel, internal_h, t):
    attrs, sets, cmds = spec_model(spec)
    by_c = {c: a for _, (_, entries) in sets.items() for c, _, a in entries}
    code = strip_comments(kernel)
    defines = c_defines(strip_comments(uapi) + strip_comments(mmk_h))

    # Every attribute put has the spec's type; replies and events cover the spec's lists.
    # Attributes are compared by C name: sets may share attribute names.
    put = set()
    for m in re.finditer(r"nla_put_(\w+)\(\s*\w+,\s*(MMK_A_\w+)", code):
        ptype, cname = m.groups()
        a = by_c.get(cname)
        if a is None:
            t.fail(f"kernel puts {cname}, which the spec does not have")
            continue
        t.expect(PUT_TYPES.get(ptype) == a["type"],
                 f"kernel puts {cname} with nla_put_{ptype}, spec type is {a['type']}")
        put.add(cname)
    for m in re.finditer(r"nla_put_u64_64bit\([^;]*?,\s*(MMK_A_\w+)\s*\)", code, re.S):
        a = by_c.get(m.group(1))
        t.expect(a is not None and a["type"] == "pad",
                 f"{m.group(1)} is used as padding but is not a pad attribute in the spec")
    listed = set()
    for _, _, op in cmds:
        for sub in ("do", "dump"):
            listed |= op_cnames(spec, cmds, op,
                                op.get(sub, {}).get("reply", {}).get("attributes", []))
        listed |= op_cnames(spec, cmds, op, op.get("event", {}).get("attributes", []))
    t.expect(put == listed, f"attributes put by the kernel {sorted(put)} differ from those "
             f"the spec lists in replies and events {sorted(listed)}")

    # Message by message: the function that starts a message of a command
    # (genlmsg_put or an event helper given the command) puts, itself or
    # through the functions it calls, exactly the attributes of its reply.
    funcs = {}
    for m in re.finditer(r"^[a-z][^\n;(]*?\b(\w+)\([^)]*\)\s*\n\{\n(.*?)\n\}", code,
                         re.M | re.S):
        body = m.group(2)
        funcs[m.group(1)] = (
            {c for c in re.findall(r"nla_put_\w+\(\s*\w+,\s*(MMK_A_\w+)", body) if c in by_c},
            set(re.findall(r"\b(\w+)\(", body)),
            body)

    def closure(name, seen=None):
        seen = seen if seen is not None else set()
        if name in seen or name not in funcs:
            return set()
        seen.add(name)
        attrs_put, calls, _ = funcs[name]
        out = set(attrs_put)
        for c in calls:
            out |= closure(c, seen)
        return out

    replies = {}
    for cname, _, op in cmds:
        spec_op = op
        if "notify" in op:
            spec_op = next(o for _, _, o in cmds if o["name"] == op["notify"])
        if "do" in spec_op or "dump" in spec_op:
            src = spec_op.get("do", spec_op.get("dump", {}))
            want = op_cnames(spec, cmds, op, src.get("reply", {}).get("attributes", []))
        else:
            want = op_cnames(spec, cmds, op, op.get("event", {}).get("attributes", []))
        replies[cname] = want
    for cname, want in replies.items():
        users = [f for f, (_, _, body) in funcs.items()
                 if re.search(r"(genlmsg_put|event_new)\([^;]*\b" + cname + r"\b", body, re.S)]
        t.expect(users, f"no function starts a {cname} message")
        for f in users:
            got = closure(f)
            t.expect(got == want, f"{f}() puts {sorted(got)} in {cname}, the spec lists "
                     f"{sorted(want)}")

    # The policies: exactly the request attributes, with the spec's type and checks.
    pol = {}
    for m in re.finditer(r"\[(MMK_A_\w+)\]\s*=\s*(.*?),?\s*$", code, re.M):
        pol[m.group(1)] = m.group(2)
    requested = set()
    for _, _, op in cmds:
        for sub in ("do", "dump"):
            requested |= op_cnames(spec, cmds, op,
                                   op.get(sub, {}).get("request", {}).get("attributes", []))
    t.expect(set(pol) == requested,
             f"policy covers {sorted(pol)}, the spec's requests {sorted(requested)}")
    for cname, entry in pol.items():
        a = by_c.get(cname)
        if not a:
            continue
        want = POLICY_TYPES.get(a["type"])
        t.expect(want and want in entry, f"policy of {cname} is '{entry}', spec type {a['type']}")
        checks = a.get("checks", {})
        if "max-len" in checks:
            m = re.search(r"\.len\s*=\s*([^,}]+)", entry)
            t.expect(m and c_int(m.group(1), defines) == checks["max-len"],
                     f"policy of {cname}: .len should be {checks['max-len']}")
        if "min" in checks or "max" in checks:
            internal = dict(defines)
            internal.update(c_defines(strip_comments(internal_h)))
            bounds = {}
            m = re.search(r"NLA_POLICY_(MIN|MAX)\(\w+,\s*([^)]+)\)", entry)
            if m:
                bounds[m.group(1).lower()] = m.group(2).strip()
            else:
                m = re.search(r"NLA_POLICY_FULL_RANGE\(\w+,\s*&(\w+)\)", entry)
                rng = m and re.search(r"\b" + m.group(1) + r"\b[^=]*=\s*\{(.*?)\}", code, re.S)
                if not rng:
                    t.fail(f"policy of {cname}: no range for the spec's min/max")
                    continue
                for k in ("min", "max"):
                    mm = re.search(r"\." + k + r"\s*=\s*([^,\n]+)", rng.group(1))
                    if mm:
                        bounds[k] = mm.group(1).strip()
            for k in ("min", "max"):
                if k not in checks:
                    t.expect(k not in bounds or k == "max",
                             f"policy of {cname} has a .{k} the spec does not give")
                    continue
                t.expect(k in bounds, f"range of {cname}: no .{k}")
                if k not in bounds:
                    continue
                try:
                    v = c_int(bounds[k], internal)
                except (ValueError, SyntaxError):
                    t.fail(f"range of {cname}: cannot evaluate .{k} = {bounds[k]}")
                    continue
                t.expect(v == checks[k], f"range of {cname}: .{k} is {v}, spec says {checks[k]}")

    # Ops: one per do/dump, and each notification is sent.
    for cname, _, op in cmds:
        if "do" in op or "dump" in op:
            m = re.search(r"\{[^{}]*\.cmd\s*=\s*" + cname + r"\b[^{}]*\}", code, re.S)
            t.expect(m is not None, f"no genl op for {cname}")
            if m:
                t.expect(("do" in op) == (".doit" in m.group(0)), f"{cname}: doit vs spec")
                t.expect(("dump" in op) == (".dumpit" in m.group(0)), f"{cname}: dumpit vs spec")
        else:
            t.expect(re.search(r"\b" + cname + r"\b", code) is not None,
                     f"the kernel never sends {cname}")
            t.expect(op.get("mcgrp") in [g["name"] for g in
                                         spec.get("mcast-groups", {}).get("list", [])],
                     f"{cname}: unknown multicast group {op.get('mcgrp')}")
    for g in spec.get("mcast-groups", {}).get("list", []):
        d = g.get("c-define-name", c_upper(f"{spec['name']}-mcgrp-{g['name']}"))
        t.expect(re.search(r"\.name\s*=\s*" + d + r"\b", code) is not None,
                 f"the kernel does not register the multicast group {d}")


def check_mmkctl(spec, mmkctl, t):
    attrs, sets, _ = spec_model(spec)
    code = strip_comments(mmkctl)
    table = dict(re.findall(r"\[(MMK_A_\w+)\]\s*=\s*(MNL_TYPE_\w+)", code))
    for _, (_, entries) in sets.items():
        for cname, _, a in entries:
            if a["type"] == "pad":
                t.expect(cname not in table, f"mmkctl parses the pad attribute {cname}")
                continue
            t.expect(table.get(cname) == MNL_TYPES.get(a["type"]),
                     f"mmkctl parses {cname} as {table.get(cname)}, spec type {a['type']}")
    for cname in table:
        t.expect(any(cname == c for _, (_, e) in sets.items() for c, _, _ in e),
                 f"mmkctl parses {cname}, which the spec does not have")


def main(argv):
    paths = [os.path.join(TOP, p) for p in DEFAULTS]
    for i, p in enumerate(argv[1:6]):
        paths[i] = p
    texts = []
    for p in paths:
        with open(p, encoding="utf-8") as f:
            texts.append(f.read())
    spec_text, uapi, mmk_h, kernel, mmkctl = texts
    # The kernel's own constants (pool id range) live next to its C file.
    with open(os.path.join(os.path.dirname(paths[3]), "mmk_internal.h"), encoding="utf-8") as f:
        internal_h = f.read()
    spec = yaml.safe_load(spec_text)

    tests = [
        ("spec uses the genetlink-c format", lambda t: check_schema(spec, t)),
        ("uapi/linux/mmk_netlink.h matches the spec", lambda t: check_uapi(spec, uapi, t)),
        ("definitions from uapi/linux/mmk.h match the spec",
         lambda t: check_definitions(spec, mmk_h, t)),
        ("kmod/mmk_netlink.c matches the spec",
         lambda t: check_kernel(spec, uapi, mmk_h, kernel, internal_h, t)),
        ("mmkctl parses attributes with the spec's types", lambda t: check_mmkctl(spec, mmkctl, t)),
    ]
    print(f"1..{len(tests)}")
    failed = 0
    for n, (name, fn) in enumerate(tests, 1):
        t = Check(name)
        try:
            fn(t)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
            t.fail(f"could not check: {type(e).__name__}: {e}")
        for e in t.errors:
            print(f"# {e}")
        print(f"{'not ok' if t.errors else 'ok'} {n} netlink spec: {name}")
        failed += bool(t.errors)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
