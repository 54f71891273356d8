"""A scripted stand-in for sluiced, for client tests that need a server to misbehave or to
count calls: a grpcio server on 127.0.0.1:0 whose sluice.v1.Sluice methods are Python
functions given by the test.

    srv = FakeSluice(pb, {"GetStatus": lambda req: pb.GetStatusResponse(...)})
    ... run the client against srv.target ...
    srv.calls["GetStatus"]   # how many calls arrived
    srv.stop()

A unary handler gets the decoded request and returns a message or raw bytes (bytes let a
test send what protobuf would refuse to build, e.g. strings that are not UTF-8); a
BatchProcess handler gets the iterator of decoded requests and yields messages or bytes.
A handler ends its call with a gRPC error by raising Abort(code, details). Methods without a
handler answer UNIMPLEMENTED.
"""
import collections
import threading
from concurrent import futures

import grpc

REQUESTS = {"OpenSession": "OpenSessionRequest", "CloseSession": "CloseSessionRequest",
            "ResetTracker": "ResetTrackerRequest", "GetStatus": "GetStatusRequest",
            "BatchProcess": "BatchRequest", "Start": "StartRequest", "Wait": "WaitRequest",
            "AsCompleted": "AsCompletedRequest", "Cancel": "CancelRequest",
            "ListModels": "ListModelsRequest"}
STREAMING = {"BatchProcess"}


class Abort(Exception):
    """Raised by a handler: the call ends with this gRPC status code and details."""

    def __init__(self, code, details):
        super().__init__(details)
        self.code = code
        self.details = details


def raw(msg):
    return msg if isinstance(msg, bytes) else msg.SerializeToString()


class FakeSluice(grpc.GenericRpcHandler):
    def __init__(self, pb, handlers):
        self.pb = pb
        self.handlers = handlers
        self.calls = collections.Counter()
        self.lock = threading.Lock()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        self.server.add_generic_rpc_handlers((self,))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.target = "127.0.0.1:%d" % self.port
        self.server.start()

    def stop(self):
        self.server.stop(grace=None)

    def service(self, details):
        name = details.method.rsplit("/", 1)[-1]
        if not details.method.startswith("/sluice.v1.Sluice/") or name not in self.handlers:
            return None
        fn = self.handlers[name]
        deser = getattr(self.pb, REQUESTS[name]).FromString

        def count():
            with self.lock:
                self.calls[name] += 1

        if name in STREAMING:
            def stream(requests, ctx):
                count()
                try:
                    for m in fn(requests):
                        yield raw(m)
                except Abort as a:
                    ctx.abort(a.code, a.details)
            return grpc.stream_stream_rpc_method_handler(stream, request_deserializer=deser,
                                                         response_serializer=lambda b: b)

        def unary(request, ctx):
            count()
            try:
                return raw(fn(request))
            except Abort as a:
                ctx.abort(a.code, a.details)
        return grpc.unary_unary_rpc_method_handler(unary, request_deserializer=deser,
                                                   response_serializer=lambda b: b)
