#!/bin/bash
# One self-signed ECDSA P-256 certificate for DOMAIN, shared by all three targets so the TLS
# handshake work is the same (xedge's Debian wolfSSL does ~3,500 P-256 handshakes/s/core,
# ~400 with RSA-2048: DESIGN §3).  Writes DIR/cert.pem, DIR/key.pem, DIR/combined.pem.
#   usage: bench/compare/cert.sh DIR [DOMAIN]
set -eu
D=$1; DOMAIN=${2:-localhost}
mkdir -p "$D"
[ -s "$D/cert.pem" ] && [ -s "$D/key.pem" ] && [ -s "$D/combined.pem" ] && exit 0
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
	-subj "/CN=$DOMAIN" -addext "subjectAltName=DNS:$DOMAIN" \
	-keyout "$D/key.pem" -out "$D/cert.pem" 2>/dev/null
cat "$D/cert.pem" "$D/key.pem" >"$D/combined.pem"
# Prosody runs as root here; ejabberd drops to the 'ejabberd' user and must read the key.
chmod 644 "$D/cert.pem" "$D/key.pem" "$D/combined.pem"
