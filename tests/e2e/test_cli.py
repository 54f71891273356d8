#!/usr/bin/python3
"""The sluice command-line tool end to end (run by tests/interop/run_with_sluiced.py, which
provides SLUICE_TARGET, SLUICE_FAKE_URL, SLUICE_METRICS_URL and SLUICE_BUILD_DIR).

Checks: JSONL in -> JSONL out in input order with the right ids; --as-completed;
--completions-only; bad lines reported with their line number without stopping the rest;
exit codes (0 all ok, 1 some prompt failed, 2 usage, 3 unreachable server); resuming an
interrupted run sends only the missing prompts (sluiced's metrics once it ended the
interrupted run, the fake's counters as bounds); start / wait / status
/ models; the metrics endpoint shows what the batch produced; sluiced --check-config
rejects bad configurations naming the key.
"""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "interop", "python"))
from fake_sluice import Abort, FakeSluice  # noqa: E402
import grpc  # noqa: E402
from test_service_interop import load_messages  # noqa: E402

BUILD = os.environ["SLUICE_BUILD_DIR"]
SLUICE = os.path.join(BUILD, "client", "cli", "sluice")
SLUICED = os.path.join(BUILD, "server", "sluiced")
FAKE = os.environ["SLUICE_FAKE_URL"]
ENV = dict(os.environ, SLUICE_SERVER=os.environ["SLUICE_TARGET"])


def check(cond, what):
    if not cond:
        raise SystemExit("FAIL: " + what)
    print("ok:", what)


def fake(path, body=None):
    req = urllib.request.Request(FAKE + path, data=None if body is None else
                                 json.dumps(body).encode(), method="GET" if body is None else "POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"{}")


def sluice(args, stdin=None, env=ENV):
    p = subprocess.run([SLUICE] + args, input=stdin, capture_output=True, text=True, env=env,
                       timeout=120)
    return p.returncode, p.stdout, p.stderr


def lines(out):
    return [json.loads(l) for l in out.splitlines() if l.strip()]


def test_run_in_order():
    inp = "\n".join(json.dumps({"prompt": "cli prompt %d" % i, "custom_id": "c%d" % i})
                    for i in range(30)) + "\n"
    rc, out, err = sluice(["run", "-m", "m-a", "-m", "m-b", "-q"], stdin=inp)
    check(rc == 0, "run exits 0 when every prompt succeeds (%d: %s)" % (rc, err))
    res = lines(out)
    check(len(res) == 30, "one result line per input line")
    for i, r in enumerate(res):
        check(r["custom_id"] == "c%d" % i and r["line"] == i + 1 and
              ("cli prompt %d" % i) in r["completion"] and r["task_id"],
              "result %d in input order with its ids" % i)


def test_bad_lines_and_exit_codes():
    inp = '"plain string prompt"\n{not json}\n\n{"messages":[{"role":"user","content":"fine"}]}\n' \
          '{"prompt":"x","colour":"blue"}\n{"prompt":"doomed [[status:500]]"}\n' \
          '{"prompt":"y","custom_id":17}\n'
    rc, out, err = sluice(["run", "-m", "m-a", "--max-attempts", "2", "-q"], stdin=inp)
    res = lines(out)
    check(rc == 1, "exit 1 when a line or a prompt failed")
    check(len(res) == 6, "every non-blank input line has a result line")
    check([r.get("line") for r in res] == [1, 2, 4, 5, 6, 7],
          "results carry their file line numbers, blank lines counted (%s)" %
          [r.get("line") for r in res])
    check(not res[0]["is_error"] and not res[2]["is_error"], "good lines succeed")
    check(res[1]["is_error"] and "line 2" in res[1]["error"], "bad JSON is reported with its line")
    check(res[3]["is_error"] and "colour" in res[3]["error"], "unknown key named")
    check(res[4]["is_error"] and res[4]["attempts"] == 2, "a failing prompt is an error result")
    check(res[5]["is_error"] and "custom_id: expected a string" in res[5]["error"],
          "a non-string custom_id is refused, not emptied")
    check("line 2:" in err and "line 5:" in err and "line 7:" in err,
          "bad lines reported on stderr with numbers")
    rc, _, _ = sluice(["run", "--no-such-option"])
    check(rc == 2, "usage error exits 2")
    rc, _, err = sluice(["models", "-s", "127.0.0.1:1"])
    check(rc == 3, "unreachable server exits 3 (%s)" % err.strip())


def test_as_completed_and_completions_only():
    for model, upstream in [("m-c", "up-c"), ("m-g", "up-g")]:
        inp = "\n".join('"ac %d"' % i for i in range(10)) + "\n"
        rc, out, _ = sluice(["run", "-m", model, "--as-completed", "--completions-only", "-q"],
                            stdin=inp)
        res = lines(out)
        check(rc == 0 and len(res) == 10, "%s: as-completed writes every result" % model)
        check(sorted(r["line"] for r in res) == list(range(1, 11)),
              "%s: each line exactly once" % model)
        check(all("usage" not in r and ("echo[%s]" % upstream) in r["completion"] for r in res),
              "%s: completions only" % model)


def test_gemini_tools_schema_and_cost():
    """A Gemini model through the CLI: a tool call, a schema answer, usage and cost."""
    rows = [{"prompt": "weather in Oslo [[tool]]", "custom_id": "tool",
             "tools": [{"name": "get_weather", "description": "weather",
                        "parameters": {"type": "object",
                                       "properties": {"city": {"type": "string"}}}}]},
            {"prompt": "a city", "custom_id": "schema",
             "output_schema": {"type": "object", "additionalProperties": False,
                               "properties": {"city": {"type": "string"}}}},
            {"prompt": "plain", "custom_id": "plain"}]
    rc, out, err = sluice(["run", "-m", "m-g", "-q"],
                          stdin="\n".join(json.dumps(r) for r in rows) + "\n")
    res = {r["custom_id"]: r for r in lines(out)}
    check(rc == 0 and len(res) == 3, "gemini: three results (%s)" % err.strip())
    calls = res["tool"]["tool_calls"]
    check(len(calls) == 1 and calls[0]["name"] == "get_weather", "gemini: the tool is called")
    check("city" in json.loads(res["schema"]["completion"]), "gemini: the schema is answered")
    plain = res["plain"]
    check(plain["model"] == "m-g" and plain["usage"]["input_tokens"] > 0 and plain["cost"] > 0,
          "gemini: usage and cost reported")


def metric(text, name, labels=""):
    m = re.search(r"^%s%s (\S+)$" % (re.escape(name), re.escape(labels)), text, re.M)
    return float(m.group(1)) if m else None


def metrics():
    with urllib.request.urlopen(os.environ["SLUICE_METRICS_URL"], timeout=10) as r:
        return r.read().decode()


def tasks_ended():
    """Waits (up to 30 s) until sluiced holds no task (sluice_tasks_alive is 0) and returns
    the metrics text read then."""
    for _ in range(3000):
        text = metrics()
        if metric(text, "sluice_tasks_alive") == 0:
            return text
        time.sleep(0.01)
    raise SystemExit("FAIL: sluiced still holds tasks after 30 s")


def delta(before, after, name, labels=""):
    return metric(after, name, labels) - metric(before, name, labels)


def test_resume_sends_only_missing():
    # Counted with sluiced's own metrics, read once sluiced has ended every task of the
    # interrupted run: a request it had sent before it noticed the dead client may reach
    # the fake at any later time, so the fake's counters serve only as bounds at the end.
    ok = 'sluice_tasks_total{outcome="succeeded"}'
    cancelled = 'sluice_tasks_total{outcome="cancelled"}'
    fake("/_fake/reset", {})
    fake("/_fake/config", {"latency_ms": 100, "jitter_ms": 300})
    m0 = tasks_ended()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "in.jsonl")
        with open(path, "w") as f:
            for i in range(120):
                f.write(json.dumps("resume prompt %d" % i) + "\n")
        outp = os.path.join(tmp, "out.jsonl")
        p = subprocess.Popen([SLUICE, "run", "-m", "m-a", "--concurrency", "20", "-q",
                              "--as-completed", "-o", outp, path], env=ENV)
        for _ in range(500):
            time.sleep(0.02)
            if os.path.exists(outp) and len(open(outp).read().splitlines()) >= 40:
                break
        # From here on a request waits a minute for its answer: the interrupted run ends
        # through sluiced cancelling it, not by running out of prompts.
        fake("/_fake/config", {"latency_ms": 60000, "jitter_ms": 0})
        p.send_signal(signal.SIGKILL)
        p.wait()
        done_first = len(open(outp).read().splitlines())
        m1 = tasks_ended()
        fake("/_fake/config", {"latency_ms": 0, "jitter_ms": 0})
        rc, out, err = sluice(["run", "-m", "m-a", "-q", path])
        res = lines(out)
        m2 = metrics()
        cached = sum(1 for r in res if r["cached"])
    ok1, cancelled1 = delta(m0, m1, ok), delta(m0, m1, cancelled)
    sent1, sent2 = delta(m0, m1, "sluice_attempts_total"), delta(m1, m2, "sluice_attempts_total")
    check(40 <= done_first < 120, "the first run was killed mid-batch (%d of 120 done)"
          % done_first)
    check(ok1 + cancelled1 == 120 and ok1 >= done_first and cancelled1 > 0,
          "sluiced ended the killed run: %d finished, %d cancelled" % (ok1, cancelled1))
    check(sent1 <= ok1 + 20,
          "nothing sent for a cancelled prompt beyond the 20 in flight (%d sent, %d finished)"
          % (sent1, ok1))
    check(rc == 0 and len(res) == 120, "the re-run completes every prompt")
    # what finished comes from the cache, and so do the answers of the attempts that were
    # in flight at the kill: they were sent, so sluiced let them land in the cache
    check(ok1 <= cached <= sent1 and cached >= done_first,
          "what finished or was on its way comes from the cache (%d cached, %d finished, "
          "%d sent, %d seen)" % (cached, ok1, sent1, done_first))
    check(sent2 == 120 - cached,
          "only the missing prompts go upstream, once each (%d == %d)" % (sent2, 120 - cached))
    counters = fake("/_fake/counters")
    check(counters["distinct_requests"] == 120 and counters["total"] <= sent1 + sent2,
          "the provider saw every prompt and nothing sluiced did not count (%d <= %d)"
          % (counters["total"], sent1 + sent2))


def test_start_wait_status_models():
    inp = '"started one"\n"started two"\n'
    rc, out, err = sluice(["start", "-m", "m-b", "-q"], stdin=inp)
    ids = lines(out)
    check(rc == 0 and len(ids) == 2 and all(x["task_id"] for x in ids), "start prints task ids")
    session = ids[0]["session_id"]
    rc, out, _ = sluice(["wait", "--timeout-wait", "30000"] + [x["task_id"] for x in ids])
    res = lines(out)
    check(rc == 0 and len(res) == 2 and "started two" in res[1]["completion"],
          "wait prints results in id order")
    rc, out, _ = sluice(["status", session])
    st = lines(out)[0]
    check(rc == 0 and st["succeeded"] == 2, "status shows the session's tracker")
    rc, out, _ = sluice(["models"])
    check(rc == 0 and "m-a" in out and "configured" in out, "models lists the registry")
    check(re.search(r"^m-g\s+gemini\s+up-g\s", out, re.M) is not None,
          "models lists the Gemini model with its provider")
    rc, _, err = sluice(["wait", "local:t99999999"])
    check(rc == 2 and "local:t99999999" in err, "unknown task id is named, exit 2")


def test_start_stops_at_a_refused_prompt():
    # 300 prompts go in Start calls of 256; the call holding line 271 is refused as a whole
    # (a tool name sluiced rejects), so the CLI starts that part one prompt at a time: lines
    # 1-270 are started and printed, line 271 is named, nothing after it is started.
    rows = ['"chunked %d"' % i for i in range(300)]
    rows[270] = json.dumps({"prompt": "bad tool", "tools": [{"name": "bad name!"}]})
    rc, out, err = sluice(["start", "-m", "m-a", "-q"], stdin="\n".join(rows) + "\n")
    started = lines(out)
    check(rc != 0 and "tools[0]" in err, "the refused prompt is named (rc %d: %s)" % (rc, err))
    check([x["line"] for x in started] == list(range(1, 271)),
          "every line before it is started, in order (%d started)" % len(started))


def test_metrics_show_the_batch():
    before = metrics()
    inp = "\n".join('"metrics prompt %d"' % i for i in range(7)) + "\n"
    rc, _, _ = sluice(["run", "-m", "m-b", "-q"], stdin=inp)
    after = metrics()
    lbl = '{provider="openai",model="m-b",outcome="2xx"}'
    grew = metric(after, "sluice_upstream_requests_total", lbl) - \
        (metric(before, "sluice_upstream_requests_total", lbl) or 0)
    check(rc == 0 and grew == 7, "metrics: 7 upstream 2xx for m-b after a 7-prompt batch")
    check(metric(after, "sluice_task_latency_seconds_count") >= 7, "latency histogram counts")
    check("sluice_queue_depth{key=\"ka\"}" in after and "sluice_cost_usd_total" in after,
          "per-key and cost families present")


def test_check_config():
    with tempfile.TemporaryDirectory() as tmp:
        cases = [('{"store":{"cache_ttl_s":-1}}', "store.cache_ttl_s"),
                 ('{"limits":{"max_batch_in_flight":"lots"}}', "limits.max_batch_in_flight"),
                 ('{"listen":"0.0.0.0:50051","colour":1}', "colour"),
                 ('{"log":{"level":"loud"}}', "log.level")]
        for text, key in cases:
            path = os.path.join(tmp, "c.json")
            open(path, "w").write(text)
            p = subprocess.run([SLUICED, "--config", path, "--check-config"],
                               capture_output=True, text=True)
            check(p.returncode == 2 and key in p.stderr, "config error names %s" % key)
        p = subprocess.run([SLUICED, "--check-config"], capture_output=True, text=True,
                           env=dict(os.environ, SLUICE_LOG_LEVEL="shout"))
        check(p.returncode == 2 and "SLUICE_LOG_LEVEL" in p.stderr,
              "a bad environment override is named")
        p = subprocess.run([SLUICED, "--check-config"], capture_output=True, text=True)
        check(p.returncode == 0, "the default configuration is valid")


def test_store_sizes_reach_rocksdb():
    """store.memory_budget_bytes reaches RocksDB through sluiced's configuration: the sizes
    it derives are in the OPTIONS file RocksDB writes at open, and in sluiced's start-up
    log line."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = os.path.join(tmp, "c.json")
        data = os.path.join(tmp, "data")
        open(cfg, "w").write(json.dumps({"listen": "127.0.0.1:0", "store": {
            "data_dir": data, "memory_budget_bytes": 8 << 20, "wal_max_bytes": 3 << 20}}))
        p = subprocess.Popen([SLUICED, "--config", cfg, "--port-file",
                              os.path.join(tmp, "port")], stderr=subprocess.PIPE, text=True)
        try:
            line = ""
            for line in p.stderr:
                if "memory budget" in line:
                    break
            check("memory budget 8 MiB (block cache 2 MiB, write buffers 4 MiB), WAL cap 3 MiB"
                  in line, "sluiced logs the store's sizes (%s)" % line.strip())
            opts = {}
            newest = sorted(f for f in os.listdir(data) if f.startswith("OPTIONS-"))[-1]
            for row in open(os.path.join(data, newest)):
                k, _, v = row.strip().partition("=")
                opts.setdefault(k, v)
            check(opts.get("db_write_buffer_size") == str(4 << 20) and
                  opts.get("max_total_wal_size") == str(3 << 20),
                  "RocksDB was opened with them (%s, %s)" % (opts.get("db_write_buffer_size"),
                                                           opts.get("max_total_wal_size")))
        finally:
            p.send_signal(signal.SIGTERM)
            p.communicate(timeout=60)
        check(p.returncode == 0, "sluiced stops cleanly")


# ---- against a scripted server (fake_sluice.py) ----------------------------------------

PB = None  # sluice.v1 message classes, generated in main


def with_fake(handlers, args, stdin=None):
    """Runs the CLI against a FakeSluice with these handlers; returns (rc, out, err, calls)."""
    srv = FakeSluice(PB, handlers)
    try:
        rc, out, err = sluice(args + ["-s", srv.target], stdin=stdin)
    finally:
        srv.stop()
    return rc, out, err, srv.calls


def test_status_calls_get_status_once():
    st = PB.TrackerStatus(session_id="local:s7", total=3, succeeded=2)
    rc, out, err, calls = with_fake(
        {"GetStatus": lambda req: PB.GetStatusResponse(status=st)}, ["status", "local:s7"])
    res = lines(out)
    check(rc == 0 and res[0]["session_id"] == "local:s7" and res[0]["succeeded"] == 2,
          "status prints the tracker (%d: %s)" % (rc, err))
    check(calls["GetStatus"] == 1, "sluice status calls GetStatus once (%d)" % calls["GetStatus"])


def batch_answering_with(custom_id, completion):
    """A BatchProcess handler answering every prompt with these strings (bytes, sent as
    they are, UTF-8 or not)."""
    def handler(requests):
        for req in requests:
            kind = req.WhichOneof("kind")
            prompts = list(req.prompts.prompts) if kind == "prompts" else \
                [req.prompt] if kind == "prompt" else []
            if kind == "end":
                break
            if prompts:
                ev = PB.BatchEvent(results=PB.BatchResults(results=[
                    PB.BatchResult(index=p.index, custom_id="@CID@", task_id="local:t%d" % p.index,
                                   response=PB.Response(completion="@TXT@", model_used="m-a"))
                    for p in prompts])).SerializeToString()
                # same-length placeholders keep every length prefix right
                yield ev.replace(b"@CID@", custom_id).replace(b"@TXT@", completion)
        yield PB.BatchEvent(summary=PB.BatchSummary(prompts=1))
    return handler


def test_run_writes_undecodable_answers():
    """A server that sends strings that are not UTF-8: each result is still written, its
    non-ASCII bytes as '?' (jansson refuses such text; the line used to lose those keys)."""
    handlers = {"OpenSession": lambda req: PB.OpenSessionResponse(session_id="local:s1"),
                "CloseSession": lambda req: PB.CloseSessionResponse(status=PB.TrackerStatus()),
                "BatchProcess": batch_answering_with(b"id\xff\xfe!", b"caf\xc3\x28")}
    rc, out, err, _ = with_fake(handlers, ["run", "-q"], stdin='"one"\n"two"\n')
    res = lines(out)
    check(rc == 0 and len(res) == 2, "a line per prompt (%d: %s)" % (rc, err))
    check(all(r.get("custom_id") == "id??!" and r.get("completion") == "caf?(" for r in res),
          "undecodable text written with '?' (%s)" % res)


def batch_refused_with(code, details):
    """A BatchProcess handler that reads the batch, then ends the call with this status."""
    def handler(requests):
        for req in requests:
            if req.WhichOneof("kind") == "end":
                break
        raise Abort(code, details)
        yield  # a generator, like every BatchProcess handler
    return handler


def test_run_prints_a_refused_batch_error():
    """run_batch closed the session (which clears the SDK's error) before printing it, so a
    refused batch printed "sluice: " and nothing else, followed by a resume hint that a
    re-run cannot honour. The message is printed; the hint only for failures a re-run can
    finish (the connection or the server failing on the way)."""
    session = {"OpenSession": lambda req: PB.OpenSessionResponse(session_id="local:s1"),
               "CloseSession": lambda req: PB.CloseSessionResponse(status=PB.TrackerStatus())}
    limit = "limit max_batch_prompts=1 reached"
    rc, _, err, calls = with_fake(
        dict(session, BatchProcess=batch_refused_with(grpc.StatusCode.RESOURCE_EXHAUSTED, limit)),
        ["run", "-q"], stdin='"one"\n"two"\n')
    check(rc == 4 and limit in err, "a refused batch prints its message (%d: %r)" % (rc, err))
    check("re-run" not in err, "no resume hint for a limit (%r)" % err)
    check(calls["CloseSession"] == 1, "the session is still closed")
    bad = "header.config.models[0].name: unknown model 'x'"
    rc, _, err, _ = with_fake(
        dict(session, BatchProcess=batch_refused_with(grpc.StatusCode.INVALID_ARGUMENT, bad)),
        ["run", "-q"], stdin='"one"\n')
    check(rc == 2 and bad in err and "re-run" not in err,
          "a bad request: its message, exit 2, no resume hint (%d: %r)" % (rc, err))
    rc, _, err, _ = with_fake(
        dict(session, BatchProcess=batch_refused_with(grpc.StatusCode.UNAVAILABLE,
                                                      "the server is stopping")),
        ["run", "-q"], stdin='"one"\n')
    check(rc == 3 and "the server is stopping" in err and "re-run the same input" in err,
          "a server going away: its message and the resume hint (%d: %r)" % (rc, err))


def batch_answering_last_first(text_bytes):
    """A BatchProcess handler that reads the whole batch, then answers the last prompt first
    and the first one last (each answer text_bytes long): in input order, every result
    waits for the first line."""
    def handler(requests):
        prompts = []
        for req in requests:
            kind = req.WhichOneof("kind")
            if kind == "end":
                break
            prompts += list(req.prompts.prompts) if kind == "prompts" else \
                [req.prompt] if kind == "prompt" else []
        order = sorted(prompts, key=lambda p: -p.index)
        for i in range(0, len(order), 50):
            yield PB.BatchEvent(results=PB.BatchResults(results=[
                PB.BatchResult(index=p.index, task_id="local:t%d" % p.index, response=PB.Response(
                    completion=("answer %d " % p.index).ljust(text_bytes, "."), model_used="m-a"))
                for p in order[i:i + 50]]))
        yield PB.BatchEvent(summary=PB.BatchSummary(prompts=len(prompts)))
    return handler


def run_measured(args, stdin):
    """Runs the CLI; returns (rc, out, err, peak RSS in KiB)."""
    with tempfile.TemporaryFile("w+") as fin, tempfile.TemporaryFile("w+") as fout, \
            tempfile.TemporaryFile("w+") as ferr:
        fin.write(stdin)
        fin.seek(0)
        p = subprocess.Popen([SLUICE] + args, stdin=fin, stdout=fout, stderr=ferr, env=ENV)
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        fout.seek(0)
        ferr.seek(0)
        return p.returncode, fout.read(), ferr.read(), usage.ru_maxrss


def sanitized_build():
    cache = open(os.path.join(BUILD, "CMakeCache.txt")).read()
    return "SLUICE_ASAN:BOOL=ON" in cache or "SLUICE_TSAN:BOOL=ON" in cache


def test_run_bounds_the_input_order_buffer():
    """Regression: the input-order buffer was unbounded - one slow early line held every later
    result in memory (783 MB peak on 300,000 lines). With the first line answered last, the
    results beyond --buffer-bytes wait in a temporary file: the memory they hold stays under
    the limit, and every line still comes out, in input order."""
    n, size, limit = 3000, 10000, 1 << 20
    handlers = {"OpenSession": lambda req: PB.OpenSessionResponse(session_id="local:s1"),
                "CloseSession": lambda req: PB.CloseSessionResponse(status=PB.TrackerStatus()),
                "BatchProcess": batch_answering_last_first(size)}
    stdin = "".join('"slow first %d"\n' % i for i in range(n))
    runs = {}
    for buffer_bytes in (limit, 1 << 30):
        srv = FakeSluice(PB, handlers)
        try:
            runs[buffer_bytes] = run_measured(
                ["run", "-s", srv.target, "--buffer-bytes", str(buffer_bytes)], stdin)
        finally:
            srv.stop()
    rc, out, err, rss = runs[limit]
    res = lines(out)
    check(rc == 0 and len(res) == n, "every line has its result (%d: %s)" % (rc, err[-300:]))
    check(all(r["line"] == i + 1 and r["completion"].startswith("answer %d " % i) and
              len(r["completion"]) == size for i, r in enumerate(res)),
          "results in input order, whole")
    m = re.search(r"sluice: (\d+) results \(([\d.]+) MiB\) waited for earlier lines in a "
                  r"temporary file; memory held at most (\d+) bytes of them", err)
    check(m is not None, "the spill is reported (%r)" % err[-400:])
    check(int(m.group(3)) <= limit and int(m.group(1)) >= n - limit // size - 1,
          "at most --buffer-bytes held in memory (%s bytes), the rest in the file (%s results)"
          % (m.group(3), m.group(1)))
    rc2, out2, _, rss_unbounded = runs[1 << 30]
    check(rc2 == 0 and out2 == out, "the same output with an unbounded buffer")
    if not sanitized_build():  # sanitizers keep freed memory: RSS says nothing there
        check(rss_unbounded - rss > 15 * 1024,
              "the bounded run's peak RSS is lower by most of the 30 MB of results (%d KiB vs "
              "%d KiB)" % (rss, rss_unbounded))


def batch_behind_a_body_limit(limit, seen):
    """A BatchProcess handler behind a proxy-like limit on the request body: it counts each
    call's bytes as a proxy does (every message with gRPC's 5-byte prefix) and refuses a
    call that goes beyond `limit` the way grpc reports nginx's 413. It answers each prompt,
    last first, and records per call (session_id, bytes, indexes) in `seen`."""
    def handler(requests):
        call = {"session": None, "bytes": 0, "indexes": []}
        seen.append(call)
        for req in requests:
            call["bytes"] += len(req.SerializeToString()) + 5
            if call["bytes"] > limit:
                raise Abort(grpc.StatusCode.UNKNOWN, "Received http2 header with status: 413")
            kind = req.WhichOneof("kind")
            if kind == "header":
                call["session"] = req.header.session_id
            elif kind == "prompts":
                call["indexes"] += [p.index for p in req.prompts.prompts]
            elif kind == "end":
                break
        yield PB.BatchEvent(results=PB.BatchResults(results=[
            PB.BatchResult(index=i, task_id="local:t%d" % i,
                           response=PB.Response(completion="answer %d" % i, model_used="m-a"))
            for i in reversed(call["indexes"])]))
        yield PB.BatchEvent(summary=PB.BatchSummary(prompts=len(call["indexes"])))
    return handler


def test_run_splits_a_batch_for_a_proxy():
    """Batches over a proxy's request-body limit (nginx client_max_body_size, 1 MiB by
    default) failed: --max-call-bytes sends the batch as several calls within the limit, on
    the run's one session, and the results come back complete and in input order."""
    limit, n = 64 << 10, 2000  # ~400 KB of prompts
    stdin = "".join(json.dumps({"prompt": "split me %d " % i + "x" * 150}) + "\n"
                    for i in range(n))
    closed = []
    handlers = {"OpenSession": lambda req: PB.OpenSessionResponse(session_id="local:s1"),
                "CloseSession": lambda req: closed.append(req.session_id) or
                PB.CloseSessionResponse(status=PB.TrackerStatus(total=n, succeeded=n))}
    seen = []
    handlers["BatchProcess"] = batch_behind_a_body_limit(limit, seen)
    rc, _, err, _ = with_fake(handlers, ["run", "-q"], stdin=stdin)
    check(rc != 0 and "status: 413" in err and "--max-call-bytes" in err,
          "one call is refused by the limit, and the error says what to do (%d: %r)"
          % (rc, err[-300:]))
    seen.clear()
    closed.clear()
    rc, out, err, calls = with_fake(handlers, ["run", "--max-call-bytes", str(limit)],
                                    stdin=stdin)
    res = lines(out)
    check(rc == 0 and len(res) == n, "the batch completes (%d: %s)" % (rc, err[-300:]))
    check([r["line"] for r in res] == list(range(1, n + 1)) and
          all(r["completion"] == "answer %d" % i for i, r in enumerate(res)),
          "results in input order")
    check(calls["BatchProcess"] >= 6 and len(seen) == calls["BatchProcess"],
          "several calls (%d)" % calls["BatchProcess"])
    check(all(c["bytes"] <= limit for c in seen), "each within the limit (largest %d bytes)"
          % max(c["bytes"] for c in seen))
    check(all(c["session"] == "local:s1" for c in seen) and calls["OpenSession"] == 1 and
          closed == ["local:s1"], "all on the run's one session, closed once at the end")
    sent = [i for c in seen for i in c["indexes"]]
    check(sent == list(range(n)), "every prompt sent once, with its index in the whole batch")
    check("done: %d prompts" % n in err, "one final summary for the whole batch")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as gen:
        PB = load_messages(gen)
        for t in [test_run_in_order, test_bad_lines_and_exit_codes,
                  test_as_completed_and_completions_only, test_gemini_tools_schema_and_cost,
                  test_resume_sends_only_missing,
                  test_start_wait_status_models, test_start_stops_at_a_refused_prompt,
                  test_metrics_show_the_batch, test_check_config, test_store_sizes_reach_rocksdb,
                  test_status_calls_get_status_once, test_run_writes_undecodable_answers,
                  test_run_prints_a_refused_batch_error, test_run_bounds_the_input_order_buffer,
                  test_run_splits_a_batch_for_a_proxy]:
            print("--", t.__name__)
            t()
    print("cli: all checks passed")
