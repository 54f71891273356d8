#!/usr/bin/python3
"""Regression: limits that lie (run by run_with_sluiced.py with max_open_tasks_per_tenant
70000 and max_message_bytes 4 MiB).

- A Start of more than 65,536 prompts failed with "store write_queue_max reached: retry
  later", which could never succeed: a Start up to the tenant's open-task limit now
  succeeds (all or none), and one above it is refused up front naming the limit and its
  value.
"""
import json
import os
import sys
import tempfile
import time
import urllib.request

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_service_interop import check, load_messages, rpc  # noqa: E402

LIMIT = 4 << 20
TENANT_LIMIT = 70000


def fake(config):
    """Sets the fake provider's behaviour (its control API)."""
    req = urllib.request.Request(os.environ["SLUICE_FAKE_URL"] + "/_fake/config",
                                 data=json.dumps(config).encode(), method="POST")
    urllib.request.urlopen(req, timeout=10).read()


def start_limits(ch, pb, sid):
    start = rpc(ch, pb, "Start", pb.StartRequest, pb.StartResponse)
    too_many = [pb.Prompt(text="p %d" % i, index=i) for i in range(TENANT_LIMIT + 1)]
    try:
        start(pb.StartRequest(session_id=sid, prompts=too_many), timeout=120)
        check(False, "a Start above the tenant limit is refused")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and
              "max_open_tasks_per_tenant=%d" % TENANT_LIMIT in e.details(),
              "a Start above the tenant limit is refused naming it (%s)" % e.details())
    fake({"latency_ms": 600000})  # they stay in flight until cancelled
    ids = start(pb.StartRequest(session_id=sid, prompts=too_many[:TENANT_LIMIT]),
                timeout=120).task_ids
    check(len(ids) == TENANT_LIMIT and len(set(ids)) == TENANT_LIMIT,
          "a Start of %d prompts (more than 65,536) succeeds" % TENANT_LIMIT)
    cancel = rpc(ch, pb, "Cancel", pb.CancelRequest, pb.CancelResponse)
    cancel(pb.CancelRequest(session_id=sid), timeout=60)
    status = rpc(ch, pb, "GetStatus", pb.GetStatusRequest, pb.GetStatusResponse)
    deadline = time.time() + 300
    while time.time() < deadline:
        st = status(pb.GetStatusRequest(session_id=sid), timeout=10).status
        if st.cancelled == TENANT_LIMIT:
            break
        time.sleep(0.2)
    check(st.cancelled == TENANT_LIMIT and st.in_progress == 0 and st.queued == 0,
          "every started task ran until cancelled (%d cancelled)" % st.cancelled)
    fake({"latency_ms": 0})


def main():
    target = os.environ["SLUICE_TARGET"]
    with tempfile.TemporaryDirectory() as tmp:
        pb = load_messages(tmp)
        ch = grpc.insecure_channel(target, options=[("grpc.max_send_message_length", LIMIT)])
        open_session = rpc(ch, pb, "OpenSession", pb.OpenSessionRequest, pb.OpenSessionResponse)
        cfg = pb.SessionConfig(models=[pb.ModelChoice(name="m-a", weight=1)])
        sid = open_session(pb.OpenSessionRequest(config=cfg), timeout=10).session_id
        start_limits(ch, pb, sid)
    print("start and wait limits: all checks passed")


if __name__ == "__main__":
    main()
