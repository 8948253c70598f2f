// Package sdnotify tells systemd about the service's state over the
// sd_notify protocol: one datagram per message to the unix socket named by
// $NOTIFY_SOCKET (a leading '@' names an abstract socket). READY=1 ends a
// Type=notify unit's start, WATCHDOG=1 resets WatchdogSec's timer
// ($WATCHDOG_USEC says the interval), STOPPING=1 tells that shutdown
// began. Outside systemd FromEnv returns nil and every method on a nil
// *Notifier does nothing, so callers need no branch.
//
// It is the protocol's few lines (see sd_notify(3)), not a dependency:
// the message is "KEY=VALUE" lines in one datagram, and nothing comes back.
package sdnotify
