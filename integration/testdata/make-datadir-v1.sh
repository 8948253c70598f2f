#!/usr/bin/env bash
# Rebuilds datadir-v1.tar.gz: a data directory written by weir before the
# format bump to v2 (commit 1d7be9b: stream.json version 1, sequence
# numbers format v1), for integration/migrate_test.go. Run from the module
# root with the AWS CLI installed; it needs no network beyond loopback.
#
#   bash integration/testdata/make-datadir-v1.sh
#
# Contents (integration/testdata/datadir-v1.json lists every record):
#   stream fx, 2 shards; 10 records to each; shard 0 split into 2 and 3
#   with 5 records to each child; consumer "app" registered with
#   checkpoints shard 0 at 7, shard 1 at 10, shard 2 at 12.
set -euo pipefail
rev=1d7be9b
root=$(pwd)
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
git archive "$rev" | tar -x -C "$work"
(cd "$work" && go build -o "$work/weir" ./gateway/cmd/weir)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir "$work/data"
cat >"$work/weir.yaml" <<YAML
data_dir: $work/data
mqtt:
  listen: 127.0.0.1:$mport
api:
  listen: 127.0.0.1:$port
YAML
"$work/weir" serve --config "$work/weir.yaml" >"$work/weir.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -s "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
export AWS_ACCESS_KEY_ID=AKIDFIXTURE AWS_SECRET_ACCESS_KEY=fixturefixturefixture AWS_DEFAULT_REGION=us-east-1
k() { aws --endpoint-url "http://127.0.0.1:$port" kinesis "$@"; }
weirop() { curl -sf -X POST "http://127.0.0.1:$port/" -H "Content-Type: application/x-amz-json-1.1" \
	-H "X-Amz-Target: WeirGateway_20261125.$1" -d "$2"; }
k create-stream --stream-name fx --shard-count 2
records=()
put() { # shard-label explicit-hash-key n
	for i in $(seq "$3"); do
		# AWS CLI v1 sends --data as given: the record holds this text.
		d=$(printf 'rec %s %d' "$1" "$i" | base64)
		out=$(k put-record --stream-name fx --partition-key "k$1-$i" --explicit-hash-key "$2" --data "$d")
		records+=("$(jq -c --arg d "$d" --arg k "k$1-$i" '{ShardId, SequenceNumber, PartitionKey: $k, Data: $d}' <<<"$out")")
	done
}
put 0 0 10
put 1 200000000000000000000000000000000000000 10
k split-shard --stream-name fx --shard-to-split shardId-000000000000 --new-starting-hash-key 85070591730234615865843651857942052864
put 2 1 5
put 3 85070591730234615865843651857942052864 5
k register-stream-consumer --stream-arn "arn:aws:kinesis:local:000000000000:stream/fx" --consumer-name app >/dev/null
weirop CommitCheckpoint '{"StreamName":"fx","ConsumerName":"app","ShardId":"shardId-000000000000","SequenceNumber":"7"}'
weirop CommitCheckpoint '{"StreamName":"fx","ConsumerName":"app","ShardId":"shardId-000000000001","SequenceNumber":"10"}'
weirop CommitCheckpoint '{"StreamName":"fx","ConsumerName":"app","ShardId":"shardId-000000000002","SequenceNumber":"12"}'
kill -TERM $pid
wait $pid || true
printf '%s\n' "${records[@]}" | jq -s '{revision: "'$rev'", records: .}' >"$root/integration/testdata/datadir-v1.json"
tar -C "$work/data" --exclude LOCK --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -czf "$root/integration/testdata/datadir-v1.tar.gz" .
ls -l "$root/integration/testdata/datadir-v1.tar.gz"
