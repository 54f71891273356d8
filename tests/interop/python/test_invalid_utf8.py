#!/usr/bin/python3
"""Regression: strings that are not UTF-8 (run by run_with_sluiced.py).

proto3 `string` fields must hold UTF-8 and protobuf-c does not check. An OpenSession whose
session name was the single byte 0xff killed sluiced (SIGSEGV); other such strings were
accepted and echoed back in answers that a Python client cannot decode. Every request
below carries one bad string and must get INVALID_ARGUMENT naming the field, while sluiced
keeps serving (the launcher also checks that it exits 0 on SIGTERM).

Python's protobuf refuses to build such messages, so each is serialised with an ASCII
placeholder of the same length that is then replaced by invalid bytes (every length
prefix stays right), and sent through a stub that takes raw bytes.
"""
import os
import sys
import tempfile

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_service_interop import check, load_messages, rpc  # noqa: E402


def corrupt(msg, placeholder, bad):
    """msg serialised, with the one occurrence of placeholder (str) replaced by bad
    (bytes of the same length)."""
    raw = msg.SerializeToString()
    ph = placeholder.encode()
    check(len(ph) == len(bad) and raw.count(ph) == 1, "placeholder %r is unique" % placeholder)
    return raw.replace(ph, bad)


def raw_unary(ch, name, resp_cls):
    return ch.unary_unary("/sluice.v1.Sluice/" + name, request_serializer=lambda b: b,
                          response_deserializer=resp_cls.FromString)


def expect_invalid(call, request, field, what):
    try:
        call(request, timeout=10)
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.INVALID_ARGUMENT and
              e.details().startswith(field + ": not valid UTF-8"),
              "%s -> INVALID_ARGUMENT naming %s (%s: %s)" % (what, field, e.code(), e.details()))
        return
    check(False, "%s is refused" % what)


def main():
    target = os.environ["SLUICE_TARGET"]
    with tempfile.TemporaryDirectory() as tmp:
        pb = load_messages(tmp)
        ch = grpc.insecure_channel(target)
        models = [pb.ModelChoice(name="m-a", weight=1)]

        open_raw = raw_unary(ch, "OpenSession", pb.OpenSessionResponse)
        bad_name = corrupt(pb.OpenSessionRequest(config=pb.SessionConfig(models=models,
                                                                          name="#")),
                           "#", b"\xff")
        expect_invalid(open_raw, bad_name, "config.name", "a session name of the byte 0xff")
        bad_model = corrupt(pb.OpenSessionRequest(config=pb.SessionConfig(
            models=[pb.ModelChoice(name="m-@@", weight=1)])), "m-@@", b"m-\xc3\x28")
        expect_invalid(open_raw, bad_model, "config.models[0].name", "a model name")

        open_session = rpc(ch, pb, "OpenSession", pb.OpenSessionRequest, pb.OpenSessionResponse)
        sid = open_session(pb.OpenSessionRequest(config=pb.SessionConfig(models=models,
                                                                         name="caf\u00e9")),
                           timeout=10).session_id
        check(sid.startswith("local:s"), "sluiced still serves: OpenSession with a valid name")

        start_raw = raw_unary(ch, "Start", pb.StartResponse)
        prompts = [pb.Prompt(text="fine", index=0, custom_id="ok-0"),
                   pb.Prompt(text="fine too", index=1, custom_id="BADID")]
        expect_invalid(start_raw, corrupt(pb.StartRequest(session_id=sid, prompts=prompts),
                                          "BADID", b"\xed\xa0\x80\xff\xfe"),
                       "prompts[1].custom_id", "a custom id (a surrogate)")
        prompts = [pb.Prompt(text="over the top: XXXX", index=0)]
        expect_invalid(start_raw, corrupt(pb.StartRequest(session_id=sid, prompts=prompts),
                                          "XXXX", b"\xf4\x90\x80\x80"),
                       "prompts[0].text", "prompt text above U+10FFFF")
        msg = pb.Message(role=pb.ROLE_USER, parts=[pb.Part(text=pb.TextPart(text="a")),
                                                   pb.Part(text=pb.TextPart(text="ZZ"))])
        expect_invalid(start_raw, corrupt(pb.StartRequest(session_id=sid, prompts=[
            pb.Prompt(messages=[msg])]), "ZZ", b"\xc0\x80"),
            "prompts[0].messages[0].parts[1].text.text", "an overlong in a message part")
        tool = pb.ToolDefinition(name="t", parameters_json='{"type": "object", "x": "QQQ"}')
        expect_invalid(start_raw, corrupt(pb.StartRequest(session_id=sid, prompts=[
            pb.Prompt(text="tools", tools=[tool])]), "QQQ", b"\xe2\x82\x41"),
            "prompts[0].tools[0].parameters_json", "a tool schema")

        wait_raw = raw_unary(ch, "Wait", pb.WaitResponse)
        expect_invalid(wait_raw, corrupt(pb.WaitRequest(task_ids=["local:t1", "local:tUU"]),
                                         "local:tUU", b"local:t\x80\x80"),
                       "task_ids[1]", "a task id")

        # BatchProcess: the header, and a prompt in a PromptBatch, end the call.
        batch_raw = ch.stream_stream("/sluice.v1.Sluice/BatchProcess",
                                     request_serializer=lambda b: b,
                                     response_deserializer=pb.BatchEvent.FromString)
        header = pb.BatchRequest(header=pb.BatchHeader(session_id=sid))
        good = pb.BatchRequest(prompts=pb.PromptBatch(prompts=[pb.Prompt(text="x", index=0)]))
        bad = corrupt(pb.BatchRequest(prompts=pb.PromptBatch(prompts=[
            pb.Prompt(text="y", index=1), pb.Prompt(text="z", index=2, prefer_model="m-#")])),
            "m-#", b"m-\xff")
        for what, msgs, field in (
                ("a batch header", [corrupt(pb.BatchRequest(header=pb.BatchHeader(
                    config=pb.SessionConfig(models=models, name="!"))), "!", b"\xff")],
                 "header.config.name"),
                ("a prompt in a batch", [header.SerializeToString(), good.SerializeToString(),
                                         bad], "prompts.prompts[1].prefer_model")):
            try:
                for _ in batch_raw(iter(msgs), timeout=30):
                    pass
                check(False, "%s is refused" % what)
            except grpc.RpcError as e:
                check(e.code() == grpc.StatusCode.INVALID_ARGUMENT and
                      e.details().startswith(field + ": not valid UTF-8"),
                      "%s -> INVALID_ARGUMENT naming %s (%s)" % (what, field, e.details()))

        # Still serving, and every answer decodes.
        start = rpc(ch, pb, "Start", pb.StartRequest, pb.StartResponse)
        ids = start(pb.StartRequest(session_id=sid, prompts=[
            pb.Prompt(text="after the bad ones", custom_id="caf\u00e9")]), timeout=10).task_ids
        wait = rpc(ch, pb, "Wait", pb.WaitRequest, pb.WaitResponse)
        w = wait(pb.WaitRequest(task_ids=ids, timeout_ms=30000), timeout=40)
        check(w.all_done and w.results[0].custom_id == "caf\u00e9" and
              "after the bad ones" in w.results[0].response.completion,
              "sluiced still serves Start and Wait")
        status = rpc(ch, pb, "GetStatus", pb.GetStatusRequest, pb.GetStatusResponse)
        st = status(pb.GetStatusRequest(session_id=sid), timeout=10).status
        check(st.name == "caf\u00e9", "GetStatus: the session's name as opened")
    print("invalid UTF-8: all checks passed")


if __name__ == "__main__":
    main()
