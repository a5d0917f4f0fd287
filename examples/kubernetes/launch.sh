#!/bin/sh
# Starts the sharded run: applies the profile, the volume and the Job with START_AT
# set LEAD seconds from now (default 180: time for 25 pods to be scheduled and pull
# the image). Needs kubectl and GNU date.
#
#   kubectl create secret generic imaptest-password --from-literal=password='...'
#   examples/kubernetes/launch.sh
set -eu
cd "$(dirname "$0")"
lead=${LEAD:-180}
start_at=$(date -u -d "@$(($(date +%s) + lead))" +%Y-%m-%dT%H:%M:%SZ)
kubectl apply -f configmap.yaml -f pvc.yaml
sed "s/@START_AT@/$start_at/" job.yaml | kubectl create -f -
echo "The shards start at $start_at. Then: kubectl wait --for=condition=complete --timeout=2h job/imaptest"
