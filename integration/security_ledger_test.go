package integration

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/weir-gateway/weir/integration/harness"
)

// TestLedgerAllowedAndDenied: devices publish QoS 1 to their own topics
// while impostors (paho on 3.1.1, reconnecting after each refusal, and
// MQTT.js on 5) publish to those same topics as fast as they are let.
// Every acknowledged publish must be stored, every stored record must be
// one a device sent, and no impostor's record may be stored, whatever the
// interleaving. Keys: auth.password_file, auth.acl_file.
func TestLedgerAllowedAndDenied(t *testing.T) {
	const devices, run = 6, 2 * time.Second
	dir := t.TempDir()
	pw, acl := filepath.Join(dir, "passwd"), filepath.Join(dir, "acl")
	mosqPasswd(t, pw, "mallory", "mallory-secret", true)
	for i := 1; i <= devices; i++ {
		mosqPasswd(t, pw, fmt.Sprintf("dev-%02d", i), fmt.Sprintf("secret-%02d", i), false)
	}
	writeFile(t, acl, "pattern write devices/%u/#\n")
	w := harness.StartWeir(t, harness.Opts{Extra: authYAML(pw, acl, "")})

	var mu sync.Mutex
	sent, acked := map[string]bool{}, map[string]bool{}
	var forgedAcked []string
	forgedTries := 0
	ctx, cancel := context.WithTimeout(context.Background(), run)
	defer cancel()
	var wg sync.WaitGroup
	for i := 1; i <= devices; i++ {
		user := fmt.Sprintf("dev-%02d", i)
		c := pahoConnect(t, w.MQTTURL(), user, user, fmt.Sprintf("secret-%02d", i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Disconnect(50)
			for n := 0; ctx.Err() == nil; n++ {
				data := fmt.Sprintf("%s #%d", user, n)
				mu.Lock()
				sent[data] = true
				mu.Unlock()
				tok := c.Publish("devices/"+user+"/telemetry", 1, false, data)
				if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
					return
				}
				mu.Lock()
				acked[data] = true
				mu.Unlock()
			}
		}()
	}
	for m := 1; m <= 2; m++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ctx.Err() == nil; n++ {
				id := fmt.Sprintf("mallory-%d-%d", m, n)
				c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(w.MQTTURL()).SetClientID(id).
					SetUsername("mallory").SetPassword("mallory-secret").SetAutoReconnect(false).SetConnectTimeout(5 * time.Second))
				if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
					continue
				}
				data := fmt.Sprintf("FORGED %s", id)
				tok := c.Publish(fmt.Sprintf("devices/dev-%02d/telemetry", 1+n%devices), 1, false, data)
				ackd := tok.WaitTimeout(3*time.Second) && tok.Error() == nil
				mu.Lock()
				forgedTries++
				if ackd {
					forgedAcked = append(forgedAcked, data)
				}
				mu.Unlock()
				c.Disconnect(0)
			}
		}()
	}
	var steps []probeStep
	for n := range 20 {
		steps = append(steps, pub(fmt.Sprintf("devices/dev-%02d/telemetry", 1+n%devices), fmt.Sprintf("FORGED js %d", n)))
	}
	js := mqttjs(t, probePlan{URL: w.MQTTURL(), Version: 5, ClientID: "mallory-js", Username: "mallory", Password: "mallory-secret", Steps: steps})
	wg.Wait()
	for i := range steps {
		if js.pubackCode(i) != v5NotAuthorized {
			t.Errorf("MQTT.js impostor publish %d: PUBACK %d, want 0x87: %v", i, js.pubackCode(i), js)
			break
		}
	}
	if len(forgedAcked) > 0 {
		t.Errorf("%d of %d forged 3.1.1 publishes were acknowledged, e.g. %q", len(forgedAcked), forgedTries, forgedAcked[0])
	}
	if forgedTries == 0 || len(acked) < devices {
		t.Fatalf("the mix did not happen: %d forged tries, %d acknowledged device publishes", forgedTries, len(acked))
	}

	w.Stop()
	stored := map[string]bool{}
	for _, l := range harness.Dump(t, w.DataDir, "telemetry") {
		d := string(l.Data)
		stored[d] = true
		if strings.HasPrefix(d, "FORGED") {
			t.Errorf("an impostor's publish was stored: %q under key %q", d, l.Key)
		} else if !sent[d] {
			t.Errorf("stored %q, which no device sent", d)
		}
	}
	lost := 0
	for d := range acked {
		if !stored[d] {
			lost++
			if lost <= 5 {
				t.Errorf("acknowledged but not stored: %q", d)
			}
		}
	}
	t.Logf("%d device publishes acknowledged, %d records stored, %d forged 3.1.1 tries and %d MQTT.js ones refused, %d acked ones lost",
		len(acked), len(stored), forgedTries, len(steps), lost)
}

func pahoConnect(t *testing.T, broker, id, user, password string) mqtt.Client {
	t.Helper()
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID(id).SetUsername(user).SetPassword(password).
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s as %s: %v", id, user, tok.Error())
	}
	return c
}
