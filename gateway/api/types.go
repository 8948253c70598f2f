package api

// Wire shapes of the Kinesis 2013-12-02 API (member names exactly as in the
// service model) and of the WeirGateway operations. Optional members are
// pointers or omitempty so that an absent member stays absent: clients
// treat a null NextShardIterator as "end of a closed shard".

// streamRef is the StreamName/StreamARN pair most operations accept.
type streamRef struct {
	StreamName string `json:"StreamName,omitempty"`
	StreamARN  string `json:"StreamARN,omitempty"`
}

type hashKeyRange struct {
	StartingHashKey string `json:"StartingHashKey"`
	EndingHashKey   string `json:"EndingHashKey"`
}

type sequenceNumberRange struct {
	StartingSequenceNumber string `json:"StartingSequenceNumber"`
	EndingSequenceNumber   string `json:"EndingSequenceNumber,omitempty"`
}

type shardJSON struct {
	ShardId               string              `json:"ShardId"`
	ParentShardId         string              `json:"ParentShardId,omitempty"`
	AdjacentParentShardId string              `json:"AdjacentParentShardId,omitempty"`
	HashKeyRange          hashKeyRange        `json:"HashKeyRange"`
	SequenceNumberRange   sequenceNumberRange `json:"SequenceNumberRange"`
}

type childShard struct {
	ShardId      string       `json:"ShardId"`
	ParentShards []string     `json:"ParentShards"`
	HashKeyRange hashKeyRange `json:"HashKeyRange"`
}

type streamModeDetails struct {
	StreamMode string `json:"StreamMode"`
}

type enhancedMetrics struct {
	ShardLevelMetrics []string `json:"ShardLevelMetrics"`
}

// --- streams ---

type createStreamInput struct {
	StreamName        string             `json:"StreamName"`
	ShardCount        *int               `json:"ShardCount,omitempty"`
	StreamModeDetails *streamModeDetails `json:"StreamModeDetails,omitempty"`
}

type deleteStreamInput struct {
	streamRef
	EnforceConsumerDeletion bool `json:"EnforceConsumerDeletion,omitempty"`
}

type listStreamsInput struct {
	Limit                    *int   `json:"Limit,omitempty"`
	ExclusiveStartStreamName string `json:"ExclusiveStartStreamName,omitempty"`
	NextToken                string `json:"NextToken,omitempty"`
}

type streamSummary struct {
	StreamName              string            `json:"StreamName"`
	StreamARN               string            `json:"StreamARN"`
	StreamStatus            string            `json:"StreamStatus"`
	StreamModeDetails       streamModeDetails `json:"StreamModeDetails"`
	StreamCreationTimestamp *wireTime         `json:"StreamCreationTimestamp,omitempty"`
}

type listStreamsOutput struct {
	StreamNames     []string        `json:"StreamNames"`
	HasMoreStreams  bool            `json:"HasMoreStreams"`
	NextToken       string          `json:"NextToken,omitempty"`
	StreamSummaries []streamSummary `json:"StreamSummaries"`
}

type describeStreamInput struct {
	streamRef
	Limit                 *int   `json:"Limit,omitempty"`
	ExclusiveStartShardId string `json:"ExclusiveStartShardId,omitempty"`
}

type streamDescription struct {
	StreamName              string            `json:"StreamName"`
	StreamARN               string            `json:"StreamARN"`
	StreamStatus            string            `json:"StreamStatus"`
	StreamModeDetails       streamModeDetails `json:"StreamModeDetails"`
	Shards                  []shardJSON       `json:"Shards"`
	HasMoreShards           bool              `json:"HasMoreShards"`
	RetentionPeriodHours    int               `json:"RetentionPeriodHours"`
	StreamCreationTimestamp *wireTime         `json:"StreamCreationTimestamp"`
	EnhancedMonitoring      []enhancedMetrics `json:"EnhancedMonitoring"`
	EncryptionType          string            `json:"EncryptionType"`
	KeyId                   string            `json:"KeyId,omitempty"`
}

type describeStreamOutput struct {
	StreamDescription streamDescription `json:"StreamDescription"`
}

type streamDescriptionSummary struct {
	StreamName              string            `json:"StreamName"`
	StreamARN               string            `json:"StreamARN"`
	StreamStatus            string            `json:"StreamStatus"`
	StreamModeDetails       streamModeDetails `json:"StreamModeDetails"`
	RetentionPeriodHours    int               `json:"RetentionPeriodHours"`
	StreamCreationTimestamp *wireTime         `json:"StreamCreationTimestamp"`
	EnhancedMonitoring      []enhancedMetrics `json:"EnhancedMonitoring"`
	EncryptionType          string            `json:"EncryptionType"`
	KeyId                   string            `json:"KeyId,omitempty"`
	OpenShardCount          int               `json:"OpenShardCount"`
	ConsumerCount           int               `json:"ConsumerCount"`
	MaxRecordSizeInKiB      int64             `json:"MaxRecordSizeInKiB,omitempty"`
}

type describeStreamSummaryOutput struct {
	StreamDescriptionSummary streamDescriptionSummary `json:"StreamDescriptionSummary"`
}

type retentionInput struct {
	streamRef
	RetentionPeriodHours *int `json:"RetentionPeriodHours"`
}

// --- shards ---

type shardFilter struct {
	Type      string    `json:"Type"`
	ShardId   string    `json:"ShardId,omitempty"`
	Timestamp *wireTime `json:"Timestamp,omitempty"`
}

type listShardsInput struct {
	streamRef
	NextToken               string       `json:"NextToken,omitempty"`
	ExclusiveStartShardId   string       `json:"ExclusiveStartShardId,omitempty"`
	MaxResults              *int         `json:"MaxResults,omitempty"`
	StreamCreationTimestamp *wireTime    `json:"StreamCreationTimestamp,omitempty"`
	ShardFilter             *shardFilter `json:"ShardFilter,omitempty"`
}

type listShardsOutput struct {
	Shards    []shardJSON `json:"Shards"`
	NextToken string      `json:"NextToken,omitempty"`
}

type splitShardInput struct {
	streamRef
	ShardToSplit       string `json:"ShardToSplit"`
	NewStartingHashKey string `json:"NewStartingHashKey"`
}

type mergeShardsInput struct {
	streamRef
	ShardToMerge         string `json:"ShardToMerge"`
	AdjacentShardToMerge string `json:"AdjacentShardToMerge"`
}

type updateShardCountInput struct {
	streamRef
	TargetShardCount *int   `json:"TargetShardCount"`
	ScalingType      string `json:"ScalingType"`
}

type updateShardCountOutput struct {
	StreamName        string `json:"StreamName"`
	StreamARN         string `json:"StreamARN"`
	CurrentShardCount int    `json:"CurrentShardCount"`
	TargetShardCount  int    `json:"TargetShardCount"`
}

// --- records ---

type putRecordInput struct {
	streamRef
	Data                      []byte  `json:"Data"`
	PartitionKey              *string `json:"PartitionKey"`
	ExplicitHashKey           *string `json:"ExplicitHashKey,omitempty"`
	SequenceNumberForOrdering *string `json:"SequenceNumberForOrdering,omitempty"`
}

type putRecordOutput struct {
	ShardId        string `json:"ShardId"`
	SequenceNumber string `json:"SequenceNumber"`
	EncryptionType string `json:"EncryptionType"`
}

type putRecordsEntry struct {
	Data            []byte  `json:"Data"`
	PartitionKey    *string `json:"PartitionKey"`
	ExplicitHashKey *string `json:"ExplicitHashKey,omitempty"`
}

type putRecordsInput struct {
	streamRef
	Records []putRecordsEntry `json:"Records"`
}

type putRecordsResultEntry struct {
	SequenceNumber string `json:"SequenceNumber,omitempty"`
	ShardId        string `json:"ShardId,omitempty"`
	ErrorCode      string `json:"ErrorCode,omitempty"`
	ErrorMessage   string `json:"ErrorMessage,omitempty"`
}

type putRecordsOutput struct {
	FailedRecordCount int                     `json:"FailedRecordCount"`
	Records           []putRecordsResultEntry `json:"Records"`
	EncryptionType    string                  `json:"EncryptionType"`
}

type getShardIteratorInput struct {
	streamRef
	ShardId                string    `json:"ShardId"`
	ShardIteratorType      string    `json:"ShardIteratorType"`
	StartingSequenceNumber string    `json:"StartingSequenceNumber,omitempty"`
	Timestamp              *wireTime `json:"Timestamp,omitempty"`
}

type getShardIteratorOutput struct {
	ShardIterator string `json:"ShardIterator"`
}

type getRecordsInput struct {
	ShardIterator *string `json:"ShardIterator"`
	Limit         *int    `json:"Limit,omitempty"`
	StreamARN     string  `json:"StreamARN,omitempty"`
	// WaitMillis is read only by WeirGateway_20261125.GetRecords.
	WaitMillis *int `json:"WaitMillis,omitempty"`
}

// --- consumers ---

type consumerRef struct {
	StreamARN    string `json:"StreamARN,omitempty"`
	StreamName   string `json:"StreamName,omitempty"` // weir extension: Kinesis accepts only the ARN
	ConsumerName string `json:"ConsumerName,omitempty"`
	ConsumerARN  string `json:"ConsumerARN,omitempty"`
}

type consumerJSON struct {
	ConsumerName              string    `json:"ConsumerName"`
	ConsumerARN               string    `json:"ConsumerARN"`
	ConsumerStatus            string    `json:"ConsumerStatus"`
	ConsumerCreationTimestamp *wireTime `json:"ConsumerCreationTimestamp"`
}

type consumerDescription struct {
	ConsumerName              string    `json:"ConsumerName"`
	ConsumerARN               string    `json:"ConsumerARN"`
	ConsumerStatus            string    `json:"ConsumerStatus"`
	ConsumerCreationTimestamp *wireTime `json:"ConsumerCreationTimestamp"`
	StreamARN                 string    `json:"StreamARN"`
}

type registerStreamConsumerOutput struct {
	Consumer consumerJSON `json:"Consumer"`
}

type describeStreamConsumerOutput struct {
	ConsumerDescription consumerDescription `json:"ConsumerDescription"`
}

type listStreamConsumersInput struct {
	StreamARN               string    `json:"StreamARN,omitempty"`
	StreamName              string    `json:"StreamName,omitempty"`
	MaxResults              *int      `json:"MaxResults,omitempty"`
	NextToken               string    `json:"NextToken,omitempty"`
	StreamCreationTimestamp *wireTime `json:"StreamCreationTimestamp,omitempty"`
}

type listStreamConsumersOutput struct {
	Consumers []consumerJSON `json:"Consumers"`
	NextToken string         `json:"NextToken,omitempty"`
}

// --- WeirGateway checkpoints ---

type commitCheckpointInput struct {
	streamRef
	ConsumerName   string `json:"ConsumerName"`
	ShardId        string `json:"ShardId"`
	SequenceNumber string `json:"SequenceNumber"`
}

type getCheckpointsInput struct {
	streamRef
	ConsumerName string `json:"ConsumerName"`
}

// Checkpoint statuses.
const (
	checkpointOK      = "OK"
	checkpointTrimmed = "TRIMMED"
	checkpointNone    = "NONE"
)

type shardCheckpoint struct {
	ShardId string `json:"ShardId"`
	// SequenceNumber is the last processed record; absent when NONE.
	SequenceNumber string `json:"SequenceNumber,omitempty"`
	Status         string `json:"Status"`
	// RecordsLost counts records retention deleted between the checkpoint
	// and the trim horizon (TRIMMED only).
	RecordsLost uint64 `json:"RecordsLost,omitempty"`
	// LastSequenceNumber is the shard's last stored record ("" if it never
	// held one), so a reader can compute its lag or start at the tip.
	LastSequenceNumber string `json:"LastSequenceNumber,omitempty"`
	// Closed and EndingSequenceNumber tell whether the checkpoint covers a
	// closed shard completely (its children may then be read).
	Closed               bool   `json:"Closed,omitempty"`
	EndingSequenceNumber string `json:"EndingSequenceNumber,omitempty"`
}

type getCheckpointsOutput struct {
	StreamName  string            `json:"StreamName"`
	Checkpoints []shardCheckpoint `json:"Checkpoints"`
}
