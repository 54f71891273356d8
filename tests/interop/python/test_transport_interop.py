#!/usr/bin/python3
"""Python grpcio client against the C server transport (sluice_test_server).

Run by ctest with Debian's /usr/bin/python3 (python3-grpcio, python3-protobuf); the
python3 on PATH may be another interpreter without them. Messages come from
`protoc --python_out` into a temporary directory at test time. health.proto lives under
grpc/..., which would shadow the grpc package, so its module is loaded by file path under
another name. Calls use generic stubs (channel.unary_unary(path, ...)), so no
grpc_tools-generated service code is needed.

Checks: health Check and Watch (SERVING, then NOT_SERVING and UNAVAILABLE at drain),
the four TestService call kinds, status codes, deadline, cancellation, UNIMPLEMENTED,
bearer-token auth (tenant) and TLS, and that SIGTERM drains and exits 0.
"""

import argparse
import importlib.util
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading

import grpc

SVC = "/sluice.test.v1.TestService/"
HEALTH = "/grpc.health.v1.Health/"
TOKENS = "alice tok-alice-42\nbob tok-bob-7\n"

failures = []


def check(name, cond, detail=""):
    print(("PASS " if cond else "FAIL ") + name + ("" if cond else ": " + str(detail)),
          flush=True)
    if not cond:
        failures.append(name)


def load_module(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def compile_protos(tmp, test_proto, grpc_root):
    out_t = os.path.join(tmp, "test_pb")
    out_h = os.path.join(tmp, "health_pb")
    os.makedirs(out_t)
    os.makedirs(out_h)
    subprocess.run(["protoc", "-I" + os.path.dirname(test_proto), "--python_out=" + out_t,
                    os.path.basename(test_proto)], check=True)
    subprocess.run(["protoc", "-I" + grpc_root, "--python_out=" + out_h,
                    "grpc/health/v1/health.proto"], check=True)
    test_pb = load_module("sluice_test_pb2", os.path.join(out_t, "sluice_test_pb2.py"))
    health_pb = load_module("sluice_interop_health_pb2",
                            os.path.join(out_h, "grpc", "health", "v1", "health_pb2.py"))
    return test_pb, health_pb


class Server:
    """sluice_test_server on 127.0.0.1:0; the port comes from its first stdout line."""

    def __init__(self, binary, *args):
        self.proc = subprocess.Popen([binary, *args], stdout=subprocess.PIPE, text=True)
        lines = queue.Queue()
        threading.Thread(target=lambda: lines.put(self.proc.stdout.readline()),
                         daemon=True).start()
        first = lines.get(timeout=30)
        if not first.startswith("port="):
            self.proc.kill()
            raise RuntimeError("sluice_test_server printed %r" % first)
        self.port = int(first.strip().split("=", 1)[1])
        self.target = "127.0.0.1:%d" % self.port

    def stop(self):
        """SIGTERM: drain, exit. Returns the exit code."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return None


class Stubs:
    def __init__(self, channel, pb, hpb):
        Req, Resp = pb.EchoRequest, pb.EchoResponse
        ser, des = Req.SerializeToString, Resp.FromString
        self.echo = channel.unary_unary(SVC + "Echo", request_serializer=ser,
                                        response_deserializer=des)
        self.count = channel.unary_stream(SVC + "Count", request_serializer=ser,
                                          response_deserializer=des)
        self.sum = channel.stream_unary(SVC + "Sum", request_serializer=ser,
                                        response_deserializer=des)
        self.chat = channel.stream_stream(SVC + "Chat", request_serializer=ser,
                                          response_deserializer=des)
        self.nope = channel.unary_unary(SVC + "Nope", request_serializer=ser,
                                        response_deserializer=des)
        hreq, hresp = hpb.HealthCheckRequest, hpb.HealthCheckResponse
        self.check = channel.unary_unary(HEALTH + "Check",
                                         request_serializer=hreq.SerializeToString,
                                         response_deserializer=hresp.FromString)
        self.watch = channel.unary_stream(HEALTH + "Watch",
                                          request_serializer=hreq.SerializeToString,
                                          response_deserializer=hresp.FromString)


def code_of(fn):
    try:
        fn()
        return grpc.StatusCode.OK
    except grpc.RpcError as e:
        return e.code()


def test_health(s, pb, hpb):
    HC = hpb.HealthCheckResponse
    r = s.check(hpb.HealthCheckRequest(service=""), timeout=10)
    check("health Check '' SERVING", r.status == HC.SERVING, r)
    r = s.check(hpb.HealthCheckRequest(service="sluice.test.v1.TestService"), timeout=10)
    check("health Check TestService SERVING", r.status == HC.SERVING, r)
    code = code_of(lambda: s.check(hpb.HealthCheckRequest(service="nope"), timeout=10))
    check("health Check unknown NOT_FOUND", code == grpc.StatusCode.NOT_FOUND, code)


def test_calls(s, pb):
    Req = pb.EchoRequest
    r = s.echo(Req(text="hello", number=42), timeout=10)
    check("Echo", r.text == "hello" and r.number == 42 and r.tenant == "", r)
    try:
        s.echo(Req(text="nope", fail_code=grpc.StatusCode.ALREADY_EXISTS.value[0]), timeout=10)
        check("Echo fail_code", False, "no error")
    except grpc.RpcError as e:
        check("Echo fail_code", e.code() == grpc.StatusCode.ALREADY_EXISTS
              and e.details() == "nope", (e.code(), e.details()))
    nums = [m.number for m in s.count(Req(text="c", count=5), timeout=10)]
    check("Count", nums == [0, 1, 2, 3, 4], nums)
    nums = [m.number for m in s.count(Req(text="c", count=3, delay_ms=10), timeout=10)]
    check("Count paced", nums == [0, 1, 2], nums)
    r = s.sum(iter([Req(number=i) for i in range(1, 11)]), timeout=10)
    check("Sum", r.number == 55, r)
    out = [(m.text, m.number) for m in
           s.chat(iter([Req(text="x%d" % i, number=i) for i in range(5)]), timeout=10)]
    check("Chat", out == [("x%d" % i, i) for i in range(5)], out)
    code = code_of(lambda: s.nope(Req(), timeout=10))
    check("unknown method UNIMPLEMENTED", code == grpc.StatusCode.UNIMPLEMENTED, code)
    code = code_of(lambda: s.echo(Req(delay_ms=3000), timeout=0.2))
    check("deadline DEADLINE_EXCEEDED", code == grpc.StatusCode.DEADLINE_EXCEEDED, code)
    stream = s.count(Req(count=1000000, delay_ms=5), timeout=30)
    first = [next(stream).number for _ in range(3)]
    stream.cancel()
    code = code_of(lambda: [m for m in stream])
    check("client cancel mid-stream", first == [0, 1, 2]
          and code == grpc.StatusCode.CANCELLED, (first, code))


def watch_until_end(s, hpb, seen, result):
    try:
        for m in s.watch(hpb.HealthCheckRequest(service=""), timeout=60):
            seen.put(m.status)
        result.append(grpc.StatusCode.OK)
    except grpc.RpcError as e:
        result.append(e.code())


def run_main_server(args, pb, hpb):
    srv = Server(args.server)
    channel = grpc.insecure_channel(srv.target)
    s = Stubs(channel, pb, hpb)
    test_health(s, pb, hpb)
    test_calls(s, pb)
    HC = hpb.HealthCheckResponse
    seen, result = queue.Queue(), []
    watcher = threading.Thread(target=watch_until_end, args=(s, hpb, seen, result))
    watcher.start()
    first = seen.get(timeout=10)
    check("health Watch starts SERVING", first == HC.SERVING, first)
    rc = srv.stop()
    watcher.join(timeout=30)
    statuses = []
    while not seen.empty():
        statuses.append(seen.get())
    check("health Watch sees NOT_SERVING at drain", statuses[-1:] == [HC.NOT_SERVING],
          statuses)
    check("health Watch ends UNAVAILABLE", result == [grpc.StatusCode.UNAVAILABLE], result)
    check("SIGTERM drains and exits 0", rc == 0, rc)
    channel.close()


def run_auth_server(args, tmp, pb, hpb):
    tokens = os.path.join(tmp, "tokens")
    with open(tokens, "w") as f:
        f.write(TOKENS)
    srv = Server(args.server, "--tokens", tokens)
    channel = grpc.insecure_channel(srv.target)
    s = Stubs(channel, pb, hpb)
    try:
        s.echo(pb.EchoRequest(text="x"), timeout=10)
        check("auth: missing token", False, "no error")
    except grpc.RpcError as e:
        check("auth: missing token", e.code() == grpc.StatusCode.UNAUTHENTICATED
              and e.details() == "missing bearer token", (e.code(), e.details()))
    code = code_of(lambda: s.echo(pb.EchoRequest(), timeout=10,
                                  metadata=[("authorization", "Bearer wrong")]))
    check("auth: invalid token", code == grpc.StatusCode.UNAUTHENTICATED, code)
    r = s.echo(pb.EchoRequest(text="x"), timeout=10,
               metadata=[("authorization", "Bearer tok-bob-7")])
    check("auth: tenant bound to token", r.tenant == "bob", r)
    r = s.check(hpb.HealthCheckRequest(service=""), timeout=10)
    check("auth: health exempt", r.status == hpb.HealthCheckResponse.SERVING, r)
    channel.close()
    check("auth server exits 0", srv.stop() == 0)


def run_tls_server(args, tmp, pb, hpb):
    key, cert = os.path.join(tmp, "key.pem"), os.path.join(tmp, "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    srv = Server(args.server, "--tls-cert", cert, "--tls-key", key)
    with open(cert, "rb") as f:
        creds = grpc.ssl_channel_credentials(root_certificates=f.read())
    channel = grpc.secure_channel(srv.target, creds,
                                  options=[("grpc.ssl_target_name_override", "localhost")])
    s = Stubs(channel, pb, hpb)
    r = s.echo(pb.EchoRequest(text="tls", number=1), timeout=10)
    check("TLS Echo", r.text == "tls", r)
    channel.close()
    check("TLS server exits 0", srv.stop() == 0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--test-proto", required=True)
    ap.add_argument("--grpc-proto-root", default="/usr/share/grpc-proto")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="sluice-interop-") as tmp:
        pb, hpb = compile_protos(tmp, args.test_proto, args.grpc_proto_root)
        run_main_server(args, pb, hpb)
        run_auth_server(args, tmp, pb, hpb)
        run_tls_server(args, tmp, pb, hpb)
    print("%d failure(s)" % len(failures), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
