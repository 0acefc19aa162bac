#!/usr/bin/python3
"""A mock KMS for client_encryption tests: HTTPS on 127.0.0.1, a port the OS picks.

    mock_kms.py DIR    writes DIR/ca.pem (a fresh CA) and serves with a certificate it issued for
                       IP 127.0.0.1 only; prints "port N M" once it listens on 127.0.0.1:N and
                       127.0.0.2:M (the same service, a host name the certificate does not name). Exits when stdin closes (its parent went away) or
                       after 120 s.

AWS (X-Amz-Target TrentService.Encrypt / TrentService.Decrypt) and Azure (oauth2 token, then
wrapkey / unwrapkey). The "ciphertext" is the key id, a NUL and the plaintext XORed with 0x5A, so
it decrypts without state. A key id containing "fail" is answered with an error reply.
"""
import base64
import datetime
import ipaddress
import json
import os
import socket
import ssl
import sys
import threading

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def make_certificates(directory):
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "trellis mock KMS CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(hours=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(hours=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_file = os.path.join(directory, "ca.pem")
    server_file = os.path.join(directory, "server.pem")
    with open(ca_file, "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    with open(server_file, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return server_file


def wrap(key_id, plaintext):
    return key_id.encode() + b"\0" + bytes(b ^ 0x5A for b in plaintext)


def unwrap(blob):
    key_id, _, masked = blob.partition(b"\0")
    return key_id.decode(), bytes(b ^ 0x5A for b in masked)


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url_encode(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def answer(method, path, headers, body):
    """(status, JSON reply) for one request."""
    target = headers.get("x-amz-target", "")
    if target == "TrentService.Encrypt":
        request = json.loads(body)
        key_id = request["KeyId"]
        if "fail" in key_id:
            return 400, {"__type": "NotFoundException", "message": "mock KMS: key " + key_id + " does not exist"}
        blob = wrap(key_id, base64.b64decode(request["Plaintext"]))
        return 200, {"CiphertextBlob": base64.b64encode(blob).decode(), "KeyId": key_id}
    if target == "TrentService.Decrypt":
        key_id, plaintext = unwrap(base64.b64decode(json.loads(body)["CiphertextBlob"]))
        if "fail" in key_id:
            return 400, {"__type": "InvalidCiphertextException", "message": "mock KMS: cannot decrypt"}
        return 200, {"Plaintext": base64.b64encode(plaintext).decode(), "KeyId": key_id}
    if method == "POST" and path.split("?")[0].endswith("/oauth2/v2.0/token"):
        return 200, {"access_token": "mock-azure-token", "expires_in": 3600, "token_type": "Bearer"}
    route = path.split("?")[0]
    if method == "POST" and (route.endswith("/wrapkey") or route.endswith("/unwrapkey")):
        if headers.get("authorization") != "Bearer mock-azure-token":
            return 401, {"error": {"code": "Unauthorized", "message": "mock KMS: no access token"}}
        key_name = route.split("/")[2]
        if "fail" in key_name:
            return 404, {"error": {"code": "KeyNotFound", "message": "mock KMS: key " + key_name + " not found"}}
        value = b64url_decode(json.loads(body)["value"])
        if route.endswith("/wrapkey"):
            out = wrap(key_name, value)
        else:
            out = unwrap(value)[1]
        return 200, {"kid": "https://mock/keys/" + key_name, "value": b64url_encode(out)}
    return 404, {"message": "mock KMS: no route for " + method + " " + path}


def serve(context, raw):
    try:
        conn = context.wrap_socket(raw, server_side=True)
    except OSError:  # a client that refused our certificate (ssl.SSLError is an OSError)
        raw.close()
        return
    try:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                return
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = conn.recv(length - len(body))
            if not chunk:
                return
            body += chunk
        status, reply = answer(method, path, headers, body.decode())
        payload = json.dumps(reply).encode()
        reason = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}[status]
        conn.sendall(("HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                      "Connection: close\r\n\r\n" % (status, reason, len(payload))).encode() + payload)
    except (OSError, ValueError, KeyError) as e:
        sys.stderr.write("mock KMS: %r\n" % (e,))
    finally:
        conn.close()


def main():
    server_file = make_certificates(sys.argv[1])
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(server_file)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    # The same service on 127.0.0.2, which the certificate does not name.
    misnamed = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    misnamed.bind(("127.0.0.2", 0))
    misnamed.listen(4)

    def accept(listener):
        while True:
            conn, _ = listener.accept()
            conn.settimeout(10)
            threading.Thread(target=serve, args=(context, conn), daemon=True).start()

    threading.Thread(target=accept, args=(listener,), daemon=True).start()
    threading.Thread(target=accept, args=(misnamed,), daemon=True).start()
    threading.Timer(120, lambda: os._exit(0)).start()
    print("port %d %d" % (listener.getsockname()[1], misnamed.getsockname()[1]), flush=True)
    sys.stdin.read()  # returns when the parent closes the pipe or dies
    os._exit(0)


if __name__ == "__main__":
    main()
