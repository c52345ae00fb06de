#!/usr/bin/env bash
# Puts a CA certificate into every webhook of a MutatingWebhookConfiguration as its caBundle.
# usage: deploy/patch-ca-bundle.sh NAME CA_CERT_FILE
#
# A JSON patch, not `kubectl apply`: the caBundle then stays out of the last-applied
# configuration, and a later `kubectl apply -k deploy/` leaves it in place.
set -euo pipefail
name=${1:?usage: $0 MUTATINGWEBHOOKCONFIGURATION CA_CERT_FILE}
ca_file=${2:?usage: $0 MUTATINGWEBHOOKCONFIGURATION CA_CERT_FILE}
kubectl=${KUBECTL:-kubectl}

[ -s "$ca_file" ] || { echo "no CA certificate at $ca_file: run 'make certs' first" >&2; exit 1; }
bundle=$(base64 -w0 <"$ca_file")
count=$("$kubectl" get mutatingwebhookconfiguration "$name" -o jsonpath='{range .webhooks[*]}x{end}')
ops=""
for ((i = 0; i < ${#count}; i++)); do
  ops+="${ops:+,}{\"op\":\"add\",\"path\":\"/webhooks/$i/clientConfig/caBundle\",\"value\":\"$bundle\"}"
done
"$kubectl" patch mutatingwebhookconfiguration "$name" --type=json -p "[$ops]"
