package api

import (
	"context"
	"sort"

	"github.com/weir-gateway/weir/shards"
)

// Stream tags, enhanced monitoring and DescribeLimits: what infrastructure
// tools (Terraform, CDK, CloudFormation-style scripts) call around a
// stream. Tags and the enabled shard-level metrics live in stream.json.

type addTagsInput struct {
	streamRef
	Tags map[string]string `json:"Tags"`
}

type removeTagsInput struct {
	streamRef
	TagKeys []string `json:"TagKeys"`
}

type listTagsInput struct {
	streamRef
	ExclusiveStartTagKey string `json:"ExclusiveStartTagKey,omitempty"`
	Limit                *int   `json:"Limit,omitempty"`
}

type tagJSON struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

type listTagsOutput struct {
	Tags        []tagJSON `json:"Tags"`
	HasMoreTags bool      `json:"HasMoreTags"`
}

type monitoringInput struct {
	streamRef
	ShardLevelMetrics []string `json:"ShardLevelMetrics"`
}

type monitoringOutput struct {
	StreamName               string   `json:"StreamName"`
	StreamARN                string   `json:"StreamARN"`
	CurrentShardLevelMetrics []string `json:"CurrentShardLevelMetrics"`
	DesiredShardLevelMetrics []string `json:"DesiredShardLevelMetrics"`
}

type describeLimitsOutput struct {
	ShardLimit               int `json:"ShardLimit"`
	OpenShardCount           int `json:"OpenShardCount"`
	OnDemandStreamCount      int `json:"OnDemandStreamCount"`
	OnDemandStreamCountLimit int `json:"OnDemandStreamCountLimit"`
}

func (s *Server) addTags(_ context.Context, req *request) (any, error) {
	var in addTagsInput
	if err := req.decode(&in); err != nil {
		return nil, err
	}
	if len(in.Tags) < 1 || len(in.Tags) > 10 {
		return nil, validation("1 validation error detected: Value at 'tags' failed to satisfy constraint: Member must have between 1 and 10 entries")
	}
	st, err := s.stream(req, in.streamRef)
	if err != nil {
		return nil, err
	}
	return struct{}{}, st.UpdateTags(in.Tags, nil)
}

func (s *Server) removeTags(_ context.Context, req *request) (any, error) {
	var in removeTagsInput
	if err := req.decode(&in); err != nil {
		return nil, err
	}
	if len(in.TagKeys) < 1 || len(in.TagKeys) > 50 {
		return nil, validation("1 validation error detected: Value at 'tagKeys' failed to satisfy constraint: Member must have length between 1 and 50")
	}
	st, err := s.stream(req, in.streamRef)
	if err != nil {
		return nil, err
	}
	return struct{}{}, st.UpdateTags(nil, in.TagKeys)
}

// listTags pages tags by key. Without Limit it returns all of them (a
// stream has at most 50), so a client that does not page misses none.
func (s *Server) listTags(_ context.Context, req *request) (any, error) {
	var in listTagsInput
	if err := req.decode(&in); err != nil {
		return nil, err
	}
	limit, err := limitArg("limit", in.Limit, shards.MaxTags, shards.MaxTags)
	if err != nil {
		return nil, err
	}
	st, err := s.stream(req, in.streamRef)
	if err != nil {
		return nil, err
	}
	tags := st.Tags()
	keys := make([]string, 0, len(tags))
	for k := range tags {
		if k > in.ExclusiveStartTagKey {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	out := listTagsOutput{Tags: []tagJSON{}}
	for _, k := range keys {
		if len(out.Tags) == limit {
			out.HasMoreTags = true
			break
		}
		out.Tags = append(out.Tags, tagJSON{Key: k, Value: tags[k]})
	}
	return out, nil
}

func (s *Server) enableMonitoring(_ context.Context, req *request) (any, error) {
	return s.setMonitoring(req, true)
}

func (s *Server) disableMonitoring(_ context.Context, req *request) (any, error) {
	return s.setMonitoring(req, false)
}

// setMonitoring turns shard-level metrics on or off; API.md maps each
// Kinesis metric to the /metrics family that carries it.
func (s *Server) setMonitoring(req *request, on bool) (any, error) {
	var in monitoringInput
	if err := req.decode(&in); err != nil {
		return nil, err
	}
	if len(in.ShardLevelMetrics) < 1 || len(in.ShardLevelMetrics) > 7 {
		return nil, validation("1 validation error detected: Value at 'shardLevelMetrics' failed to satisfy constraint: Member must have length between 1 and 7")
	}
	st, err := s.stream(req, in.streamRef)
	if err != nil {
		return nil, err
	}
	before, after, err := st.SetEnhancedMetrics(in.ShardLevelMetrics, on)
	if err != nil {
		return nil, err
	}
	return monitoringOutput{StreamName: st.Name(), StreamARN: s.streamARN(st.Name()),
		CurrentShardLevelMetrics: before, DesiredShardLevelMetrics: after}, nil
}

// onDemandStreamLimit is what DescribeLimits reports as the on-demand
// stream limit: Kinesis's default, since weir itself has none.
const onDemandStreamLimit = 50

// describeLimits reports the gateway's shard limit: MaxOpenShards per
// stream, which is the only shard limit weir has.
func (s *Server) describeLimits(_ context.Context, req *request) (any, error) {
	if err := s.allowListing(req); err != nil {
		return nil, err
	}
	open, onDemand := 0, 0
	for _, st := range s.store.Streams() {
		if st.Mode() == shards.ModeOnDemand {
			onDemand++
		}
		for _, sh := range st.Shards() {
			if !sh.Closed {
				open++
			}
		}
	}
	// On-demand streams have no count limit here beyond the disk.
	return describeLimitsOutput{ShardLimit: shards.MaxOpenShards, OpenShardCount: open,
		OnDemandStreamCount: onDemand, OnDemandStreamCountLimit: onDemandStreamLimit}, nil
}
