"""Reads the figures out of `wrk --latency` output."""
import re


def to_us(value: str) -> float:
    match = re.match(r"([\d.]+)(us|ms|s|m)$", value)
    if not match:
        raise SystemExit(f"unexpected wrk latency {value!r}")
    number, unit = match.groups()
    return float(number) * {"us": 1, "ms": 1000, "s": 1_000_000, "m": 60_000_000}[unit]


def parse_wrk(text: str) -> dict:
    """Throughput, p50/p99 (µs), completed requests, and non-2xx/3xx answers
    plus socket errors (both count as errors)."""
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
        "p50": to_us(re.search(r"^\s+50%\s+(\S+)", text, re.M).group(1)),
        "p99": to_us(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1)),
        "requests": int(re.search(r"(\d+) requests in", text).group(1)),
        "non2xx": (int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", text)) else 0)
        + (sum(int(n) for n in socket_errors.groups()) if socket_errors else 0),
    }
