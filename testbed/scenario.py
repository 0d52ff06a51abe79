#!/usr/bin/env python3
"""relaytrace testbed scenario driver (Python 3 standard library only; run as root).

    testbed/scenario.py run --out DIR [--relays 1..3] [--duration S] [--sessions N] [--seed N]

Needs the namespaces from `testbed/netns.sh up`. It then, inside those namespaces only:
  * generates a run's SSH keys (client key, one host key per host) under DIR/run/ssh and
    starts one sshd per host (own config, key-only root login, no DNS, no PAM);
  * starts `tcpdump -i eth0 -s SNAPLEN -w DIR/private/<host>.pcap` in every host namespace
    (the vantages) before any traffic;
  * runs the attack chain attacker -> relay1 [-> relay2 [-> relay3]] -> victim with
    `ssh -J`, an interactive shell typed one key at a time through a pty with human-like
    timing (heavy-tailed think times of seconds, keystrokes of tens to hundreds of ms),
    including one larger output (a ~40 KB base64 dump) as a transfer inside the chain;
  * at the same time, hard negatives: an unrelated interactive session from kp-user (same
    /24 as the attacker) to relay1, an unrelated interactive session from relay1 out to
    us-host, an admin using relay2 as a legitimate jump host to bo-host (ssh -J), a bulk
    transfer us-host -> cn-host (ssh 'head -c N /dev/zero'), and web fetches kp-user ->
    us-host:80;
  * stops the captures with SIGINT after the traffic and writes DIR/labels.json: every TCP
    connection seen at any vantage (5-tuple as on the wire, start time, which vantages saw
    it) with its label (chain hop or negative kind), the chains, and the true links.
With --evasive-delay-ms/--evasive-chaff one relay (--evasive-relay K, default the last)
forwards through evasive.py (delay per segment, chaff) over a tunnel to the next host of the
chain (port 2200), as an attacker hiding timing would. A middle relay K makes the next relay
receive a delayed, chaffed inbound and forward it plainly.
Everything has a timeout; the default run takes about 80 s.

Internal subcommands (run by `run`): `session` (one interactive pty session), `web`.
"""

import argparse
import datetime
import json
import math
import os
import pty
import random
import select
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the tree
sys.path.insert(0, HERE)
import pcaplib  # noqa: E402

PREFIX = "rt-"
EVASIVE_PORT = 2222         # the evasive relay's local forwarder (its sshd's -J forwarding connects to it)
EVASIVE_TUNNEL_PORT = 2200  # the next host's end of the evasive tunnel (the captured hop)
CORE = PREFIX + "core"


def log(msg):
    print(f"[scenario {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def load_hosts():
    hosts = {}
    with open(os.path.join(HERE, "hosts.tsv")) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, ip, role, net = line.split()[:4]
            hosts[name] = {"name": name, "ip": ip, "role": role, "network": net, "ns": PREFIX + name}
    return hosts


def iso(ns):
    return datetime.datetime.fromtimestamp(ns / 1e9, datetime.timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def nsexec(ns, argv):
    return ["ip", "netns", "exec", ns] + argv


# --------------------------------------------------------------------------------------
# Human-like timing
# --------------------------------------------------------------------------------------

def keystroke_delay(rng):
    # log-normal, median 130 ms, heavy right tail; clipped to [40 ms, 800 ms]
    return min(0.8, max(0.04, rng.lognormvariate(math.log(0.13), 0.45)))


def think_time(rng, scale=1.0):
    # Pareto (alpha 1.5, minimum 1 s): mean 3 s, heavy tail; clipped at 12 s
    return min(12.0, scale * rng.paretovariate(1.5))


COMMANDS = [
    "ls", "ls -la /etc | head -15", "cat /etc/hostname", "uname -a", "id", "pwd", "w",
    "date", "uptime", "ip -br -4 addr", "ps aux | head -8", "df -h /", "cat /proc/loadavg",
    "who", "ls /tmp | head", "echo $SSH_CONNECTION", "cat /etc/os-release | head -3",
]
DUMP = "head -c 30000 /dev/urandom | base64 -w 76"


# --------------------------------------------------------------------------------------
# `session`: one interactive ssh session in a pty
# --------------------------------------------------------------------------------------

class Pty:
    def __init__(self, fd, transcript, events):
        self.fd, self.transcript, self.events = fd, transcript, events
        self.buf = b""
        self.eof = False

    def ev(self, **kw):
        kw["t_ns"] = time.time_ns()
        self.events.write(json.dumps(kw) + "\n")

    def pump(self, timeout):
        """Reads whatever arrives within timeout seconds; returns bytes read."""
        if self.eof:
            time.sleep(max(0.0, timeout))
            return 0
        r, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        if not r:
            return 0
        try:
            data = os.read(self.fd, 65536)
        except OSError:
            data = b""
        if not data:
            self.eof = True
            return 0
        self.transcript.write(data)
        self.buf = (self.buf + data)[-4096:]
        self.ev(ev="out", n=len(data))
        return len(data)

    def pause(self, seconds):
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            self.pump(left)

    def wait_quiet(self, quiet, maximum):
        """Reads until no output for `quiet` seconds (after at least some output) or maximum."""
        end = time.monotonic() + maximum
        got = False
        while time.monotonic() < end and not self.eof:
            n = self.pump(min(quiet, end - time.monotonic()))
            if n:
                got = True
            elif got:
                return True
        return got

    def type(self, text, rng):
        for ch in text:
            os.write(self.fd, ch.encode())
            self.ev(ev="key", c=ch)
            self.pause(keystroke_delay(rng))


# Seconds kept free before a session's --end-within for its last command's output and
# the exit (typing "exit", the shells closing through every relay).
END_RESERVE_S = 8.0


def cmd_session(a):
    rng = random.Random(a.seed)
    os.makedirs(a.log_dir, exist_ok=True)
    transcript = open(os.path.join(a.log_dir, a.name + ".transcript"), "wb", buffering=0)
    events = open(os.path.join(a.log_dir, a.name + ".events.jsonl"), "w", buffering=1)
    argv = ["ssh", "-F", a.ssh_config, "-tt"]
    if a.jump:
        argv += ["-J", a.jump]
    if a.port:
        argv += ["-p", str(a.port)]
    argv.append(a.target)
    argv = nsexec(a.ns, argv)
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["TERM"] = "xterm"
        os.environ["LANG"] = "C"
        try:
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    import fcntl
    import struct
    import termios
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))

    def hard_stop(*_):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os._exit(3)

    signal.signal(signal.SIGALRM, hard_stop)
    signal.alarm(int(a.duration + 60))
    p = Pty(fd, transcript, events)
    p.ev(ev="start", argv=argv)
    t0 = time.monotonic()
    # --end-within: the whole connection, login included, should end this many seconds
    # after the start (the chain's slots need it: login through relays takes seconds, and
    # sessions that overran their slots ran back to back, on one common clock in every run).
    end_by = t0 + a.end_within if a.end_within else None
    # Wait for the shell prompt: output, then quiet, then a prompt at the end of it
    # (through an evasive relay, login output pauses for seconds between lines; three
    # nested logins through a 1 s evasive first relay took over 25 s).
    ok = p.wait_quiet(1.0, 45.0)
    prompt_deadline = time.monotonic() + 45.0
    while ok and not p.eof and not p.buf.rstrip(b" ").endswith((b"#", b"$")) \
            and time.monotonic() < prompt_deadline:
        p.pump(0.5)
    if not ok or p.eof:
        p.ev(ev="fail", why="no prompt")
        sys.stderr.write(f"session {a.name}: no prompt from {a.target}\n")
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        return 1
    p.ev(ev="prompt")
    # The session's time counts from the prompt: through several relays and an evasive
    # one, login alone can take ten seconds, which must not eat the typed commands.
    t0 = time.monotonic()
    ncmd = 0
    queue = list(a.first or [])
    dumped = not a.dump
    while not p.eof:
        think = think_time(rng)
        # No new command when it, its output and the exit could not be done by `end_by`.
        # The reserve covers typing it, its output (awaited up to 8 s) and the exit (up
        # to 10 s): a typical case, not the worst.
        if end_by is not None and not queue and time.monotonic() + think + END_RESERVE_S > end_by:
            break
        p.pause(think)
        # The first commands (the labels need the victim's $SSH_CONNECTION) are typed
        # even when a long think time has used up a short session.
        if not queue and time.monotonic() - t0 > a.duration - 3:
            break
        if queue:
            cmd = queue.pop(0)
        elif not dumped and time.monotonic() - t0 > a.duration / 2:
            cmd, dumped = DUMP, True
        else:
            cmd = rng.choice(COMMANDS)
        p.ev(ev="cmd", cmd=cmd)
        p.type(cmd, rng)
        os.write(fd, b"\r")
        p.ev(ev="key", c="\r")
        p.wait_quiet(0.5, 8.0)
        ncmd += 1
    if not p.eof:
        p.pause(think_time(rng, 0.5))
        p.type("exit", rng)
        os.write(fd, b"\r")
        p.ev(ev="key", c="\r")
        end = time.monotonic() + 10
        while not p.eof and time.monotonic() < end:
            p.pump(0.5)
    try:
        wpid, status = os.waitpid(pid, os.WNOHANG)
        if wpid == 0:
            time.sleep(1)
            wpid, status = os.waitpid(pid, os.WNOHANG)
        if wpid == 0:
            os.kill(pid, signal.SIGTERM)
            _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        status = 0
    rc = os.waitstatus_to_exitcode(status)
    p.ev(ev="end", commands=ncmd, rc=rc)
    return 0 if rc == 0 else 2


# --------------------------------------------------------------------------------------
# `web`: periodic HTTP fetches (runs inside a namespace)
# --------------------------------------------------------------------------------------

def cmd_web(a):
    import urllib.request
    rng = random.Random(a.seed)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy
    end = time.monotonic() + a.duration
    n = 0
    while True:
        time.sleep(min(rng.expovariate(1 / a.mean_gap), max(0.0, end - time.monotonic())))
        if time.monotonic() >= end:
            break
        try:
            with opener.open(a.url, timeout=5) as r:
                r.read()
            n += 1
        except Exception as e:  # noqa: BLE001
            sys.stderr.write(f"web: {e}\n")
    print(f"web: {n} fetches")
    return 0


# --------------------------------------------------------------------------------------
# `run`: the whole scenario
# --------------------------------------------------------------------------------------

SSHD_CONFIG = """\
# relaytrace testbed sshd for {name} ({ip}); generated for this run only
ListenAddress {ip}:22
HostKey {hostkey}
PidFile {rundir}/{name}.sshd.pid
AuthorizedKeysFile {rundir}/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
PrintLastLog no
AllowTcpForwarding yes
X11Forwarding no
PermitTunnel no
ClientAliveInterval 0
MaxStartups 50
MaxSessions 20
LogLevel VERBOSE
Subsystem sftp internal-sftp
"""

SSH_CONFIG = """\
# relaytrace testbed ssh client config; generated for this run only
Host *
  User root
  IdentityFile {rundir}/id_ed25519
  IdentitiesOnly yes
  IdentityAgent none
  StrictHostKeyChecking no
  UserKnownHostsFile /dev/null
  GlobalKnownHostsFile /dev/null
  CheckHostIP no
  UpdateHostKeys no
  BatchMode yes
  ConnectTimeout 30
  ServerAliveInterval 0
  ControlMaster no
  ControlPath none
  ForwardAgent no
  ForwardX11 no
  AddressFamily inet
  Compression no
  LogLevel ERROR
"""


def ns_exists(ns):
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return ns in [line.split()[0] for line in out.splitlines() if line.strip()]


def wait_for(pred, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")


def listening(ns, ip, port):
    out = subprocess.run(nsexec(ns, ["ss", "-Hltn"]), capture_output=True, text=True).stdout
    return any(f"{ip}:{port}" in line for line in out.splitlines())


class Procs:
    """Every background process the run starts, so that all of them are ended."""

    def __init__(self):
        self.items = []

    def start(self, name, argv, **kw):
        p = subprocess.Popen(argv, **kw)
        self.items.append((name, p))
        return p

    def stop_all(self, sig=signal.SIGTERM):
        for name, p in self.items:
            if p.poll() is None:
                try:
                    p.send_signal(sig)
                except ProcessLookupError:
                    pass
        end = time.monotonic() + 5
        for name, p in self.items:
            try:
                p.wait(max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def cmd_run(a):
    if os.geteuid() != 0:
        sys.exit("scenario.py run: needs root (network namespaces)")
    hosts = load_hosts()
    missing = [h["ns"] for h in hosts.values() if not ns_exists(h["ns"])]
    if missing or not ns_exists(CORE):
        sys.exit(f"scenario.py: namespaces missing ({', '.join(missing) or CORE}); run testbed/netns.sh up")
    if not 1 <= a.relays <= 3:
        sys.exit("--relays must be 1, 2 or 3")
    out = os.path.abspath(a.out)
    rundir = os.path.join(out, "run", "ssh")
    privdir = os.path.join(out, "private")
    logdir = os.path.join(out, "logs")
    sessdir = os.path.join(out, "sessions")
    for d in (rundir, privdir, logdir, sessdir):
        os.makedirs(d, exist_ok=True)
    for d in (privdir, sessdir):
        for f in os.listdir(d):
            os.unlink(os.path.join(d, f))
    rng = random.Random(a.seed)
    wall0 = time.time_ns()
    t_start = time.monotonic()

    # ---- keys and configs
    def keygen(path, comment):
        if os.path.exists(path):
            os.unlink(path)
            os.unlink(path + ".pub")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path], check=True)

    keygen(os.path.join(rundir, "id_ed25519"), "relaytrace-testbed-client")
    with open(os.path.join(rundir, "id_ed25519.pub")) as f:
        pub = f.read()
    with open(os.path.join(rundir, "authorized_keys"), "w") as f:
        f.write(pub)
    ssh_config = os.path.join(rundir, "ssh_config")
    with open(ssh_config, "w") as f:
        f.write(SSH_CONFIG.format(rundir=rundir))
    os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege separation directory

    def on_term(*_):
        raise KeyboardInterrupt("SIGTERM")

    signal.signal(signal.SIGTERM, on_term)  # clean up as on Ctrl-C
    procs = Procs()
    captures = {}
    try:
        # ---- sshd on every host
        for h in hosts.values():
            hk = os.path.join(rundir, h["name"] + ".hostkey")
            keygen(hk, "relaytrace-testbed-" + h["name"])
            cfg = os.path.join(rundir, h["name"] + ".sshd_config")
            with open(cfg, "w") as f:
                f.write(SSHD_CONFIG.format(name=h["name"], ip=h["ip"], hostkey=hk, rundir=rundir))
            procs.start("sshd-" + h["name"], nsexec(h["ns"], ["/usr/sbin/sshd", "-D", "-f", cfg,
                                                              "-E", os.path.join(logdir, h["name"] + ".sshd.log")]))
        # ---- web server on us-host
        www = os.path.join(out, "run", "www")
        os.makedirs(www, exist_ok=True)
        with open(os.path.join(www, "index.html"), "w") as f:
            f.write("<html><body>" + "relaytrace testbed web page. " * 60 + "</body></html>\n")
        web = hosts["us-host"]
        procs.start("httpd", nsexec(web["ns"], [sys.executable, "-m", "http.server", "80", "--bind", web["ip"],
                                                "--directory", www]),
                    stdout=open(os.path.join(logdir, "httpd.log"), "w"), stderr=subprocess.STDOUT)
        for h in hosts.values():
            wait_for(lambda h=h: listening(h["ns"], h["ip"], 22), 10, f"sshd on {h['name']}")
        wait_for(lambda: listening(web["ns"], web["ip"], 80), 10, "http.server on us-host")
        log(f"sshd up on {len(hosts)} hosts, http on us-host ({time.monotonic() - t_start:.1f} s)")

        # ---- evasive relay: a forwarder pair between relay K and the next host of the chain
        chain_hosts = ["attacker"] + [f"relay{i}" for i in range(1, a.relays + 1)] + ["victim"]
        evasive = a.evasive_delay_ms > 0 or a.evasive_chaff > 0
        ev_k = a.evasive_relay or a.relays  # chain_hosts[ev_k] is the evasive relay
        if evasive:
            last, vic = hosts[chain_hosts[ev_k]], hosts[chain_hosts[ev_k + 1]]
            ev = [sys.executable, os.path.join(HERE, "evasive.py"), "--delay-ms", str(a.evasive_delay_ms),
                  "--chaff", str(a.evasive_chaff), "--seed", str(a.seed)]
            procs.start("evasive-victim", nsexec(vic["ns"], ev + [
                "--tunnel-listen", f"{vic['ip']}:{EVASIVE_TUNNEL_PORT}", "--plain-connect", f"{vic['ip']}:22"]),
                stdout=subprocess.DEVNULL, stderr=open(os.path.join(logdir, "evasive-victim.log"), "w"))
            procs.start("evasive-relay", nsexec(last["ns"], ev + [
                "--plain-listen", f"{last['ip']}:{EVASIVE_PORT}",
                "--tunnel-connect", f"{vic['ip']}:{EVASIVE_TUNNEL_PORT}"]),
                stdout=subprocess.DEVNULL, stderr=open(os.path.join(logdir, "evasive-relay.log"), "w"))
            wait_for(lambda: listening(vic["ns"], vic["ip"], EVASIVE_TUNNEL_PORT), 10,
                     f"evasive forwarder on {vic['name']}")
            wait_for(lambda: listening(last["ns"], last["ip"], EVASIVE_PORT), 10, "evasive forwarder on relay")
            log(f"evasive relay {last['name']} -> {vic['name']}: delay up to {a.evasive_delay_ms:g} ms per segment, "
                f"chaff {a.evasive_chaff:g} per data segment")

        # ---- captures (vantages)
        for h in hosts.values():
            pcap = os.path.join(privdir, h["name"] + ".pcap")
            errf = os.path.join(logdir, h["name"] + ".tcpdump.log")
            captures[h["name"]] = (procs.start("tcpdump-" + h["name"], nsexec(
                h["ns"], ["tcpdump", "-i", "eth0", "-n", "-s", str(a.snaplen), "--immediate-mode", "-U", "-Z", "root",
                          "-w", pcap]),
                stdout=subprocess.DEVNULL, stderr=open(errf, "w")), pcap, errf)
        for name, (p, pcap, errf) in captures.items():
            wait_for(lambda errf=errf: "listening on" in open(errf).read(), 10, f"tcpdump on {name}")
        time.sleep(0.5)
        log("tcpdump listening on every host's eth0 (snaplen %d)" % a.snaplen)

        # ---- traffic
        T = a.duration
        ip = {n: h["ip"] for n, h in hosts.items()}
        chain_sessions = []  # (name, start_ns, end_ns, rc)
        results = {}
        me = [sys.executable, os.path.abspath(__file__)]

        def session(name, src, target, jump, duration, seed, first=(), dump=False, port=0, end_within=0.0):
            # `jump` items are host names, or (host, port) for a jump reached at a port
            # other than 22 (the evasive relay's forwarder).
            hops = [f"{ip[j[0]]}:{j[1]}" if isinstance(j, tuple) else ip[j] for j in jump]
            argv = me + ["session", "--name", name, "--ns", hosts[src]["ns"], "--target", ip[target],
                         "--port", str(port),
                         "--jump", ",".join(hops), "--duration", str(duration),
                         "--seed", str(seed), "--ssh-config", ssh_config, "--log-dir", sessdir]
            for c in first:
                argv += ["--first", c]
            if dump:
                argv.append("--dump")
            if end_within:
                argv += ["--end-within", f"{end_within:.3f}"]
            s = time.time_ns()
            p = procs.start("session-" + name, argv, stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(logdir, name + ".session.log"), "w"))
            try:
                rc = p.wait(duration + 80)
            except subprocess.TimeoutExpired:
                p.kill()
                rc = p.wait()
            results[name] = rc
            return s, time.time_ns(), rc

        def delayed(delay, fn, *args, **kw):
            def run():
                time.sleep(delay)
                fn(*args, **kw)
            t = threading.Thread(target=run, daemon=True)
            t.start()
            return t

        def chain_runner():
            per = (T - 6) / a.sessions
            # Several sessions: each gets a slot of `per` seconds, and inside it a random
            # length (50-90 % of the slot, at least 8 s) at a random offset, as an operator
            # connects when there is work rather than on a clock. (Sessions of one length
            # back to back would repeat with a period, which no attacker is obliged to do and
            # which a time-shift null would mistake for chance.) One session keeps the whole
            # slot. Its own generator, so the other draws of a seed stay as they were.
            sched = random.Random(a.seed * 7919 + 17)
            slot0 = time.time()
            for k in range(a.sessions):
                name = f"chain-{k + 1}"
                length = per - 1.5
                if a.sessions > 1:
                    length = max(8.0, per * sched.uniform(0.5, 0.9))
                    wait = slot0 + k * per + sched.uniform(0.0, max(0.0, per - length - 1.5)) - time.time()
                    if wait > 0:
                        time.sleep(wait)
                jumps = list(chain_hosts[1:-1])
                target, port = "victim", 0
                if evasive and ev_k == a.relays:
                    # The last relay hands the session to its evasive forwarder (local port
                    # EVASIVE_PORT), which carries it to the victim's end of the tunnel.
                    target, port = chain_hosts[-2], EVASIVE_PORT
                elif evasive:
                    # Relay K reaches relay K+1 through its forwarder: the next jump is
                    # written as relay K's own address at EVASIVE_PORT (ssh -J host:port).
                    jumps[ev_k] = (chain_hosts[ev_k], EVASIVE_PORT)
                # A session's length counts from its prompt, so login (seconds through
                # relays) and the last command make it overrun its slot, and the next one
                # then starts right after it: back to back, every run on one common clock.
                # --keep-in-slots ends each inside its slot (--end-within, login included);
                # not the default, which CI and the committed sweeps were measured with.
                within = 0.0
                if a.sessions > 1 and a.keep_in_slots:
                    within = max(1.0, slot0 + (k + 1) * per - 1.0 - time.time())
                s, e, rc = session(name, "attacker", target, jumps, length,
                                   rng.randrange(1 << 30), first=("echo $SSH_CONNECTION",), dump=True,
                                   port=port, end_within=within)
                chain_sessions.append((name, s, e, rc))
                if within and (e - s) / 1e9 > within + 2:
                    log(f"{name}: lasted {(e - s) / 1e9:.1f} s, past its slot's end by "
                        f"{(e - s) / 1e9 - within - 1.0:.1f} s (slot {per:.1f} s)")
                time.sleep(1.0)

        def bulk():
            h = hosts["us-host"]
            s = time.time_ns()
            with open(os.path.join(logdir, "bulk.log"), "w") as err:
                p = procs.start("bulk", nsexec(h["ns"], ["ssh", "-F", ssh_config, ip["cn-host"],
                                                         f"head -c {a.bulk_bytes} /dev/zero"]),
                                stdout=subprocess.DEVNULL, stderr=err)
                try:
                    rc = p.wait(60)
                except subprocess.TimeoutExpired:
                    p.kill()
                    rc = p.wait()
            results["bulk"] = rc
            log(f"bulk transfer us-host -> cn-host: {a.bulk_bytes} bytes in {(time.time_ns() - s) / 1e9:.1f} s, rc {rc}")

        def webclient():
            h = hosts["kp-user"]
            p = procs.start("web", nsexec(h["ns"], me + ["web", "--url", f"http://{ip['us-host']}/",
                                                         "--duration", str(T - 2), "--seed", str(rng.randrange(1 << 30))]),
                            stdout=open(os.path.join(logdir, "web.log"), "w"), stderr=subprocess.STDOUT)
            try:
                results["web"] = p.wait(T + 20)
            except subprocess.TimeoutExpired:
                p.kill()
                results["web"] = p.wait()

        threads = [
            delayed(0.5, session, "neg-kp-user-to-relay1", "kp-user", "relay1", (), T - 2, rng.randrange(1 << 30)),
            delayed(1.0 + rng.random() * 2, session, "neg-relay1-to-us-host", "relay1", "us-host", (), T - 6,
                    rng.randrange(1 << 30)),
            delayed(2.0, chain_runner),
            delayed(1.5 + rng.random() * 3, session, "neg-admin-jump", "bo-admin", "bo-host", ("relay2",), T - 7,
                    rng.randrange(1 << 30)),
            delayed(T / 3, bulk),
        ]
        if not a.no_web:
            threads.append(delayed(0.2, webclient))
        log(f"traffic: chain {' -> '.join(chain_hosts)} x{a.sessions}, negatives, {T:.0f} s")
        deadline = time.monotonic() + T + 90
        for t in threads:
            t.join(max(0.1, deadline - time.monotonic()))
        time.sleep(1.5)  # last FIN/ACKs
    finally:
        # captures first (SIGINT flushes), then everything else
        for name, (p, pcap, errf) in captures.items():
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for name, (p, pcap, errf) in captures.items():
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        procs.stop_all()

    log(f"traffic done; session exit codes: {json.dumps(results, sort_keys=True)}")
    labels = build_labels(a, hosts, chain_hosts, chain_sessions, captures, wall0, out,
                          ev_k if evasive else None)
    with open(os.path.join(out, "labels.json"), "w") as f:
        json.dump(labels, f, indent=1, sort_keys=False)
        f.write("\n")
    print_summary(labels, out)
    bad = [n for n, rc in results.items() if rc not in (0,)]
    problems = labels["problems"]
    log(f"done in {time.monotonic() - t_start:.0f} s; {len(problems)} problem(s)")
    for p in problems:
        log("PROBLEM: " + p)
    return 1 if problems or bad else 0


def build_labels(a, hosts, chain_hosts, chain_sessions, captures, wall0, out, evasive_relay=None):
    """The labels file. `evasive_relay`: index in `chain_hosts` of the evasive relay (its
    outbound hop goes to the next host's tunnel port), or None."""
    ip = {n: h["ip"] for n, h in hosts.items()}
    by_ip = {h["ip"]: n for n, h in hosts.items()}
    problems = []
    # every connection at every vantage, merged by 5-tuple
    merged = {}
    for vantage, (_, pcap, errf) in captures.items():
        stats = open(errf).read().strip().splitlines()[-3:]
        for line in stats:
            if "dropped by kernel" in line and not line.startswith("0 "):
                problems.append(f"{vantage}: tcpdump {line}")
        nums = [int(x.split()[0]) for x in stats if x.split() and x.split()[0].isdigit()]
        if len(nums) == 3 and nums[0] != nums[1]:
            problems.append(f"{vantage}: tcpdump captured {nums[0]} of {nums[1]} packets")
        for c in pcaplib.tcp_connections(pcap):
            key = (c["orig_h"], c["orig_p"], c["resp_h"], c["resp_p"])
            m = merged.setdefault(key, {"orig_h": c["orig_h"], "orig_p": c["orig_p"], "resp_h": c["resp_h"],
                                        "resp_p": c["resp_p"], "proto": "tcp", "start_ns": c["start_ns"],
                                        "end_ns": c["end_ns"], "syn_seen": c["syn_seen"], "seen_at": {}})
            m["start_ns"] = min(m["start_ns"], c["start_ns"])
            m["end_ns"] = max(m["end_ns"], c["end_ns"])
            m["syn_seen"] = m["syn_seen"] or c["syn_seen"]
            m["seen_at"][vantage] = {"start_ns": c["start_ns"], "end_ns": c["end_ns"],
                                     "orig_pkts": c["orig_pkts"], "resp_pkts": c["resp_pkts"],
                                     "orig_bytes": c["orig_bytes"], "resp_bytes": c["resp_bytes"]}
    conns = sorted(merged.values(), key=lambda c: (c["start_ns"], c["orig_h"], c["orig_p"]))

    # role rules: (orig host, resp host, resp port) -> (group kind, group id, hop)
    rules = {}
    for i in range(len(chain_hosts) - 1):
        port = EVASIVE_TUNNEL_PORT if evasive_relay == i else 22
        rules[(chain_hosts[i], chain_hosts[i + 1], port)] = ("attack-chain", None, i + 1)
    rules[("kp-user", "relay1", 22)] = ("unrelated-interactive", "neg-kp-user-to-relay1", 1)
    rules[("relay1", "us-host", 22)] = ("unrelated-interactive", "neg-relay1-to-us-host", 1)
    rules[("bo-admin", "relay2", 22)] = ("legit-jump", "neg-admin-jump", 1)
    rules[("relay2", "bo-host", 22)] = ("legit-jump", "neg-admin-jump", 2)
    rules[("us-host", "cn-host", 22)] = ("bulk-transfer", "neg-bulk", 1)
    rules[("kp-user", "us-host", 80)] = ("web", "neg-web", None)

    groups = {}
    for k, c in enumerate(conns):
        c["id"] = f"c{k + 1:03d}"
        c["start"] = iso(c["start_ns"])
        c["orig_host"] = by_ip.get(c["orig_h"])
        c["resp_host"] = by_ip.get(c["resp_h"])
        c["vantages"] = sorted(c["seen_at"])
        rule = rules.get((c["orig_host"], c["resp_host"], c["resp_p"]))
        if rule is None:
            c["label"], c["group"], c["hop"] = "unlabelled", None, None
            problems.append(f"unlabelled connection {c['orig_h']}:{c['orig_p']} -> {c['resp_h']}:{c['resp_p']}")
        else:
            kind, gid, hop = rule
            if kind == "attack-chain":
                gid = None
                for name, s, e, rc in chain_sessions:
                    if s - 1_000_000_000 <= c["start_ns"] <= e + 1_000_000_000:
                        gid = name
                if gid is None:
                    problems.append(f"chain-shaped connection {c['id']} outside every chain session")
                    gid = "chain-?"
            c["label"], c["group"], c["hop"] = kind, gid, hop
            groups.setdefault(gid, []).append(c)
        if not c["syn_seen"]:
            problems.append(f"{c['id']}: no SYN captured")

    chains = []
    links = []
    for name, s, e, rc in chain_sessions:
        members = sorted(groups.get(name, []), key=lambda c: c["hop"])
        hops = [m["hop"] for m in members]
        want = list(range(1, len(chain_hosts)))
        if hops != want:
            problems.append(f"{name}: hops found {hops}, expected {want}")
        seen_by_victim = None
        tr = os.path.join(out, "sessions", name + ".transcript")
        if os.path.exists(tr):
            for line in open(tr, "rb").read().decode("utf-8", "replace").splitlines():
                parts = line.strip().split()
                if len(parts) == 4 and all(p.replace(".", "").isdigit() for p in parts):
                    seen_by_victim = line.strip()
                    break
        # Through an evasive tunnel into the victim, the victim's sshd is reached from the
        # victim's own end of the tunnel.
        expect_from = ip["victim"] if evasive_relay == len(chain_hosts) - 2 else ip[chain_hosts[-2]]
        if not seen_by_victim or seen_by_victim.split()[0] != expect_from:
            problems.append(f"{name}: victim's SSH_CONNECTION is {seen_by_victim!r}, expected from {expect_from}")
        chains.append({
            "id": name, "kind": "attack", "path": chain_hosts, "path_ips": [ip[h] for h in chain_hosts],
            "session": {"start": iso(s), "end": iso(e), "start_ns": s, "end_ns": e, "exit_code": rc,
                        "events": f"sessions/{name}.events.jsonl"},
            "victim_ssh_connection": seen_by_victim,
            "hops": [m["id"] for m in members],
        })
        for x, y in zip(members, members[1:]):
            links.append({"relay": chain_hosts[x["hop"]], "in": x["id"], "out": y["id"], "kind": "attack", "group": name})
    neg_groups = []
    for gid in sorted(g for g in groups if g.startswith("neg-")):
        members = groups[gid]
        neg_groups.append({"id": gid, "kind": members[0]["label"], "conns": [m["id"] for m in members]})
        if gid == "neg-admin-jump":
            m = sorted(members, key=lambda c: c["hop"])
            ins = [c for c in m if c["hop"] == 1]
            outs = [c for c in m if c["hop"] == 2]
            for x, y in zip(ins, outs):
                links.append({"relay": "relay2", "in": x["id"], "out": y["id"], "kind": "legit-jump", "group": gid})
    for gid in ("neg-kp-user-to-relay1", "neg-relay1-to-us-host", "neg-admin-jump", "neg-bulk"):
        if gid not in groups:
            problems.append(f"negative {gid}: no connection captured")

    for c in conns:
        for k in ("seen_at",):
            c[k] = {v: dict(d, start=iso(d["start_ns"])) for v, d in sorted(c[k].items())}
    order = ["id", "label", "group", "hop", "proto", "orig_h", "orig_p", "resp_h", "resp_p", "orig_host",
             "resp_host", "start", "start_ns", "end_ns", "syn_seen", "vantages", "seen_at"]
    conns = [{k: c[k] for k in order} for c in conns]
    return {
        "format": "relaytrace-testbed-labels/1",
        "address_space": "private",
        "scenario": {"relays": a.relays, "duration_s": a.duration, "sessions": a.sessions, "seed": a.seed,
                     "snaplen": a.snaplen, "bulk_bytes": a.bulk_bytes, "web": not a.no_web,
                     "evasive_delay_ms": a.evasive_delay_ms, "evasive_chaff": a.evasive_chaff,
                     "evasive_relay": (chain_hosts[evasive_relay] if evasive_relay is not None else None),
                     "keep_in_slots": a.keep_in_slots, "started": iso(wall0)},
        "hosts": {n: {"ip": h["ip"], "role": h["role"], "network": h["network"]} for n, h in hosts.items()},
        "vantages": {n: {"pcap": f"{n}.pcap", "iface": "eth0", "ip": ip[n]} for n in captures},
        "chains": chains,
        "negatives": neg_groups,
        "links": links,
        "links_note": ("True relay links (in -> out at a relay). 'attack' links form the labelled chains; "
                       "'legit-jump' is an admin's real jump through relay2 (a true relay, but not the attack). "
                       "Every other (in, out) pair of connections at a host is a false link."),
        "connections": conns,
        "problems": problems,
    }


def print_summary(labels, out):
    print()
    print("vantage       pcap bytes  tcp conns  chain conns")
    chain_ids = {c for ch in labels["chains"] for c in ch["hops"]}
    for v in labels["vantages"]:
        path = os.path.join(out, "private", v + ".pcap")
        here = [c for c in labels["connections"] if v in c["seen_at"]]
        print(f"{v:12s} {os.path.getsize(path):11d} {len(here):10d} {sum(c['id'] in chain_ids for c in here):12d}")
    print()
    for ch in labels["chains"]:
        print(f"{ch['id']}: {' -> '.join(ch['path'])}  victim saw SSH_CONNECTION={ch['victim_ssh_connection']!r}")
        for cid in ch["hops"]:
            c = next(x for x in labels["connections"] if x["id"] == cid)
            print(f"  hop {c['hop']}: {c['orig_h']}:{c['orig_p']} -> {c['resp_h']}:{c['resp_p']} "
                  f"start {c['start']} seen at {','.join(c['vantages'])}")
    kinds = {}
    for c in labels["connections"]:
        kinds[c["label"]] = kinds.get(c["label"], 0) + 1
    print("connections by label:", json.dumps(kinds, sort_keys=True))
    print()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run a whole scenario")
    r.add_argument("--out", default="/tmp/relaytrace-testbed/out")
    r.add_argument("--relays", type=int, default=2, help="relays in the chain (1-3); TCP hops = relays + 1")
    r.add_argument("--duration", type=float, default=60, help="seconds of traffic (default 60)")
    r.add_argument("--sessions", type=int, default=1, help="attack chain sessions, one after another")
    r.add_argument("--seed", type=int, default=1)
    r.add_argument("--snaplen", type=int, default=128)
    r.add_argument("--bulk-bytes", type=int, default=1_000_000)
    r.add_argument("--no-web", action="store_true")
    r.add_argument("--keep-in-slots", action="store_true",
                   help="with several sessions, end each inside its slot (login included), so "
                        "that sessions are spaced at random; by default they may overrun and "
                        "run back to back")
    r.add_argument("--evasive-delay-ms", type=float, default=0.0,
                   help="make a relay evasive: delay each segment to the next host by up to this (ms)")
    r.add_argument("--evasive-relay", type=int, default=0,
                   help="which relay is evasive, 1..--relays (default: the last)")
    r.add_argument("--evasive-chaff", type=float, default=0.0,
                   help="evasive relay: chaff segments per real segment (0..1 = 0..100 %%)")
    s = sub.add_parser("session", help="(internal) one interactive ssh session in a pty")
    s.add_argument("--name", required=True)
    s.add_argument("--ns", required=True)
    s.add_argument("--target", required=True)
    s.add_argument("--jump", default="")
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--duration", type=float, required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--ssh-config", required=True)
    s.add_argument("--log-dir", required=True)
    s.add_argument("--first", action="append", help="command(s) to type first")
    s.add_argument("--dump", action="store_true", help="type one ~40 KB output command mid-session")
    s.add_argument("--end-within", type=float, default=0.0,
                   help="end the whole connection, login included, about this many seconds after "
                        "the start: no new command once it could not be done in time (0: no limit)")
    w = sub.add_parser("web", help="(internal) periodic HTTP fetches")
    w.add_argument("--url", required=True)
    w.add_argument("--duration", type=float, required=True)
    w.add_argument("--seed", type=int, default=0)
    w.add_argument("--mean-gap", type=float, default=3.0)
    a = ap.parse_args()
    if a.cmd == "run":
        if a.duration < 20:
            sys.exit("--duration must be at least 20 s")
        if not 0 <= a.evasive_relay <= a.relays:
            sys.exit("--evasive-relay must be between 1 and --relays")
        if a.sessions < 1 or (a.duration - 6) / a.sessions < 12:
            sys.exit("--sessions: each chain session needs at least 12 s of --duration")
        try:
            return cmd_run(a)
        except KeyboardInterrupt:
            log("interrupted: captures stopped, processes ended, no labels written")
            return 130
    if a.cmd == "session":
        return cmd_session(a)
    return cmd_web(a)


if __name__ == "__main__":
    sys.exit(main())
