#!/usr/bin/env python3
"""The live dashboard (`GET /` of corio::serve_metrics) in a real browser.

Usage: dashboard_test.py WORKLOAD PNG

Starts WORKLOAD (tests/browser/dashboard_workload.cpp), reads `PORT <n>` from
it, waits until its /metrics.json has what the page should show, then opens
http://127.0.0.1:<n>/ in Debian's Chromium, headless, driven over the
DevTools protocol (a WebSocket, with the standard library): it waits in real
time until the page has polled several times (each wait for a condition,
with a generous limit), checks the DOM (both loops with drawn charts, the
tasks "ingest" and "flush-worker", a task name made of markup shown as text,
the search box and an expanded await chain, the profiled operations with
figures, the thread pool, the connection pool, the slow-resumption report
naming "slow-step"), saves a screenshot of 1280x2000 to PNG and checks that
it is not blank (PIL), then closes stdin of the workload and checks that it
exits 0.

Why not `chromium --dump-dom --virtual-time-budget`: virtual time does let
the page's fetches complete, but its one-second timers then fire
milliseconds apart in real time, so the page's per-second rates and charts
are computed over a few milliseconds of the server's time; and `--timeout`
does not wait for anything in the new headless mode. Driving the browser
over its protocol waits for real polls and for conditions instead of for a
guessed time.

Runs as root in CI, hence --no-sandbox.
"""

import base64
import hashlib
import html.parser
import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

# PIL comes from Debian's python3-pil: when this interpreter (say a pyenv
# one that CMake found) lacks it, run again under Debian's python3.
try:
    from PIL import Image  # noqa: F401
except ImportError:
    if os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3") and os.path.exists(
        "/usr/bin/python3"
    ):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    raise

CHROMIUM = os.environ.get("CORIO_CHROMIUM", "/usr/bin/chromium")
T0 = time.monotonic()


def log(msg):
    print("[%6.2f s] %s" % (time.monotonic() - T0, msg), flush=True)


class TestFailure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise TestFailure(what)
    log("ok: " + what)


def wait_for(what, fn, limit, interval=0.25):
    """Calls fn() until it returns something true, for at most `limit` seconds."""
    deadline = time.monotonic() + limit
    last_error = None
    while True:
        try:
            v = fn()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 (reported if it never comes)
            last_error = e
        if time.monotonic() > deadline:
            raise TestFailure(
                "timed out after %.0f s waiting for %s%s"
                % (limit, what, " (last error: %r)" % (last_error,) if last_error else "")
            )
        time.sleep(interval)


# ---------------------------------------------------------------- WebSocket


class WebSocket:
    """A minimal RFC 6455 client: text frames out (masked), frames in."""

    GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    def __init__(self, url, timeout=30):
        u = urllib.parse.urlparse(url)
        self.sock = socket.create_connection((u.hostname, u.port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        path = u.path + ("?" + u.query if u.query else "")
        req = (
            "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (path, u.hostname, u.port, key)
        )
        self.sock.sendall(req.encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise TestFailure("DevTools closed the WebSocket handshake")
            buf += chunk
            if len(buf) > 65536:
                raise TestFailure("DevTools handshake answer too long")
        head, self.buf = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        if " 101 " not in lines[0] + " ":
            raise TestFailure("DevTools refused the WebSocket: " + lines[0])
        accept = base64.b64encode(hashlib.sha1((key + self.GUID).encode()).digest()).decode()
        headers = {l.split(":", 1)[0].strip().lower(): l.split(":", 1)[1].strip() for l in lines[1:] if ":" in l}
        if headers.get("sec-websocket-accept") != accept:
            raise TestFailure("DevTools answered the WebSocket handshake wrongly")

    def _exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(max(65536, n - len(self.buf)))
            if not chunk:
                raise TestFailure("DevTools closed the WebSocket")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _send_frame(self, opcode, payload):
        header = bytearray([0x80 | opcode])
        n = len(payload)
        if n < 126:
            header.append(0x80 | n)
        elif n < 65536:
            header.append(0x80 | 126)
            header += struct.pack(">H", n)
        else:
            header.append(0x80 | 127)
            header += struct.pack(">Q", n)
        mask = os.urandom(4)
        header += mask
        masked = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
        self.sock.sendall(bytes(header) + masked)

    def send(self, text):
        self._send_frame(0x1, text.encode())

    def recv(self):
        """The next whole text or binary message."""
        parts = []
        while True:
            b0, b1 = self._exact(2)
            opcode, fin = b0 & 0x0F, b0 & 0x80
            n = b1 & 0x7F
            if n == 126:
                (n,) = struct.unpack(">H", self._exact(2))
            elif n == 127:
                (n,) = struct.unpack(">Q", self._exact(8))
            mask = self._exact(4) if b1 & 0x80 else None
            payload = self._exact(n)
            if mask:
                payload = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
            if opcode == 0x8:
                raise TestFailure("DevTools closed the WebSocket")
            if opcode == 0x9:
                self._send_frame(0xA, payload)
                continue
            if opcode == 0xA:
                continue
            parts.append(payload)
            if fin:
                return b"".join(parts).decode("utf-8", "replace")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class DevTools:
    """Commands to one page target of Chromium's DevTools protocol."""

    def __init__(self, ws_url):
        self.ws = WebSocket(ws_url)
        self.next_id = 0

    def call(self, method, params=None, timeout=60):
        self.next_id += 1
        my_id = self.next_id
        self.ws.sock.settimeout(timeout)
        self.ws.send(json.dumps({"id": my_id, "method": method, "params": params or {}}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise TestFailure("%s failed: %s" % (method, msg["error"]))
                return msg.get("result", {})
            # events (no id) and late answers are dropped

    def evaluate(self, expression):
        r = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in r:
            raise TestFailure("page script failed: %s" % json.dumps(r["exceptionDetails"])[:800])
        return r.get("result", {}).get("value")


# ---------------------------------------------------------------- the DOM


class Node:
    def __init__(self, tag, attrs, parent):
        self.tag, self.attrs, self.parent, self.children = tag, dict(attrs), parent, []

    def text(self):
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def classes(self):
        return (self.attrs.get("class") or "").split()

    def walk(self):
        for c in self.children:
            if isinstance(c, Node):
                yield c
                yield from c.walk()

    def find_all(self, tag=None, cls=None, **attrs):
        out = []
        for n in self.walk():
            if tag and n.tag != tag:
                continue
            if cls and cls not in n.classes():
                continue
            if any(n.attrs.get(k.replace("_", "-")) != v for k, v in attrs.items()):
                continue
            out.append(n)
        return out

    def by_id(self, id_):
        for n in self.walk():
            if n.attrs.get("id") == id_:
                return n
        return None


class TreeBuilder(html.parser.HTMLParser):
    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {}, None)
        self.cur = self.root

    def handle_starttag(self, tag, attrs):
        n = Node(tag, attrs, self.cur)
        self.cur.children.append(n)
        if tag not in self.VOID:
            self.cur = n

    def handle_startendtag(self, tag, attrs):
        self.cur.children.append(Node(tag, attrs, self.cur))

    def handle_endtag(self, tag):
        n = self.cur
        while n is not None and n.tag != tag:
            n = n.parent
        if n is not None and n.parent is not None:
            self.cur = n.parent

    def handle_data(self, data):
        self.cur.children.append(data)


def parse_dom(text):
    b = TreeBuilder()
    b.feed(text)
    b.close()
    return b.root


def cells(row):
    return [td.text().strip() for td in row.children if isinstance(td, Node) and td.tag == "td"]


def figure(text):
    """A number as the page prints it ("1,234", "4.5 ms") -> its leading number."""
    t = text.replace(",", "").split()
    try:
        return float(t[0]) if t else None
    except ValueError:
        return None


# ---------------------------------------------------------------- the test


def http_json(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read().decode())


def read_port(proc, limit):
    deadline = time.monotonic() + limit
    buf = b""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise TestFailure("the workload exited with %s before printing its port" % proc.returncode)
        r, _, _ = select.select([proc.stdout], [], [], 0.5)
        if r:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                raise TestFailure("the workload closed its stdout before printing its port")
            buf += chunk
            for line in buf.decode(errors="replace").splitlines():
                if line.startswith("PORT "):
                    return int(line.split()[1])
    raise TestFailure("the workload printed no port in %d s" % limit)


def workload_ready(base):
    m = http_json(base + "/metrics.json")
    loops = m.get("loops", {})
    ops = m.get("profilers", {}).get("app", {})
    reports = m.get("reports", {})
    return (
        "0" in loops
        and "1" in loops
        and all(ops.get(o, {}).get("count", 0) > 0 for o in ("db.query", "render", "flush"))
        and any("slow-step" in r.get("text", "") for r in reports.get("recent", []))
    )


PAGE_STATE = r"""
(() => {
  const b = document.body;
  if (!b) return JSON.stringify({});
  const q = (s) => Array.from(document.querySelectorAll(s));
  return JSON.stringify({
    ready: b.getAttribute('data-ready'),
    polls: Number(b.getAttribute('data-polls') || 0),
    status: (document.getElementById('status') || b).getAttribute('data-state'),
    names: q('#tasks tr.task').map(r => r.getAttribute('data-task-name')),
    chains: q('#tasks tr.chain-row').map(r => r.textContent),
    loops: q('#loops .loop').map(r => r.getAttribute('data-loop')),
    reports: q('#reports-list .report').length
  });
})()
"""


def page_state(dt):
    return json.loads(dt.evaluate(PAGE_STATE) or "{}")


def start_chromium(profile_dir, log_path):
    args = [
        CHROMIUM,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-background-timer-throttling",
        "--disable-renderer-backgrounding",
        "--disable-backgrounding-occluded-windows",
        "--hide-scrollbars",
        "--mute-audio",
        "--window-size=1280,2000",
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
        "--user-data-dir=" + profile_dir,
        "about:blank",
    ]
    out = open(log_path, "wb")
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    out.close()
    return proc


def devtools_port(proc, profile_dir):
    path = os.path.join(profile_dir, "DevToolsActivePort")

    def port():
        if proc.poll() is not None:
            raise TestFailure("chromium exited with %s at start" % proc.returncode)
        with open(path) as f:
            lines = f.read().split("\n")
        return int(lines[0]) if lines and lines[0].strip().isdigit() else None

    return wait_for("chromium's DevTools port", port, 90)


def stop_process_group(proc, name, limit=20):
    """Waits for `proc` (started in a session of its own); then ends its group."""
    try:
        proc.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        log("%s did not exit: terminating its process group %d" % (name, proc.pid))
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=10)
                break
            except subprocess.TimeoutExpired:
                continue


def check_dom(dom):
    body = dom.find_all("body")[0]
    check(body.attrs.get("data-ready") == "1", 'the body says data-ready="1" (a poll rendered the charts)')
    check(int(body.attrs.get("data-polls", "0")) >= 5, "the page polled at least 5 times")
    status = dom.by_id("status")
    check(status is not None and status.attrs.get("data-state") == "connected", "the status line says connected")
    check("last update" in dom.by_id("last-update").text(), "the status line shows the last update time")
    check(dom.by_id("poll-error").text().strip() == "", "the status line shows no error")

    # Loops: one card each, four charts drawn with points.
    loops = {n.attrs["data-loop"]: n for n in dom.by_id("loops").find_all("div", cls="loop")}
    check(sorted(loops) == ["0", "1"], "both loops are shown (%s)" % sorted(loops))
    for label, card in loops.items():
        canvases = card.find_all("canvas", cls="chart")
        kinds = sorted(c.attrs.get("data-chart") for c in canvases)
        check(kinds == ["lag", "load", "resumptions", "tasks"], "loop %s has its four charts" % label)
        for c in canvases:
            pts = int(c.attrs.get("data-points", "0"))
            check(pts >= 4, "loop %s chart %s drew %d points" % (label, c.attrs.get("data-chart"), pts))
        figs = {f.attrs["data-figure"]: f.text() for f in card.find_all("span", cls="figure")}
        live = figure(figs.get("live tasks", "").replace("live tasks", ""))
        check(live is not None and live >= 1, "loop %s shows its live tasks (%s)" % (label, live))
        res = figure(figs.get("resumptions/s", "").replace("resumptions/s", ""))
        check(res is not None and res > 0, "loop %s shows resumptions per second (%s)" % (label, res))

    # Tasks by state, and the table.
    states = {n.attrs["data-state"]: n.text() for n in dom.by_id("task-states").find_all("span", cls="state-count")}
    check("waiting" in states and figure(states["waiting"].replace("waiting", "")) >= 3, "tasks by state: %s" % states)
    tasks = dom.by_id("tasks")
    rows = tasks.find_all("tr", cls="task")
    by_name = {}
    for r in rows:
        by_name.setdefault(r.attrs.get("data-task-name"), []).append(r)
    check("ingest" in by_name and by_name["ingest"][0].attrs.get("data-loop") == "0", 'task "ingest" on loop 0')
    check(
        "flush-worker" in by_name and by_name["flush-worker"][0].attrs.get("data-loop") == "1",
        'task "flush-worker" on loop 1',
    )
    check("slow-step" in by_name, 'task "slow-step" listed')
    fw = cells(by_name["flush-worker"][0])
    check(fw[3] != "", "flush-worker's state shown: %s" % fw[3:5])
    check(figure(fw[5]) is not None, "flush-worker's age shown (%s)" % fw[5])
    markup = "<em>escaped</em>"
    check(markup in by_name, "the task named with markup is listed under its literal name")
    check(not tasks.find_all("em"), "the task name made no element (escaped)")
    check(markup in by_name[markup][0].text(), "the task name with markup reads as text")
    chains = [r for r in tasks.find_all("tr", cls="chain-row") if r.attrs.get("data-task-name") == "flush-worker"]
    check(chains and "flush_worker" in chains[0].text(), "flush-worker's await chain is expanded and names flush_worker")

    # Reports, newest first.
    reports = dom.by_id("reports-list").find_all("div", cls="report")
    check(reports, "reports are listed (%d)" % len(reports))
    texts = [r.find_all("pre")[0].text() for r in reports]
    check(any("slow resumption" in t and "'slow-step'" in t for t in texts), "a slow resumption report names 'slow-step'")
    stamps = [int(r.attrs.get("data-unix-ms", "0")) for r in reports]
    check(stamps == sorted(stamps, reverse=True), "reports are newest first")

    # Profiler percentiles.
    prof = {r.attrs["data-op"]: cells(r) for r in dom.by_id("profilers").find_all("tr", cls="profile")}
    for op in ("db.query", "render", "flush"):
        check(op in prof, "profiled operation %s is listed" % op)
        c = prof[op]
        check(figure(c[2]) and figure(c[2]) > 0, "%s count %s" % (op, c[2]))
        check(all(x.endswith(("ns", "s")) and figure(x) is not None for x in c[5:10]), "%s percentiles %s" % (op, c[5:10]))

    # Pools.
    pool = [cells(r) for r in dom.by_id("pools").find_all("tr", cls="pool") if r.attrs.get("data-pool") == "workers"]
    check(pool and pool[0][1] == "2", "thread pool 'workers' with 2 threads")
    check(figure(pool[0][5]) > 0, "thread pool 'workers' completed %s jobs" % pool[0][5])
    conn = [cells(r) for r in dom.by_id("connection-pools").find_all("tr", cls="connection-pool") if r.attrs.get("data-pool") == "db"]
    check(conn and conn[0][1].replace(" ", "").startswith("2/2"), "connection pool 'db' at 2 / 2 (%s)" % (conn and conn[0][1]))
    check(figure(conn[0][6]) > 0, "connection pool 'db' acquires %s" % conn[0][6])


def check_png(path):
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        check(im.size == (1280, 2000), "screenshot is 1280x2000 (%s)" % (im.size,))
        small = im.resize((320, 500))
        colours = small.getcolors(maxcolors=1 << 20) or []
        check(len(colours) > 50, "screenshot has %d distinct colours" % len(colours))
        px = list(im.getdata())
        non_white = sum(1 for p in px if min(p) < 235) / len(px)
        check(non_white > 0.05, "screenshot has %.1f %% non-white pixels" % (100 * non_white))
        # Charts draw coloured lines: some saturated pixels.
        coloured = sum(1 for p in px if max(p) - min(p) > 80) / len(px)
        check(coloured > 0.001, "screenshot has coloured pixels (%.2f %%)" % (100 * coloured))


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    workload, png = sys.argv[1], os.path.abspath(sys.argv[2])
    os.makedirs(os.path.dirname(png), exist_ok=True)
    dom_path = os.path.splitext(png)[0] + ".dom.html"
    check(os.path.exists(CHROMIUM), "chromium at " + CHROMIUM)

    tmp = tempfile.mkdtemp(prefix="corio-dashboard-")
    wl_err_path = os.path.join(tmp, "workload.stderr")
    chrome_log = os.path.join(tmp, "chromium.log")
    wl_err = open(wl_err_path, "wb")
    # 150 s at most: it outlives this test's slowest run, then ends anyway.
    wl = subprocess.Popen([workload, "150"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=wl_err)
    wl_err.close()
    chrome = None
    dt = None
    ok = False
    try:
        port = read_port(wl, 60)
        base = "http://127.0.0.1:%d" % port
        log("workload serves " + base)
        wait_for("the workload's metrics (both loops, the operations, a slow-step report)", lambda: workload_ready(base), 60)
        with urllib.request.urlopen(base + "/", timeout=10) as r:
            page = r.read().decode()
        check("corio-dashboard-page" in page, "GET / serves the dashboard page (not the placeholder)")

        profile = os.path.join(tmp, "profile")
        os.makedirs(profile)
        chrome = start_chromium(profile, chrome_log)
        dport = devtools_port(chrome, profile)
        log("chromium's DevTools on port %d" % dport)

        def page_target():
            targets = http_json("http://127.0.0.1:%d/json/list" % dport)
            pages = [t for t in targets if t.get("type") == "page" and t.get("webSocketDebuggerUrl")]
            return pages[0]["webSocketDebuggerUrl"] if pages else None

        dt = DevTools(wait_for("a page target", page_target, 60))
        dt.call("Emulation.setDeviceMetricsOverride", {"width": 1280, "height": 2000, "deviceScaleFactor": 1, "mobile": False})
        dt.call("Page.navigate", {"url": base + "/"})

        def loaded():
            s = page_state(dt)
            return s if s.get("ready") == "1" and s.get("polls", 0) >= 3 and s.get("reports", 0) >= 1 else None

        s = wait_for("the page's first polls", loaded, 90)
        log("page state: %s" % {k: s[k] for k in ("polls", "status", "loops", "reports")})

        # The search box filters (and stays applied across polls), and an
        # await chain expands (and stays expanded).
        dt.evaluate(
            "(() => { const s = document.getElementById('task-search'); s.value = 'flush_worker';"
            " s.dispatchEvent(new Event('input')); })()"
        )
        polls = page_state(dt)["polls"]
        s = wait_for("a poll with the filter applied", lambda: (lambda x: x if x["polls"] > polls else None)(page_state(dt)), 30)
        names = set(s["names"])
        check("flush-worker" in names and "ingest" not in names, "search 'flush_worker' (in the await chain) keeps flush-worker only: %s" % sorted(names))
        dt.evaluate(
            "(() => { const b = document.querySelector('#tasks tr.task[data-task-name=\"flush-worker\"] button.toggle');"
            " b.click(); const s = document.getElementById('task-search'); s.value = '';"
            " s.dispatchEvent(new Event('input')); })()"
        )
        polls = page_state(dt)["polls"]
        wait_for(
            "two more polls with the chain expanded",
            lambda: (lambda x: x if x["polls"] >= max(polls + 2, 6) and x["chains"] else None)(page_state(dt)),
            30,
        )

        dom_text = dt.evaluate("document.documentElement.outerHTML")
        with open(dom_path, "w") as f:
            f.write(dom_text)
        shot = dt.call("Page.captureScreenshot", {"format": "png"}, timeout=60)
        with open(png, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        log("DOM saved as %s, screenshot as %s" % (dom_path, png))

        check_dom(parse_dom(dom_text))
        check_png(png)

        try:
            dt.call("Browser.close", timeout=10)
        except Exception:  # noqa: BLE001 (it may close the socket first)
            pass
        dt.ws.close()
        dt = None
        stop_process_group(chrome, "chromium")
        chrome = None

        # EOF on stdin stops the workload; it must exit 0.
        wl.stdin.close()
        try:
            rc = wl.wait(timeout=60)
        except subprocess.TimeoutExpired:
            raise TestFailure("the workload did not exit within 60 s of EOF on stdin")
        check(rc == 0, "the workload exited 0 after EOF on stdin (%s)" % rc)
        ok = True
    finally:
        if dt is not None:
            dt.ws.close()
        if chrome is not None:
            try:
                os.killpg(chrome.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            stop_process_group(chrome, "chromium", 10)
        if wl.poll() is None:
            try:
                wl.stdin.close()
            except OSError:
                pass
            try:
                wl.wait(timeout=30)
            except subprocess.TimeoutExpired:
                wl.kill()
                wl.wait()
        if not ok:
            for name, path in (("workload stderr", wl_err_path), ("chromium log", chrome_log)):
                if os.path.exists(path):
                    with open(path, errors="replace") as f:
                        tail = f.read()[-4000:]
                    print("---- %s (tail) ----\n%s" % (name, tail), flush=True)
        shutil.rmtree(tmp, ignore_errors=True)
    log("PASS")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except TestFailure as e:
        log("FAIL: %s" % e)
        sys.exit(1)
