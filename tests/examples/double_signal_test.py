#!/usr/bin/env python3
"""A second SIGTERM during a server's graceful shutdown (issue 18, item 4).

Starts an example server (argv[1]: its binary) on a free port of
127.0.0.1, opens 200 idle connections, and sends SIGTERM twice, 2 ms
apart. The server must exit by itself, never be killed by the signal's
default action: exit 0 with its last line written (the shutdown won), or
128 + SIGTERM with the "second signal" message on stderr (the second
signal forced a prompt exit). Repeated five times, as the report did.
"""
import os
import signal
import socket
import subprocess
import sys
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_round(binary):
    port = free_port()
    server = subprocess.Popen([binary, str(port)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        banner = server.stdout.readline()
        if "on" not in banner:
            return f"no banner from the server: {banner!r}"
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(200)]
        time.sleep(0.2)  # the server has accepted them
        server.send_signal(signal.SIGTERM)
        time.sleep(0.002)
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=20)
        for c in clients:
            c.close()
    except subprocess.TimeoutExpired:
        server.kill()
        return "the server did not exit within 20 s"
    code = server.returncode
    if code < 0:
        return f"killed by signal {-code}: stdout {out!r}, stderr {err!r}"
    if code == 0:
        if "connections closed" not in out and "echo_server" not in banner:
            return f"exit 0 without its last line: {out!r}"
        return None
    if code == 128 + signal.SIGTERM and "second signal" in err:
        return None
    return f"exit status {code}: stdout {out!r}, stderr {err!r}"


def main():
    binary = sys.argv[1]
    for i in range(5):
        problem = one_round(binary)
        if problem:
            print(f"round {i + 1}: {problem}")
            return 1
    print(f"{os.path.basename(binary)}: 5 rounds of two SIGTERMs, never killed mid-shutdown")
    return 0


if __name__ == "__main__":
    sys.exit(main())
