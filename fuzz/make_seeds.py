#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (fuzz/corpus/TARGET/seed-*).

The files are committed; rerun this only after changing it:
    python3 fuzz/make_seeds.py
Protobuf is encoded by hand (varints and length-delimited fields), so this
needs nothing but python3. Regression inputs (fuzz/corpus/TARGET/regression-*)
are not touched.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_varint(num, value):
    return varint(num << 3) + varint(value) if value else b""


def field_bytes(num, data):
    if isinstance(data, str):
        data = data.encode()
    return varint((num << 3) | 2) + varint(len(data)) + data


def field_msg(num, body):
    return field_bytes(num, body)  # a set message field, even when empty


def opt_bytes(num, data):
    return field_bytes(num, data) if data else b""


def frame(payload):
    return struct.pack(">I", len(payload)) + payload


def request(rid, op_num, body):
    return frame(field_varint(1, rid) + field_msg(op_num, body))


# Request ops (PROTOCOL.md section 5).
HELLO, PING, RESERVE, COMPLETE, RELEASE, RENEW, LOOKUP, PURGE, SCAN, STATS = range(10, 20)


def reserve(rid, key, scope="s", fp="", lease=0, retention=0, wait=0):
    body = (opt_bytes(1, scope) + opt_bytes(2, key) + opt_bytes(3, fp) + field_varint(4, lease) +
            field_varint(5, retention) + field_varint(6, wait))
    return request(rid, RESERVE, body)


def complete(rid, key, token, status=200, body_bytes="ok", scope="s", retention=0):
    result = field_varint(1, status) + opt_bytes(2, body_bytes)
    body = (opt_bytes(1, scope) + opt_bytes(2, key) + field_varint(3, token) +
            field_msg(4, result) + field_varint(5, retention))
    return request(rid, COMPLETE, body)


def release(rid, key, token, scope="s"):
    return request(rid, RELEASE, opt_bytes(1, scope) + opt_bytes(2, key) + field_varint(3, token))


def renew(rid, key, token, lease=0, scope="s"):
    body = opt_bytes(1, scope) + opt_bytes(2, key) + field_varint(3, token) + field_varint(4, lease)
    return request(rid, RENEW, body)


def lookup(rid, key, scope="s"):
    return request(rid, LOOKUP, opt_bytes(1, scope) + opt_bytes(2, key))


def purge(rid, key, scope="s"):
    return request(rid, PURGE, opt_bytes(1, scope) + opt_bytes(2, key))


def scan(rid, scope="s", prefix="", cursor="", limit=0, all_scopes=False):
    body = (opt_bytes(1, scope) + opt_bytes(2, prefix) + opt_bytes(3, cursor) +
            field_varint(4, limit) + field_varint(5, 1 if all_scopes else 0))
    return request(rid, SCAN, body)


def advance(ms):
    """A Ping: the fuzzer advances its clock by the payload (little-endian)."""
    return request(0, PING, opt_bytes(1, ms.to_bytes(8, "little").rstrip(b"\0")))


def toggle_batching():
    return request(0, HELLO, b"")


def close_session(slot):
    return request(slot, STATS, b"")


# Session slot = id % 3 (slots 0 and 1 share a tenant, slot 2 has its own). Tokens 1..255 name the
# tokens granted so far in the input, in order.
REQUEST_PATH = {
    "basic": reserve(3, "k1", fp="f1") + complete(3, "k1", 1) + reserve(6, "k1", fp="f1") +
    lookup(9, "k1") + scan(12) + scan(15, all_scopes=True) + purge(18, "k1") + lookup(21, "k1"),
    "waiters": reserve(3, "k", lease=5000) + reserve(1, "k", wait=5000) +
    reserve(4, "k", wait=5000) + release(3, "k", 1) + complete(1, "k", 2) + lookup(6, "k") +
    reserve(2, "k") + lookup(5, "k"),
    "expiry": reserve(3, "k", lease=100, retention=2000) + advance(150) + reserve(6, "k") +
    complete(9, "k", 1) + renew(12, "k", 2, lease=500) + advance(2500) + lookup(15, "k") +
    advance(10_000) + lookup(18, "k") + reserve(21, "k") + lookup(24, "k"),
    "batch": toggle_batching() + reserve(3, "k") + lookup(6, "k") + complete(9, "k", 1) +
    reserve(12, "k") + purge(15, "k") + reserve(18, "k") + scan(21) + toggle_batching() +
    complete(24, "k", 1) + lookup(27, "k") + scan(30, all_scopes=True),
    "invalid": reserve(3, "") + reserve(6, "k", scope="scope-too-long") +
    complete(9, "k", 1, body_bytes="x" * 100) + reserve(12, "k", wait=70_000) +
    scan(15, prefix="p" * 20) + scan(18, cursor="garbage") + frame(b"") + frame(b"\xff\xff") +
    reserve(21, "k" * 17) + reserve(24, "k", fp="f" * 9),
    "close": reserve(3, "k") + reserve(1, "k", wait=3000) + close_session(1) +
    release(3, "k", 1) + lookup(6, "k") + reserve(4, "k", wait=100) + advance(60_000) +
    reserve(7, "k"),
    "mismatch": reserve(3, "k", fp="a") + reserve(6, "k", fp="b") + release(9, "k", 1) +
    reserve(12, "k", fp="b") + reserve(15, "k") + renew(18, "k", 2) + lookup(21, "k") +
    complete(24, "k", 2, status=500, body_bytes="") + reserve(27, "k", fp="b"),
    "exhausted": reserve(3, "k") + reserve(1, "k", wait=1) + reserve(4, "k", wait=1) +
    reserve(7, "k", wait=1) + reserve(10, "k", wait=1) + reserve(6, "j") +
    reserve(13, "j", wait=1) + reserve(16, "j", wait=1) + reserve(19, "j", wait=1) +
    purge(9, "k") + release(12, "j", 2),
    "scan_pages": reserve(3, "a") + reserve(6, "b") + reserve(9, "c", scope="t") +
    reserve(12, "ab") + reserve(2, "a") + scan(15, limit=2) + scan(18, prefix="a") +
    scan(21, all_scopes=True, prefix="a") + complete(24, "b", 2) + advance(1500) +
    scan(27, all_scopes=True) + scan(5, all_scopes=True) + advance(60_000) + scan(30),
    "fencing": reserve(3, "k", lease=10) + advance(10) + reserve(1, "k", lease=10) +
    advance(9) + renew(3, "k", 1) + release(6, "k", 1) + complete(6, "k", 1) + advance(1) +
    reserve(4, "k") + complete(6, "k", 2) + complete(9, "k", 3) + complete(9, "k", 3) +
    lookup(12, "k"),
}


def frame_decoder_input(limit, chunks, stream):
    return struct.pack("<H", limit) + bytes(chunks) + stream


FRAME_DECODER = {
    "small_frames": frame_decoder_input(0xFFFF, [1, 1, 1, 1],
                                        frame(b"") + frame(b"abc") + frame(b"x" * 40) + b"\0\0"),
    "too_large": frame_decoder_input(16, [3, 0, 7, 64], frame(b"y" * 16) + frame(b"z" * 17) + b"!!"),
    "request": frame_decoder_input(4096, [255, 255, 255, 255],
                                   REQUEST_PATH["basic"] + REQUEST_PATH["expiry"][:30]),
    "zero_limit": frame_decoder_input(0, [2, 5, 1, 9], frame(b"") * 3 + frame(b"a")),
    "header_split": frame_decoder_input(1024, [2, 2, 3, 1], frame(b"hello") * 4 + b"\0\0\1"),
    "huge_length": frame_decoder_input(0xFFFF, [4, 4, 4, 4], frame(b"ok") + b"\xff\xff\xff\xff" +
                                       b"tail"),
}


def write(target, seeds):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(d, "seed-" + name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    write("request_path", REQUEST_PATH)
    write("frame_decoder", FRAME_DECODER)
