package console

import (
	"errors"
	"math/big"
	"net/http"
	"strings"

	"github.com/weir-gateway/weir/gateway/api"
	"github.com/weir-gateway/weir/shards"
)

// Actions need the admin permission on the stream they touch (guard
// checks admin; each action checks the stream). The page asks for
// confirmation before sending any of them.

func (c *Console) stream(g api.Grant, name string) (*shards.Stream, error) {
	if !g.MayUse(name) {
		return nil, errorf(http.StatusForbidden, "access key "+g.KeyID+" may not use stream "+name)
	}
	st, err := c.src.Store.Stream(name)
	if err != nil {
		return nil, errorf(http.StatusNotFound, "no stream "+name)
	}
	return st, nil
}

func (c *Console) actForwarder(w http.ResponseWriter, r *http.Request, g api.Grant) error {
	var req struct {
		Target string `json:"target_stream"`
		Pause  bool   `json:"pause"`
	}
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if c.src.Forwarders != nil {
		for _, f := range c.src.Forwarders() {
			if f.Config().TargetStream != req.Target {
				continue
			}
			if _, err := c.stream(g, f.Config().Stream); err != nil {
				return err
			}
			if req.Pause {
				f.Pause()
			} else {
				f.Resume()
			}
			c.log.Info().Str("key", g.KeyID).Str("target_stream", req.Target).Bool("pause", req.Pause).Msg("console: forwarder paused/resumed")
			writeJSON(w, http.StatusOK, map[string]any{"target_stream": req.Target, "paused": req.Pause})
			return nil
		}
	}
	return errorf(http.StatusNotFound, "no forwarder to "+req.Target)
}

// actCheckpoint moves a consumer's checkpoint of every shard to the
// trim horizon (it re-reads everything kept) or to the end (it skips
// everything so far). Forwarders are refused: a running forwarder keeps
// its position in memory and would write it back; pause it and use
// their own settings instead.
func (c *Console) actCheckpoint(w http.ResponseWriter, r *http.Request, g api.Grant) error {
	var req struct {
		Stream   string `json:"stream"`
		Consumer string `json:"consumer"`
		To       string `json:"to"` // "trim_horizon" or "latest"
	}
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	st, err := c.stream(g, req.Stream)
	if err != nil {
		return err
	}
	if strings.HasPrefix(req.Consumer, shards.ForwarderPrefix) {
		return errorf(http.StatusBadRequest, "a forwarder's checkpoint is its own: it is not reset from the console")
	}
	ck := c.src.Store.Checkpoints()
	if _, err := ck.Consumer(req.Stream, req.Consumer); err != nil {
		return errorf(http.StatusNotFound, "no consumer "+req.Consumer+" on "+req.Stream)
	}
	if req.To != "trim_horizon" && req.To != "latest" {
		return errorf(http.StatusBadRequest, `to must be "trim_horizon" or "latest"`)
	}
	for _, info := range st.Shards() {
		sh, err := st.Shard(info.ID)
		if err != nil {
			continue
		}
		seq := sh.TrimHorizon() - 1 // processed up to the record before the first kept
		if req.To == "latest" {
			seq = sh.Last()
		}
		if err := ck.Commit(req.Stream, req.Consumer, info.ID, seq); err != nil {
			return err
		}
	}
	c.log.Info().Str("key", g.KeyID).Str("stream", req.Stream).Str("consumer", req.Consumer).Str("to", req.To).Msg("console: checkpoint reset")
	writeJSON(w, http.StatusOK, map[string]string{"stream": req.Stream, "consumer": req.Consumer, "to": req.To})
	return nil
}

// actSplit splits a shard at the middle of its hash range.
func (c *Console) actSplit(w http.ResponseWriter, r *http.Request, g api.Grant) error {
	var req struct {
		Stream string `json:"stream"`
		Shard  string `json:"shard"`
	}
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	st, err := c.stream(g, req.Stream)
	if err != nil {
		return err
	}
	var info *shards.ShardInfo
	for _, i := range st.Shards() {
		if i.ID == req.Shard {
			info = &i
		}
	}
	if info == nil {
		return errorf(http.StatusNotFound, "no shard "+req.Shard)
	}
	mid := new(big.Int).Add(info.StartHash.Big(), info.EndHash.Big())
	mid.Rsh(mid, 1).Add(mid, big.NewInt(1))
	at, err := shards.ParseHashKey(mid.String())
	if err != nil {
		return err
	}
	if err := st.Split(req.Shard, at); err != nil {
		return reshardErr(err)
	}
	c.log.Info().Str("key", g.KeyID).Str("stream", req.Stream).Str("shard", req.Shard).Msg("console: shard split")
	writeJSON(w, http.StatusOK, map[string]string{"stream": req.Stream, "split": req.Shard, "at": at.String()})
	return nil
}

func (c *Console) actMerge(w http.ResponseWriter, r *http.Request, g api.Grant) error {
	var req struct {
		Stream   string `json:"stream"`
		Shard    string `json:"shard"`
		Adjacent string `json:"adjacent"`
	}
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	st, err := c.stream(g, req.Stream)
	if err != nil {
		return err
	}
	if err := st.Merge(req.Shard, req.Adjacent); err != nil {
		return reshardErr(err)
	}
	c.log.Info().Str("key", g.KeyID).Str("stream", req.Stream).Str("shard", req.Shard).Str("adjacent", req.Adjacent).Msg("console: shards merged")
	writeJSON(w, http.StatusOK, map[string]string{"stream": req.Stream, "merged": req.Shard + "+" + req.Adjacent})
	return nil
}

// reshardErr maps the store's refusals to what the operator did wrong.
func reshardErr(err error) error {
	for _, k := range []error{shards.ErrInvalidArgument, shards.ErrShardNotFound, shards.ErrShardClosed, shards.ErrLimitExceeded, shards.ErrResourceInUse} {
		if errors.Is(err, k) {
			return errorf(http.StatusBadRequest, err.Error())
		}
	}
	return err
}
