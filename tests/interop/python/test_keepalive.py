#!/usr/bin/python3
"""Keepalive and the client ping policy (run by run_with_sluiced.py with rpc.max_wait_ms
60000, so a Wait can stay silent, and keepalive.time_ms / timeout_ms 1000).

- Regression: gRPC's default policy sent a client pinging every 10 s (a common client
  setting) GOAWAY "too_many_pings" after 30-40 s, failing its calls UNAVAILABLE. sluiced
  now accepts it: a Wait silent for 45 s under 10 s pings completes, and a connection
  pinged every 10 s without any call stays up.
- The policy still holds: a client pinging every second is refused.
- sluiced pings a connection after keepalive.time_ms without activity and closes it when
  the ping goes unanswered for keepalive.timeout_ms (a vanished client's calls end).
"""
import os
import socket
import struct
import sys
import tempfile
import threading
import time

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_service_interop import check, load_messages, rpc  # noqa: E402


def pinging_channel(every_ms):
    """A channel with a connection of its own (no sharing with the test's other channels)
    that pings every every_ms, with or without calls, however long nothing is sent."""
    return grpc.insecure_channel(os.environ["SLUICE_TARGET"], options=[
        ("grpc.keepalive_time_ms", every_ms), ("grpc.keepalive_timeout_ms", 5000),
        ("grpc.keepalive_permit_without_calls", 1), ("grpc.http2.max_pings_without_data", 0),
        ("grpc.use_local_subchannel_pool", 1)])


class StateLog:
    """Records a channel's connectivity states (READY until a GOAWAY closes it)."""

    def __init__(self, ch):
        self.states, self.lock = [], threading.Lock()
        ch.subscribe(self.on_state, try_to_connect=True)

    def on_state(self, state):
        with self.lock:
            self.states.append(state)


def hanging_task(pb, ch, sid):
    start = rpc(ch, pb, "Start", pb.StartRequest, pb.StartResponse)
    return list(start(pb.StartRequest(session_id=sid, prompts=[pb.Prompt(text="[[hang]]")]),
                      timeout=10).task_ids)


def silent_wait(pb, ch, ids, ms):
    """A Wait that stays silent for ms (its task never finishes); None or the error."""
    wait = rpc(ch, pb, "Wait", pb.WaitRequest, pb.WaitResponse)
    try:
        w = wait(pb.WaitRequest(task_ids=ids, timeout_ms=ms), timeout=ms / 1000 + 30)
        return None if list(w.pending_task_ids) == ids else "unexpected answer %s" % w
    except grpc.RpcError as e:
        return "%s %s" % (e.code(), e.details())


def fast_pinger_refused(pb, sid):
    ch = pinging_channel(1000)
    err = silent_wait(pb, ch, hanging_task(pb, ch, sid), 10000)
    check(err is not None and "UNAVAILABLE" in err and "many pings" in err.lower(),
          "a client pinging every second is refused (%s)" % err)
    ch.close()


def ten_second_pinger_accepted(pb, sid):
    busy, idle = pinging_channel(10000), pinging_channel(10000)
    ids = hanging_task(pb, busy, sid)
    health = idle.unary_unary("/grpc.health.v1.Health/Check")
    check(health(b"", timeout=10) == b"\x08\x01", "the idle channel is connected")
    busy_log, idle_log = StateLog(busy), StateLog(idle)
    # 45 s: under gRPC's default policy the third strike came 30 or 40 s in (a flow-control
    # ping of the client's early on counts too), on the idle connection 40 s in
    err = silent_wait(pb, busy, ids, 45000)  # the idle one pings with no call all along
    check(err is None, "a Wait silent for 45 s under 10 s pings completes (%s)" % err)
    check(health(b"", timeout=10) == b"\x08\x01", "the idle channel still serves")
    for name, log in (("busy", busy_log), ("idle", idle_log)):
        with log.lock:
            states = list(log.states)
        ready = grpc.ChannelConnectivity.READY
        after = states[states.index(ready):] if ready in states else []
        check(after and all(s == ready for s in after),
              "the %s channel was never closed by sluiced (%s)" % (name, states))
    busy.close()
    idle.close()


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + \
        struct.pack(">I", stream) + payload


def read_frame(sock):
    head = b""
    while len(head) < 9:
        chunk = sock.recv(9 - len(head))
        if not chunk:
            return None
        head += chunk
    length = int.from_bytes(head[:3], "big")
    payload = b""
    while len(payload) < length:
        chunk = sock.recv(length - len(payload))
        if not chunk:
            return None
        payload += chunk
    return head[3], head[4], payload


def server_pings_dead_connection():
    """An HTTP/2 client that answers SETTINGS but never a PING: sluiced pings it after 1 s
    of silence and closes the connection 1 s later."""
    host, port = os.environ["SLUICE_TARGET"].rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=20)
    sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0))
    pings, closed, start = 0, False, time.time()
    try:
        while time.time() - start < 20:
            f = read_frame(sock)
            if f is None:
                closed = True
                break
            kind, flags, _ = f
            if kind == 4 and not flags & 1:
                sock.sendall(frame(4, 1, 0))  # SETTINGS ack
            elif kind == 6 and not flags & 1:
                pings += 1  # never acknowledged
            elif kind == 7:
                closed = True  # GOAWAY
                break
    except (ConnectionResetError, socket.timeout):
        closed = True
    sock.close()
    check(pings >= 1 and closed,
          "sluiced pings a silent connection and closes it when the ping goes unanswered "
          "(%d pings, closed %s)" % (pings, closed))


def main():
    target = os.environ["SLUICE_TARGET"]
    with tempfile.TemporaryDirectory() as tmp:
        pb = load_messages(tmp)
        ch = grpc.insecure_channel(target)
        open_session = rpc(ch, pb, "OpenSession", pb.OpenSessionRequest, pb.OpenSessionResponse)
        cfg = pb.SessionConfig(models=[pb.ModelChoice(name="m-a", weight=1)])
        sid = open_session(pb.OpenSessionRequest(config=cfg), timeout=10).session_id
        server_pings_dead_connection()
        fast_pinger_refused(pb, sid)
        ten_second_pinger_accepted(pb, sid)
        cancel = rpc(ch, pb, "Cancel", pb.CancelRequest, pb.CancelResponse)
        cancel(pb.CancelRequest(session_id=sid), timeout=10)
    print("keepalive: all checks passed")


if __name__ == "__main__":
    main()
