#!/bin/sh
# site-cert.sh - the registry CA for SIREN: site certificates, the
# gateway's server certificate, revocation and the CRL. OpenSSL only.
#
#   scripts/site-cert.sh [-d CA_DIR] [-o OUT_DIR] [-y DAYS] COMMAND ...
#
#   init                   make the CA (CA_DIR/ca.pem, private/ca.key)
#                          and an empty CRL; nothing is done if it exists
#   site NAME CN           a key and certificate for a remote site:
#                          subject CN=CN, SAN DNS:CN, clientAuth; what
#                          siren.conf's `certificate "cn:CN"` matches
#   server CN [SAN...]     the gateway's key and certificate: serverAuth,
#                          SAN DNS:CN plus each SAN (DNS:name or IP:addr)
#   revoke NAME|CERT.pem   revoke a certificate this CA issued (by the
#                          NAME given to `site`/`server`, or its file),
#                          then write a fresh CRL
#   crl                    write a fresh CRL (before the old one expires)
#   list                   the certificates issued: V valid, R revoked
#
# Defaults: CA_DIR ./registry-ca, OUT_DIR CA_DIR/issued, DAYS 397 for
# certificates (3650 for the CA); the CRL is valid 30 days (CRL_DAYS in
# the environment changes it): regenerate it before then, or a gateway
# with `crl` set refuses every site.
#
# What is written, for NAME:  OUT_DIR/NAME.key (0600), NAME.pem, and
# NAME-chain.pem (certificate then CA), which is what a site gives
# storescu `+tls NAME.key NAME-chain.pem` or the gateway as its
# `certificate`. The CA bundle that siren.conf's `sites-ca` takes and
# that sites trust is CA_DIR/ca.pem; the CRL is CA_DIR/crl.pem.
#
# An existing key is never overwritten: issuing again for a NAME that has
# one stops with an error (revoke it, then move the old files away). The
# CA directory keeps OpenSSL's `ca` layout (index.txt, serial,
# crlnumber, newcerts/), so every issuance and revocation is recorded.
set -eu

ca_dir=./registry-ca
out_dir=
days=397
crl_days=${CRL_DAYS:-30}

usage() {
    sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

fail() {
    echo "site-cert.sh: $*" >&2
    exit 1
}

while getopts d:o:y:h opt; do
    case $opt in
    d) ca_dir=$OPTARG ;;
    o) out_dir=$OPTARG ;;
    y) days=$OPTARG ;;
    *) usage ;;
    esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || usage
command=$1
shift
out_dir=${out_dir:-$ca_dir/issued}
case $days in '' | *[!0-9]*) fail "days must be a number: $days" ;; esac
case $crl_days in '' | *[!0-9]*) fail "CRL_DAYS must be a number" ;; esac

# NAME becomes a file name: letters, digits, '.', '_', '-' only.
check_name() {
    case $1 in
    '' | .* | *[!A-Za-z0-9._-]*)
        fail "name '$1': use letters, digits, '.', '_' and '-' (not first)" ;;
    esac
}

# A CN or DNS name for the certificate: no characters that would change
# the meaning of the OpenSSL configuration written from it.
check_dns() {
    case $1 in
    '' | *[!A-Za-z0-9.*-]*) fail "'$1' is not a DNS name" ;;
    esac
}

write_config() {
    cat > "$ca_dir/openssl.cnf" <<EOF
# Written by scripts/site-cert.sh; the CA's database is beside it.
[ ca ]
default_ca = registry_ca

[ registry_ca ]
dir = $ca_dir_abs
database = \$dir/index.txt
serial = \$dir/serial
crlnumber = \$dir/crlnumber
new_certs_dir = \$dir/newcerts
certificate = \$dir/ca.pem
private_key = \$dir/private/ca.key
default_md = sha256
default_crl_days = $crl_days
policy = policy_any
unique_subject = no
copy_extensions = none
email_in_dn = no

[ policy_any ]
organizationName = optional
commonName = supplied

[ req ]
distinguished_name = req_dn
prompt = no

[ req_dn ]
O = SIREN registry
CN = SIREN registry CA

[ v3_ca ]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ crl_ext ]
authorityKeyIdentifier = keyid:always
EOF
}

ca_ready() {
    [ -f "$ca_dir/ca.pem" ] && [ -f "$ca_dir/private/ca.key" ] &&
        [ -f "$ca_dir/index.txt" ]
}

need_ca() {
    ca_ready || fail "no CA in $ca_dir: run '$0 -d $ca_dir init' first"
    ca_dir_abs=$(cd "$ca_dir" && pwd)
    write_config
}

gen_crl() {
    openssl ca -batch -config "$ca_dir/openssl.cnf" -gencrl \
        -crlexts crl_ext -out "$ca_dir/crl.pem.new" 2>"$ca_dir/.openssl.log" ||
        fail "openssl ca -gencrl failed: $(cat "$ca_dir/.openssl.log")"
    rm -f "$ca_dir/.openssl.log"
    mv "$ca_dir/crl.pem.new" "$ca_dir/crl.pem"
    echo "CRL: $ca_dir/crl.pem (next update in $crl_days days)"
}

cmd_init() {
    [ $# -eq 0 ] || usage
    if ca_ready; then
        echo "CA already in $ca_dir (ca.pem kept)"
        return
    fi
    [ -e "$ca_dir/private/ca.key" ] &&
        fail "$ca_dir/private/ca.key exists without ca.pem: not overwriting it"
    mkdir -p "$ca_dir/private" "$ca_dir/newcerts"
    chmod 700 "$ca_dir/private"
    ca_dir_abs=$(cd "$ca_dir" && pwd)
    write_config
    [ -f "$ca_dir/index.txt" ] || : > "$ca_dir/index.txt"
    [ -f "$ca_dir/serial" ] || openssl rand -hex 16 > "$ca_dir/serial"
    [ -f "$ca_dir/crlnumber" ] || echo 1000 > "$ca_dir/crlnumber"
    (umask 077 && openssl genpkey -algorithm EC \
        -pkeyopt ec_paramgen_curve:P-384 -out "$ca_dir/private/ca.key") ||
        fail "could not make the CA key"
    openssl req -new -x509 -config "$ca_dir/openssl.cnf" -extensions v3_ca \
        -key "$ca_dir/private/ca.key" -sha384 -days 3650 \
        -set_serial "0x$(openssl rand -hex 16)" -out "$ca_dir/ca.pem" ||
        fail "could not make the CA certificate"
    echo "CA: $ca_dir/ca.pem (key $ca_dir/private/ca.key: keep it offline)"
    gen_crl
}

# issue NAME CN EKU SAN-LIST
issue() {
    name=$1 cn=$2 eku=$3 sans=$4
    key=$out_dir/$name.key
    [ -e "$key" ] &&
        fail "$key exists: not overwriting a key (revoke '$name' and move its files away first)"
    mkdir -p "$out_dir"
    ext=$out_dir/.$name.ext
    cat > "$ext" <<EOF
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = $eku
subjectAltName = $sans
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EOF
    (umask 077 && openssl genpkey -algorithm EC \
        -pkeyopt ec_paramgen_curve:P-256 -out "$key") ||
        fail "could not make $key"
    openssl req -new -key "$key" -subj "/O=SIREN registry/CN=$cn" \
        -out "$out_dir/.$name.csr" || {
        rm -f "$key"
        fail "could not make the request"
    }
    openssl ca -batch -config "$ca_dir/openssl.cnf" -notext -days "$days" \
        -extfile "$ext" -in "$out_dir/.$name.csr" \
        -out "$out_dir/$name.pem" 2>"$ca_dir/.openssl.log" || {
        rm -f "$key"
        fail "openssl ca refused: $(cat "$ca_dir/.openssl.log")"
    }
    rm -f "$out_dir/.$name.csr" "$ext" "$ca_dir/.openssl.log"
    cat "$out_dir/$name.pem" "$ca_dir/ca.pem" > "$out_dir/$name-chain.pem"
    serial=$(openssl x509 -in "$out_dir/$name.pem" -noout -serial)
    echo "$name: $out_dir/$name.pem ($serial, CN=$cn), key $key, chain $out_dir/$name-chain.pem"
}

cmd_site() {
    [ $# -eq 2 ] || usage
    check_name "$1"
    check_dns "$2"
    need_ca
    issue "$1" "$2" clientAuth "DNS:$2"
}

cmd_server() {
    [ $# -ge 1 ] || usage
    cn=$1
    shift
    check_dns "$cn"
    sans="DNS:$cn"
    for san in "$@"; do
        case $san in
        DNS:*) check_dns "${san#DNS:}" ;;
        IP:*)
            case ${san#IP:} in
            '' | *[!0-9a-fA-F.:]*) fail "'$san' is not an IP address" ;;
            esac ;;
        *) fail "SAN '$san': write DNS:name or IP:address" ;;
        esac
        sans="$sans,$san"
    done
    need_ca
    issue "$cn" "$cn" serverAuth "$sans"
}

cmd_revoke() {
    [ $# -eq 1 ] || usage
    need_ca
    cert=$1
    if [ ! -f "$cert" ]; then
        check_name "$1"
        cert=$out_dir/$1.pem
    fi
    [ -f "$cert" ] || fail "no certificate $cert"
    openssl ca -batch -config "$ca_dir/openssl.cnf" -revoke "$cert" \
        2>"$ca_dir/.openssl.log" || {
        grep -q "Already revoked" "$ca_dir/.openssl.log" ||
            fail "openssl ca -revoke failed: $(cat "$ca_dir/.openssl.log")"
        echo "$cert was already revoked"
    }
    gen_crl
}

cmd_crl() {
    [ $# -eq 0 ] || usage
    need_ca
    gen_crl
}

cmd_list() {
    [ $# -eq 0 ] || usage
    need_ca
    # index.txt: status, expiry, revocation, serial, file, subject
    awk -F '\t' '{ print $1, $4, $6 }' "$ca_dir/index.txt"
}

case $command in
init) cmd_init "$@" ;;
site) cmd_site "$@" ;;
server) cmd_server "$@" ;;
revoke) cmd_revoke "$@" ;;
crl) cmd_crl "$@" ;;
list) cmd_list "$@" ;;
*) usage ;;
esac
