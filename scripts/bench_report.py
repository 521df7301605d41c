"""Turns criterion's estimates into the verification and admin-page tables of BENCHMARKS.md."""
import json
import pathlib
import platform
import subprocess

from benchmarks_md import replace_section

ROOT = pathlib.Path(__file__).resolve().parent.parent
CRIT = ROOT / "target" / "criterion"


def median_ns(group: str, bench: str) -> float:
    path = CRIT / group / bench / "new" / "estimates.json"
    return json.loads(path.read_text())["median"]["point_estimate"]


def fmt(ns: float) -> str:
    return f"{ns / 1000:.2f} µs" if ns < 1e6 else f"{ns / 1e6:.2f} ms"


def machine() -> str:
    cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], capture_output=True, text=True).stdout.strip()
    cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    return f"Machine: {cpu or platform.processor()}, {cores} cores."


def verify_section() -> None:
    rows = []
    compute = median_ns("compute", "parse_checksum_hmac_compare")
    argon = median_ns("compute", "argon2id_verify")
    rows.append(("verify compute (parse, CRC32, HMAC-SHA-256, constant-time compare)", fmt(compute), f"argon2id verify {fmt(argon)}", f"{argon / compute:,.0f}× faster", "≤ 2 µs"))
    for engine in ("sqlite", "postgres"):
        group = f"db_{engine}" if (CRIT / f"db_{engine}").exists() else f"db/{engine}"
        verify = median_ns(group, "verify_cache_off")
        floor = median_ns(group, "select_1")
        target = "≤ 50 µs" if engine == "sqlite" else "—"
        rows.append((f"verify through {engine}, cache off, 10k keys", fmt(verify), f"`SELECT 1` round trip {fmt(floor)}", f"{verify / floor:.2f}× the round trip", target))
        if engine == "sqlite":
            native = median_ns(group, "select_1_native_pool")
            rows.append(("`SELECT 1` through `sqlx::Any` (what Keysmith uses)", fmt(floor), f"native `SqlitePool` {fmt(native)}", f"{floor / native:.2f}× native", "—"))
    print(replace_section("verify", "Key verification", [
        f"{machine()} Reproduce: `scripts/bench`.",
        "",
        "| measured | median | baseline (same run) | ratio | target |",
        "|---|---|---|---|---|",
        *[f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in rows],
    ]))


def admin_page_section() -> None:
    group = "admin_keys_page"
    small = median_ns(group, "small_tenant_first_page")
    rows = []
    for bench, what in [
        ("big_tenant_first_page", "first page, 100,000 keys"),
        ("big_tenant_page_at_50000", "page after the 50,000th key (cursor)"),
        ("big_tenant_rotating_filter", "filter: rotating"),
        ("big_tenant_service_user_filter", "filter: one service user"),
    ]:
        ns = median_ns(group, bench)
        rows.append((what, fmt(ns), f"first page, 100 keys: {fmt(small)}", f"{ns / small:.2f}×", "< 50 ms"))
    print(replace_section("admin", "Admin keys page at 100,000 keys", [
        f"{machine()} SQLite, signed-in GET over loopback HTTP (session lookup, tenant check, one page of 50 keys, render). Reproduce: `scripts/bench`.",
        "",
        "| page | median | baseline (same run) | ratio | target |",
        "|---|---|---|---|---|",
        *[f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in rows],
    ]))


if (CRIT / "compute").exists():
    verify_section()
if (CRIT / "admin_keys_page").exists():
    admin_page_section()
