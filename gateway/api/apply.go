package api

import (
	"github.com/weir-gateway/weir/internal/conf"
)

// Diff classifies the differences between the running api section c and
// next; paths are relative to `api`. The read limits are live. The
// listener, its TLS files and the authentication mode are fixed at start:
// turning signatures on or off, or moving the credentials to another
// file, under clients' feet is a decision for a restart. (Changed
// contents of the same credentials and certificate files are re-read on
// their own, see ReloadCredentials.)
func (c Config) Diff(next Config) conf.Changes {
	var cs conf.Changes
	fixed, fixedNext := c, next
	fixed.ReadLimits, fixedNext.ReadLimits = ReadLimits{}, ReadLimits{}
	conf.DiffFields(&cs, conf.Restart, "", fixed, fixedNext)
	conf.DiffFields(&cs, conf.Live, "read_limits", c.ReadLimits, next.ReadLimits)
	return cs
}

// Apply puts a reloaded api section into force and returns every
// difference from the running one (paths relative to the file's root),
// each marked live or restart. New read limits replace every shard's
// limiter at once (full buckets, as after an idle second); a read already
// admitted finishes under the old ones.
func (s *Server) Apply(cfg Config) conf.Changes {
	var cs conf.Changes
	s.limMu.Lock()
	defer s.limMu.Unlock()
	cur := s.cfg
	cur.ReadLimits = s.readLimits
	cs.Nest("api", cur.Diff(cfg))
	if cfg.ReadLimits != s.readLimits {
		// The next read of each shard makes a limiter with the new limits.
		s.readLimits = cfg.ReadLimits
		clear(s.limiters)
	}
	return cs
}
