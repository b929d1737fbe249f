#!/usr/bin/python3
"""pki.py OUTDIR - a throwaway test PKI made with the openssl command.

    /usr/bin/python3 tests/integration/pki.py OUTDIR

Writes into OUTDIR (created; keys mode 600):

  root.pem, root.key           root CA
  inter.pem, inter.key         intermediate CA (signed by root): signs the
                               server and the site certificates
  ca-bundle.pem                root + intermediate: what SIREN trusts for
                               sites (--sites-ca) and clients trust for it
  crls.pem                     CRLs of root and intermediate (the latter
                               revokes revoked.pem)
  server.pem/.key              CN=localhost, DNS:localhost, IP:127.0.0.1,
                               serverAuth; server-chain.pem = server + inter
  site-a.pem/.key, site-b...   good site certificates: CN=site-a.example.org
                               (O=Site A, DNS:site-a.example.org, clientAuth);
                               NAME-chain.pem = leaf + intermediate
  bad certificates, each NAME.pem/.key/-chain.pem, and why they must fail:
    expired        validity ended 10 days ago
    notyet         validity starts in 10 days
    unknownca      signed by a CA nobody trusts (other-root)
    selfsigned     a self-signed client certificate
    revoked        listed in the intermediate's CRL
    wrongeku       extended key usage serverAuth only
    caleaf         basicConstraints CA:TRUE used as a client certificate
    rsa1024        a 1024-bit RSA key
    sha1           signed with SHA-1
    nointer        signed by inter2, an intermediate not in the bundle;
                   its chain file holds the leaf only

Everything is made fresh each run (nothing is committed); a run takes a
few seconds. The same script serves `make demo`.
"""

import datetime
import os
import shutil
import subprocess
import sys

SITES = {
    "site-a": "/O=Site A/CN=site-a.example.org",
    "site-b": "/O=Site B/CN=site-b.example.org",
}

CA_CONFIG = """\
[ ca ]
default_ca = this_ca
[ this_ca ]
dir = {dir}
database = $dir/index.txt
new_certs_dir = $dir/issued
serial = $dir/serial
crlnumber = $dir/crlnumber
default_md = {md}
default_crl_days = 30
policy = anything
copy_extensions = none
unique_subject = no
[ anything ]
commonName = supplied
organizationName = optional
[ v3_ca ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[ v3_intermediate ]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[ v3_server ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[ v3_client ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = DNS:{san}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[ v3_server_only ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[ v3_ca_leaf ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,digitalSignature,keyCertSign
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""


def openssl(*args, **kwargs):
    done = subprocess.run(["openssl", *args], capture_output=True, text=True,
                          **kwargs)
    if done.returncode != 0:
        sys.exit(f"pki.py: openssl {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def stamp(days):
    """openssl ca's date format, days from now (negative: past)."""
    when = (datetime.datetime.now(datetime.timezone.utc) +
            datetime.timedelta(days=days))
    return when.strftime("%Y%m%d%H%M%SZ")


class Authority:
    """A CA with openssl ca's database in OUT/ca-NAME."""

    def __init__(self, out, name, md="sha256"):
        self.out = out
        self.name = name
        self.dir = os.path.join(out, f"ca-{name}")
        os.makedirs(os.path.join(self.dir, "issued"))
        open(os.path.join(self.dir, "index.txt"), "w").close()
        with open(os.path.join(self.dir, "serial"), "w") as f:
            f.write("1000\n")
        with open(os.path.join(self.dir, "crlnumber"), "w") as f:
            f.write("01\n")
        self.md = md
        self.key = os.path.join(out, f"{name}.key")
        self.cert = os.path.join(out, f"{name}.pem")

    def config(self, san="example.org", md=None):
        path = os.path.join(self.dir, "openssl.cnf")
        with open(path, "w") as f:
            f.write(CA_CONFIG.format(dir=self.dir, md=md or self.md, san=san))
        return path

    def sign(self, csr, out, extensions, start=-1, end=365, md=None, san=None):
        openssl("ca", "-batch", "-config", self.config(san or "example.org",
                                                       md),
                "-cert", self.cert, "-keyfile", self.key, "-in", csr,
                "-out", out, "-notext", "-extensions", extensions,
                "-startdate", stamp(start), "-enddate", stamp(end),
                *(["-md", md] if md else []))

    def revoke(self, cert):
        openssl("ca", "-config", self.config(), "-cert", self.cert,
                "-keyfile", self.key, "-revoke", cert)

    def crl(self, out):
        openssl("ca", "-gencrl", "-config", self.config(), "-cert", self.cert,
                "-keyfile", self.key, "-out", out)


def new_key(path, bits=2048):
    openssl("genpkey", "-algorithm", "RSA", "-pkeyopt",
            f"rsa_keygen_bits:{bits}", "-out", path)
    os.chmod(path, 0o600)


def request(out, name, subject, bits=2048):
    key = os.path.join(out, f"{name}.key")
    csr = os.path.join(out, f"{name}.csr")
    new_key(key, bits)
    openssl("req", "-new", "-key", key, "-subj", subject, "-out", csr)
    return csr


def self_signed_ca(out, name, subject):
    ca = Authority(out, name)
    new_key(ca.key, 3072)
    config = ca.config()
    openssl("req", "-x509", "-new", "-key", ca.key, "-subj", subject,
            "-days", "3650", "-config", config, "-extensions", "v3_ca",
            "-out", ca.cert)
    return ca


def intermediate(out, root, name, subject):
    ca = Authority(out, name)
    csr = request(out, name, subject, 3072)
    root.sign(csr, ca.cert, "v3_intermediate", end=3650)
    os.remove(csr)
    return ca


def concatenate(out, *paths):
    with open(out, "w") as target:
        for path in paths:
            with open(path) as source:
                target.write(source.read())


def leaf(out, ca, name, subject, extensions="v3_client", chain=True,
         **sign_args):
    """A certificate NAME.pem/.key signed by ca, and NAME-chain.pem."""
    csr = request(out, name, subject, sign_args.pop("bits", 2048))
    cert = os.path.join(out, f"{name}.pem")
    san = subject.rsplit("CN=", 1)[-1]
    ca.sign(csr, cert, extensions, san=san, **sign_args)
    parts = [cert, ca.cert] if chain else [cert]
    concatenate(os.path.join(out, f"{name}-chain.pem"), *parts)
    os.remove(csr)
    return cert


def main(out):
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)
    root = self_signed_ca(out, "root", "/O=SIREN Test/CN=SIREN Test Root CA")
    inter = intermediate(out, root, "inter", "/O=SIREN Test/CN=SIREN Test "
                         "Sites CA")
    inter2 = intermediate(out, root, "inter2", "/O=SIREN Test/CN=Unlisted "
                          "Sites CA")
    concatenate(os.path.join(out, "ca-bundle.pem"), root.cert, inter.cert)

    leaf(out, inter, "server", "/O=SIREN Test/CN=localhost", "v3_server")
    concatenate(os.path.join(out, "server-chain.pem"),
                os.path.join(out, "server.pem"), inter.cert)
    for name, subject in SITES.items():
        leaf(out, inter, name, subject)

    other = self_signed_ca(out, "other-root", "/O=Elsewhere/CN=Other Root")
    leaf(out, inter, "expired", "/O=Bad/CN=expired.example.org",
         start=-30, end=-10)
    leaf(out, inter, "notyet", "/O=Bad/CN=notyet.example.org",
         start=10, end=40)
    leaf(out, other, "unknownca", "/O=Bad/CN=unknownca.example.org")
    leaf(out, inter, "revoked", "/O=Bad/CN=revoked.example.org")
    leaf(out, inter, "wrongeku", "/O=Bad/CN=wrongeku.example.org",
         "v3_server_only")
    leaf(out, inter, "caleaf", "/O=Bad/CN=caleaf.example.org", "v3_ca_leaf")
    leaf(out, inter, "rsa1024", "/O=Bad/CN=rsa1024.example.org", bits=1024)
    leaf(out, inter, "sha1", "/O=Bad/CN=sha1.example.org", md="sha1")
    leaf(out, inter2, "nointer", "/O=Bad/CN=nointer.example.org", chain=False)
    key = os.path.join(out, "selfsigned.key")
    new_key(key)
    openssl("req", "-x509", "-new", "-key", key, "-days", "365",
            "-subj", "/O=Bad/CN=selfsigned.example.org",
            "-addext", "extendedKeyUsage=clientAuth",
            "-addext", "keyUsage=critical,digitalSignature",
            "-out", os.path.join(out, "selfsigned.pem"))
    shutil.copy(os.path.join(out, "selfsigned.pem"),
                os.path.join(out, "selfsigned-chain.pem"))

    inter.revoke(os.path.join(out, "revoked.pem"))
    inter.crl(os.path.join(out, "inter.crl.pem"))
    root.crl(os.path.join(out, "root.crl.pem"))
    concatenate(os.path.join(out, "crls.pem"),
                os.path.join(out, "root.crl.pem"),
                os.path.join(out, "inter.crl.pem"))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
