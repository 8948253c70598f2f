package api

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/weir-gateway/weir/shards"
)

// defaultShardCount is what CreateStream makes when ShardCount is absent
// (on-demand mode in Kinesis, which starts with 4 shards).
const defaultShardCount = 4

const streamActive = "ACTIVE"

func isNotFound(err error) bool { return errors.Is(err, shards.ErrStreamNotFound) }

func (s *Server) createStream(_ context.Context, req *request) (any, error) {
	var in createStreamInput
	if err := req.decode(&in); err != nil {
		return nil, err
	}
	if !shards.ValidStreamName(in.StreamName) {
		return nil, validation("StreamName %q must be 1-128 characters from [a-zA-Z0-9_.-]", in.StreamName)
	}
	if err := s.allow(req, in.StreamName); err != nil {
		return nil, err
	}
	mode, err := streamMode(in.StreamModeDetails)
	if err != nil {
		return nil, err
	}
	n := defaultShardCount
	if in.ShardCount != nil {
		n = *in.ShardCount
		if n < 1 {
			return nil, validation("ShardCount must be at least 1, got %d", n)
		}
		if n > shards.MaxOpenShards {
			return nil, newError(400, errLimitExceeded, "This request would exceed the shard limit for the account %s in local. Current shard count for the account: 0. Limit: %d. Number of additional shards that would have resulted from this request: %d.",
				s.account, shards.MaxOpenShards, n)
		}
	}
	if _, err := s.store.CreateStream(shards.StreamConfig{Name: in.StreamName, Shards: n, Mode: mode}); err != nil {
		if errors.Is(err, shards.ErrStreamExists) {
			return nil, newError(400, errResourceInUse, "Stream %s under account %s already exists.", in.StreamName, s.account)
		}
		return nil, err
	}
	return struct{}{}, nil
}

func (s *Server) deleteStream(_ context.Context, req *request) (any, error) {
	var in deleteStreamInput
	if err := req.decode(&in); err != nil {
		return nil, err
	}
	name, err := s.named(req, in.streamRef)
	if err != nil {
		return nil, err
	}
	if !in.EnforceConsumerDeletion {
		// Registered consumers, not forwarders: a forwarder's checkpoint
		// is the gateway's own bookkeeping.
		for _, ci := range s.store.Checkpoints().Consumers(name) {
			if !isForwarder(ci.Name) {
				return nil, newError(400, errResourceInUse, "Stream %s under account %s has registered consumers (%s); set EnforceConsumerDeletion to delete them with it.",
					name, s.account, ci.Name)
			}
		}
	}
	if err := s.store.DeleteStream(name); err != nil {
		return nil, notFoundStream(name, s, err)
	}
	s.forgetStream(name)
	return struct{}{}, nil
}

func (s *Server) listStreams(_ context.Context, req *request) (any, error) {
	var in listStreamsInput
	if err := req.decode(&in); err != nil {
		return nil, err
	}
	limit, err := limitArg("Limit", in.Limit, 100, 10000)
	if err != nil {
		return nil, err
	}
	after := in.ExclusiveStartStreamName
	if in.NextToken != "" {
		t, err := s.sign.decodeToken(in.NextToken, s.now())
		if err != nil {
			return nil, err
		}
		after = t.After
	}
	out := listStreamsOutput{StreamNames: []string{}, StreamSummaries: []streamSummary{}}
	if err := s.allowListing(req); err != nil {
		return nil, err
	}
	all := s.store.Streams()
	if req.who != nil {
		seen := all[:0:0]
		for _, st := range all {
			if s.visible(req, st.Name()) {
				seen = append(seen, st)
			}
		}
		all = seen
	}
	i := sort.Search(len(all), func(i int) bool { return all[i].Name() > after })
	for ; i < len(all) && len(out.StreamNames) < limit; i++ {
		st := all[i]
		out.StreamNames = append(out.StreamNames, st.Name())
		out.StreamSummaries = append(out.StreamSummaries, streamSummary{
			StreamName: st.Name(), StreamARN: s.streamARN(st.Name()), StreamStatus: streamActive,
			StreamModeDetails:       modeDetails(st),
			StreamCreationTimestamp: timeOf(st.Created()),
		})
	}
	if i < len(all) {
		out.HasMoreStreams = true
		out.NextToken = s.sign.encodeToken(pageToken{Issued: s.now().UnixMilli(), After: out.StreamNames[len(out.StreamNames)-1]})
	}
	return out, nil
}

// limitArg validates an optional page size.
func limitArg(member string, v *int, def, maxV int) (int, error) {
	if v == nil {
		return def, nil
	}
	if *v < 1 || *v > maxV {
		return 0, validation("1 validation error detected: Value '%d' at '%s' failed to satisfy constraint: Member must have value between 1 and %d", *v, member, maxV)
	}
	return *v, nil
}

// retentionHours reports retention in whole hours as Kinesis does, rounding
// up so that a sub-hour test retention never reads as 0.
func retentionHours(d time.Duration) int {
	h := int((d + time.Hour - 1) / time.Hour)
	return max(h, 1)
}

func (s *Server) shardJSON(i shards.ShardInfo) shardJSON {
	out := shardJSON{
		ShardId: i.ID, ParentShardId: i.ParentID, AdjacentParentShardId: i.AdjacentParentID,
		HashKeyRange:        hashKeyRange{StartingHashKey: i.StartHash.String(), EndingHashKey: i.EndHash.String()},
		SequenceNumberRange: sequenceNumberRange{StartingSequenceNumber: shards.FormatSeq(i.ID, i.StartSeq)},
	}
	if i.Closed {
		out.SequenceNumberRange.EndingSequenceNumber = shards.FormatSeq(i.ID, i.EndingSeq())
	}
	return out
}

func (s *Server) describeStream(_ context.Context, req *request) (any, error) {
	var in describeStreamInput
	if err := req.decode(&in); err != nil {
		return nil, err
	}
	limit, err := limitArg("limit", in.Limit, 100, 10000)
	if err != nil {
		return nil, err
	}
	st, err := s.stream(req, in.streamRef)
	if err != nil {
		return nil, err
	}
	all := st.Shards()
	i := 0
	if in.ExclusiveStartShardId != "" {
		i = sort.Search(len(all), func(i int) bool { return all[i].ID > in.ExclusiveStartShardId })
	}
	d := streamDescription{
		StreamName: st.Name(), StreamARN: s.streamARN(st.Name()), StreamStatus: streamActive,
		StreamModeDetails:       modeDetails(st),
		Shards:                  []shardJSON{},
		RetentionPeriodHours:    retentionHours(st.Config().Retention.D()),
		StreamCreationTimestamp: timeOf(st.Created()),
		EnhancedMonitoring:      []enhancedMetrics{{ShardLevelMetrics: st.EnhancedMetrics()}},
		EncryptionType:          encryptionType(st),
		KeyId:                   st.Encryption(),
	}
	for ; i < len(all) && len(d.Shards) < limit; i++ {
		d.Shards = append(d.Shards, s.shardJSON(all[i]))
	}
	d.HasMoreShards = i < len(all)
	return describeStreamOutput{StreamDescription: d}, nil
}

func (s *Server) describeStreamSummary(_ context.Context, req *request) (any, error) {
	var in streamRef
	if err := req.decode(&in); err != nil {
		return nil, err
	}
	st, err := s.stream(req, in)
	if err != nil {
		return nil, err
	}
	open := 0
	for _, sh := range st.Shards() {
		if !sh.Closed {
			open++
		}
	}
	cfg := st.Config()
	return describeStreamSummaryOutput{StreamDescriptionSummary: streamDescriptionSummary{
		StreamName: st.Name(), StreamARN: s.streamARN(st.Name()), StreamStatus: streamActive,
		StreamModeDetails:       modeDetails(st),
		RetentionPeriodHours:    retentionHours(cfg.Retention.D()),
		StreamCreationTimestamp: timeOf(st.Created()),
		EnhancedMonitoring:      []enhancedMetrics{{ShardLevelMetrics: st.EnhancedMetrics()}},
		EncryptionType:          encryptionType(st),
		KeyId:                   st.Encryption(),
		OpenShardCount:          open,
		ConsumerCount:           len(s.store.Checkpoints().Consumers(st.Name())),
		MaxRecordSizeInKiB:      cfg.MaxRecordSize.Bytes() / 1024,
	}}, nil
}

func (s *Server) increaseRetention(_ context.Context, req *request) (any, error) {
	return s.changeRetention(req, true)
}

func (s *Server) decreaseRetention(_ context.Context, req *request) (any, error) {
	return s.changeRetention(req, false)
}

// changeRetention applies Increase/DecreaseStreamRetentionPeriod. Like
// Kinesis, increasing to less than the current period (or decreasing to
// more) is an InvalidArgumentException; weir allows 1..8760 hours.
func (s *Server) changeRetention(req *request, increase bool) (any, error) {
	var in retentionInput
	if err := req.decode(&in); err != nil {
		return nil, err
	}
	if in.RetentionPeriodHours == nil {
		return nil, validation("RetentionPeriodHours is required")
	}
	h := *in.RetentionPeriodHours
	if h < 1 || h > 8760 {
		return nil, validation("1 validation error detected: Value '%d' at 'retentionPeriodHours' failed to satisfy constraint: Member must have value between 1 and 8760", h)
	}
	st, err := s.stream(req, in.streamRef)
	if err != nil {
		return nil, err
	}
	want := time.Duration(h) * time.Hour
	cur := st.Config().Retention.D()
	if increase && want < cur {
		return nil, invalidArg("Requested retention period (%d hours) for stream %s can not be shorter than existing retention period (%v). Use DecreaseRetentionPeriod API.", h, st.Name(), cur)
	}
	if !increase && want > cur {
		return nil, invalidArg("Requested retention period (%d hours) for stream %s can not be longer than existing retention period (%v). Use IncreaseRetentionPeriod API.", h, st.Name(), cur)
	}
	if err := st.SetRetention(want); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

func (s *Server) splitShard(_ context.Context, req *request) (any, error) {
	var in splitShardInput
	if err := req.decode(&in); err != nil {
		return nil, err
	}
	if in.ShardToSplit == "" || in.NewStartingHashKey == "" {
		return nil, validation("ShardToSplit and NewStartingHashKey are required")
	}
	h, err := shards.ParseHashKey(in.NewStartingHashKey)
	if err != nil {
		return nil, invalidArg("NewStartingHashKey %q is not a decimal integer in [0, 2^128-1]", in.NewStartingHashKey)
	}
	st, err := s.stream(req, in.streamRef)
	if err != nil {
		return nil, err
	}
	if err := provisionedOnly(st, "SplitShard"); err != nil {
		return nil, err
	}
	return struct{}{}, st.Split(in.ShardToSplit, h)
}

func (s *Server) mergeShards(_ context.Context, req *request) (any, error) {
	var in mergeShardsInput
	if err := req.decode(&in); err != nil {
		return nil, err
	}
	if in.ShardToMerge == "" || in.AdjacentShardToMerge == "" {
		return nil, validation("ShardToMerge and AdjacentShardToMerge are required")
	}
	st, err := s.stream(req, in.streamRef)
	if err != nil {
		return nil, err
	}
	if err := provisionedOnly(st, "MergeShards"); err != nil {
		return nil, err
	}
	return struct{}{}, st.Merge(in.ShardToMerge, in.AdjacentShardToMerge)
}

func (s *Server) updateShardCount(_ context.Context, req *request) (any, error) {
	var in updateShardCountInput
	if err := req.decode(&in); err != nil {
		return nil, err
	}
	if in.TargetShardCount == nil {
		return nil, validation("TargetShardCount is required")
	}
	if in.ScalingType != "UNIFORM_SCALING" {
		return nil, validation("ScalingType must be UNIFORM_SCALING, got %q", in.ScalingType)
	}
	st, err := s.stream(req, in.streamRef)
	if err != nil {
		return nil, err
	}
	if err := provisionedOnly(st, "UpdateShardCount"); err != nil {
		return nil, err
	}
	cur := 0
	for _, sh := range st.Shards() {
		if !sh.Closed {
			cur++
		}
	}
	if err := st.UpdateShardCount(*in.TargetShardCount); err != nil {
		return nil, err
	}
	return updateShardCountOutput{StreamName: st.Name(), StreamARN: s.streamARN(st.Name()),
		CurrentShardCount: cur, TargetShardCount: *in.TargetShardCount}, nil
}
