#!/usr/bin/python3
"""Regression: limits that lie (run by run_with_sluiced.py with max_open_tasks_per_tenant
70000 and max_message_bytes 4 MiB).

- A Start of more than 65,536 prompts failed with "store write_queue_max reached: retry
  later", which could never succeed: a Start up to the tenant's open-task limit now
  succeeds (all or none), and one above it is refused up front naming the limit and its
  value.
- A Wait whose results exceeded the message limit failed with RESOURCE_EXHAUSTED and
  withheld every result: it now returns the complete results that fit, one entry per id,
  and lists the others in more_task_ids for another Wait (max_response_bytes lowers the
  limit to what the client accepts). The CLI's `sluice wait` follows it by itself.
"""
import json
import os
import subprocess
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


def wait_all(wait, ids, **kw):
    """Waits for ids following more_task_ids; returns ({id: TaskResult}, rounds)."""
    got, rounds, want = {}, 0, list(ids)
    while want:
        rounds += 1
        w = wait(want, **kw)
        check(len(w.results) == len(want) and [r.task_id for r in w.results] == want,
              "round %d: one entry per id, in request order" % rounds)
        more = list(w.more_task_ids)
        check(not w.pending_task_ids, "round %d: every task finished" % rounds)
        for r in w.results:
            if r.task_id not in more:
                check(r.HasField("response"), "%s: finished, with its result" % r.task_id)
                got[r.task_id] = r
        check(w.all_done == (not more), "all_done only when nothing is left out")
        check(len(more) < len(want), "round %d makes progress" % rounds)
        want = more
    return got, rounds


def wait_limits(ch, pb, sid):
    start = rpc(ch, pb, "Start", pb.StartRequest, pb.StartResponse)
    # 12 answers of ~1.2 MB each (the fake pads the completion): ~14 MB in all
    ids = list(start(pb.StartRequest(session_id=sid, prompts=[
        pb.Prompt(text="big answer %d [[pad:600000]]" % i, index=i) for i in range(12)]),
        timeout=60).task_ids)
    # Every result is there before the checks: one Wait blocks at most sluiced's cap
    # (rpc.max_wait_ms), and the rounds counted below are those of results left out for room.
    status = rpc(ch, pb, "GetStatus", pb.GetStatusRequest, pb.GetStatusResponse)
    deadline = time.time() + 300
    while status(pb.GetStatusRequest(session_id=sid), timeout=10).status.succeeded < 12:
        check(time.time() < deadline, "the 12 large answers arrive")
        time.sleep(0.2)
    big = grpc.insecure_channel(os.environ["SLUICE_TARGET"],
                                options=[("grpc.max_receive_message_length", 64 << 20)])
    wait_raw = big.unary_unary("/sluice.v1.Sluice/Wait",
                               request_serializer=pb.WaitRequest.SerializeToString,
                               response_deserializer=lambda b: (len(b), pb.WaitResponse.FromString(b)))
    sizes = []

    def wait(want, max_response_bytes=0):
        n, w = wait_raw(pb.WaitRequest(task_ids=want, timeout_ms=60000,
                                       max_response_bytes=max_response_bytes), timeout=90)
        sizes.append(n)
        return w

    got, rounds = wait_all(wait, ids)
    check(len(got) == 12 and rounds >= 4, "every result fetched, in %d Waits" % rounds)
    check(max(sizes) <= LIMIT, "no answer above the server's limit (%d)" % max(sizes))
    for i, tid in enumerate(ids):
        check(("big answer %d" % i) in got[tid].response.completion and
              len(got[tid].response.completion) > 600000, "result %d complete" % i)
    sizes.clear()
    got, rounds = wait_all(lambda want: wait(want, max_response_bytes=1500000), ids)
    check(len(got) == 12 and rounds == 12 and max(sizes) <= 1500000,
          "max_response_bytes: one ~1.2 MB result per answer (%d Waits)" % rounds)
    # a default grpcio client (4 MiB receive limit) asks for what it accepts
    wait4 = rpc(ch, pb, "Wait", pb.WaitRequest, pb.WaitResponse)
    got, _ = wait_all(lambda want: wait4(pb.WaitRequest(task_ids=want, max_response_bytes=4000000),
                                         timeout=90), ids)
    check(len(got) == 12, "a default grpcio client fetches everything")
    # a result too large for any answer of this limit: an error response says so
    w = wait(ids[:1], max_response_bytes=1000000)
    r = w.results[0].response
    check(w.results[0].state == pb.TASK_STATE_SUCCEEDED and r.is_error and
          "more than a Wait answer may carry" in r.error_message and not w.more_task_ids,
          "a result above the limit comes as an error saying so (%s)" % r.error_message)
    return ids


def cli_wait(ids):
    sluice = os.path.join(os.environ["SLUICE_BUILD_DIR"], "client", "cli", "sluice")
    p = subprocess.run([sluice, "wait", "--timeout-wait", "60000", "-s",
                        os.environ["SLUICE_TARGET"]] + ids, capture_output=True, text=True,
                       timeout=120)
    res = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
    check(p.returncode == 0 and len(res) == len(ids) and
          all(("big answer %d" % i) in r["completion"] for i, r in enumerate(res)),
          "sluice wait prints every result beyond the message limit (%d: %s)" %
          (p.returncode, p.stderr.strip()))


def main():
    target = os.environ["SLUICE_TARGET"]
    with tempfile.TemporaryDirectory() as tmp:
        pb = load_messages(tmp)
        ch = grpc.insecure_channel(target, options=[("grpc.max_send_message_length", LIMIT)])
        open_session = rpc(ch, pb, "OpenSession", pb.OpenSessionRequest, pb.OpenSessionResponse)
        cfg = pb.SessionConfig(models=[pb.ModelChoice(name="m-a", weight=1)])
        sid = open_session(pb.OpenSessionRequest(config=cfg), timeout=10).session_id
        start_limits(ch, pb, sid)
        ids = wait_limits(ch, pb, sid)
        cli_wait(ids)
    print("start and wait limits: all checks passed")


if __name__ == "__main__":
    main()
