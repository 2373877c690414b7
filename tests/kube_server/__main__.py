"""Run the fake API server on its own: `python -m kube_server --synthetic-pods 5000` (from tests/).

Prints the server URL on the first line of stdout, then serves until stdin closes or it is killed.
"""

import argparse
import sys

from . import FakeKubeServer, load_into, synthetic_cluster


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m kube_server")
    parser.add_argument("--synthetic-pods", type=int, default=0, help="serve a synthetic cluster of this many pods")
    parser.add_argument("--synthetic-nodes", type=int, default=50)
    parser.add_argument("--fixture", action="append", default=[], help="fixture under clusters/ to load")
    parser.add_argument("--token", default="test-token")
    args = parser.parse_args()
    server = FakeKubeServer(token=args.token)
    if args.synthetic_pods:
        for obj in synthetic_cluster(args.synthetic_pods, args.synthetic_nodes):
            server.store.put(obj)
    if args.fixture:
        load_into(server, *args.fixture)
    server.start()
    print(server.url, flush=True)
    sys.stdin.read()  # serve until the parent closes our stdin
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
