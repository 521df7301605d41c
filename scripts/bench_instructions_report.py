"""Report of scripts/bench-instructions: instructions per request from callgrind
profiles, written to the "Instructions per request" section of BENCHMARKS.md."""
import json
import pathlib
import platform
import re
import subprocess
import sys

from benchmarks_md import replace_section

RUNS = [
    ("a", "(a) route, no layer"),
    ("b0", "(b) layer, warm cache, no audit"),
    ("b", "(b) layer, warm cache, SQLite audit"),
    ("bx", "(b) with the audit table's two indexes dropped"),
    ("c", "(c) layer, cache off, SQLite"),
]
GATEWAY = "g"  # keysmith gateway, one MCP tools/call forwarded to nginx

# Inclusive costs named in the table: where the instructions of a request go.
PARTS = {
    "sqlite": "sqlite3_step",  # every SQLite statement: the audit row, the point read
    # SHA-256: the key's HMAC when the cache is off (the warm cache hashes no
    # more: backend/presented.rs)
    "sha": "sha2::sha256::compress256",
    "jsonrpc": "keysmith_verify::layer::jsonrpc::read_message",  # the body read strictly
    # the request's fields written upstream (hop-by-hop dropped, forwarding
    # set); the answer's are sorted as its head is read (in "upstream")
    "headers": "keysmith::gateway::headers::write_request_fields",
    # the upstream exchange, in the request's own task (src/gateway/pool/):
    # a pooled connection, the request written, the answer's head read
    "upstream": "keysmith::gateway::service::Forwarding::forward::{{closure}}",
}

# The gateway's request path stage by stage (`crates/keysmith-verify/src/layer/`,
# in the order of `service.rs`), each the inclusive cost of the functions
# named: a stage's own code and everything it calls. Each stage function is
# kept out of line (`#[inline(never)]`) so that its name is in the profile;
# a name after `-` is a callee counted in another stage, taken off this one.
# A name may be missing when this build's path does not run it (a function
# renamed in another version), but a stage with none of its names found is
# an error: renamed or inlined, not free.
STAGES = {
    "authenticate": ("the key, through the cache (`authenticate.rs`)", (
        "<keysmith_verify::layer::stage::Authenticating<F> as core::future::future::Future>::poll",
    )),
    "judge": ("the body read and judged (`request_body.rs`)", (
        "<keysmith_verify::layer::stage::JudgingBody<F> as core::future::future::Future>::poll",
    )),
    "session": ("the MCP session it names, admitted (`session.rs`)", (
        "<keysmith_verify::layer::stage::Admitting<F> as core::future::future::Future>::poll",
    )),
    "authorize": ("authorized against the allowlists (`capabilities.rs`)", (
        "keysmith_verify::layer::capabilities::authorize",
    )),
    "limit": ("rate limit and quota (`limited.rs`)", (
        "<keysmith_verify::layer::stage::Limiting<F> as core::future::future::Future>::poll",
    )),
    "forward": ("forwarded: the request made (`upstream.rs`), the upstream "
                "exchange (`src/gateway/pool/`)", (
        "keysmith_verify::layer::upstream::request",
        "keysmith::gateway::service::Forwarding::forward::{{closure}}",
    )),
    "answer": ("the answer finished: session settled, listings inspected (`answer.rs`)", (
        "keysmith_verify::layer::answer::Forwarded::finish_now",
        # queuing the audit line, counted with the audit below
        "-keysmith_verify::layer::audit_line::PendingAudit::try_finish",
    )),
    "audit": ("the audit line built and queued (`audit_line.rs`), and its writer "
              "(batching task, SQLite thread)", (
        "keysmith_verify::layer::audit_line::line",
        "keysmith_verify::layer::audit_line::line_taking",
        "keysmith_verify::layer::audit_line::PendingAudit::try_finish",
        "keysmith_verify::audit::sql::write_loop::{{closure}}",
        "keysmith_verify::audit::sqlite::write",  # the SQLite thread, batch by batch
    )),
}


def total(profile: pathlib.Path) -> int:
    """Instructions of the whole process (the `summary:` line callgrind writes)."""
    for line in profile.read_text(errors="replace").splitlines():
        if line.startswith("summary:") or line.startswith("totals:"):
            return int(line.split()[1])
    raise SystemExit(f"{profile}: no summary line")


def inclusive(profile: pathlib.Path) -> dict:
    out = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", "--threshold=100", str(profile)],
        check=True, capture_output=True, text=True,
    ).stdout
    listed = {}
    for line in out.splitlines():
        # `cost (share)  file:function [object]`; a function name may hold spaces.
        match = re.match(r"\s*([\d,]+) \([^)]*\)\s+(?:\?\?\?|[^:\s]*):(.*?)(?: \[[^\]]*\])?$", line)
        if match:
            listed.setdefault(match.group(2), int(match.group(1).replace(",", "")))
    costs = {key: sum(listed.get(name, 0) for name in names_of(key)) for key in PARTS}
    costs["unlisted"] = [name for key in PARTS for name in names_of(key) if name not in listed]
    for stage, (_, names) in STAGES.items():
        signed = [(-1, n[1:]) if n.startswith("-") else (1, n) for n in names]
        costs[f"stage:{stage}"] = sum(sign * listed.get(name, 0) for sign, name in signed)
        if not any(name in listed for sign, name in signed if sign > 0):
            costs["unlisted"].append(f"stage {stage}: {names}")
    return costs


def names_of(part: str) -> tuple:
    names = PARTS[part]
    return (names,) if isinstance(names, str) else names


def served(oha_json: pathlib.Path, expected: int) -> None:
    """Every request answered 200, or the count means nothing."""
    codes = json.loads(oha_json.read_text()).get("statusCodeDistribution", {})
    if codes != {"200": expected}:
        raise SystemExit(f"{oha_json}: expected {expected} × 200, got {codes}")


def main(work: str, n1: str, n2: str) -> None:
    work_dir, n1, n2 = pathlib.Path(work), int(n1), int(n2)
    per_request, unlisted = {}, {}
    # ONLY= runs have some rows alone (ONLY=g: row (g) and its stages).
    runs = [(label, name) for label, name in RUNS if (work_dir / f"{label}-{n1}.out").exists()]
    gateway = (work_dir / f"{GATEWAY}-{n1}.out").exists()
    for label in [label for label, _ in runs] + [GATEWAY] * gateway:
        small, large = (work_dir / f"{label}-{n}.out" for n in (n1, n2))
        for n in (n1, n2):
            served(work_dir / f"{label}-{n}.oha", n)
        parts_small, parts_large = inclusive(small), inclusive(large)
        unlisted[label] = parts_large["unlisted"]
        per_request[label] = {
            "total": (total(large) - total(small)) / (n2 - n1),
            # A part only start-up runs (SHA-256 with the cache warm) differs
            # between the two runs by a few instructions either way: not a
            # negative cost.
            **{
                k: max(0.0, (parts_large[k] - parts_small[k]) / (n2 - n1))
                for k in [*PARTS, *(f"stage:{stage}" for stage in STAGES)]
            },
        }
    lines = [
        f"Machine: {platform.machine()}, valgrind callgrind (user space, every thread, "
        f"no kernel). Per request = (instructions serving {n2:,} requests − serving "
        f"{n1:,}) / {n2 - n1:,}. Reproduce: `scripts/bench-instructions`.",
    ]
    if runs:
        lines += [
            "",
            "| run | instructions / request | of (a) | added to (a) | in SQLite | in SHA-256 (the key's HMAC, cache off) |",
            "|---|---|---|---|---|---|",
        ]
    else:
        lines += ["", "Rows (a)–(c) not run this time (`ONLY=g`): row (g) alone."]
    base = per_request["a"]["total"] if "a" in per_request else None
    for label, name in runs:
        r = per_request[label]
        against_a = (f"{r['total'] / base:.2f}× | +{r['total'] - base:,.0f}"
                     if base else "— | —")
        lines.append(
            f"| {name} | {r['total']:,.0f} | {against_a} | {r['sqlite']:,.0f} | {r['sha']:,.0f} |"
        )
    if not gateway:
        print(replace_section("instructions", "Instructions per request", lines))
        return
    g = per_request[GATEWAY]
    # Every part named for the gateway runs on each of its requests: a zero
    # means the function was renamed or inlined, not that it costs nothing.
    missing = unlisted[GATEWAY]
    if missing:
        raise SystemExit(f"not found in the gateway's profile (renamed or inlined?): {missing}")
    lines += [
        "",
        "(g) `keysmith gateway --tenant bench` (MCP mode, warm cache, SQLite audit) forwarding "
        "one MCP `tools/call` POST to the static nginx answer of `scripts/bench-gateway` "
        "(nginx is another process: not counted).",
        "",
        "| run | instructions / request | in SQLite | in SHA-256 | reading the JSON-RPC body "
        "| the request's fields written upstream | the upstream exchange (fields included) |",
        "|---|---|---|---|---|---|---|",
        f"| (g) gateway | {g['total']:,.0f} | {g['sqlite']:,.0f} | {g['sha']:,.0f} | "
        f"{g['jsonrpc']:,.0f} | {g['headers']:,.0f} | {g['upstream']:,.0f} |",
        "",
        "(g) stage by stage (`crates/keysmith-verify/src/layer/`, in the pipeline's order): "
        "each stage's inclusive instructions per call, and its share of the call's total.",
        "",
        "| stage | instructions / call | share of (g) |",
        "|---|---|---|",
    ]
    for stage, (name, _) in STAGES.items():
        cost = g[f"stage:{stage}"]
        lines.append(f"| {name} | {cost:,.0f} | {cost / g['total']:.1%} |")
    staged = sum(g[f"stage:{stage}"] for stage in STAGES)
    lines.append(
        f"| the rest: hyper's server, tokio, the allocator, moves of futures | "
        f"{g['total'] - staged:,.0f} | {(g['total'] - staged) / g['total']:.1%} |"
    )
    print(replace_section("instructions", "Instructions per request", lines))


if __name__ == "__main__":
    main(*sys.argv[1:])
