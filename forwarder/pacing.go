package forwarder

import (
	"sort"
	"time"

	"github.com/weir-gateway/weir/internal/backoff"
	"github.com/weir-gateway/weir/shards"
)

// upShard is an open shard of the upstream stream, by hash range.
type upShard struct {
	id         string
	start, end shards.HashKey
}

// pacer slows down the keys of a throttled upstream shard without
// stalling the others. PutRecords does not say which shard throttled an
// entry, so the forwarder maps keys to shards itself from ListShards (the
// same MD5 rule Kinesis uses). Without a shard map (no ListShards
// permission, or not fetched yet) each key is paced on its own.
type pacer struct {
	bo      backoff.Exp
	up      []upShard // sorted by start; nil = unknown
	version int       // bumped when up changes, so cached group ids refresh
	groups  map[string]*group
}

type group struct {
	fails     int
	notBefore time.Time
}

func newPacer(bo backoff.Exp) *pacer { return &pacer{bo: bo, groups: map[string]*group{}} }

// setShards installs the upstream shard map (open shards only).
func (p *pacer) setShards(up []upShard) {
	sort.Slice(up, func(i, j int) bool { return up[i].start.Cmp(up[j].start) < 0 })
	p.up = up
	p.version++
}

// groupOf names the pacing group of a partition key.
func (p *pacer) groupOf(key string) string {
	if len(p.up) > 0 {
		h := shards.HashOf(key)
		i := sort.Search(len(p.up), func(i int) bool { return p.up[i].end.Cmp(h) >= 0 })
		if i < len(p.up) && p.up[i].start.Cmp(h) <= 0 {
			return "shard/" + p.up[i].id
		}
	}
	return "key/" + key
}

// throttled records a response in which the group's entries were all
// throttled (once per response, however many) and returns when the group
// may be tried again.
func (p *pacer) throttled(gid string, now time.Time) time.Time {
	g := p.groups[gid]
	if g == nil {
		g = &group{}
		p.groups[gid] = g
	}
	g.notBefore = now.Add(p.bo.Delay(g.fails))
	g.fails++
	return g.notBefore
}

// nudge delays the group by one base backoff without escalating: the
// upstream shard took some entries and throttled others, so it is at its
// limit, not refusing.
func (p *pacer) nudge(gid string, now time.Time) time.Time {
	g := p.groups[gid]
	if g == nil {
		g = &group{}
		p.groups[gid] = g
	}
	g.notBefore = now.Add(p.bo.Delay(0))
	return g.notBefore
}

// ok resets the group after an accepted entry.
func (p *pacer) ok(gid string) { delete(p.groups, gid) }

// notBefore is when the group may send again (zero if now).
func (p *pacer) notBefore(gid string) time.Time {
	if g := p.groups[gid]; g != nil {
		return g.notBefore
	}
	return time.Time{}
}

// tokenBucket caps the bytes sent per second. It may go into debt by one
// batch, so a batch larger than a second's worth still goes, and the next
// waits until the debt is repaid.
type tokenBucket struct {
	rate   float64 // bytes per second; 0 = unlimited
	burst  float64
	tokens float64
	last   time.Time
}

func newTokenBucket(rate int64, now time.Time) *tokenBucket {
	b := &tokenBucket{rate: float64(rate), burst: float64(rate), tokens: float64(rate), last: now}
	return b
}

func (b *tokenBucket) refill(now time.Time) {
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = min(b.burst, b.tokens+dt*b.rate)
	}
	b.last = now
}

// wait is how long until a send may start (0 when the bucket is not in debt).
func (b *tokenBucket) wait(now time.Time) time.Duration {
	if b.rate <= 0 {
		return 0
	}
	b.refill(now)
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / b.rate * float64(time.Second))
}

// take spends n bytes.
func (b *tokenBucket) take(n int, now time.Time) {
	if b.rate <= 0 {
		return
	}
	b.refill(now)
	b.tokens -= float64(n)
}
