#!/usr/bin/python3
"""Runs a command against a real sluiced backed by the bundled fake provider.

usage: run_with_sluiced.py BUILD_DIR [--config JSON] -- COMMAND [ARGS...]

Starts build/tests/sluice-fake-provider and build/server/sluiced on 127.0.0.1 ports chosen
at run time, in a temporary directory, exports SLUICE_TARGET=127.0.0.1:PORT,
SLUICE_FAKE_URL=http(s)://127.0.0.1:PORT (the fake's control API), SLUICE_METRICS_URL and
SLUICE_BUILD_DIR to the command, runs it, then checks sluiced's metrics (libcurl never
refused to set a transfer up), stops sluiced with SIGTERM (it must exit 0) and the fake.
SLUICE_TEST_WIRE=h1tls or h2tls puts the fake on HTTP/1.1 or HTTP/2 over TLS with gzip,
chunked answers (a certificate made here, trusted by sluiced through SLUICE_CA_FILE and by
the command through SSL_CERT_FILE and NODE_EXTRA_CA_CERTS); the default is plain HTTP. The exit code is the command's (or 1 when sluiced
did not stop cleanly). Models offered: m-a, m-b (OpenAI shape), m-c (Anthropic shape) and m-g
(Gemini shape).
--config gives sluiced a configuration file with this JSON text (limits, ...).
"""
import ctypes
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request


def die_with_parent():
    """In the child: SIGKILL it when this launcher dies (PR_SET_PDEATHSIG), so a crashed
    test run leaves no server behind."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)


def wire_args(tmp):
    """The fake's TLS flags for $SLUICE_TEST_WIRE, and the certificate to trust (or None)."""
    wire = os.environ.get("SLUICE_TEST_WIRE", "plain") or "plain"
    if wire == "plain":
        return [], None
    if wire not in ("h1tls", "h2tls"):
        raise SystemExit("SLUICE_TEST_WIRE=%s: expected plain, h1tls or h2tls" % wire)
    cert, key = os.path.join(tmp, "fake.crt"), os.path.join(tmp, "fake.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                    "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    args = ["--tls-cert", cert, "--tls-key", key, "--gzip", "--chunked"]
    return args + (["--http2"] if wire == "h2tls" else []), cert


def start_fake(build, args):
    p = subprocess.Popen([os.path.join(build, "tests", "sluice-fake-provider"), "--quiet"] + args,
                         stdout=subprocess.PIPE, text=True, preexec_fn=die_with_parent)
    line = p.stdout.readline().strip()
    if not line.startswith("port="):
        p.kill()
        raise SystemExit("fake provider did not start: %r" % line)
    return p, int(line.split("=", 1)[1])


def registry(fake_url):
    base, gemini_base = fake_url + "/v1", fake_url + "/v1beta"
    key = {"requests_per_minute": 600000, "tokens_per_minute": 1000000000,
           "max_concurrent": 1000}
    return {
        "keys": {"ka": dict(provider="openai", env="SLUICE_TEST_KEY_A", **key),
                 "kb": dict(provider="anthropic", env="SLUICE_TEST_KEY_B", **key),
                 "kg": dict(provider="gemini", env="SLUICE_TEST_KEY_G", **key)},
        "models": {
            "m-a": {"provider": "openai", "upstream": "up-a", "base_url": base, "key": "ka",
                    "input_price": 1, "output_price": 2, "context_window": 100000},
            "m-b": {"provider": "openai", "upstream": "up-b", "base_url": base, "key": "ka",
                    "input_price": 3, "output_price": 4, "context_window": 100000},
            "m-c": {"provider": "anthropic", "upstream": "up-c", "base_url": base,
                    "key": "kb", "input_price": 1, "output_price": 5,
                    "context_window": 100000},
            "m-g": {"provider": "gemini", "upstream": "up-g", "base_url": gemini_base,
                    "key": "kg", "input_price": 2, "output_price": 6, "cached_input_price": 0.5,
                    "context_window": 100000, "reasoning": True, "json_schema": True},
        },
    }


def start_sluiced(build, tmp, fake_url, ca, config):
    reg = os.path.join(tmp, "registry.json")
    with open(reg, "w") as f:
        json.dump(registry(fake_url), f)
    extra = []
    if config is not None:
        extra = ["--config", os.path.join(tmp, "sluiced.json")]
        with open(extra[1], "w") as f:
            f.write(config)
    port_file = os.path.join(tmp, "port")
    env = dict(os.environ, SLUICE_TEST_KEY_A="sk-a", SLUICE_TEST_KEY_B="sk-b",
               SLUICE_TEST_KEY_G="sk-g",
               SLUICE_LOG_LEVEL="warn", SLUICE_METRICS_LISTEN="127.0.0.1:0")
    if ca:
        env["SLUICE_CA_FILE"] = ca
    p = subprocess.Popen([os.path.join(build, "server", "sluiced"), "--listen", "127.0.0.1:0",
                          "--data-dir", os.path.join(tmp, "data"), "--registry", reg,
                          "--port-file", port_file] + extra, env=env,
                         preexec_fn=die_with_parent)
    for _ in range(3000):
        if os.path.exists(port_file):
            ports = [int(x) for x in open(port_file).read().split()]
            return p, ports[0], ports[1]
        if p.poll() is not None:
            raise SystemExit("sluiced exited during start-up")
        time.sleep(0.01)
    p.kill()
    raise SystemExit("sluiced did not start")


def setup_failures_are_zero(metrics_url):
    with urllib.request.urlopen(metrics_url, timeout=10) as r:
        return "\nsluice_http_setup_failures_total 0\n" in r.read().decode()


def main():
    args = sys.argv[1:]
    if "--" not in args or args.index("--") not in (1, 3) or args[-1] == "--":
        raise SystemExit(__doc__)
    build, config = args[0], None
    if args.index("--") == 3:
        if args[1] != "--config":
            raise SystemExit(__doc__)
        config = args[2]
    cmd = args[args.index("--") + 1:]
    with tempfile.TemporaryDirectory(prefix="sluice-interop-") as tmp:
        args, ca = wire_args(tmp)
        fake, fake_port = start_fake(build, args)
        fake_url = "%s://127.0.0.1:%d" % ("https" if ca else "http", fake_port)
        try:
            sluiced, port, metrics_port = start_sluiced(build, tmp, fake_url, ca, config)
            metrics_url = "http://127.0.0.1:%d/metrics" % metrics_port
            env = dict(os.environ, SLUICE_TARGET="127.0.0.1:%d" % port,
                       SLUICE_FAKE_URL=fake_url, SLUICE_METRICS_URL=metrics_url,
                       SLUICE_BUILD_DIR=build)
            if ca:
                env.update(SSL_CERT_FILE=ca, NODE_EXTRA_CA_CERTS=ca)
            rc = subprocess.call(cmd, env=env)
            if not setup_failures_are_zero(metrics_url):
                print("sluiced: sluice_http_setup_failures_total is not 0", file=sys.stderr)
                rc = rc or 1
            sluiced.send_signal(signal.SIGTERM)
            if sluiced.wait(timeout=60) != 0:
                print("sluiced did not exit 0 after SIGTERM", file=sys.stderr)
                rc = rc or 1
        finally:
            fake.send_signal(signal.SIGTERM)
            fake.wait(timeout=30)
    sys.exit(rc)


if __name__ == "__main__":
    main()
