#!/usr/bin/python3
"""Python interop: Debian's grpcio against a real sluiced (started by run_with_sluiced.py).

The message classes are generated at test time with protoc --python_out from
proto/sluice/v1/sluice.proto; calls go through grpcio's generic stubs. Runs a batch
(BatchProcess: header, prompts, end; results in completion order with the caller's index,
then a summary) and Start + Wait, plus the error paths a client meets first (unknown
task ids, INVALID_ARGUMENT). Exits non-zero on the first failed check.
"""
import importlib
import json
import os
import subprocess
import sys
import tempfile

import grpc

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def load_messages(tmp):
    subprocess.check_call(["protoc", "-I" + os.path.join(ROOT, "proto"), "-I/usr/include",
                           "--python_out=" + tmp, "sluice/v1/sluice.proto"])
    sys.path.insert(0, tmp)
    return importlib.import_module("sluice.v1.sluice_pb2")


def check(cond, what):
    if not cond:
        raise SystemExit("FAIL: " + what)
    print("ok:", what)


def rpc(ch, pb, name, req_cls, resp_cls):
    return ch.unary_unary("/sluice.v1.Sluice/" + name,
                          request_serializer=req_cls.SerializeToString,
                          response_deserializer=resp_cls.FromString)


def batch_call(ch, pb):
    return ch.stream_stream("/sluice.v1.Sluice/BatchProcess",
                            request_serializer=pb.BatchRequest.SerializeToString,
                            response_deserializer=pb.BatchEvent.FromString)


def send_batch(ch, pb, header, parts, timeout=60):
    """Starts a BatchProcess call sending header (a BatchHeader), then each of parts (a
    Prompt, sent in a message of its own, or a list of Prompts, sent together in one
    PromptBatch), then the end. Returns the call's stream of BatchEvents (see collect)."""
    def requests():
        yield pb.BatchRequest(header=header)
        for part in parts:
            if isinstance(part, list):
                yield pb.BatchRequest(prompts=pb.PromptBatch(prompts=part))
            else:
                yield pb.BatchRequest(prompt=part)
        yield pb.BatchRequest(end=pb.BatchEnd())

    return batch_call(ch, pb)(requests(), timeout=timeout)


def collect(events):
    """Reads a BatchProcess stream to its end: ({index: BatchResult}, summary or None),
    checking that each index arrives once."""
    results, summary = {}, None
    for ev in events:
        kind = ev.WhichOneof("kind")
        if kind == "results":
            for r in ev.results.results:
                check(r.index not in results, "result %d arrives once" % r.index)
                results[r.index] = r
        elif kind == "summary":
            summary = ev.summary
    return results, summary


def batch(ch, pb, session_id, n):
    prompts = [pb.Prompt(text="python prompt %d" % i, index=i, custom_id="py-%d" % i)
               for i in range(n)]
    # The first half one prompt per message, the rest together in one message.
    parts = prompts[:n // 2] + [prompts[n // 2:]]
    header = pb.BatchHeader(session_id=session_id, expected_prompts=n)
    return collect(send_batch(ch, pb, header, parts))


def run_batch(ch, pb, header, prompts):
    """One batch of prompts under header; returns {index: Response}, all successful."""
    results, _ = collect(send_batch(ch, pb, header, [prompts]))
    results = {i: r.response for i, r in results.items()}
    check(len(results) == len(prompts) and not any(r.is_error for r in results.values()),
          "batch: %d answers (%s)" % (len(prompts),
                                      [r.error_message for r in results.values()]))
    return results


def header_features(ch, pb, session_id):
    """A header's output schema and tools apply to every prompt without its own; a prompt's
    own schema wins. The fake answers a schema with a JSON object of its properties, and
    tools with a call when the prompt says [[tool]]. (6 prompts.)"""
    # Keys out of order and spaced: the cache key is computed over the canonical form.
    city = '{ "required": ["city"], "type": "object", "properties": {"city": {"type": "string"}}}'
    flag = '{"type": "object", "properties": {"flag": {"type": "boolean"}}}'
    header = pb.BatchHeader(session_id=session_id, expected_prompts=3,
                            output_schema=pb.OutputSchema(name="place", schema_json=city))
    prompts = [pb.Prompt(text="header schema %d" % i, index=i) for i in range(2)]
    prompts.append(pb.Prompt(text="own schema", index=2,
                             output_schema=pb.OutputSchema(name="f", schema_json=flag)))
    results = run_batch(ch, pb, header, prompts)
    for i in range(2):
        check(set(json.loads(results[i].completion)) == {"city"},
              "prompt %d answered with the header's schema: %s" % (i, results[i].completion))
    check(set(json.loads(results[2].completion)) == {"flag"},
          "a prompt's own schema wins: %s" % results[2].completion)
    # The same schema written another way is the same request: answered from the cache.
    same = '{"properties":{"city":{"type":"string"}},"required":["city"],"type":"object"}'
    header = pb.BatchHeader(session_id=session_id, expected_prompts=2,
                            output_schema=pb.OutputSchema(name="place", schema_json=same))
    again = run_batch(ch, pb, header, prompts[:2])
    check(all(again[i].local_cache_hit and again[i].completion == results[i].completion
              for i in range(2)), "an equal header schema in another spelling hits the cache")

    weather = pb.ToolDefinition(name="get_weather", description="the weather in a city",
                                parameters_json='{"properties": {"where": {"type": "string"}},'
                                                ' "type": "object"}')
    header = pb.BatchHeader(session_id=session_id, expected_prompts=1, tools=[weather])
    results = run_batch(ch, pb, header, [pb.Prompt(text="[[tool]] the weather in Paris")])
    calls = [p.tool_call for p in results[0].content if p.WhichOneof("kind") == "tool_call"]
    check(len(calls) == 1 and calls[0].name == "get_weather" and
          "where" in json.loads(calls[0].arguments_json),
          "the header's tool is offered and called: %s" % results[0])


def every_provider(ch, pb):
    """One batch per provider shape (m-a OpenAI, m-c Anthropic, m-g Gemini), each on a
    session of its own: the answer, the model that gave it, usage and cost."""
    for model, upstream in [("m-a", "up-a"), ("m-c", "up-c"), ("m-g", "up-g")]:
        header = pb.BatchHeader(config=pb.SessionConfig(
            models=[pb.ModelChoice(name=model, weight=1)]), expected_prompts=1)
        r = run_batch(ch, pb, header, [pb.Prompt(text="hello %s" % model, index=0)])[0]
        check(("echo[%s]: hello %s" % (upstream, model)) in r.completion and
              r.model_used == model and r.usage.input_tokens > 0 and r.cost > 0,
              "%s answers with usage and cost: %s" % (model, r.completion))


def prompt_after_end(ch, pb):
    """A prompt sent after BatchEnd is a client error, answered INVALID_ARGUMENT naming it
    (it used to be dropped without a word). The first prompt hangs upstream, so the batch is
    still running when the late one arrives."""
    def requests():
        yield pb.BatchRequest(header=pb.BatchHeader(config=pb.SessionConfig(
            models=[pb.ModelChoice(name="m-a", weight=1)])))
        yield pb.BatchRequest(prompt=pb.Prompt(text="slow [[hang]]", index=0))
        yield pb.BatchRequest(end=pb.BatchEnd())
        yield pb.BatchRequest(prompt=pb.Prompt(text="too late", index=7))
    try:
        collect(batch_call(ch, pb)(requests(), timeout=30))
        check(False, "a prompt after BatchEnd fails the call")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.INVALID_ARGUMENT and "prompt 7" in e.details()
              and "after BatchEnd" in e.details(),
              "a prompt after BatchEnd -> INVALID_ARGUMENT naming it (%s)" % e.details())


def main():
    target = os.environ["SLUICE_TARGET"]
    with tempfile.TemporaryDirectory() as tmp:
        pb = load_messages(tmp)
        ch = grpc.insecure_channel(target)
        # grpc.health.v1.Health/Check: an empty request; the answer is field 1 = SERVING (1)
        health = ch.unary_unary("/grpc.health.v1.Health/Check")
        check(health(b"", timeout=10) == b"\x08\x01", "sluiced's health service says SERVING")
        open_session = rpc(ch, pb, "OpenSession", pb.OpenSessionRequest, pb.OpenSessionResponse)
        cfg = pb.SessionConfig(models=[pb.ModelChoice(name="m-a", weight=1),
                                       pb.ModelChoice(name="m-c", weight=1),
                                       pb.ModelChoice(name="m-g", weight=1)])
        sid = open_session(pb.OpenSessionRequest(config=cfg), timeout=10).session_id
        check(sid.startswith("local:s"), "OpenSession returns a session id")

        results, summary = batch(ch, pb, sid, 25)
        check(len(results) == 25, "BatchProcess: 25 results")
        for i, r in results.items():
            check(not r.response.is_error and ("python prompt %d" % i) in r.response.completion
                  and r.custom_id == "py-%d" % i, "batch result %d matches its prompt" % i)
        check(summary is not None and summary.prompts == 25 and summary.succeeded == 25,
              "BatchProcess: summary counts 25 succeeded")

        header_features(ch, pb, sid)
        every_provider(ch, pb)

        start = rpc(ch, pb, "Start", pb.StartRequest, pb.StartResponse)
        ids = start(pb.StartRequest(session_id=sid, prompts=[
            pb.Prompt(text="started from python %d" % i, index=i) for i in range(5)]),
            timeout=10).task_ids
        check(len(ids) == 5, "Start returns 5 task ids")
        wait = rpc(ch, pb, "Wait", pb.WaitRequest, pb.WaitResponse)
        w = wait(pb.WaitRequest(task_ids=ids, timeout_ms=30000), timeout=40)
        check(w.all_done and len(w.results) == 5, "Wait: all 5 done")
        for i, r in enumerate(w.results):
            check(r.task_id == ids[i] and r.state == pb.TASK_STATE_SUCCEEDED and
                  ("started from python %d" % i) in r.response.completion,
                  "Wait result %d in request order" % i)

        status = rpc(ch, pb, "GetStatus", pb.GetStatusRequest, pb.GetStatusResponse)
        st = status(pb.GetStatusRequest(session_id=sid), timeout=10).status
        check(st.total == 36 and st.succeeded == 36, "GetStatus counts 36 prompts")

        # An unknown id is answered per id, beside the others' results (it used to fail the
        # whole Wait NOT_FOUND and withhold them).
        w = wait(pb.WaitRequest(task_ids=[ids[0], "local:t987654321", "bogus"]), timeout=10)
        check(len(w.results) == 3 and w.results[0].state == pb.TASK_STATE_SUCCEEDED and
              ("started from python 0") in w.results[0].response.completion,
              "Wait with unknown ids: the known task's result")
        for r, tid in zip(w.results[1:], ["local:t987654321", "bogus"]):
            check(r.task_id == tid and r.state == pb.TASK_STATE_NOT_FOUND and
                  r.response.is_error and r.response.error_kind == pb.ERROR_KIND_NOT_FOUND and
                  tid in r.response.error_message,
                  "unknown task id %s -> a NOT_FOUND entry naming it" % tid)
        check(w.all_done and not w.pending_task_ids and not w.more_task_ids,
              "Wait with unknown ids is all_done")
        try:
            open_session(pb.OpenSessionRequest(config=pb.SessionConfig(
                models=[pb.ModelChoice(name="nope")])), timeout=10)
            check(False, "unknown model fails")
        except grpc.RpcError as e:
            check(e.code() == grpc.StatusCode.INVALID_ARGUMENT and "nope" in e.details(),
                  "unknown model -> INVALID_ARGUMENT naming it")

        prompt_after_end(ch, pb)

        close = rpc(ch, pb, "CloseSession", pb.CloseSessionRequest, pb.CloseSessionResponse)
        final = close(pb.CloseSessionRequest(session_id=sid), timeout=10).status
        check(final.succeeded == 36 and final.in_progress == 0, "CloseSession final status")
    print("python interop: all checks passed")


if __name__ == "__main__":
    main()
