package api

import (
	"context"
	"math"
	"time"

	"github.com/weir-gateway/weir/shards"
)

// ShardFilter types of ListShards.
const (
	filterAfterShardID     = "AFTER_SHARD_ID"
	filterAtTrimHorizon    = "AT_TRIM_HORIZON"
	filterFromTrimHorizon  = "FROM_TRIM_HORIZON"
	filterAtLatest         = "AT_LATEST"
	filterAtTimestamp      = "AT_TIMESTAMP"
	filterFromTimestamp    = "FROM_TIMESTAMP"
	defaultListShardsLimit = 1000
)

// listShards pages through a stream's shards (parents before children),
// optionally filtered. As in Kinesis a NextToken carries the stream and
// filter, so neither may be repeated with it.
func (s *Server) listShards(_ context.Context, req *request) (any, error) {
	var in listShardsInput
	if err := req.decode(&in); err != nil {
		return nil, err
	}
	limit, err := limitArg("maxResults", in.MaxResults, defaultListShardsLimit, 10000)
	if err != nil {
		return nil, err
	}
	var tok pageToken
	if in.NextToken != "" {
		if in.StreamName != "" || in.StreamARN != "" || in.ExclusiveStartShardId != "" || in.ShardFilter != nil {
			return nil, invalidArg("NextToken and StreamName/StreamARN/ExclusiveStartShardId/ShardFilter cannot be provided together.")
		}
		if tok, err = s.sign.decodeToken(in.NextToken, s.now()); err != nil {
			return nil, err
		}
		if err := s.allow(req, tok.Stream); err != nil {
			return nil, err
		}
	} else {
		name, err := s.named(req, in.streamRef)
		if err != nil {
			return nil, err
		}
		tok = pageToken{Stream: name, After: in.ExclusiveStartShardId}
		if f := in.ShardFilter; f != nil {
			if err := checkFilter(f); err != nil {
				return nil, err
			}
			tok.Filter, tok.FilterShard, tok.FilterTime = f.Type, f.ShardId, f.Timestamp
			if f.Type == filterAfterShardID && f.ShardId > tok.After {
				tok.After = f.ShardId
			}
		}
	}
	st, err := s.store.Stream(tok.Stream)
	if err != nil {
		return nil, notFoundStream(tok.Stream, s, err)
	}
	if tok.StreamCreated != 0 && tok.StreamCreated != st.Created().UnixMilli() {
		return nil, invalidArg("NextToken belongs to a stream that was deleted.")
	}
	all := st.Shards()
	keep := shardFilterFunc(tok, all, st.Created())
	out := listShardsOutput{Shards: []shardJSON{}}
	more := false
	for _, sh := range all {
		if sh.ID <= tok.After || !keep(sh) {
			continue
		}
		if len(out.Shards) == limit {
			more = true
			break
		}
		out.Shards = append(out.Shards, s.shardJSON(sh))
	}
	if more {
		next := tok
		next.Issued = s.now().UnixMilli()
		next.StreamCreated = st.Created().UnixMilli()
		next.After = out.Shards[len(out.Shards)-1].ShardId
		out.NextToken = s.sign.encodeToken(next)
	}
	return out, nil
}

func checkFilter(f *shardFilter) error {
	switch f.Type {
	case filterAfterShardID:
		if f.ShardId == "" {
			return invalidArg("ShardFilter type AFTER_SHARD_ID requires ShardId.")
		}
	case filterAtTimestamp, filterFromTimestamp:
		if f.Timestamp == nil {
			return invalidArg("ShardFilter type %s requires Timestamp.", f.Type)
		}
	case filterAtTrimHorizon, filterFromTrimHorizon, filterAtLatest:
	default:
		return validation("ShardFilter Type %q is not one of AFTER_SHARD_ID, AT_TRIM_HORIZON, FROM_TRIM_HORIZON, AT_LATEST, AT_TIMESTAMP, FROM_TIMESTAMP", f.Type)
	}
	return nil
}

// shardFilterFunc implements the ShardFilter types over the shards still
// listed (expired shards are gone, as in Kinesis):
//   - AT_LATEST: open shards.
//   - AT_TRIM_HORIZON: shards that were open at the trim horizon, i.e. those
//     whose parents have all expired (the roots of what is left).
//   - FROM_TRIM_HORIZON: every listed shard.
//   - AT_TIMESTAMP: shards open at t: created at or before t and not closed
//     before t. A shard is created when its parent closed (or with the
//     stream).
//   - FROM_TIMESTAMP: open shards and shards closed at or after t.
func shardFilterFunc(tok pageToken, all []shards.ShardInfo, streamCreated time.Time) func(shards.ShardInfo) bool {
	byID := make(map[string]shards.ShardInfo, len(all))
	for _, sh := range all {
		byID[sh.ID] = sh
	}
	created := func(sh shards.ShardInfo) int64 {
		if p, ok := byID[sh.ParentID]; ok && p.Closed {
			return p.ClosedAt.UnixMilli()
		}
		if sh.ParentID != "" {
			// The parent expired: the shard is older than anything kept.
			return math.MinInt64
		}
		return streamCreated.UnixMilli()
	}
	closedAt := func(sh shards.ShardInfo) int64 {
		if !sh.Closed {
			return math.MaxInt64
		}
		return sh.ClosedAt.UnixMilli()
	}
	var t int64
	if tok.FilterTime != nil {
		t = int64(*tok.FilterTime)
	}
	switch tok.Filter {
	case filterAtLatest:
		return func(sh shards.ShardInfo) bool { return !sh.Closed }
	case filterAtTrimHorizon:
		return func(sh shards.ShardInfo) bool {
			_, p := byID[sh.ParentID]
			_, a := byID[sh.AdjacentParentID]
			return !p && !a
		}
	case filterAtTimestamp:
		return func(sh shards.ShardInfo) bool {
			// Before the stream existed, the initial shards are the answer.
			return (created(sh) <= t || (sh.ParentID == "" && t < streamCreated.UnixMilli())) && closedAt(sh) >= t
		}
	case filterFromTimestamp:
		return func(sh shards.ShardInfo) bool { return closedAt(sh) >= t }
	default: // none, AFTER_SHARD_ID, FROM_TRIM_HORIZON
		return func(shards.ShardInfo) bool { return true }
	}
}
