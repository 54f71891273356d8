#!/usr/bin/python3
"""Quiet streams and long waits, on the wire (run by run_with_sluiced.py with
rpc.heartbeat_interval_ms 300 and rpc.max_wait_ms 700; the fake provider is slowed down
through its control API so that calls have nothing to say for a while).

- A BatchProcess stream without show_progress used to send nothing between results, and an
  AsCompleted stream nothing between tasks: proxies cut them at their read timeout. Both
  now get heartbeats (BatchEvent.heartbeat; TaskResult.heartbeat with nothing else set).
- One Wait blocks at most the server's cap whatever its timeout_ms, and answers with the
  finished results and pending_task_ids; a shorter timeout_ms still counts.
- max_results bounds a Wait answer (the rest in more_task_ids).
- omit_text_parts sends each answer's text once (Response.completion); without it the
  text is also a content part, as before, so older clients see no change.
- sluice wait (the CLI, over the SDK) waits again past the cap, and prints an unknown id as
  a line of its own (exit 2) beside the other results.
- AsCompleted still refuses an unknown id with NOT_FOUND naming it.
"""
import json
import os
import subprocess
import sys
import tempfile
import urllib.request

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_service_interop import batch_call, check, load_messages, rpc  # noqa: E402


def fake(config):
    """Sets the fake provider's behaviour (its control API)."""
    req = urllib.request.Request(os.environ["SLUICE_FAKE_URL"] + "/_fake/config",
                                 data=json.dumps(config).encode(), method="POST")
    urllib.request.urlopen(req, timeout=10).read()


def text_parts(response):
    return [p for p in response.content if p.WhichOneof("kind") == "text"]


def batch_heartbeats(ch, pb, sid):
    fake({"latency_ms": 2000})

    def run(omit):
        def requests():
            yield pb.BatchRequest(header=pb.BatchHeader(session_id=sid, expected_prompts=2,
                                                        omit_text_parts=omit))
            yield pb.BatchRequest(prompts=pb.PromptBatch(prompts=[
                pb.Prompt(text="quiet batch %d %s" % (i, omit), index=i) for i in range(2)]))
            yield pb.BatchRequest(end=pb.BatchEnd())
        return list(batch_call(ch, pb)(requests(), timeout=60))

    events = run(False)
    kinds = [ev.WhichOneof("kind") for ev in events]
    check(kinds.count("heartbeat") >= 1 and kinds[0] == "heartbeat",
          "a quiet batch without show_progress gets heartbeats (%s)" % kinds)
    check(all(ev.heartbeat == pb.Heartbeat() for ev in events if ev.HasField("heartbeat")),
          "a heartbeat carries nothing")
    check(kinds[-1] == "summary" and events[-1].summary.succeeded == 2,
          "the summary still comes last")
    results = [r for ev in events if ev.HasField("results") for r in ev.results.results]
    check(len(results) == 2 and all(
        [p.text.text for p in text_parts(r.response)] == [r.response.completion]
        for r in results), "without omit_text_parts the text is also a content part (as before)")
    events = run(True)
    results = [r for ev in events if ev.HasField("results") for r in ev.results.results]
    check(len(results) == 2 and all(
        "quiet batch" in r.response.completion and not text_parts(r.response) for r in results),
        "with omit_text_parts the text comes once, in completion")
    fake({"latency_ms": 0})


def as_completed_heartbeats(ch, pb, sid, start):
    fake({"latency_ms": 2000})
    ids = list(start(pb.StartRequest(session_id=sid, prompts=[
        pb.Prompt(text="quiet stream %d" % i, index=i) for i in range(2)]), timeout=10).task_ids)
    stream = ch.unary_stream("/sluice.v1.Sluice/AsCompleted",
                             request_serializer=pb.AsCompletedRequest.SerializeToString,
                             response_deserializer=pb.TaskResult.FromString)
    msgs = list(stream(pb.AsCompletedRequest(task_ids=ids, omit_text_parts=True), timeout=60))
    beats = [m for m in msgs if m.heartbeat]
    results = [m for m in msgs if not m.heartbeat]
    check(beats and msgs[0].heartbeat, "a quiet AsCompleted stream gets heartbeats")
    check(all(m == pb.TaskResult(heartbeat=True) for m in beats),
          "an AsCompleted heartbeat has nothing else set")
    check(sorted(r.task_id for r in results) == sorted(ids) and
          all(r.state == pb.TASK_STATE_SUCCEEDED and "quiet stream" in r.response.completion and
              not text_parts(r.response) for r in results),
          "each task once, its text once (omit_text_parts)")
    try:
        list(stream(pb.AsCompletedRequest(task_ids=[ids[0], "local:t99999999"]), timeout=10))
        check(False, "AsCompleted of an unknown id fails")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.NOT_FOUND and "local:t99999999" in e.details(),
              "AsCompleted of an unknown id is NOT_FOUND naming it (%s)" % e.details())
    fake({"latency_ms": 0})


def wait_cap(pb, sid, start, wait):
    fake({"latency_ms": 2500})
    ids = list(start(pb.StartRequest(session_id=sid, prompts=[pb.Prompt(text="long task")]),
                     timeout=10).task_ids)
    w = wait(pb.WaitRequest(task_ids=ids, timeout_ms=0), timeout=30)
    check(list(w.pending_task_ids) == ids and not w.all_done and not w.more_task_ids and
          w.results[0].state in (pb.TASK_STATE_QUEUED, pb.TASK_STATE_RUNNING) and
          not w.results[0].HasField("response"),
          "a Wait without a timeout answers at the server's cap, naming what is pending")
    w = wait(pb.WaitRequest(task_ids=ids, timeout_ms=100), timeout=30)
    check(list(w.pending_task_ids) == ids, "a timeout_ms below the cap still counts")
    rounds = 0
    while not w.all_done:
        rounds += 1
        if rounds == 100:
            check(False, "Wait after Wait ends")
        w = wait(pb.WaitRequest(task_ids=list(w.pending_task_ids) or ids, timeout_ms=60000),
                 timeout=30)
    check(w.results[0].state == pb.TASK_STATE_SUCCEEDED and not w.pending_task_ids and
          "long task" in w.results[0].response.completion,
          "waiting again brings the result (%d more Waits)" % rounds)
    fake({"latency_ms": 0})
    return ids[0]


def max_results(pb, sid, start, wait):
    tool = pb.ToolDefinition(name="get_weather", description="the weather",
                             parameters_json='{"type": "object", "properties": {}}')
    prompts = [pb.Prompt(text="bounded %d" % i, index=i) for i in range(4)]
    prompts.append(pb.Prompt(text="[[tool]] bounded tool", index=4, tools=[tool]))
    ids = list(start(pb.StartRequest(session_id=sid, prompts=prompts), timeout=10).task_ids)
    w = wait(pb.WaitRequest(task_ids=ids, timeout_ms=30000), timeout=40)
    while w.pending_task_ids:
        w = wait(pb.WaitRequest(task_ids=ids, timeout_ms=30000), timeout=40)
    check(w.all_done, "5 tasks done")
    w = wait(pb.WaitRequest(task_ids=ids, max_results=2), timeout=10)
    check([r.HasField("response") for r in w.results] == [True, True, False, False, False] and
          list(w.more_task_ids) == ids[2:] and not w.pending_task_ids and not w.all_done,
          "max_results 2: two results, the other three in more_task_ids")
    got, want, rounds = {}, ids, 0
    while want:
        rounds += 1
        w = wait(pb.WaitRequest(task_ids=want, max_results=2, omit_text_parts=True), timeout=10)
        got.update({r.task_id: r for r in w.results if r.HasField("response")})
        want = list(w.more_task_ids)
    check(rounds == 3 and len(got) == 5, "following more_task_ids fetches all (%d Waits)" % rounds)
    check(all(not text_parts(r.response) for r in got.values()) and
          "bounded 0" in got[ids[0]].response.completion,
          "omit_text_parts on Wait: no text parts")
    calls = [p for p in got[ids[4]].response.content if p.WhichOneof("kind") == "tool_call"]
    check(len(calls) == 1 and calls[0].tool_call.name == "get_weather",
          "omit_text_parts keeps the other parts (a tool call)")


def cli_wait(known_id, start, pb, sid):
    sluice = os.path.join(os.environ["SLUICE_BUILD_DIR"], "client", "cli", "sluice")
    fake({"latency_ms": 2500})
    ids = list(start(pb.StartRequest(session_id=sid, prompts=[pb.Prompt(text="cli long")]),
                     timeout=10).task_ids)
    p = subprocess.run([sluice, "wait", "-s", os.environ["SLUICE_TARGET"]] + ids,
                       capture_output=True, text=True, timeout=120)
    res = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
    check(p.returncode == 0 and len(res) == 1 and "cli long" in res[0]["completion"],
          "sluice wait waits again past the server's cap (%d: %s)" % (p.returncode,
                                                                       p.stderr.strip()))
    fake({"latency_ms": 0})
    p = subprocess.run([sluice, "wait", "-s", os.environ["SLUICE_TARGET"], known_id,
                        "local:t99999999"], capture_output=True, text=True, timeout=120)
    res = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
    check(p.returncode == 2 and len(res) == 2 and "long task" in res[0]["completion"] and
          res[1]["task_id"] == "local:t99999999" and res[1]["state"] == "not_found" and
          res[1]["is_error"] and "local:t99999999" in res[1]["error"] and
          "local:t99999999" in p.stderr,
          "sluice wait: the known result and a not_found line, exit 2 (%d: %s %s)" % (
              p.returncode, p.stdout.strip(), p.stderr.strip()))


def main():
    target = os.environ["SLUICE_TARGET"]
    with tempfile.TemporaryDirectory() as tmp:
        pb = load_messages(tmp)
        ch = grpc.insecure_channel(target)
        open_session = rpc(ch, pb, "OpenSession", pb.OpenSessionRequest, pb.OpenSessionResponse)
        cfg = pb.SessionConfig(models=[pb.ModelChoice(name="m-a", weight=1)])
        sid = open_session(pb.OpenSessionRequest(config=cfg), timeout=10).session_id
        start = rpc(ch, pb, "Start", pb.StartRequest, pb.StartResponse)
        wait = rpc(ch, pb, "Wait", pb.WaitRequest, pb.WaitResponse)
        batch_heartbeats(ch, pb, sid)
        as_completed_heartbeats(ch, pb, sid, start)
        known = wait_cap(pb, sid, start, wait)
        max_results(pb, sid, start, wait)
        cli_wait(known, start, pb, sid)
    print("streams: all checks passed")


if __name__ == "__main__":
    main()
