#!/usr/bin/env python3
"""Breaking-change check of the OpenAPI document against the last released one (issue #28).

    python3 tests/openapi/breaking.py BASELINE.json CURRENT.json [--accepted FILE]
    python3 tests/openapi/breaking.py --self-test

Compares the operations of CURRENT with those of BASELINE (python3 standard library only) and
prints one line per difference:

    BREAKING <kind> <location>   a change that can break an existing client
    accepted <kind> <location>   the same, marked as intended in the accepted file
    info <kind> <location>       a compatible change (an addition, a relaxation)

Breaking kinds:
    operation-removed               an operation (path + method) is gone
    response-removed                a response status code of an operation is gone
    response-property-removed       a property of a response schema is gone
    request-property-required       a request property became required
    request-property-new-required   a new request property is required
    parameter-removed               a parameter (in + name) is gone
    parameter-required              an optional parameter became required
    parameter-new-required          a new parameter is required
    response-enum-value-removed     an enum value a response could carry is gone
    request-enum-value-removed      an enum value a request could send is gone
    response-type-changed           a response schema's type set changed (narrowing is info)
    request-type-changed            a request schema's type set changed (widening is info)

Schemas are followed through local `$ref`s, and the members of allOf/oneOf/anyOf are merged
into their schema (their properties, required names, enum values and types), without
matching oneOf branches against each other. A property of a component schema is located in
that component as the baseline names it (`#/components/schemas/Task.version`), so a change
to a shared schema is reported once per direction, not once per operation using it (an
inline wrapper of one component, such as `oneOf: [{type: null}, {$ref: ...}]`, counts as
that component); an inline schema is located from its operation (`GET /api/v1/tasks
response 200 application/json.items[]`). Path parameters are matched by their position in
the path, so renaming `{id}` is not a break.

The accepted file (default: accepted-breaking.txt next to this script) lists marked
changes, one `<kind> <location>` a line exactly as printed after `BREAKING`; blank lines
and lines starting with `#` are ignored. Exit status: 0 when every breaking change is
accepted, 1 otherwise, 2 on a usage or input error.
"""

import copy
import json
import os
import re
import sys

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

BREAKING_KINDS = frozenset(
    {
        "operation-removed",
        "response-removed",
        "response-property-removed",
        "request-property-required",
        "request-property-new-required",
        "parameter-removed",
        "parameter-required",
        "parameter-new-required",
        "response-enum-value-removed",
        "request-enum-value-removed",
        "response-type-changed",
        "request-type-changed",
    }
)


def resolve(doc, obj, seen=None):
    """obj with its local `$ref` chain followed; returns (object, last ref name or None)."""
    name = None
    seen = set() if seen is None else seen
    while isinstance(obj, dict) and isinstance(obj.get("$ref"), str):
        ref = obj["$ref"]
        if ref in seen or not ref.startswith("#/"):
            return {}, name  # a cycle of bare refs, or an external ref: nothing to compare
        seen.add(ref)
        target = doc
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, dict) or part not in target:
                raise ValueError(f"unresolvable $ref {ref}")
            target = target[part]
        obj = target
        name = ref
    return obj, name


def flatten(doc, schema):
    """A schema's shape, its $ref followed and allOf/oneOf/anyOf members merged in.

    Returns (ref, props, required, enum, types, items): ref is the schema's own $ref (or
    None), props a dict name -> sub-schema, required a set, enum a list or None (no enum),
    types a set of type names (empty: unconstrained), items a list of item schemas."""
    schema, ref = resolve(doc, schema)
    props, required, enum, types, items = {}, set(), None, set(), []
    owners = set()  # the outermost component each substantive part came from (None: inline)
    stack, visited = [(schema, ref)], set()
    while stack:
        s, owner = stack.pop()
        s, r = resolve(doc, s)
        owner = owner or r
        if not isinstance(s, dict) or id(s) in visited:
            continue
        visited.add(id(s))
        t = s.get("type")
        if s.get("properties") or "enum" in s or "const" in s or "items" in s or t not in (None, "null", ["null"]):
            owners.add(owner)
        for name, sub in (s.get("properties") or {}).items():
            props.setdefault(name, sub)
        required.update(s.get("required") or [])
        if "enum" in s:
            enum = (enum or []) + [v for v in s["enum"] if v not in (enum or [])]
        if "const" in s:
            enum = (enum or []) + ([s["const"]] if s["const"] not in (enum or []) else [])
        if isinstance(t, str):
            types.add(t)
        elif isinstance(t, list):
            types.update(t)
        if "items" in s:
            items.append(s["items"])
        for key in ("allOf", "oneOf", "anyOf"):
            stack.extend((m, owner) for m in reversed(s.get(key) or []))
    if ref is None and len(owners) == 1 and None not in owners:
        # An inline wrapper of one component (`oneOf: [{type: null}, {$ref: Task}]`, or that
        # inside an allOf with a description) is located and compared as that component.
        ref = owners.pop()
    return ref, props, required, enum, types, items


class Diff:
    def __init__(self, base, cur):
        self.base, self.cur = base, cur
        self.breaking, self.info = [], []
        self.compared = set()  # (direction, base ref, current ref): component pairs done

    def add(self, kind, location):
        line = f"{kind} {location}"
        bucket = self.breaking if kind in BREAKING_KINDS else self.info
        if line not in bucket:
            bucket.append(line)

    # --- schemas ------------------------------------------------------------------------

    def schema(self, direction, loc, bs, cs, stack=()):
        bref, bprops, breq, benum, btypes, bitems = flatten(self.base, bs)
        cref, cprops, creq, cenum, ctypes, citems = flatten(self.cur, cs)
        if bref is not None:
            key = (direction, bref, cref)
            if key in self.compared or key in stack:
                return
            self.compared.add(key)
            stack = stack + (key,)
            if bref.startswith("#/components/schemas/"):
                loc = bref
        resp = direction == "response"

        if btypes and ctypes and btypes != ctypes:
            compatible = ctypes <= btypes if resp else ctypes >= btypes
            kind = f"{direction}-type-{'narrowed' if resp else 'widened'}" if compatible else f"{direction}-type-changed"
            self.add(kind, f"{loc} {'|'.join(sorted(btypes))} -> {'|'.join(sorted(ctypes))}")

        if benum is not None:
            for v in benum:
                if cenum is not None and v not in cenum:
                    self.add(f"{direction}-enum-value-removed", f"{loc} {json.dumps(v)}")
        if cenum is not None:
            for v in cenum:
                if benum is not None and v not in benum:
                    self.add(f"{direction}-enum-value-added", f"{loc} {json.dumps(v)}")

        for name, bsub in bprops.items():
            ploc = f"{loc}.{name}"
            if name not in cprops:
                # A request property that is gone is reported as info: the server ignores
                # it, or rejects it under additionalProperties: false (then accept it as a
                # break by hand if clients still send it).
                self.add(f"{direction}-property-removed", ploc)
                continue
            if resp and name in breq and name not in creq:
                self.add("response-property-optional", ploc)
            if not resp and name not in breq and name in creq:
                self.add("request-property-required", ploc)
            if not resp and name in breq and name not in creq:
                self.add("request-property-optional", ploc)
            self.schema(direction, ploc, bsub, cprops[name], stack)
        for name in cprops:
            if name not in bprops:
                if not resp and name in creq:
                    self.add("request-property-new-required", f"{loc}.{name}")
                else:
                    self.add(f"{direction}-property-added", f"{loc}.{name}")

        for bi, ci in zip(bitems, citems):
            self.schema(direction, f"{loc}[]", bi, ci, stack)

    def content(self, direction, loc, bcontent, ccontent):
        for media, bmt in (bcontent or {}).items():
            cmt = (ccontent or {}).get(media)
            if cmt is None:
                self.add(f"{direction}-media-type-removed", f"{loc} {media}")
                continue
            if "schema" in bmt and "schema" in cmt:
                self.schema(direction, f"{loc} {media}", bmt["schema"], cmt["schema"])
        for media in ccontent or {}:
            if media not in (bcontent or {}):
                self.add(f"{direction}-media-type-added", f"{loc} {media}")

    # --- operations ---------------------------------------------------------------------

    @staticmethod
    def operations(doc):
        """{(METHOD, path with parameter names blanked): (path, path item, operation)}."""
        ops = {}
        for path, item in (doc.get("paths") or {}).items():
            item, _ = resolve(doc, item)
            for method in METHODS:
                if isinstance(item.get(method), dict):
                    key = (method.upper(), re.sub(r"\{[^}]*\}", "{}", path))
                    ops[key] = (path, item, item[method])
        return ops

    @staticmethod
    def parameters(doc, path, item, op):
        """{key: parameter}; a path parameter's key is its position in the path template,
        so renaming `{id}` to `{task_id}` changes no client's URL and is not reported."""
        slots = re.findall(r"\{([^}]*)\}", path)
        params = {}
        for p in (item.get("parameters") or []) + (op.get("parameters") or []):
            p, _ = resolve(doc, p)
            where, name = p.get("in"), p.get("name")
            key = ("path", slots.index(name)) if where == "path" and name in slots else (where, name)
            params[key] = p  # an operation's own overrides the path item's
        return params

    @staticmethod
    def param_loc(loc, p):
        return f"{loc} parameter {p.get('in')}:{p.get('name')}"

    def operation(self, loc, bpath, bitem, bop, cpath, citem, cop):
        bparams = self.parameters(self.base, bpath, bitem, bop)
        cparams = self.parameters(self.cur, cpath, citem, cop)
        for key, bp in bparams.items():
            ploc = self.param_loc(loc, bp)
            cp = cparams.get(key)
            if cp is None:
                self.add("parameter-removed", ploc)
                continue
            if not bp.get("required") and cp.get("required"):
                self.add("parameter-required", ploc)
            if bp.get("required") and not cp.get("required"):
                self.add("parameter-optional", ploc)
            if "schema" in bp and "schema" in cp:
                self.schema("request", ploc, bp["schema"], cp["schema"])
        for key, cp in cparams.items():
            if key not in bparams:
                kind = "parameter-new-required" if cp.get("required") else "parameter-added"
                self.add(kind, self.param_loc(loc, cp))

        bbody, _ = resolve(self.base, bop.get("requestBody") or {})
        cbody, _ = resolve(self.cur, cop.get("requestBody") or {})
        self.content("request", f"{loc} request", bbody.get("content"), cbody.get("content"))

        bresp, cresp = bop.get("responses") or {}, cop.get("responses") or {}
        for status, br in bresp.items():
            rloc = f"{loc} response {status}"
            if status not in cresp:
                self.add("response-removed", rloc)
                continue
            br, _ = resolve(self.base, br)
            cr, _ = resolve(self.cur, cresp[status])
            self.content("response", rloc, br.get("content"), cr.get("content"))
        for status in cresp:
            if status not in bresp:
                self.add("response-added", f"{loc} response {status}")

    def run(self):
        bops, cops = self.operations(self.base), self.operations(self.cur)
        for key, (bpath, bitem, bop) in bops.items():
            loc = f"{key[0]} {bpath}"
            if key not in cops:
                self.add("operation-removed", loc)
                continue
            cpath, citem, cop = cops[key]
            if cpath != bpath:
                self.add("path-parameter-renamed", f"{loc} -> {cpath}")
            self.operation(loc, bpath, bitem, bop, cpath, citem, cop)
        for key, (cpath, _, _) in cops.items():
            if key not in bops:
                self.add("operation-added", f"{key[0]} {cpath}")
        return self


def read_accepted(path):
    accepted = []
    if path and os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith("#"):
                    accepted.append(" ".join(line.split()))
    return accepted


def compare(base, cur, accepted=()):
    """(unaccepted breaking lines, accepted breaking lines, info lines, unused accepted)."""
    d = Diff(base, cur).run()
    norm = {" ".join(b.split()): b for b in d.breaking}
    unaccepted = [b for b in d.breaking if " ".join(b.split()) not in accepted]
    marked = [b for b in d.breaking if " ".join(b.split()) in accepted]
    unused = [a for a in accepted if a not in norm]
    return unaccepted, marked, d.info, unused


# --- self-test ----------------------------------------------------------------------------


def _base_doc():
    return {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1.0.0"},
        "paths": {
            "/items": {
                "get": {
                    "parameters": [
                        {"name": "limit", "in": "query", "required": False, "schema": {"type": "integer"}},
                        {"name": "status", "in": "query", "schema": {"$ref": "#/components/schemas/Status"}},
                    ],
                    "responses": {
                        "200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Page"}}}},
                        "401": {"description": "no", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}},
                    },
                },
                "post": {
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CreateItem"}}}},
                    "responses": {"201": {"description": "made", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Item"}}}}},
                },
            },
            "/items/{id}": {
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "get": {
                    "responses": {
                        "200": {
                            "description": "ok",
                            "content": {"application/json": {"schema": {"type": "object", "properties": {"inline": {"type": "string"}}}}},
                        }
                    }
                },
                "delete": {"responses": {"204": {"description": "gone"}}},
            },
        },
        "components": {
            "schemas": {
                "Status": {"type": "string", "enum": ["open", "closed"]},
                "Colour": {"type": "string", "enum": ["red", "blue"]},
                "Base": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}},
                "Item": {
                    "allOf": [
                        {"$ref": "#/components/schemas/Base"},
                        {
                            "type": "object",
                            "required": ["name"],
                            "properties": {
                                "name": {"type": "string"},
                                "count": {"type": "integer"},
                                "status": {"$ref": "#/components/schemas/Status"},
                                "colour": {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/Colour"}]},
                            },
                        },
                    ]
                },
                "Page": {"type": "object", "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Item"}}}},
                "Problem": {"type": "object", "properties": {"title": {"type": "string"}}},
                "CreateItem": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string"},
                        "note": {"type": ["string", "null"]},
                        "colour": {"$ref": "#/components/schemas/Colour"},
                    },
                },
            }
        },
    }


def self_test():
    failures = []

    def check(label, mutate, expect_breaking=(), expect_info=(), exact=True):
        base = _base_doc()
        cur = copy.deepcopy(base)
        mutate(cur)
        unaccepted, _, info, _ = compare(base, cur)
        if exact and sorted(unaccepted) != sorted(expect_breaking):
            failures.append(f"{label}: breaking {unaccepted}, expected {list(expect_breaking)}")
        for e in expect_breaking if not exact else ():
            if e not in unaccepted:
                failures.append(f"{label}: missing breaking {e!r} in {unaccepted}")
        for e in expect_info:
            if e not in info:
                failures.append(f"{label}: missing info {e!r} in {info}")

    S = lambda d: d["components"]["schemas"]  # noqa: E731
    P = lambda d: d["paths"]  # noqa: E731

    check("identical documents", lambda d: None)
    check("operation removed", lambda d: P(d)["/items/{id}"].pop("delete"), ["operation-removed DELETE /items/{id}"])
    check("path removed", lambda d: P(d).pop("/items/{id}"), ["operation-removed GET /items/{id}", "operation-removed DELETE /items/{id}"])
    check("response status removed", lambda d: P(d)["/items"]["get"]["responses"].pop("401"), ["response-removed GET /items response 401"])
    check("response property removed (allOf member, via $ref)", lambda d: S(d)["Item"]["allOf"][1]["properties"].pop("count"), ["response-property-removed #/components/schemas/Item.count"])
    check("response property removed (allOf $ref member)", lambda d: S(d)["Base"]["properties"].pop("id"), ["response-property-removed #/components/schemas/Item.id"])
    check("response property removed (inline schema)", lambda d: P(d)["/items/{id}"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["properties"].pop("inline"), ["response-property-removed GET /items/{id} response 200 application/json.inline"])
    check("request property becomes required", lambda d: S(d)["CreateItem"]["required"].append("note"), ["request-property-required #/components/schemas/CreateItem.note"])
    check("new required request property", lambda d: (S(d)["CreateItem"]["properties"].update(tag={"type": "string"}), S(d)["CreateItem"]["required"].append("tag")), ["request-property-new-required #/components/schemas/CreateItem.tag"])
    check("parameter removed", lambda d: P(d)["/items"]["get"]["parameters"].pop(0), ["parameter-removed GET /items parameter query:limit"])
    check("path-level parameter removed", lambda d: P(d)["/items/{id}"].pop("parameters"), ["parameter-removed GET /items/{id} parameter path:id", "parameter-removed DELETE /items/{id} parameter path:id"])
    check("parameter becomes required", lambda d: P(d)["/items"]["get"]["parameters"][0].update(required=True), ["parameter-required GET /items parameter query:limit"])
    check("new required parameter", lambda d: P(d)["/items"]["get"]["parameters"].append({"name": "X-Tenant", "in": "header", "required": True, "schema": {"type": "string"}}), ["parameter-new-required GET /items parameter header:X-Tenant"])
    check("enum value removed (response via allOf + request parameter)", lambda d: S(d)["Status"]["enum"].remove("closed"), ['response-enum-value-removed #/components/schemas/Status "closed"', 'request-enum-value-removed #/components/schemas/Status "closed"'])
    check("enum value removed (response via oneOf [null, $ref], and request body)", lambda d: S(d)["Colour"]["enum"].remove("blue"), ['response-enum-value-removed #/components/schemas/Colour "blue"', 'request-enum-value-removed #/components/schemas/Colour "blue"'])
    check("response property type changed", lambda d: S(d)["Item"]["allOf"][1]["properties"]["count"].update(type="string"), ["response-type-changed #/components/schemas/Item.count integer -> string"])
    check("request property type changed", lambda d: S(d)["CreateItem"]["properties"]["name"].update(type="integer"), ["request-type-changed #/components/schemas/CreateItem.name string -> integer"])
    check("response property becomes nullable", lambda d: S(d)["Item"]["allOf"][1]["properties"]["name"].update(type=["string", "null"]), ["response-type-changed #/components/schemas/Item.name string -> null|string"])
    check("parameter type changed", lambda d: P(d)["/items"]["get"]["parameters"][0]["schema"].update(type="string"), ["request-type-changed GET /items parameter query:limit integer -> string"])
    check("path parameter renamed: same operation", lambda d: (P(d).__setitem__("/items/{item_id}", P(d).pop("/items/{id}")), P(d)["/items/{item_id}"]["parameters"][0].update(name="item_id")),
          [], ["path-parameter-renamed GET /items/{id} -> /items/{item_id}"])

    # Additions and relaxations: info only, never breaking.
    def additions(d):
        P(d)["/items/{id}"]["put"] = {"responses": {"200": {"description": "ok"}}}
        P(d)["/items"]["get"]["responses"]["429"] = {"description": "slow down"}
        P(d)["/items"]["get"]["parameters"].append({"name": "q", "in": "query", "required": False, "schema": {"type": "string"}})
        S(d)["Item"]["allOf"][1]["properties"]["extra"] = {"type": "string"}
        S(d)["CreateItem"]["properties"]["optional"] = {"type": "string"}
        S(d)["CreateItem"]["required"].remove("name")
        S(d)["Status"]["enum"].append("archived")
        S(d)["CreateItem"]["properties"]["name"]["type"] = ["string", "null"]
        P(d)["/items/{id}"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["properties"]["inline"]["type"] = "string"

    check("additions are info", additions, [], [
        "operation-added PUT /items/{id}",
        "response-added GET /items response 429",
        "parameter-added GET /items parameter query:q",
        "response-property-added #/components/schemas/Item.extra",
        "request-property-added #/components/schemas/CreateItem.optional",
        "request-property-optional #/components/schemas/CreateItem.name",
        'response-enum-value-added #/components/schemas/Status "archived"',
        'request-enum-value-added #/components/schemas/Status "archived"',
        "request-type-widened #/components/schemas/CreateItem.name string -> null|string",
    ])

    # The accepted file marks a break; an unrelated one still fails.
    base = _base_doc()
    cur = copy.deepcopy(base)
    P(cur)["/items/{id}"].pop("delete")
    P(cur)["/items"]["get"]["responses"].pop("401")
    unaccepted, marked, _, unused = compare(base, cur, ["operation-removed DELETE /items/{id}", "operation-removed GET /gone"])
    if unaccepted != ["response-removed GET /items response 401"] or marked != ["operation-removed DELETE /items/{id}"] or unused != ["operation-removed GET /gone"]:
        failures.append(f"accepted file: unaccepted {unaccepted}, accepted {marked}, unused {unused}")

    # Cycles through $ref terminate.
    base = _base_doc()
    S(base)["Item"]["allOf"][1]["properties"]["parent"] = {"$ref": "#/components/schemas/Item"}
    cur = copy.deepcopy(base)
    S(cur)["Base"]["properties"].pop("id")
    unaccepted, _, _, _ = compare(base, cur)
    if unaccepted != ["response-property-removed #/components/schemas/Item.id"]:
        failures.append(f"recursive schema: {unaccepted}")

    for f in failures:
        print(f"self-test FAILED: {f}")
    print(f"breaking.py self-test: {'FAILED' if failures else 'ok'} ({len(failures)} failures)")
    return 1 if failures else 0


def main(argv):
    if argv == ["--self-test"]:
        return self_test()
    accepted_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "accepted-breaking.txt")
    args = list(argv)
    if "--accepted" in args:
        i = args.index("--accepted")
        if i + 1 >= len(args):
            print("--accepted needs a file", file=sys.stderr)
            return 2
        accepted_path = args[i + 1]
        del args[i : i + 2]
    if len(args) != 2:
        print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
        return 2
    try:
        with open(args[0], encoding="utf-8") as f:
            base = json.load(f)
        with open(args[1], encoding="utf-8") as f:
            cur = json.load(f)
        unaccepted, marked, info, unused = compare(base, cur, read_accepted(accepted_path))
    except (OSError, ValueError) as e:
        print(f"breaking.py: {e}", file=sys.stderr)
        return 2
    bv, cv = (base.get("info") or {}).get("version"), (cur.get("info") or {}).get("version")
    if bv != cv:
        print(f"info version {bv} -> {cv}")
    for line in info:
        print(f"info {line}")
    for line in marked:
        print(f"accepted {line}")
    for line in unused:
        print(f"warning: accepted but not found (stale line in {os.path.basename(accepted_path)}): {line}")
    for line in unaccepted:
        print(f"BREAKING {line}")
    print(
        f"openapi diff: {len(unaccepted)} unaccepted breaking, {len(marked)} accepted breaking, "
        f"{len(info)} compatible changes"
    )
    return 1 if unaccepted else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
