package sdnotify

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

// Protocol messages.
const (
	Ready     = "READY=1"
	Stopping  = "STOPPING=1"
	Watchdog  = "WATCHDOG=1"
	Reloading = "RELOADING=1"
)

// ErrSend wraps a failed write to the notify socket.
var ErrSend = errors.New("sdnotify: send")

// Notifier sends to one notify socket.
type Notifier struct {
	addr     *net.UnixAddr
	watchdog time.Duration
}

// FromEnv is the notifier systemd asked for, or nil when not run by
// systemd with Type=notify (no $NOTIFY_SOCKET). The watchdog interval is
// taken only when $WATCHDOG_PID is unset or this process's.
func FromEnv() *Notifier {
	return fromEnv(os.Getenv, os.Getpid())
}

func fromEnv(getenv func(string) string, pid int) *Notifier {
	sock := getenv("NOTIFY_SOCKET")
	if sock == "" {
		return nil
	}
	n := New(sock)
	if p := getenv("WATCHDOG_PID"); p != "" && p != strconv.Itoa(pid) {
		return n
	}
	if us, err := strconv.ParseInt(getenv("WATCHDOG_USEC"), 10, 64); err == nil && us > 0 {
		n.watchdog = time.Duration(us) * time.Microsecond
	}
	return n
}

// New sends to the socket at path ('@' first: abstract).
func New(path string) *Notifier {
	name := path
	if len(name) > 0 && name[0] == '@' {
		name = "\x00" + name[1:]
	}
	return &Notifier{addr: &net.UnixAddr{Name: name, Net: "unixgram"}}
}

// WatchdogInterval is WatchdogSec as systemd passed it; 0 when off. Send
// WATCHDOG=1 at about half of it.
func (n *Notifier) WatchdogInterval() time.Duration {
	if n == nil {
		return 0
	}
	return n.watchdog
}

// Notify sends one message (lines of KEY=VALUE). A nil Notifier sends
// nothing and returns nil.
func (n *Notifier) Notify(state string) error {
	if n == nil {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrSend, n.addr.Name, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrSend, n.addr.Name, err)
	}
	return nil
}
