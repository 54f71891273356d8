#!/usr/bin/python3
"""A Python grpcio server for sluice.test.v1.TestService, used to test sluice's C client
runtime (tests/integration/test_rpc_client.c) against an independent gRPC implementation.

Run with Debian's interpreter (/usr/bin/python3 has python3-grpcio):

    /usr/bin/python3 test_server.py --proto tests/proto/sluice_test.proto [--protoc protoc]
                                    [--tls-cert cert.pem --tls-key key.pem]

The message classes are generated at start-up with `protoc --python_out` into a temporary
directory (nothing is committed). The server binds 127.0.0.1:0 and prints the bound port
as its first line on stdout (TLS with the given PEM certificate and key, else
plaintext). It exits when its stdin reaches end of file (the test closes
it or dies) or on SIGTERM, so it never outlives the test that started it.

Behaviour (the .proto describes the same, this adds test-only knobs):
  Echo  returns text, number and payload; tenant is the `authorization` metadata value it
        saw ("" when none). count > 0 replaces the payload with `count` bytes (to test
        receive limits). delay_ms waits first (ends early if the call is cancelled).
        fail_code != 0 aborts with that status code and `text` as details.
  Count streams `count` messages (text, number 0..count-1), delay_ms apart; then, when
        fail_code != 0, aborts with that code and `text` as details.
  Sum   answers once with the sum of every request's number (text = message count).
  Chat  answers every request with one response carrying its text, number and payload.
"""

import argparse
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent import futures

import grpc

SERVICE = "sluice.test.v1.TestService"
MAX_MESSAGE = 64 << 20


def load_messages(protoc, proto):
    """Generates and imports sluice_test_pb2 from the .proto."""
    out = tempfile.mkdtemp(prefix="sluice-test-server-")
    try:
        subprocess.run([protoc, "-I", os.path.dirname(os.path.abspath(proto)),
                        "--python_out", out, os.path.basename(proto)], check=True)
        sys.dont_write_bytecode = True
        sys.path.insert(0, out)
        return importlib.import_module("sluice_test_pb2")
    finally:
        shutil.rmtree(out, ignore_errors=True)


def status_code(value):
    for code in grpc.StatusCode:
        if code.value[0] == value:
            return code
    return grpc.StatusCode.UNKNOWN


def wait(context, delay_ms):
    """Sleeps delay_ms, returning early (False) when the call is no longer active."""
    end = time.monotonic() + delay_ms / 1000.0
    while time.monotonic() < end:
        if not context.is_active():
            return False
        time.sleep(min(0.01, max(0.0, end - time.monotonic())))
    return context.is_active()


def make_handlers(pb):
    def echo(req, context):
        if req.delay_ms and not wait(context, req.delay_ms):
            return pb.EchoResponse()
        if req.fail_code:
            context.abort(status_code(req.fail_code), req.text)
        auth = dict(context.invocation_metadata()).get("authorization", "")
        payload = b"p" * req.count if req.count else req.payload
        return pb.EchoResponse(text=req.text, number=req.number, tenant=auth, payload=payload)

    def count(req, context):
        for i in range(req.count):
            if req.delay_ms and not wait(context, req.delay_ms):
                return
            yield pb.EchoResponse(text=req.text, number=i, payload=req.payload)
        if req.fail_code:
            context.abort(status_code(req.fail_code), req.text)

    def sum_(requests, context):
        total = 0
        n = 0
        for req in requests:
            total += req.number
            n += 1
        return pb.EchoResponse(text=str(n), number=total)

    def chat(requests, context):
        for req in requests:
            yield pb.EchoResponse(text=req.text, number=req.number, payload=req.payload)

    de, se = pb.EchoRequest.FromString, pb.EchoResponse.SerializeToString
    return grpc.method_handlers_generic_handler(SERVICE, {
        "Echo": grpc.unary_unary_rpc_method_handler(echo, de, se),
        "Count": grpc.unary_stream_rpc_method_handler(count, de, se),
        "Sum": grpc.stream_unary_rpc_method_handler(sum_, de, se),
        "Chat": grpc.stream_stream_rpc_method_handler(chat, de, se),
    })


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--proto", required=True, help="path of sluice_test.proto")
    parser.add_argument("--protoc", default="protoc")
    parser.add_argument("--tls-cert", help="PEM certificate chain: serve TLS")
    parser.add_argument("--tls-key", help="PEM private key of --tls-cert")
    args = parser.parse_args()
    pb = load_messages(args.protoc, args.proto)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=128),
        options=[("grpc.so_reuseport", 0),
                 ("grpc.max_receive_message_length", MAX_MESSAGE),
                 ("grpc.max_send_message_length", MAX_MESSAGE)])
    server.add_generic_rpc_handlers((make_handlers(pb),))
    if args.tls_cert:
        with open(args.tls_key, "rb") as key, open(args.tls_cert, "rb") as cert:
            creds = grpc.ssl_server_credentials([(key.read(), cert.read())])
        port = server.add_secure_port("127.0.0.1:0", creds)
    else:
        port = server.add_insecure_port("127.0.0.1:0")
    if port == 0:
        sys.exit("test_server: cannot bind 127.0.0.1:0")
    server.start()
    print(port, flush=True)

    done = threading.Event()

    def watch_stdin():
        while sys.stdin.buffer.read(4096):
            pass
        done.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    done.wait()
    server.stop(grace=0)


if __name__ == "__main__":
    main()
