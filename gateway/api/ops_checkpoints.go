package api

import (
	"context"

	"github.com/weir-gateway/weir/shards"
)

// commitCheckpoint is WeirGateway_20261125.CommitCheckpoint: record that a
// registered consumer has processed a shard up to and including
// SequenceNumber. The reply is sent only after the checkpoint is fsynced.
// A position beyond the shard's last record is refused (it would skip
// records not written yet); moving a checkpoint backwards is allowed, so a
// consumer can rewind.
func (s *Server) commitCheckpoint(_ context.Context, req *request) (any, error) {
	var in commitCheckpointInput
	if err := req.decode(&in); err != nil {
		return nil, err
	}
	if in.ConsumerName == "" || in.ShardId == "" || in.SequenceNumber == "" {
		return nil, validation("ConsumerName, ShardId and SequenceNumber are required")
	}
	st, err := s.stream(req, in.streamRef)
	if err != nil {
		return nil, err
	}
	if isForwarder(in.ConsumerName) {
		// Moving a forwarder's checkpoint makes it skip records.
		if err := s.allowPerm(req, st.Name(), permAdmin); err != nil {
			return nil, err
		}
	}
	if _, err := s.consumer(st.Name(), in.ConsumerName); err != nil && !isForwarder(in.ConsumerName) {
		return nil, err
	}
	sh, err := s.shardOf(st, in.ShardId)
	if err != nil {
		return nil, err
	}
	info := sh.Info()
	seq, err := seqParam("SequenceNumber", info, in.SequenceNumber)
	if err != nil {
		return nil, err
	}
	last := lastSeq(sh, info)
	if info.Closed {
		// An empty closed shard's EndingSequenceNumber is its start.
		last = max(last, info.EndingSeq())
	}
	if seq > last {
		return nil, invalidArg("SequenceNumber %s is beyond the last record (%s) of shard %s", in.SequenceNumber, shards.FormatSeq(info.ID, last), info.ID)
	}
	if seq+1 < info.StartSeq {
		return nil, invalidArg("SequenceNumber %s does not belong to shard %s (it starts at %s)", in.SequenceNumber, info.ID, shards.FormatSeq(info.ID, info.StartSeq))
	}
	if err := s.store.Checkpoints().Commit(st.Name(), in.ConsumerName, info.ID, seq); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

func isForwarder(name string) bool {
	return len(name) > len(shards.ForwarderPrefix) && name[:len(shards.ForwarderPrefix)] == shards.ForwarderPrefix
}

// getCheckpoints is WeirGateway_20261125.GetCheckpoints: the consumer's
// position in every shard of the stream, with what retention did to it.
// A checkpoint older than the trim horizon reads as TRIMMED with the number
// of records lost (trimHorizon-1-checkpoint), never as an error, so a
// consumer can log the loss and continue at the trim horizon.
func (s *Server) getCheckpoints(_ context.Context, req *request) (any, error) {
	var in getCheckpointsInput
	if err := req.decode(&in); err != nil {
		return nil, err
	}
	if in.ConsumerName == "" {
		return nil, validation("ConsumerName is required")
	}
	st, err := s.stream(req, in.streamRef)
	if err != nil {
		return nil, err
	}
	if !isForwarder(in.ConsumerName) {
		if _, err := s.consumer(st.Name(), in.ConsumerName); err != nil {
			return nil, err
		}
	}
	pos, err := s.store.Checkpoints().Get(st.Name(), in.ConsumerName)
	if err != nil {
		return nil, err
	}
	out := getCheckpointsOutput{StreamName: st.Name(), Checkpoints: []shardCheckpoint{}}
	for _, info := range st.Shards() {
		sh, err := st.Shard(info.ID)
		if err != nil {
			continue // expired since the listing
		}
		out.Checkpoints = append(out.Checkpoints, checkpointOf(sh, info, pos))
	}
	return out, nil
}

func checkpointOf(sh *shards.Shard, info shards.ShardInfo, pos map[string]uint64) shardCheckpoint {
	c := shardCheckpoint{ShardId: info.ID, Status: checkpointNone, Closed: info.Closed}
	last := lastSeq(sh, info)
	if last >= info.StartSeq {
		c.LastSequenceNumber = shards.FormatSeq(info.ID, last)
	}
	if info.Closed {
		c.EndingSequenceNumber = shards.FormatSeq(info.ID, info.EndingSeq())
	}
	seq, ok := pos[info.ID]
	if !ok {
		return c
	}
	c.SequenceNumber = shards.FormatSeq(info.ID, seq)
	c.Status = checkpointOK
	if th := max(sh.TrimHorizon(), info.StartSeq); seq+1 < th {
		c.Status = checkpointTrimmed
		c.RecordsLost = th - 1 - seq
	}
	return c
}
