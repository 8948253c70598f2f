package consumer

import (
	"github.com/weir-gateway/weir/gateway/api"
	"github.com/weir-gateway/weir/gateway/apiclient"
)

// The consumer speaks to the gateway through gateway/apiclient rather than
// aws-sdk-go-v2's Kinesis client: four of the operations it needs are
// weir's own (the long-poll, checkpoints, DescribeGateway), and the SDK's
// retry policy is not the consumer's. Retries here are the consumer's own:
// forever, with backoff, because the gateway restarting is normal.

// APIError is an error answer of the gateway.
type APIError = apiclient.Error

// UserProperty is an MQTT v5 user property.
type UserProperty = apiclient.UserProperty

// codeOf returns the exception name of an API error, "" for other errors.
func codeOf(err error) string { return apiclient.TypeOf(err) }

// The wire shapes the consumer reads.
type (
	shardWire        = apiclient.Shard
	checkpointWire   = apiclient.Checkpoint
	recordWire       = apiclient.Record
	recordsWire      = apiclient.GetRecordsOutput
	gatewayShardWire = api.GatewayShard
)
