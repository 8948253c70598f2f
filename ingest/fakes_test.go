package ingest

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
)

// fakePasswords is a PasswordChecker over a map of plain passwords.
type fakePasswords map[string]string

var errFakeBadPassword = errors.New("fake: bad password")

type fakeUnknownUser struct{}

func (fakeUnknownUser) Error() string     { return "fake: unknown user" }
func (fakeUnknownUser) UnknownUser() bool { return true }

func (p fakePasswords) Verify(user string, password []byte) error {
	want, ok := p[user]
	if !ok {
		return fakeUnknownUser{}
	}
	if want != string(password) {
		return errFakeBadPassword
	}
	return nil
}

// countingPasswords counts Verify calls (the costly hashing a guard must
// spare).
type countingPasswords struct {
	fakePasswords
	calls atomic.Int32
}

func (p *countingPasswords) Verify(user string, password []byte) error {
	p.calls.Add(1)
	return p.fakePasswords.Verify(user, password)
}

// fakeACL allows by topic prefix per user: pub/sub/recv map a user to the
// prefixes it may publish to, subscribe to and receive. "%c" in a prefix
// stands for the client id. It records every receive check.
type fakeACL struct {
	pub, sub, recv map[string][]string

	mu       sync.Mutex
	received []string // "user topic" of each CanReceive
}

func allowedBy(prefixes []string, clientID, topic string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(topic, strings.ReplaceAll(p, "%c", clientID)) {
			return true
		}
	}
	return false
}

func (a *fakeACL) CanPublish(user, clientID, topic string) bool {
	return allowedBy(a.pub[user], clientID, topic)
}

func (a *fakeACL) CanSubscribe(user, clientID, filter string) bool {
	return allowedBy(a.sub[user], clientID, filter)
}

func (a *fakeACL) CanReceive(user, clientID, topic string) bool {
	a.mu.Lock()
	a.received = append(a.received, user+" "+topic)
	a.mu.Unlock()
	return allowedBy(a.recv[user], clientID, topic)
}
