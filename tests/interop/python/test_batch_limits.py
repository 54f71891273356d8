#!/usr/bin/python3
"""BatchProcess at its limits, through Debian's grpcio, against a sluiced started (by
run_with_sluiced.py) with limits.max_batch_in_flight=1 and limits.max_sessions_per_tenant=1:

- large results (the fake's [[pad:N]] marker) that pile up while the client does not read:
  every result still arrives, in events the client accepts (grpcio's default 4 MB receive
  limit), and the summary counts them all. Results wait for the outbound queue instead of
  being dropped, and events are cut by size as well as by count;
- a batch without session_id opens a session of its own, which counts against
  max_sessions_per_tenant: refused with RESOURCE_EXHAUSTED naming the limit when full.
Exits non-zero on the first failed check.
"""
import json
import os
import sys
import tempfile
import time
import urllib.request

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_service_interop import check, collect, load_messages, rpc, send_batch  # noqa: E402

N = 300
PAD = 20000


def fake(path, doc):
    req = urllib.request.Request(os.environ["SLUICE_FAKE_URL"] + path,
                                 data=json.dumps(doc).encode(), method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status


def own_session_header(pb, n):
    """A header without session_id: the batch opens a session of its own."""
    cfg = pb.SessionConfig(models=[pb.ModelChoice(name="m-a", weight=1)])
    return pb.BatchHeader(config=cfg, expected_prompts=n)


def test_results_wait_for_a_slow_reader(ch, pb):
    # Answers spread over a second: many small flushes, so many events queue up.
    check(fake("/_fake/config", {"latency_ms": 10, "jitter_ms": 1000}) == 200, "fake latency set")
    prompts = [pb.Prompt(text="big %d [[pad:%d]]" % (i, PAD), index=i) for i in range(N)]
    events = send_batch(ch, pb, own_session_header(pb, N), [prompts], timeout=120)
    time.sleep(3)  # not reading: every answer is back and waiting inside sluiced
    results, summary = collect(events)
    fake("/_fake/config", {"latency_ms": 0, "jitter_ms": 0})
    check(len(results) == N, "all %d large results arrive (%d did)" % (N, len(results)))
    check(all(not r.response.is_error and len(r.response.completion) >= PAD
              for r in results.values()), "each result is a full, padded answer")
    check(summary is not None and summary.succeeded == N, "the summary counts every result")


def test_own_session_counts_against_the_tenant_limit(ch, pb):
    open_session = rpc(ch, pb, "OpenSession", pb.OpenSessionRequest, pb.OpenSessionResponse)
    cfg = pb.SessionConfig(models=[pb.ModelChoice(name="m-a", weight=1)])
    sid = open_session(pb.OpenSessionRequest(config=cfg), timeout=10).session_id
    try:
        list(send_batch(ch, pb, own_session_header(pb, 1), [pb.Prompt(text="one", index=0)],
                        timeout=30))
        check(False, "a batch's own session beyond the tenant's limit is refused")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and
              "max_sessions_per_tenant" in e.details(),
              "own session beyond the limit -> RESOURCE_EXHAUSTED naming it (%s)" % e.details())
    close = rpc(ch, pb, "CloseSession", pb.CloseSessionRequest, pb.CloseSessionResponse)
    close(pb.CloseSessionRequest(session_id=sid), timeout=10)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        pb = load_messages(tmp)
        ch = grpc.insecure_channel(os.environ["SLUICE_TARGET"])
        test_results_wait_for_a_slow_reader(ch, pb)
        test_own_session_counts_against_the_tenant_limit(ch, pb)
    print("batch limits: all checks passed")


if __name__ == "__main__":
    main()
