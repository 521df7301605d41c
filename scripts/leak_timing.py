"""scripts/bench-leak's client: signs GitHub secret-scanning reports and times
how long a leaked key keeps passing the gateway after its report is sent."""
import base64
import http.client
import json
import pathlib
import statistics
import sys
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from benchmarks_md import replace_section

TOOLS_CALL = pathlib.Path(__file__).parent.joinpath("load", "tools_call.json").read_bytes()
KEY_ID = "bench-github-1"
# A refusal that has not come after this long is a failure, not a slow result.
GIVE_UP_SECONDS = 30


def keypair(private_path, key_set_path):
    private = ec.generate_private_key(ec.SECP256R1())
    pathlib.Path(private_path).write_bytes(private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    key_set = {"public_keys": [{"key_identifier": KEY_ID, "key": public, "is_current": True}]}
    pathlib.Path(key_set_path).write_text(json.dumps(key_set))


def call_gateway(connection, key):
    connection.request("POST", "/mcp", body=TOOLS_CALL, headers={
        "Authorization": f"Bearer {key}", "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream"})
    response = connection.getresponse()
    response.read()
    return response.status


def report(connection, private, key):
    body = json.dumps([{"token": key, "type": "keysmith_api_key",
                        "url": "https://example.test/leak", "source": "content"}]).encode()
    signature = base64.b64encode(private.sign(body, ec.ECDSA(hashes.SHA256()))).decode()
    connection.request("POST", "/api/v1/secret-scanning/github", body=body, headers={
        "Content-Type": "application/json", "Github-Public-Key-Identifier": KEY_ID,
        "Github-Public-Key-Signature": signature})
    response = connection.getresponse()
    answer = json.loads(response.read())
    if response.status != 200 or answer[0]["label"] != "true_positive":
        raise SystemExit(f"the report was not taken: {response.status} {answer}")


def run(private_path, keys_path, server_port, gateway_port):
    private = serialization.load_pem_private_key(pathlib.Path(private_path).read_bytes(), None)
    keys = pathlib.Path(keys_path).read_text().split()
    server = http.client.HTTPConnection("127.0.0.1", int(server_port))
    gateway = http.client.HTTPConnection("127.0.0.1", int(gateway_port))
    to_refusal, report_trip, calls_passed = [], [], []
    for key in keys:
        if call_gateway(gateway, key) != 200:
            raise SystemExit("a fresh key was refused before its report")
        sent = time.perf_counter()
        report(server, private, key)
        answered = time.perf_counter()
        passed = 0
        while (status := call_gateway(gateway, key)) == 200:
            passed += 1
            if time.perf_counter() - sent > GIVE_UP_SECONDS:
                raise SystemExit(f"the leaked key still passes {GIVE_UP_SECONDS} s after its report")
        if status != 401:
            raise SystemExit(f"the gateway answered {status}, not 401, for a revoked key")
        to_refusal.append((time.perf_counter() - sent) * 1000)
        report_trip.append((answered - sent) * 1000)
        calls_passed.append(passed)
    ordered = sorted(to_refusal)
    p90 = ordered[max(0, int(len(ordered) * 0.9) - 1)]
    print(replace_section("leak", "From leak report to refusal", [
        f"`keysmith serve` and `keysmith gateway` as two processes on one PostgreSQL database; {len(keys)} keys, "
        "each warm in the gateway's cache, each reported in a signed GitHub secret-scanning report to the server, "
        "then called through the gateway until refused. Reproduce: `scripts/bench-leak`.",
        "",
        "| measured | median | p90 | max |",
        "|---|---|---|---|",
        f"| report sent → first refused call at the gateway | {statistics.median(to_refusal):.1f} ms | {p90:.1f} ms | "
        f"{max(to_refusal):.1f} ms |",
        f"| baseline: the report's own round trip (verify signature, revoke, notify) | "
        f"{statistics.median(report_trip):.1f} ms | — | {max(report_trip):.1f} ms |",
        f"| calls the gateway still let through after the report was answered | {statistics.median(calls_passed):.0f} | — | "
        f"{max(calls_passed)} |",
    ]))


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    {"keypair": keypair, "run": run}[command](*args)
