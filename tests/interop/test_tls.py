"""Scenario 7: TLS with a throwaway CA made at test time (no key is committed)."""
import os
import subprocess
import tempfile
import unittest

import pymongo
from pymongo.errors import ServerSelectionTimeoutError

from simutil import Sim


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/O=Trellis Test/CN=" + name,
            "-keyout", name + ".key", "-out", name + ".pem", cwd=d)


def make_cert(d, name, ca, subject, san=None):
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", name + ".key", "-out", name + ".csr",
            cwd=d)
    ext = []
    if san:
        with open(os.path.join(d, name + ".ext"), "w") as f:
            f.write("subjectAltName=" + san + "\n")
        ext = ["-extfile", name + ".ext"]
    openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key", "-CAcreateserial",
            "-days", "2", "-out", name + ".pem", *ext, cwd=d)
    with open(os.path.join(d, name + "-bundle.pem"), "w") as out:
        for part in (name + ".pem", name + ".key"):
            with open(os.path.join(d, part)) as f:
                out.write(f.read())


class Tls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="trellis-tls-")
        d = cls.d = cls.tmp.name
        make_ca(d, "ca")
        make_ca(d, "other-ca")
        make_cert(d, "server", "ca", "/O=Trellis Test/CN=localhost", "DNS:localhost,IP:127.0.0.1")
        make_cert(d, "client", "ca", "/O=Trellis/OU=clients/CN=app-client")
        cls.sim = Sim("--tls-cert", os.path.join(d, "server.pem"), "--tls-key", os.path.join(d, "server.key"),
                      "--tls-ca", os.path.join(d, "ca.pem"),
                      "--user", "CN=app-client,OU=clients,O=Trellis:@$external", "--user", "admin:pw")

    @classmethod
    def tearDownClass(cls):
        cls.sim.stop()
        cls.tmp.cleanup()

    def client(self, **kw):
        c = pymongo.MongoClient(self.sim.members[0], tls=True, serverSelectionTimeoutMS=3000, **kw)
        self.addCleanup(c.close)
        return c

    def test_uri_says_tls(self):
        self.assertIn("tls=true", self.sim.uri)

    def test_trusted_ca_connects(self):
        c = self.client(tlsCAFile=os.path.join(self.d, "ca.pem"), username="admin", password="pw")
        self.assertEqual(c.admin.command("ping")["ok"], 1.0)
        c.tls.data.insert_one({"secure": True})

    def test_other_ca_fails(self):
        c = self.client(tlsCAFile=os.path.join(self.d, "other-ca.pem"))
        with self.assertRaises(ServerSelectionTimeoutError) as ctx:
            c.admin.command("ping")
        self.assertIn("certificate verify failed", str(ctx.exception))

    def test_x509_authentication(self):
        c = self.client(tlsCAFile=os.path.join(self.d, "ca.pem"),
                        tlsCertificateKeyFile=os.path.join(self.d, "client-bundle.pem"),
                        authMechanism="MONGODB-X509")
        c.x509.data.insert_one({"by": "certificate"})
        self.assertEqual(c.x509.data.count_documents({}), 1)


class TlsClientCertificateRequired(unittest.TestCase):
    def test_connection_without_certificate_fails(self):
        with tempfile.TemporaryDirectory(prefix="trellis-tls-") as d:
            make_ca(d, "ca")
            make_cert(d, "server", "ca", "/O=Trellis Test/CN=localhost", "DNS:localhost,IP:127.0.0.1")
            make_cert(d, "client", "ca", "/O=Trellis/CN=c")
            with Sim("--tls-cert", os.path.join(d, "server.pem"), "--tls-key", os.path.join(d, "server.key"),
                     "--tls-ca", os.path.join(d, "ca.pem"), "--tls-require-client-cert") as sim:
                ok = pymongo.MongoClient(sim.members[0], tls=True, tlsCAFile=os.path.join(d, "ca.pem"),
                                         tlsCertificateKeyFile=os.path.join(d, "client-bundle.pem"),
                                         serverSelectionTimeoutMS=3000)
                self.assertEqual(ok.admin.command("ping")["ok"], 1.0)
                ok.close()
                bare = pymongo.MongoClient(sim.members[0], tls=True, tlsCAFile=os.path.join(d, "ca.pem"),
                                           serverSelectionTimeoutMS=2000)
                with self.assertRaises(ServerSelectionTimeoutError):
                    bare.admin.command("ping")
                bare.close()


if __name__ == "__main__":
    unittest.main()
