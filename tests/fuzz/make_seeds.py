#!/usr/bin/env python3
"""Writes the binary seed inputs of the protobuf fuzz targets (fuzz_service, fuzz_codec).

Usage: /usr/bin/python3 tests/fuzz/make_seeds.py   (Debian's python3-protobuf and protoc)

The seeds are committed under tests/fuzz/corpus/<target>/seed_*; this script is how they
were made and how to remake them after a .proto change. Crash inputs kept as regression
inputs are named after what broke and are never overwritten here.
"""
import os
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")


def compile_protos(out):
    subprocess.run(["protoc", "-I", os.path.join(ROOT, "proto"), "-I", "/usr/include",
                    "--python_out", out, "sluice/v1/sluice.proto",
                    "sluice/store/v1/records.proto"], check=True)
    sys.path.insert(0, out)
    from sluice.v1 import sluice_pb2
    from sluice.store.v1 import records_pb2
    return sluice_pb2, records_pb2


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed_" + name), "wb") as f:
        f.write(data)


def service_seeds(pb):
    def rpc(n, msg):
        return bytes([n]) + msg.SerializeToString()

    def stream(*msgs):
        out = b"\x08"
        for m in msgs:
            b = m.SerializeToString()
            out += struct.pack("<H", len(b)) + b
        return out

    def sampling(**kw):
        s = pb.SamplingParams(max_new_tokens=kw.get("max_new_tokens", 0),
                              stop=kw.get("stop", []),
                              reasoning_effort=kw.get("effort", 0),
                              thinking_budget=kw.get("budget", 0))
        if "temperature" in kw:
            s.temperature.value = kw["temperature"]
        if "top_p" in kw:
            s.top_p.value = kw["top_p"]
        if "json_mode" in kw:
            s.json_mode.value = kw["json_mode"]
        return s

    one = pb.SessionConfig(models=[pb.ModelChoice(name="gpt-4.1-mini", weight=1)])
    full = pb.SessionConfig(
        models=[pb.ModelChoice(name="gpt-4.1-mini", weight=3, sampling=sampling(temperature=0.2)),
                pb.ModelChoice(name="claude-haiku-4.5", weight=1,
                               sampling=sampling(budget=2048, stop=["END"]))],
        max_requests_per_minute=100, max_tokens_per_minute=20000, max_concurrent_requests=5,
        max_attempts=3, request_timeout_ms=5000, cache_mode=3, name="nightly",
        task_timeout_ms=60000, sampling=sampling(max_new_tokens=256, top_p=0.9))
    w = {
        "open_session_one_model": rpc(0, pb.OpenSessionRequest(config=one)),
        "open_session_full": rpc(0, pb.OpenSessionRequest(config=full)),
        "open_session_unknown_model": rpc(0, pb.OpenSessionRequest(
            config=pb.SessionConfig(models=[pb.ModelChoice(name="gpt-9", weight=1)]))),
        "open_session_bad_limit": rpc(0, pb.OpenSessionRequest(config=pb.SessionConfig(
            models=one.models, max_requests_per_minute=999999, cache_mode=9))),
        "close_session": rpc(1, pb.CloseSessionRequest(session_id="local:s1")),
        "reset_tracker": rpc(2, pb.ResetTrackerRequest(session_id="local:s2",
                                                       clear_blocklist=True)),
        "get_status_other_node": rpc(3, pb.GetStatusRequest(session_id="node7:s18446744073709551615")),
    }
    image_url = pb.Part(image=pb.ImagePart(url="https://example.com/cat.png", detail="low"))
    image_data = pb.Part(image=pb.ImagePart(data=b"\x89PNG\r\n\x1a\n", media_type="image/png"))
    tool = pb.ToolDefinition(name="get_weather", description="Weather for a city",
                             parameters_json='{"type":"object","properties":{"city":{"type":"string"}}}',
                             strict=True)
    conv = pb.Prompt(
        messages=[
            pb.Message(role=1, parts=[pb.Part(text=pb.TextPart(text="You are terse."))]),
            pb.Message(role=2, parts=[pb.Part(text=pb.TextPart(text="Weather in Paris? \u00e9\U0001F600")),
                                      image_url, image_data]),
            pb.Message(role=3, parts=[
                pb.Part(thinking=pb.ThinkingPart(text="need a tool", signature="sig")),
                pb.Part(tool_call=pb.ToolCall(id="call_1", name="get_weather",
                                              arguments_json='{"city":"Paris"}'))]),
            pb.Message(role=4, parts=[pb.Part(tool_result=pb.ToolResult(
                tool_call_id="call_1", content="18C, clear", is_error=False))]),
        ],
        tools=[tool],
        output_schema=pb.OutputSchema(name="weather", schema_json='{"type":"object","properties":{"t":{"type":"number"}},"required":["t"]}'),
        prefer_model="claude-haiku-4.5", index=7, custom_id="row-7",
        sampling=sampling(temperature=0.7, top_p=0.5, max_new_tokens=64, stop=["\n\n", "END"],
                          effort=4, budget=1024, json_mode=True))
    w.update({
        "start_text": rpc(4, pb.StartRequest(session_id="local:s1", prompts=[
            pb.Prompt(text="What is 2 + 2?", index=1, custom_id="a")])),
        "start_conversation": rpc(4, pb.StartRequest(session_id="local:s1", prompts=[conv])),
        "start_bad_tool_arguments": rpc(4, pb.StartRequest(session_id="local:s1", prompts=[
            pb.Prompt(messages=[pb.Message(role=3, parts=[pb.Part(tool_call=pb.ToolCall(
                id="c", name="f", arguments_json='[1,2]'))])])])),
        "start_image_in_system": rpc(4, pb.StartRequest(session_id="local:s1", prompts=[
            pb.Prompt(messages=[pb.Message(role=1, parts=[image_url]),
                                pb.Message(role=2, parts=[pb.Part(text=pb.TextPart(text="hi"))])])])),
        "wait_ids": rpc(5, pb.WaitRequest(task_ids=["local:t1", "local:t00002", "local:s3", "t4"],
                                          timeout_ms=100)),
        "wait_session": rpc(5, pb.WaitRequest(session_id="local:s1")),
        "as_completed": rpc(6, pb.AsCompletedRequest(task_ids=["local:t99999999999999999999"],
                                                     session_id="local:s1")),
        "cancel": rpc(7, pb.CancelRequest(session_id="local:s1", task_ids=["local:t5"])),
    })
    header = pb.BatchRequest(header=pb.BatchHeader(config=full, show_progress=True,
                                                   tools=[tool], output_schema=conv.output_schema,
                                                   expected_prompts=3))
    w["batch_own_session"] = stream(
        header, pb.BatchRequest(prompt=pb.Prompt(text="one", index=0)),
        pb.BatchRequest(prompts=pb.PromptBatch(prompts=[pb.Prompt(text="two", index=1), conv])),
        pb.BatchRequest(end=pb.BatchEnd()))
    w["batch_named_session"] = stream(
        pb.BatchRequest(header=pb.BatchHeader(session_id="local:s1", return_completions_only=True)),
        pb.BatchRequest(prompt=pb.Prompt(text="x", custom_id="c1")),
        pb.BatchRequest(header=pb.BatchHeader(session_id="local:s2")))
    w["batch_prompt_first"] = stream(pb.BatchRequest(prompt=pb.Prompt(text="no header")))
    w["authorization_bearer"] = b"\x09Bearer  secret-b \t"
    w["authorization_basic"] = b"\x09Basic dXNlcjpwYXNz"
    for name, data in w.items():
        write("service", name, data)


def codec_seeds(rec):
    TEXT, ID, NAME, ARGS, URL, DATA, MEDIA, DETAIL, SIG = (1 << i for i in range(9))
    req = rec.Request(
        present=1 | 2 | 4, schema_name="weather", output_schema='{"type":"object"}',
        prefer_model="gpt-4.1-mini",
        messages=[
            rec.Message(role=1, parts=[rec.Part(present=TEXT, kind=1, text="be brief")]),
            rec.Message(role=2, parts=[
                rec.Part(present=TEXT, kind=1, text="hi \u00e9"),
                rec.Part(present=URL | DETAIL, kind=2, url="https://x/y.png", detail="high"),
                rec.Part(present=DATA | MEDIA, kind=2, data=b"\x00\x01", media_type="image/png")]),
            rec.Message(role=3, parts=[
                rec.Part(present=TEXT | SIG, kind=5, text="hmm", signature="s"),
                rec.Part(present=ID | NAME | ARGS, kind=3, id="c1", name="f", arguments="{}")]),
            rec.Message(role=4, parts=[rec.Part(present=TEXT | ID, kind=4, text="ok", id="c1",
                                                is_error=True)]),
        ],
        tools=[rec.Tool(present=1 | 2 | 4, name="f", description="d",
                        parameters='{"type":"object"}', strict=True)],
        sampling=rec.Sampling(set=0x7f, temperature=0.5, top_p=0.9, max_new_tokens=100,
                              stop=["a", ""], present=1 | 2, effort=3, thinking_budget=1024,
                              json_mode=True))
    write("codec", "request_full", b"\x00" + req.SerializeToString())
    write("codec", "request_empty", b"\x00")
    write("codec", "request_negative_zero", b"\x00" + rec.Request(
        sampling=rec.Sampling(set=3, temperature=-0.0, top_p=-0.0, present=16 | 32)).SerializeToString())
    write("codec", "request_bad_kind", b"\x00" + rec.Request(messages=[rec.Message(
        role=2, parts=[rec.Part(kind=9)])]).SerializeToString())
    resp = rec.Response(
        present=2 | 4 | 8 | 16 | 32, completion="4", finish_reason="stop", thinking="t",
        model_requested="gpt-4.1-mini", model_used="gpt-4.1-mini", status_code=200,
        content=[rec.Part(present=TEXT, kind=1, text="4"),
                 rec.Part(present=ID | NAME | ARGS, kind=3, id="c", name="f", arguments="{}")],
        usage=rec.Usage(input_tokens=10, output_tokens=2, cache_read_tokens=1,
                        cache_write_tokens=3),
        cost=0.0001, cost_saved=0.5,
        attempts=[rec.Attempt(present=1 | 2, model="gpt-4.1-mini", status_code=429,
                              latency_ms=12, retry_after_ms=1000, error="rate limited"),
                  rec.Attempt(present=1, model="gpt-4.1-mini", status_code=200)],
        local_cache_hit=True, deduplicated=True, latency_ms=40)
    write("codec", "response_full", b"\x01" + resp.SerializeToString())
    write("codec", "response_error", b"\x01" + rec.Response(
        present=1, is_error=True, error_kind=2, status_code=429,
        error_message="rate limited").SerializeToString())
    write("codec", "response_completion_from_content", b"\x01" + rec.Response(
        present=64, content=[rec.Part(present=TEXT, kind=1, text="a")]).SerializeToString())
    # A task status (format 2, state, finished_ms, has_result, result) and a cache value
    # (format 2, stored_ms, model length and name, response): server/store/store_*.c.
    packed = resp.SerializeToString()
    write("codec", "task_status_succeeded", b"\x03" + struct.pack(">BBQB", 2, 3, 1795000000000, 1) + packed)
    write("codec", "task_status_queued", b"\x03" + struct.pack(">BBQB", 2, 1, 0, 0))
    write("codec", "task_status_bad_state", b"\x03" + struct.pack(">BBQB", 2, 9, 0, 0))
    model = b"gpt-4.1-mini"
    write("codec", "cache_value", b"\x04" + struct.pack(">BQH", 2, 1795000000000, len(model)) + model + packed)
    write("codec", "cache_value_model_past_end", b"\x04" + struct.pack(">BQH", 2, 1, 500) + model)
    write("codec", "task_record", b"\x02" + rec.TaskRecord(
        present=3, tenant="t", session_id=4, index=5, custom_id="c", created_ms=6,
        request=req).SerializeToString())


def main():
    with tempfile.TemporaryDirectory() as out:
        sluice_pb2, records_pb2 = compile_protos(out)
        service_seeds(sluice_pb2)
        codec_seeds(records_pb2)


if __name__ == "__main__":
    main()
