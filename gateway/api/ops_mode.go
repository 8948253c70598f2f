package api

import (
	"context"

	"github.com/weir-gateway/weir/shards"
)

// Kinesis' names of the capacity modes (StreamModeDetails.StreamMode).
const (
	modeProvisioned = "PROVISIONED"
	modeOnDemand    = "ON_DEMAND"
)

type updateStreamModeInput struct {
	StreamARN         string             `json:"StreamARN"`
	StreamModeDetails *streamModeDetails `json:"StreamModeDetails"`
}

// streamMode parses StreamModeDetails into the store's mode; nil is
// provisioned, as in Kinesis.
func streamMode(d *streamModeDetails) (string, error) {
	if d == nil {
		return shards.ModeProvisioned, nil
	}
	switch d.StreamMode {
	case modeProvisioned:
		return shards.ModeProvisioned, nil
	case modeOnDemand:
		return shards.ModeOnDemand, nil
	}
	return "", invalidArg("StreamModeDetails.StreamMode %q is not %s or %s", d.StreamMode, modeProvisioned, modeOnDemand)
}

// modeDetails renders a stream's mode for Describe* and ListStreams.
func modeDetails(st *shards.Stream) streamModeDetails {
	if st.Mode() == shards.ModeOnDemand {
		return streamModeDetails{StreamMode: modeOnDemand}
	}
	return streamModeDetails{StreamMode: modeProvisioned}
}

// updateStreamMode switches a stream between PROVISIONED and ON_DEMAND. As
// in Kinesis the stream is named by StreamARN only; unlike Kinesis the
// switch is done when the call returns (the stream never shows UPDATING)
// and there is no limit on switches per day.
func (s *Server) updateStreamMode(_ context.Context, req *request) (any, error) {
	var in updateStreamModeInput
	if err := req.decode(&in); err != nil {
		return nil, err
	}
	if in.StreamARN == "" {
		return nil, validation("1 validation error detected: Value null at 'streamARN' failed to satisfy constraint: Member must not be null")
	}
	if in.StreamModeDetails == nil {
		return nil, validation("1 validation error detected: Value null at 'streamModeDetails' failed to satisfy constraint: Member must not be null")
	}
	mode, err := streamMode(in.StreamModeDetails)
	if err != nil {
		return nil, err
	}
	st, err := s.stream(req, streamRef{StreamARN: in.StreamARN})
	if err != nil {
		return nil, err
	}
	if err := st.SetMode(mode); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

// provisionedOnly refuses SplitShard, MergeShards and UpdateShardCount on
// an on-demand stream, whose shards the autoscaler owns (Kinesis supports
// them only in provisioned mode).
func provisionedOnly(st *shards.Stream, op string) error {
	if st.Mode() == shards.ModeOnDemand {
		return invalidArg("%s is not supported for stream %s in %s mode; switch it to %s with UpdateStreamMode first",
			op, st.Name(), modeOnDemand, modeProvisioned)
	}
	return nil
}
