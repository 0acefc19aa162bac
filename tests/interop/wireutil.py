"""A minimal raw wire-protocol client for tests that need exact control of
flags, sections and compression (PyMongo's public API hides them)."""
import socket
import struct
import zlib

import bson

OP_REPLY, OP_QUERY, OP_COMPRESSED, OP_MSG = 1, 2004, 2012, 2013
MORE_TO_COME, EXHAUST_ALLOWED = 1 << 1, 1 << 16


class Conn:
    def __init__(self, address, timeout=10):
        host, port = address.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.next_id = 1

    def close(self):
        self.sock.close()

    def _recv_exact(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("connection closed by the server")
            data += chunk
        return data

    def send_msg(self, doc, flags=0, compress=False):
        self.next_id += 1
        body = struct.pack("<I", flags) + b"\x00" + bson.encode(doc)
        if compress:
            packed = zlib.compress(body)
            payload = struct.pack("<iiB", OP_MSG, len(body), 2) + packed
            frame = struct.pack("<iiii", 16 + len(payload), self.next_id, 0, OP_COMPRESSED) + payload
        else:
            frame = struct.pack("<iiii", 16 + len(body), self.next_id, 0, OP_MSG) + body
        self.sock.sendall(frame)
        return self.next_id

    def send_query(self, ns, doc, flags=0):
        self.next_id += 1
        body = struct.pack("<i", flags) + ns.encode() + b"\x00" + struct.pack("<ii", 0, -1) + bson.encode(doc)
        self.sock.sendall(struct.pack("<iiii", 16 + len(body), self.next_id, 0, OP_QUERY) + body)
        return self.next_id

    def read(self):
        """Returns (opcode, flags, document, request_id, response_to, compressed)."""
        length, request_id, response_to, opcode = struct.unpack("<iiii", self._recv_exact(16))
        payload = self._recv_exact(length - 16)
        compressed = False
        if opcode == OP_COMPRESSED:
            opcode, size, compressor = struct.unpack("<iiB", payload[:9])
            assert compressor == 2, compressor
            payload = zlib.decompress(payload[9:])
            assert len(payload) == size
            compressed = True
        if opcode == OP_MSG:
            flags = struct.unpack("<I", payload[:4])[0]
            assert payload[4] == 0
            return opcode, flags, bson.decode(payload[5:]), request_id, response_to, compressed
        if opcode == OP_REPLY:
            flags, _cursor, _start, n = struct.unpack("<iqii", payload[:20])
            return opcode, flags, bson.decode(payload[20:]), request_id, response_to, compressed
        raise AssertionError("unexpected opcode %d" % opcode)

    def command(self, doc, **kw):
        self.send_msg(doc, **kw)
        return self.read()[2]
