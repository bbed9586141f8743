#!/usr/bin/env python3
"""Test proxy: listen on 127.0.0.1:LISTEN, forward to 127.0.0.1:TARGET.

--rate B          limit client->server to B bytes/s (every connection)
--flip-at N       flip (xor 0xff) the byte at stream offset N of the first
                  connection's client->server stream
--flip-seg K:J    same, at body offset J of the K-th (1-based) SEGMENT
                  message (ferry framing: u32 type, u32 length, LE)
--flip-piece K:J  same, in the K-th PIECE message (a streamed frame's)
--flip-payload K:J  same, in the K-th PAYLOAD message (a whole frame's)
--hold-piece K    forward the first connection up to the K-th PIECE
                  message, then nothing more (the test cuts it there)
--hold-at N       the same at stream offset N of the first connection
Flips happen on the first connection only; later ones pass through.

A machine on the path, message by message (client->server, first
connection only unless said):
--drop-msg K      the K-th message never reaches the receiver
--replay-msg K    the K-th message goes twice
--splice K        the second connection's K-th message is replaced by the
                  first connection's K-th (a message from another session)
--capture FILE    every connection's bytes, as they pass, appended to
                  FILE.c2s and FILE.s2c

Framing (PROTOCOL.md): u32 type, u32 length, LE, then the body; after
the handshake (two messages each way) every message also carries a
16-byte tag after its body, except PAYLOAD (type 20).
"""
import argparse, socket, struct, sys, threading, time

MSG_SEGMENT = 7
MSG_PIECE = 17
MSG_PAYLOAD = 20
TAG = 16
HANDSHAKE_MSGS = 2
ap = argparse.ArgumentParser()
ap.add_argument("--listen", type=int, required=True)
ap.add_argument("--target", type=int, required=True)
ap.add_argument("--rate", type=float, default=0)
ap.add_argument("--flip-at", type=int, default=-1)
ap.add_argument("--flip-seg", default="")
ap.add_argument("--flip-piece", default="")
ap.add_argument("--flip-payload", default="")
ap.add_argument("--hold-piece", type=int, default=0)
ap.add_argument("--hold-at", type=int, default=-1)
ap.add_argument("--drop-msg", type=int, default=0)
ap.add_argument("--replay-msg", type=int, default=0)
ap.add_argument("--splice", type=int, default=0)
ap.add_argument("--capture", default="")
a = ap.parse_args()
recorded = {}             # --splice: the first connection's message

lock = threading.Lock()
nconn = 0

def out(msg):
    with lock:
        sys.stdout.write(msg + "\n")
        sys.stdout.flush()

class Parser:
    """Follows the message framing and reports message starts."""
    def __init__(self):
        self.off = 0          # stream offset of the next byte
        self.hdr = b""
        self.body_left = 0
        self.nmsg = 0
        self.nseg = 0
        self.npiece = 0
        self.npayload = 0
        self.cur = None       # (type, body_start)
    def feed(self, chunk, on_msg):
        i = 0
        while i < len(chunk):
            if self.body_left:
                k = min(self.body_left, len(chunk) - i)
                self.body_left -= k
                i += k
                continue
            k = min(8 - len(self.hdr), len(chunk) - i)
            self.hdr += chunk[i:i + k]
            i += k
            if len(self.hdr) == 8:
                t, n = struct.unpack("<II", self.hdr)
                self.hdr = b""
                self.nmsg += 1
                if t == MSG_SEGMENT:
                    self.nseg += 1
                if t == MSG_PIECE:
                    self.npiece += 1
                if t == MSG_PAYLOAD:
                    self.npayload += 1
                k = (self.npiece if t == MSG_PIECE else
                     self.npayload if t == MSG_PAYLOAD else self.nseg)
                on_msg(t, n, self.off + i, self.nmsg, k)
                self.body_left = n + tag_len(self.nmsg, t)
        self.off += len(chunk)

def tag_len(nmsg, t):
    """Bytes of tag after message nmsg's body (1-based)."""
    return TAG if nmsg > HANDSHAKE_MSGS and t != MSG_PAYLOAD else 0

def capture(cid, way, b):
    if a.capture and b:
        with lock:
            with open(a.capture + "." + way, "ab") as f:
                f.write(b)

def recv_exact(c, n):
    b = bytearray()
    while len(b) < n:
        x = c.recv(n - len(b))
        if not x:
            return None
        b += x
    return bytes(b)

def half_close(s, cid, what):
    """The client is done sending: so is the proxy, towards the server."""
    try:
        s.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    out("conn %d: client->server closed after %s" % (cid, what))

def pump_msgs(c, s, cid):
    """Whole messages, each forwarded, dropped, doubled or replaced."""
    nmsg = 0
    try:
        while True:
            h = recv_exact(c, 8)
            if h is None:
                break
            nmsg += 1
            t, n = struct.unpack("<II", h)
            body = recv_exact(c, n + tag_len(nmsg, t))
            if body is None:
                break
            m = h + body
            if a.splice and nmsg == a.splice:
                if cid == 1:
                    recorded["m"] = m
                    out("conn 1: recorded message #%d type %d len %d" % (nmsg, t, n))
                elif cid == 2 and "m" in recorded:
                    m = recorded["m"]
                    out("conn 2: spliced in message #%d of conn 1 (type %d) "
                        "for message #%d type %d" % (nmsg, struct.unpack("<I", m[:4])[0], nmsg, t))
            if cid == 1 and nmsg == a.drop_msg:
                out("conn %d: dropped message #%d type %d len %d" % (cid, nmsg, t, n))
                continue
            capture(cid, "c2s", m)
            s.sendall(m)
            if cid == 1 and nmsg == a.replay_msg:
                out("conn %d: replayed message #%d type %d len %d" % (cid, nmsg, t, n))
                capture(cid, "c2s", m)
                s.sendall(m)
    except OSError as e:
        out("conn %d: client side: %s" % (cid, e))
    half_close(s, cid, "%d messages" % nmsg)

def pump_c2s(c, s, cid):
    if a.drop_msg or a.replay_msg or a.splice:
        return pump_msgs(c, s, cid)
    flip_at = a.flip_at if cid == 1 else -1
    seg_k, seg_j, seg_t = -1, -1, MSG_SEGMENT
    if cid == 1 and a.flip_seg:
        seg_k, seg_j = (int(x) for x in a.flip_seg.split(":"))
    if cid == 1 and a.flip_piece:
        seg_k, seg_j = (int(x) for x in a.flip_piece.split(":"))
        seg_t = MSG_PIECE
    if cid == 1 and a.flip_payload:
        seg_k, seg_j = (int(x) for x in a.flip_payload.split(":"))
        seg_t = MSG_PAYLOAD
    p = Parser()
    where = {}
    hold_at = a.hold_at if cid == 1 else -1  # stream offset of the hold
    def on_msg(t, n, body, nmsg, nseg):
        nonlocal flip_at, hold_at
        if cid == 1 and t == MSG_PIECE and nseg == a.hold_piece:
            hold_at = body - 8
        if t == seg_t and nseg == seg_k and flip_at < 0:
            flip_at = body + seg_j
        if flip_at >= 0 and body <= flip_at < body + n and "m" not in where:
            where["m"] = (nmsg, t, n, flip_at - body,
                          nseg if t in (MSG_SEGMENT, MSG_PIECE, MSG_PAYLOAD) else 0)
    off = 0               # stream offset of pend[0]
    pend = bytearray()    # a message header split by recv is held back
                          # until complete, so a flip can still reach it
    t0 = time.monotonic()
    step = 65536
    if a.rate:
        step = max(1024, min(65536, int(a.rate / 50)))
    def flip_pending():
        nonlocal flip_at
        if 0 <= flip_at and off <= flip_at < off + len(pend):
            old = pend[flip_at - off]
            pend[flip_at - off] ^= 0xFF
            m = where.get("m")
            desc = ("message #%d type %d len %d, body offset %d, segment message #%d"
                    % m) if m else "in a message header"
            if m and m[1] == MSG_PAYLOAD:
                desc += " (payload message #%d)" % m[4]
            out("conn %d: flipped stream byte %d (0x%02x -> 0x%02x), %s"
                % (cid, flip_at, old, pend[flip_at - off], desc))
            flip_at = -2
    try:
        while True:
            b = c.recv(step)
            p.feed(b, on_msg)
            pend += b
            flip_pending()
            n = len(pend) - len(p.hdr) if b else len(pend)
            if hold_at >= 0:
                n = min(n, hold_at - off)
            if n > 0:
                capture(cid, "c2s", bytes(pend[:n]))
                s.sendall(pend[:n])
                del pend[:n]
                off += n
            if hold_at >= 0 and off >= hold_at:
                out("conn %d: holding before stream byte %d%s"
                    % (cid, hold_at, " (piece %d)" % a.hold_piece
                       if a.hold_piece else ""))
                while True:
                    time.sleep(3600)
            if not b:
                break
            if a.rate:
                ahead = off / a.rate - (time.monotonic() - t0)
                if ahead > 0:
                    time.sleep(ahead)
    except OSError as e:
        out("conn %d: client side: %s" % (cid, e))
    half_close(s, cid, "%d bytes" % off)

def pump_s2c(s, c, cid):
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            capture(cid, "s2c", b)
            c.sendall(b)
    except OSError as e:
        out("conn %d: server side: %s" % (cid, e))
    try:
        c.shutdown(socket.SHUT_WR)
    except OSError:
        pass

def handle(c, cid):
    try:
        s = socket.create_connection(("127.0.0.1", a.target))
    except OSError as e:
        out("conn %d: cannot reach the target: %s" % (cid, e))
        c.close()
        return
    t1 = threading.Thread(target=pump_c2s, args=(c, s, cid), daemon=True)
    t2 = threading.Thread(target=pump_s2c, args=(s, c, cid), daemon=True)
    t1.start(); t2.start(); t1.join(); t2.join()
    c.close(); s.close()
    out("conn %d: closed" % cid)

ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", a.listen))
ls.listen(16)
out("proxy listening on %d -> %d" % (a.listen, a.target))
while True:
    c, _ = ls.accept()
    nconn += 1
    out("conn %d: open" % nconn)
    threading.Thread(target=handle, args=(c, nconn), daemon=True).start()
