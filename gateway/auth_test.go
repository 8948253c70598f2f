package gateway

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/weir-gateway/weir/gateway/config"
	"github.com/weir-gateway/weir/ingest/auth"
)

// TestAuthFilesAreWiredAndReloaded: the daemon hands the auth section's
// files to the broker, and a changed password file takes effect on Reload
// (SIGHUP) without a restart, while a broken one leaves the old in force.
func TestAuthFilesAreWiredAndReloaded(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "passwd")
	acl := filepath.Join(dir, "acl")
	if err := auth.NewPasswordFile(pw, "d1", []byte("first")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(acl, []byte("pattern write devices/%u/#\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.MQTT.Listen = "127.0.0.1:0"
	cfg.API.Listen = ""
	cfg.Auth.PasswordFile = pw
	cfg.Auth.ACLFile = acl
	cfg.Auth.ClientIDMustMatch = auth.ClientIDMatchUsername
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	d := startDaemonWith(t, cfg)
	connect := func(id, user, pass string) (mqtt.Client, error) {
		c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + d.MQTTAddr().String()).SetClientID(id).
			SetUsername(user).SetPassword(pass).SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(5 * time.Second))
		tok := c.Connect()
		if !tok.WaitTimeout(10 * time.Second) {
			t.Fatal("connect timed out")
		}
		return c, tok.Error()
	}
	mustRefuse := func(id, user, pass string) {
		t.Helper()
		if c, err := connect(id, user, pass); err == nil {
			c.Disconnect(0)
			t.Fatalf("%s/%s with %q was accepted", id, user, pass)
		}
	}
	mustRefuse("d1", "d1", "wrong")
	mustRefuse("d1", "", "")        // anonymous: not allowed with a password file
	mustRefuse("d2", "d1", "first") // client id bound to the user name
	c, err := connect("d1", "d1", "first")
	if err != nil {
		t.Fatalf("right password refused: %v", err)
	}
	if tok := c.Publish("devices/d1/telemetry", 1, false, "ok"); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("allowed publish: %v", tok.Error())
	}
	c.Disconnect(100)

	// A bad new file is reported and the old passwords stay in force.
	if err := os.WriteFile(pw, []byte("d1:plaintext\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.Reload(); err == nil {
		t.Fatal("Reload accepted a plain-text password file")
	}
	if c, err := connect("d1", "d1", "first"); err != nil {
		t.Fatalf("old password no longer works after a failed reload: %v", err)
	} else {
		c.Disconnect(0)
	}

	if err := auth.NewPasswordFile(pw, "d1", []byte("second")); err != nil {
		t.Fatal(err)
	}
	if err := d.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	mustRefuse("d1", "d1", "first")
	if c, err := connect("d1", "d1", "second"); err != nil {
		t.Fatalf("new password refused after Reload: %v", err)
	} else {
		c.Disconnect(0)
	}
}
