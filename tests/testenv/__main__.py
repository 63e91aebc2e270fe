"""python -m tests.testenv start|stop|build --state DIR: the test control plane by hand.

python -m tests.testenv start --state /tmp/kube     # then: KUBECONFIG=/tmp/kube/kubeconfig
python -m tests.testenv start --state /tmp/kube --controllers   # and kwok, Argo Rollouts, ...
python -m tests.testenv stop --state /tmp/kube      # stops the controllers too
python -m tests.testenv build                       # build every binary the tests use, up front
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tests.testenv import build, cluster, controlplane


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.testenv")
    parser.add_argument("action", choices=("start", "stop", "build"))
    parser.add_argument(
        "--state", type=Path, default=Path(".testenv"), help="directory for data, logs, kubeconfig"
    )
    parser.add_argument(
        "--controllers",
        action="store_true",
        help="start: also kube-controller-manager, kube-scheduler, kwok and the Argo Rollouts controller",
    )
    args = parser.parse_args()
    if args.action == "build":
        for name, path in build.build_all().items():
            print(f"{name}: {path}")
        return 0
    if args.action == "stop":
        controlplane.stop(args.state)
        print(f"stopped the control plane in {args.state}")
        return 0
    plane = controlplane.start(args.state)
    controlplane.install_crds(plane)
    if args.controllers:
        cluster.start(plane)
    print(f"kube-apiserver at {plane.server}; export KUBECONFIG={plane.kubeconfig}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
