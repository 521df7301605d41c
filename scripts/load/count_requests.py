"""Sends exactly N requests over C keep-alive connections and writes the
status counts as oha's JSON does (`statusCodeDistribution`), for
scripts/bench-instructions where oha is not installed: the count is of the
server's instructions, so any client that sends the same requests will do.
  count_requests.py N C METHOD URL [-H 'Name: value']... [-D body-file]"""
import argparse
import collections
import http.client
import json
import threading
import urllib.parse


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("n", type=int)
    parser.add_argument("c", type=int)
    parser.add_argument("method")
    parser.add_argument("url")
    parser.add_argument("-H", action="append", default=[])
    parser.add_argument("-D")
    args = parser.parse_args()
    url = urllib.parse.urlsplit(args.url)
    headers = dict(h.split(": ", 1) for h in args.H)
    body = open(args.D, "rb").read() if args.D else None
    lock, left, codes = threading.Lock(), [args.n], collections.Counter()

    def worker() -> None:
        conn = http.client.HTTPConnection(url.hostname, url.port)
        while True:
            with lock:
                if left[0] == 0:
                    break
                left[0] -= 1
            conn.request(args.method, url.path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            with lock:
                codes[str(response.status)] += 1
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(args.c)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps({"statusCodeDistribution": dict(codes)}))


if __name__ == "__main__":
    main()
