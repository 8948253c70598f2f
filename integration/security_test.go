package integration

import (
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weir-gateway/weir/integration/harness"
)

// Issue 11 end to end: TLS, client certificates, passwords and ACLs on
// the MQTT side, checked with real clients (mosquitto_pub/sub, MQTT.js) on
// MQTT 3.1.1 and 5, and what the gateway then stored (weir dump).

// MQTT refusal codes (/work/shared/reference/security.md).
const (
	v5BadUserOrPassword = 0x86
	v5NotAuthorized     = 0x87
	v5ClientIDInvalid   = 0x85
	v5QuotaExceeded     = 0x97
	v3BadUserOrPassword = 4
	v3NotAuthorized     = 5
	v3IdentifierReject  = 2
	v3SubackFailure     = 0x80
)

// tlsListener is one entry of mqtt.listeners.
type tlsListener struct {
	Port         int
	PKI          *harness.PKI
	MTLS         bool   // client_ca_file + require_client_cert: true
	IdentityFrom string // cn | san_dns | san_uri; "" leaves it out
}

func (l tlsListener) addr() string { return "127.0.0.1:" + strconv.Itoa(l.Port) }
func (l tlsListener) url() string  { return "mqtts://" + l.addr() }

// listenersYAML is the mqtt.listeners key for the mqtt: section.
func listenersYAML(ls ...tlsListener) string {
	var b strings.Builder
	b.WriteString("listeners:\n")
	for _, l := range ls {
		fmt.Fprintf(&b, "  - listen: %s\n    tls:\n      cert_file: %q\n      key_file: %q\n", l.addr(), l.PKI.ServerCert, l.PKI.ServerKey)
		if l.MTLS {
			fmt.Fprintf(&b, "      client_ca_file: %q\n      require_client_cert: true\n", l.PKI.CAFile)
		}
		if l.IdentityFrom != "" {
			fmt.Fprintf(&b, "      identity_from: %s\n", l.IdentityFrom)
		}
	}
	return b.String()
}

// authYAML is the top-level auth: section.
func authYAML(passwordFile, aclFile, clientIDMustMatch string) string {
	var b strings.Builder
	b.WriteString("auth:\n")
	if passwordFile != "" {
		fmt.Fprintf(&b, "  password_file: %q\n", passwordFile)
	}
	if aclFile != "" {
		fmt.Fprintf(&b, "  acl_file: %q\n", aclFile)
	}
	if clientIDMustMatch != "" {
		fmt.Fprintf(&b, "  client_id_must_match: %s\n", clientIDMustMatch)
	}
	return b.String()
}

// mosqPasswd adds a user with mosquitto_passwd -b ($7$ PBKDF2-SHA512
// hashes); create starts a new file (-c).
func mosqPasswd(t *testing.T, file, user, password string, create bool) {
	t.Helper()
	args := []string{"-b", file, user, password}
	if create {
		args = append([]string{"-c"}, args...)
	}
	if out, code := runTool(t, "", "mosquitto_passwd", args...); code != 0 {
		t.Fatalf("mosquitto_passwd %v: exit %d: %s", args, code, out)
	}
}

// weirPasswd runs `weir passwd FILE USER --password-stdin` (argon2id).
func weirPasswd(t *testing.T, file, user, password string) {
	t.Helper()
	if out, code := runTool(t, password+"\n", harness.WeirBinary(t), "passwd", file, user, "--password-stdin"); code != 0 {
		t.Fatalf("weir passwd %s %s --password-stdin: exit %d: %s", file, user, code, out)
	}
}

// storedData maps each stored record's data to its partition key.
func storedData(t *testing.T, w *harness.Weir) map[string]string {
	t.Helper()
	got := map[string]string{}
	for _, l := range harness.Dump(t, w.DataDir, "telemetry") {
		got[string(l.Data)] = l.Key
	}
	return got
}

func sameSet(t *testing.T, what string, got map[string]string, want map[string]string) {
	t.Helper()
	for data, key := range want {
		if k, ok := got[data]; !ok {
			t.Errorf("%s: %q was acknowledged but not stored", what, data)
		} else if k != key {
			t.Errorf("%s: %q stored with key %q, want %q", what, data, k, key)
		}
	}
	for data, key := range got {
		if _, ok := want[data]; !ok {
			t.Errorf("%s: %q (key %q) was stored but should have been refused", what, data, key)
		}
	}
}

// TestTLSServerCertificate: a TLS listener with a server certificate
// only. Clients that trust the CA publish over it (mosquitto_pub --cafile,
// MQTT.js mqtts:// with ca), on 3.1.1 and 5; a client that trusts another
// CA, or speaks plain MQTT to the TLS port, gets nowhere and stores nothing.
// Keys: mqtt.listeners[].listen, .tls.cert_file, .tls.key_file.
func TestTLSServerCertificate(t *testing.T) {
	pki := harness.NewPKI(t)
	foreign := harness.NewForeignPKI(t)
	l := tlsListener{Port: harness.FreePort(t), PKI: pki}
	w := harness.StartWeir(t, harness.Opts{MQTT: listenersYAML(l)})
	want := map[string]string{}
	for _, v := range mqttVersions {
		id := "tls-mosq-" + v.Mosq
		if out, code := mosqPub(t, mosqConn{Addr: l.addr(), Version: v.Mosq, ID: id, CAFile: pki.CAFile}, "devices/"+id+"/telemetry", "hello "+id); code != 0 {
			t.Errorf("mosquitto_pub -V %s --cafile over TLS: exit %d: %s", v.Mosq, code, out)
		}
		want["hello "+id] = id

		jsID := fmt.Sprintf("tls-js-%d", v.JS)
		r := mqttjs(t, probePlan{URL: l.url(), Version: v.JS, ClientID: jsID, CA: pki.CAFile,
			Steps: []probeStep{pub("devices/"+jsID+"/telemetry", "hello "+jsID)}})
		if !r.Connected || r.pubackCode(0) != 0 {
			t.Errorf("MQTT.js v%d over TLS: %v", v.JS, r)
		}
		want["hello "+jsID] = jsID

		if out, code := mosqPub(t, mosqConn{Addr: l.addr(), Version: v.Mosq, ID: "wrong-ca", CAFile: foreign.CAFile}, "devices/wrong-ca/telemetry", "FORGED wrong CA"); code == 0 {
			t.Errorf("mosquitto_pub -V %s trusting another CA published: %s", v.Mosq, out)
		}
		if out, code := mosqPub(t, mosqConn{Addr: l.addr(), Version: v.Mosq, ID: "plain"}, "devices/plain/telemetry", "FORGED plain on TLS port"); code == 0 {
			t.Errorf("mosquitto_pub -V %s without TLS published on the TLS port: %s", v.Mosq, out)
		}
		r = mqttjs(t, probePlan{URL: l.url(), Version: v.JS, ClientID: "wrong-ca-js", CA: foreign.CAFile,
			Steps: []probeStep{pub("devices/wrong-ca-js/telemetry", "FORGED wrong CA js")}})
		if r.Connected || r.Error == nil {
			t.Errorf("MQTT.js v%d trusting another CA: %v", v.JS, r)
		}
	}
	w.Stop()
	sameSet(t, "TLS", storedData(t, w), want)
}

// TestMTLSIdentityPartitionKey: three mTLS listeners, one per
// identity_from. A client with a certificate from the CA is authenticated
// as that certificate's identity without a password; the route's
// partition_key "{identity}" stores its records under that identity, not
// under what the topic claims; client_id_must_match: identity refuses a
// client id that is not the identity; no certificate, or one from another
// CA, is refused.
// Keys: mqtt.listeners[].tls.{client_ca_file,require_client_cert,identity_from},
// auth.client_id_must_match: identity, routes[].partition_key "{identity}".
func TestMTLSIdentityPartitionKey(t *testing.T) {
	pki := harness.NewPKI(t)
	byCN := tlsListener{Port: harness.FreePort(t), PKI: pki, MTLS: true, IdentityFrom: "cn"}
	byDNS := tlsListener{Port: harness.FreePort(t), PKI: pki, MTLS: true, IdentityFrom: "san_dns"}
	byURI := tlsListener{Port: harness.FreePort(t), PKI: pki, MTLS: true, IdentityFrom: "san_uri"}
	const (
		cn  = "meter-cn-17"
		dns = "meter-17.devices.local"
		uri = "spiffe://plant-3/meter/17"
	)
	meter := pki.Client("meter-17", harness.Identity{CN: cn, DNS: []string{dns}, URIs: []string{uri}})
	evil := harness.NewForeignPKI(t).Client("evil", harness.Identity{CN: cn, DNS: []string{dns}, URIs: []string{uri}})
	w := harness.StartWeir(t, harness.Opts{
		MQTT:   listenersYAML(byCN, byDNS, byURI),
		Extra:  authYAML("", "", "identity"),
		Routes: []harness.Route{{Filter: "devices/+/telemetry", Stream: "telemetry", PartitionKey: "{identity}"}},
	})
	// Every publish claims to come from a victim; the key must say who sent it.
	const topic = "devices/victim/telemetry"
	want := map[string]string{}
	for _, v := range mqttVersions {
		for _, x := range []struct {
			l  tlsListener
			id string
		}{{byCN, cn}, {byDNS, dns}, {byURI, uri}} {
			data := fmt.Sprintf("mosq %s %s", v.Mosq, x.l.IdentityFrom)
			c := mosqConn{Addr: x.l.addr(), Version: v.Mosq, ID: x.id, CAFile: pki.CAFile, Cert: meter}
			if out, code := mosqPub(t, c, topic, data); code != 0 {
				t.Errorf("mosquitto_pub -V %s with a client certificate, identity_from %s: exit %d: %s", v.Mosq, x.l.IdentityFrom, code, out)
			}
			want[data] = x.id

			data = fmt.Sprintf("js %d %s", v.JS, x.l.IdentityFrom)
			r := mqttjs(t, probePlan{URL: x.l.url(), Version: v.JS, ClientID: x.id, CA: pki.CAFile, Cert: meter.CertFile, Key: meter.KeyFile,
				Steps: []probeStep{pub(topic, data)}})
			if !r.Connected || r.pubackCode(0) != 0 {
				t.Errorf("MQTT.js v%d with a client certificate, identity_from %s: %v", v.JS, x.l.IdentityFrom, r)
			}
			want[data] = x.id
		}

		// Client id other than the identity: refused, so no certificate
		// holder can take over another device's session.
		c := mosqConn{Addr: byCN.addr(), Version: v.Mosq, ID: "victim", CAFile: pki.CAFile, Cert: meter}
		out, code := mosqPub(t, c, topic, "FORGED other client id "+v.Mosq)
		if ok := []int{v3IdentifierReject, v3NotAuthorized}; v.V5 {
			ok = []int{v5ClientIDInvalid, v5NotAuthorized}
			if !slices.Contains(ok, code) {
				t.Errorf("mosquitto_pub -V %s -i victim with %s's certificate: exit %d, want the CONNACK code 0x85 or 0x87: %s", v.Mosq, cn, code, out)
			}
		} else if !slices.Contains(ok, code) {
			t.Errorf("mosquitto_pub -V %s -i victim with %s's certificate: exit %d, want the CONNACK code 2 or 5: %s", v.Mosq, cn, code, out)
		}
		r := mqttjs(t, probePlan{URL: byCN.url(), Version: v.JS, ClientID: "victim", CA: pki.CAFile, Cert: meter.CertFile, Key: meter.KeyFile,
			Steps: []probeStep{pub(topic, "FORGED other client id js")}})
		if r.Connected {
			t.Errorf("MQTT.js v%d -i victim with %s's certificate connected: %v", v.JS, cn, r)
		}

		// No certificate, or one from a CA the listener does not trust.
		if out, code := mosqPub(t, mosqConn{Addr: byCN.addr(), Version: v.Mosq, ID: cn, CAFile: pki.CAFile}, topic, "FORGED no cert"); code == 0 {
			t.Errorf("mosquitto_pub -V %s without a client certificate published: %s", v.Mosq, out)
		}
		if out, code := mosqPub(t, mosqConn{Addr: byCN.addr(), Version: v.Mosq, ID: cn, CAFile: pki.CAFile, Cert: evil}, topic, "FORGED foreign CA"); code == 0 {
			t.Errorf("mosquitto_pub -V %s with a foreign CA's certificate published: %s", v.Mosq, out)
		}
		r = mqttjs(t, probePlan{URL: byCN.url(), Version: v.JS, ClientID: cn, CA: pki.CAFile, Cert: evil.CertFile, Key: evil.KeyFile,
			Steps: []probeStep{pub(topic, "FORGED foreign CA js")}})
		if r.Connected || r.pubackCode(0) == 0 {
			t.Errorf("MQTT.js v%d with a foreign CA's certificate: %v", v.JS, r)
		}
	}
	w.Stop()
	sameSet(t, "mTLS {identity}", storedData(t, w), want)
}

// TestPasswordFile: one password file holding a mosquitto_passwd entry
// ($7$) and a `weir passwd --password-stdin` entry ($argon2id$), applied
// on the loopback listener too. Right passwords publish; a wrong one gets
// CONNACK 0x86 (v5) / 4 (3.1.1), which mosquitto_pub returns as its exit
// code and MQTT.js as its error code; no user name is refused too.
// Keys: auth.password_file; command weir passwd FILE USER --password-stdin.
func TestPasswordFile(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "passwd")
	mosqPasswd(t, pw, "alice", "alice-secret", true)
	weirPasswd(t, pw, "bob", "bob-secret")
	content := readFile(t, pw)
	if !strings.Contains(content, "alice:$7$") || !strings.Contains(content, "bob:$argon2id$") {
		t.Fatalf("password file after mosquitto_passwd and weir passwd:\n%s\nwant an alice:$7$ line and a bob:$argon2id$ line", content)
	}
	w := harness.StartWeir(t, harness.Opts{Extra: authYAML(pw, "", "")})
	want := map[string]string{}
	for _, v := range mqttVersions {
		for _, u := range []struct{ user, password string }{{"alice", "alice-secret"}, {"bob", "bob-secret"}} {
			id := u.user + "-" + v.Mosq
			data := "mosq " + id
			if out, code := mosqPub(t, mosqConn{Addr: w.MQTTAddr, Version: v.Mosq, ID: id, User: u.user, Password: u.password}, "devices/"+id+"/telemetry", data); code != 0 {
				t.Errorf("mosquitto_pub -V %s -u %s with the right password: exit %d: %s", v.Mosq, u.user, code, out)
			}
			want[data] = id

			jsID := fmt.Sprintf("%s-js%d", u.user, v.JS)
			r := mqttjs(t, probePlan{URL: w.MQTTURL(), Version: v.JS, ClientID: jsID, Username: u.user, Password: u.password,
				Steps: []probeStep{pub("devices/"+jsID+"/telemetry", "js "+jsID)}})
			if !r.Connected || r.pubackCode(0) != 0 {
				t.Errorf("MQTT.js v%d %s with the right password: %v", v.JS, u.user, r)
			}
			want["js "+jsID] = jsID

			wantCode, wantMsg := v3BadUserOrPassword, "Connection Refused: bad user name or password"
			if v.V5 {
				wantCode, wantMsg = v5BadUserOrPassword, "Bad User Name or Password"
			}
			out, code := mosqPub(t, mosqConn{Addr: w.MQTTAddr, Version: v.Mosq, ID: id, User: u.user, Password: "wrong"}, "devices/"+id+"/telemetry", "FORGED wrong password")
			if code != wantCode || !strings.Contains(strings.ToLower(out), strings.ToLower(wantMsg)) {
				t.Errorf("mosquitto_pub -V %s -u %s -P wrong: exit %d, want %d and %q:\n%s", v.Mosq, u.user, code, wantCode, wantMsg, out)
			}
			r = mqttjs(t, probePlan{URL: w.MQTTURL(), Version: v.JS, ClientID: jsID, Username: u.user, Password: "wrong",
				Steps: []probeStep{pub("devices/"+jsID+"/telemetry", "FORGED wrong password js")}})
			if r.Connected || r.connackCode() != wantCode || r.Error == nil || fmt.Sprint(r.Error.Code) != strconv.Itoa(wantCode) {
				t.Errorf("MQTT.js v%d %s with a wrong password: want CONNACK and error code %d, got %v", v.JS, u.user, wantCode, r)
			}
		}
		// No user name at all: once a password file is configured, even
		// on loopback, anonymous clients are refused (4/5 or 0x86/0x87).
		out, code := mosqPub(t, mosqConn{Addr: w.MQTTAddr, Version: v.Mosq, ID: "anon-" + v.Mosq}, "devices/anon/telemetry", "FORGED anonymous")
		if ok := []int{v3BadUserOrPassword, v3NotAuthorized, v5BadUserOrPassword, v5NotAuthorized}; !slices.Contains(ok, code) {
			t.Errorf("mosquitto_pub -V %s without a user name: exit %d, want a CONNACK refusal code: %s", v.Mosq, code, out)
		}
	}
	w.Stop()
	sameSet(t, "passwords", storedData(t, w), want)
}

// TestPasswordFilePlainTextRefusedAtStart: a line with a plain-text
// password is an error at start naming file:line, not a silent accept.
func TestPasswordFilePlainTextRefusedAtStart(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "passwd")
	mosqPasswd(t, pw, "alice", "alice-secret", true)
	writeFile(t, pw, readFile(t, pw)+"bob:hunter2\n")
	cfg := filepath.Join(dir, "weir.yaml")
	writeFile(t, cfg, fmt.Sprintf("data_dir: %q\nmqtt:\n  listen: 127.0.0.1:%d\napi:\n  listen: \"\"\n%s", filepath.Join(dir, "data"), harness.FreePort(t), authYAML(pw, "", "")))
	_, stderr, code := harness.RunWeirFor(t, 15*time.Second, dir, "serve", "--config", cfg)
	if code == 0 {
		t.Fatal("weir started with a plain-text password in its password file")
	}
	if !strings.Contains(stderr, pw+":2") {
		t.Errorf("the refusal does not name %s:2:\n%s", pw, stderr)
	}
	if strings.Contains(stderr, "hunter2") {
		t.Errorf("the refusal prints the password:\n%s", stderr)
	}
}

// aclFile confines each device to its own topics with one line, grants
// alice $SYS and a shared tree, gives bob read-only access to it, and
// binds clients/%c/# to the client id.
const aclFile = `# Lines before the first user apply to anonymous clients: none here.
user alice
topic read $SYS/#
topic readwrite shared/alice/#

user bob
topic read shared/alice/#

pattern write devices/%u/#
pattern read devices/%u/cmd/#
pattern write clients/%c/#
`

// TestACL: Mosquitto's acl_file with %u and %c, default deny, on 3.1.1 and
// 5. Allowed publishes are acknowledged and stored; a denied QoS 1
// publish gets PUBACK 0x87 on v5 (the connection stays up) and on 3.1.1 a
// disconnect without an ack; it is never stored. Subscriptions to '#' and
// to $SYS (without a grant) get SUBACK 0x87 / 0x80.
// Keys: auth.password_file, auth.acl_file.
func TestACL(t *testing.T) {
	dir := t.TempDir()
	pw, acl := filepath.Join(dir, "passwd"), filepath.Join(dir, "acl")
	mosqPasswd(t, pw, "alice", "alice-secret", true)
	mosqPasswd(t, pw, "bob", "bob-secret", false)
	writeFile(t, acl, aclFile)
	w := harness.StartWeir(t, harness.Opts{
		Extra:  authYAML(pw, acl, ""),
		Routes: []harness.Route{{Filter: "#", Stream: "telemetry", PartitionKey: "{client_id}"}},
	})
	want := map[string]string{}
	for _, v := range mqttVersions {
		alice := mosqConn{Addr: w.MQTTAddr, Version: v.Mosq, ID: "alice-" + v.Mosq, User: "alice", Password: "alice-secret"}
		bob := mosqConn{Addr: w.MQTTAddr, Version: v.Mosq, ID: "bob-box-" + v.Mosq, User: "bob", Password: "bob-secret"}
		for _, p := range []struct {
			c            mosqConn
			topic, data  string
			allowed      bool
			becauseOfACL string
		}{
			{alice, "devices/alice/telemetry", "alice own " + v.Mosq, true, "pattern write devices/%u/#"},
			{alice, "shared/alice/note", "alice shared " + v.Mosq, true, "topic readwrite shared/alice/#"},
			{bob, "clients/" + bob.ID + "/status", "bob %c " + v.Mosq, true, "pattern write clients/%c/#"},
			{alice, "devices/bob/telemetry", "FORGED alice as bob " + v.Mosq, false, "devices/bob is bob's"},
			{bob, "clients/someone-else/status", "FORGED bob as someone " + v.Mosq, false, "%c is bob's client id"},
			{bob, "shared/alice/note", "FORGED bob writes shared " + v.Mosq, false, "bob may only read shared/alice"},
			{bob, "elsewhere/x", "FORGED default deny " + v.Mosq, false, "nothing grants elsewhere/"},
		} {
			out, code := mosqPub(t, p.c, p.topic, p.data)
			denied := strings.Contains(out, "Not authorized") || code != 0
			switch {
			case p.allowed && (code != 0 || denied):
				t.Errorf("mosquitto_pub -V %s -u %s -t %s (%s): exit %d: %s", v.Mosq, p.c.User, p.topic, p.becauseOfACL, code, out)
			case !p.allowed && v.V5 && !strings.Contains(out, "Not authorized"):
				// mosquitto_pub prints a v5 PUBACK refusal and exits 0.
				t.Errorf("mosquitto_pub -V mqttv5 -u %s -t %s (%s): want PUBACK 0x87 (\"Publish 1 failed: Not authorized\"), got exit %d: %s", p.c.User, p.topic, p.becauseOfACL, code, out)
			case !p.allowed && !v.V5 && code == 0:
				t.Errorf("mosquitto_pub -V mqttv311 -u %s -t %s (%s): exit 0; a denied 3.1.1 QoS 1 publish must end in a disconnect without PUBACK: %s", p.c.User, p.topic, p.becauseOfACL, out)
			}
			if p.allowed {
				want[p.data] = p.c.ID
			}
		}

		// MQTT.js: a denied publish between two allowed ones.
		jsID := fmt.Sprintf("alice-js%d", v.JS)
		r := mqttjs(t, probePlan{URL: w.MQTTURL(), Version: v.JS, ClientID: jsID, Username: "alice", Password: "alice-secret",
			Steps: []probeStep{pub("devices/alice/telemetry", "js before "+jsID), pub("devices/bob/telemetry", "FORGED js "+jsID), pub("devices/alice/telemetry", "js after "+jsID)}})
		want["js before "+jsID] = jsID
		if r.pubackCode(0) != 0 {
			t.Errorf("MQTT.js v%d: allowed publish not acked: %v", v.JS, r)
		}
		if v.V5 {
			if r.pubackCode(1) != v5NotAuthorized || r.pubackCode(2) != 0 || r.Closed {
				t.Errorf("MQTT.js v5: want PUBACK 0, 0x87, 0 and the connection kept, got %v", r)
			}
			want["js after "+jsID] = jsID
		} else if r.pubackCode(1) != -1 || !r.Closed {
			t.Errorf("MQTT.js 3.1.1: want the denied publish unanswered and the connection closed, got %v", r)
		}

		// Subscriptions: per filter, checked as filters.
		fail := v3SubackFailure
		if v.V5 {
			fail = v5NotAuthorized
		}
		for _, s := range []struct {
			c       mosqConn
			filters []string
			want    []int
		}{
			{alice, []string{"#"}, []int{fail}},
			{alice, []string{"$SYS/#"}, []int{0}},
			{bob, []string{"$SYS/#"}, []int{fail}},
			{alice, []string{"devices/alice/cmd/#", "devices/bob/cmd/#"}, []int{0, fail}},
			{bob, []string{"shared/alice/#", "devices/+/cmd/#"}, []int{0, fail}},
		} {
			codes, out := mosqSubCodes(t, s.c, s.filters...)
			if !slices.Equal(codes, s.want) {
				t.Errorf("mosquitto_sub -V %s -u %s %v: SUBACK %v, want %v\n%s", v.Mosq, s.c.User, s.filters, codes, s.want, out)
			}
		}
		r = mqttjs(t, probePlan{URL: w.MQTTURL(), Version: v.JS, ClientID: fmt.Sprintf("bob-js%d", v.JS), Username: "bob", Password: "bob-secret",
			Steps: []probeStep{sub("#", 1), sub("shared/alice/#", 1)}})
		if got := r.subackCodes(); !slices.Equal(got, []int{fail, 1}) {
			t.Errorf("MQTT.js v%d bob subscribes # then shared/alice/#: SUBACK %v, want [%d 1]: %v", v.JS, got, fail, r)
		}
	}

	// A denied publish is never delivered: alice listens on her command
	// topic while bob tries to command her and she commands herself.
	listener := startMQTTJS(t, probePlan{URL: w.MQTTURL(), Version: 5, ClientID: "alice-listener", Username: "alice", Password: "alice-secret",
		Steps: []probeStep{sub("devices/alice/cmd/#", 1), {SleepMs: 3000}}})
	listener.waitSuback(t)
	r := mqttjs(t, probePlan{URL: w.MQTTURL(), Version: 5, ClientID: "bob-cmd", Username: "bob", Password: "bob-secret",
		Steps: []probeStep{pub("devices/alice/cmd/reboot", "FORGED command")}})
	if r.pubackCode(0) != v5NotAuthorized {
		t.Errorf("bob commanding alice: want PUBACK 0x87, got %v", r)
	}
	r = mqttjs(t, probePlan{URL: w.MQTTURL(), Version: 5, ClientID: "alice-cmd", Username: "alice", Password: "alice-secret",
		Steps: []probeStep{pub("devices/alice/cmd/blink", "real command")}})
	if r.pubackCode(0) != 0 {
		t.Errorf("alice commanding herself: %v", r)
	}
	want["real command"] = "alice-cmd"
	got := listener.result(t)
	var payloads []string
	for _, m := range got.Messages {
		payloads = append(payloads, m.Payload)
	}
	if !slices.Equal(payloads, []string{"real command"}) {
		t.Errorf("alice's subscriber received %q, want only \"real command\"", payloads)
	}

	w.Stop()
	sameSet(t, "ACL", storedData(t, w), want)
}

// TestClientIDMustMatchUsername: with client_id_must_match: username a
// client whose id differs from its user name is refused, so it can
// neither take over another device's session nor publish under its id;
// the device already connected with that id stays connected.
// Keys: auth.password_file, auth.client_id_must_match: username.
func TestClientIDMustMatchUsername(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "passwd")
	mosqPasswd(t, pw, "alice", "alice-secret", true)
	mosqPasswd(t, pw, "mallory", "mallory-secret", false)
	w := harness.StartWeir(t, harness.Opts{Extra: authYAML(pw, "", "username")})

	victim := startMQTTJS(t, probePlan{URL: w.MQTTURL(), Version: 5, ClientID: "alice", Username: "alice", Password: "alice-secret",
		Steps: []probeStep{sub("devices/alice/cmd", 1), {SleepMs: 3000}, pub("devices/alice/telemetry", "alice still here")}})
	victim.waitSuback(t)
	for _, v := range mqttVersions {
		c := mosqConn{Addr: w.MQTTAddr, Version: v.Mosq, ID: "alice", User: "mallory", Password: "mallory-secret"}
		out, code := mosqPub(t, c, "devices/alice/telemetry", "FORGED session takeover "+v.Mosq)
		ok := []int{v3IdentifierReject, v3NotAuthorized}
		if v.V5 {
			ok = []int{v5ClientIDInvalid, v5NotAuthorized}
		}
		if !slices.Contains(ok, code) {
			t.Errorf("mosquitto_pub -V %s -u mallory -i alice: exit %d, want a CONNACK code in %v: %s", v.Mosq, code, ok, out)
		}
		r := mqttjs(t, probePlan{URL: w.MQTTURL(), Version: v.JS, ClientID: "alice", Username: "mallory", Password: "mallory-secret",
			Steps: []probeStep{pub("devices/alice/telemetry", "FORGED takeover js")}})
		if r.Connected || !slices.Contains(ok, r.connackCode()) {
			t.Errorf("MQTT.js v%d mallory as client id alice: want CONNACK in %v, got %v", v.JS, ok, r)
		}
		if out, code := mosqPub(t, mosqConn{Addr: w.MQTTAddr, Version: v.Mosq, ID: "mallory", User: "mallory", Password: "mallory-secret"}, "devices/mallory/telemetry", "mallory as herself "+v.Mosq); code != 0 {
			t.Errorf("mosquitto_pub -V %s -u mallory -i mallory: exit %d: %s", v.Mosq, code, out)
		}
	}
	r := victim.result(t)
	if r.Closed || r.Disconnect != nil || r.pubackCode(0) != 0 {
		t.Errorf("alice's session was disturbed by the refused clients: %v", r)
	}
	w.Stop()
	sameSet(t, "client id binding", storedData(t, w), map[string]string{
		"alice still here": "alice", "mallory as herself mqttv311": "mallory", "mallory as herself mqttv5": "mallory",
	})
}

// TestAbuseLimits: the per-client subscription cap and the retained
// message cap, refused with a code (never silently dropped), and a new
// subscriber then gets every retained message up to the cap.
// Keys: mqtt.max_subscriptions, mqtt.retained.max_messages, mqtt.retained.max_bytes.
func TestAbuseLimits(t *testing.T) {
	w := harness.StartWeir(t, harness.Opts{MQTT: "max_subscriptions: 3\nretained:\n  max_messages: 4\n  max_bytes: 1MiB"})

	for _, v := range mqttVersions {
		fail := v3SubackFailure
		if v.V5 {
			fail = v5QuotaExceeded
		}
		r := mqttjs(t, probePlan{URL: w.MQTTURL(), Version: v.JS, ClientID: fmt.Sprintf("subs-js%d", v.JS),
			Steps: []probeStep{sub("a/1", 1), sub("a/2", 1), sub("a/3", 1), sub("a/4", 1), sub("a/1", 0)}})
		// Re-subscribing to a filter it holds replaces it: no new slot.
		if got := r.subackCodes(); !slices.Equal(got, []int{1, 1, 1, fail, 0}) {
			t.Errorf("MQTT.js v%d, 4 filters and a re-subscription with max_subscriptions 3: SUBACK %v, want [1 1 1 %#x 0]: %v", v.JS, got, fail, r)
		}
		codes, out := mosqSubCodes(t, mosqConn{Addr: w.MQTTAddr, Version: v.Mosq, ID: "subs-" + v.Mosq}, "b/1", "b/2", "b/3", "b/4")
		if !slices.Equal(codes, []int{0, 0, 0, fail}) {
			t.Errorf("mosquitto_sub -V %s with 4 filters, max_subscriptions 3: SUBACK %v, want [0 0 0 %#x]\n%s", v.Mosq, codes, fail, out)
		}
	}

	// Four retained messages fit, a fifth topic does not; replacing one
	// that is kept does not count as another.
	c5 := mosqConn{Addr: w.MQTTAddr, Version: "mqttv5", ID: "retainer"}
	for i := 1; i <= 4; i++ {
		if out, code := mosqPub(t, c5, fmt.Sprintf("ret/%d", i), fmt.Sprintf("r%d", i), "-r"); code != 0 || strings.Contains(out, "failed") {
			t.Fatalf("retained publish %d of 4: exit %d: %s", i, code, out)
		}
	}
	r := mqttjs(t, probePlan{URL: w.MQTTURL(), Version: 5, ClientID: "retainer-js",
		Steps: []probeStep{{Pub: ptr("ret/5"), Payload: "r5", QoS: 1, Retain: true}, {Pub: ptr("ret/1"), Payload: "r1 again", QoS: 1, Retain: true}}})
	if r.pubackCode(0) != v5QuotaExceeded || r.pubackCode(1) != 0 {
		t.Errorf("a fifth retained topic over max_messages 4 then replacing ret/1: want PUBACK 0x97 then 0, got %v", r)
	}
	out, code := mosqPub(t, mosqConn{Addr: w.MQTTAddr, Version: "mqttv311", ID: "retainer-311"}, "ret/6", "r6", "-r")
	if code == 0 {
		t.Errorf("mosquitto_pub -V mqttv311 -r over the retained cap: exit 0, want a disconnect without PUBACK: %s", out)
	}
	for _, v := range mqttVersions {
		r = mqttjs(t, probePlan{URL: w.MQTTURL(), Version: v.JS, ClientID: fmt.Sprintf("late-js%d", v.JS),
			Steps: []probeStep{sub("ret/#", 1)}, CollectMs: 500})
		got := map[string]string{}
		for _, m := range r.Messages {
			if !m.Retain {
				t.Errorf("MQTT.js v%d: %s delivered without the retain flag", v.JS, m.Topic)
			}
			got[m.Topic] = m.Payload
		}
		want := map[string]string{"ret/1": "r1 again", "ret/2": "r2", "ret/3": "r3", "ret/4": "r4"}
		if fmt.Sprint(sortedPairs(got)) != fmt.Sprint(sortedPairs(want)) {
			t.Errorf("MQTT.js v%d new subscriber to ret/#: got %v, want %v", v.JS, sortedPairs(got), sortedPairs(want))
		}
	}
}

// TestMaxConnections: with mqtt.max_connections 3, a fourth client is
// refused while three are connected, and admitted once one leaves.
// Keys: mqtt.max_connections.
func TestMaxConnections(t *testing.T) {
	w := harness.StartWeir(t, harness.Opts{MQTT: "max_connections: 3"})
	var held []*probeProc
	for i := range 3 {
		p := startMQTTJS(t, probePlan{URL: w.MQTTURL(), Version: 5, ClientID: fmt.Sprintf("holder-%d", i),
			Steps: []probeStep{sub("hold/#", 0), {SleepMs: 5000 + 500*i}}})
		p.waitSuback(t)
		held = append(held, p)
	}
	for _, v := range mqttVersions {
		if out, code := mosqPub(t, mosqConn{Addr: w.MQTTAddr, Version: v.Mosq, ID: "fourth-" + v.Mosq}, "devices/fourth/telemetry", "over the cap"); code == 0 {
			t.Errorf("mosquitto_pub -V %s as a fourth client with max_connections 3: published: %s", v.Mosq, out)
		}
	}
	r := mqttjs(t, probePlan{URL: w.MQTTURL(), Version: 5, ClientID: "fourth-js"})
	if r.Connected {
		t.Errorf("MQTT.js as a fourth client with max_connections 3 connected: %v", r)
	}
	for _, p := range held {
		if r := p.result(t); r.Closed || !r.Connected {
			t.Errorf("a held connection was dropped: %v", r)
		}
	}
	// All three left: a new client gets in (once the gateway has seen
	// the sockets close).
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, code := mosqPub(t, mosqConn{Addr: w.MQTTAddr, Version: "mqttv5", ID: "after"}, "devices/after/telemetry", "after")
		if code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("5 s after the holders left, a new client is still refused: exit %d: %s", code, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestNonLoopbackNeedsAuth: check-config refuses a non-loopback MQTT
// listener (listen or listeners[]) with no password file, no client
// certificates and no allow_anonymous, and a non-loopback API without a
// credentials file, naming the keys that fix it; each fix is accepted.
// Keys: mqtt.listen, mqtt.listeners[], mqtt.allow_anonymous, auth.password_file,
// api.listen, api.credentials_file, api.allow_anonymous.
func TestNonLoopbackNeedsAuth(t *testing.T) {
	dir := t.TempDir()
	pki := harness.NewPKI(t)
	pw := filepath.Join(dir, "passwd")
	mosqPasswd(t, pw, "alice", "alice-secret", true)
	creds := filepath.Join(dir, "api-keys.yaml")
	writeFile(t, creds, apiCredentials)
	port := func() int { return harness.FreePort(t) }
	data := filepath.Join(dir, "data")
	base := func(mqtt, api, extra string) string {
		return fmt.Sprintf("data_dir: %q\nmqtt:\n%sapi:\n%sstreams:\n  - name: telemetry\n%s", data, mqtt, api, extra)
	}
	noAPI := "  listen: \"\"\n"
	serverTLS := fmt.Sprintf("    tls:\n      cert_file: %q\n      key_file: %q\n", pki.ServerCert, pki.ServerKey)
	mTLS := serverTLS + fmt.Sprintf("      client_ca_file: %q\n      require_client_cert: true\n      identity_from: cn\n", pki.CAFile)
	for _, c := range []struct {
		name   string
		yaml   string
		ok     bool
		naming []string
	}{
		{"anonymous 0.0.0.0 listen", base(fmt.Sprintf("  listen: 0.0.0.0:%d\n", port()), noAPI, ""), false, []string{"mqtt.listen", "allow_anonymous", "password_file"}},
		{"anonymous TLS listener on 0.0.0.0", base(fmt.Sprintf("  listen: 127.0.0.1:%d\n  listeners:\n    - listen: 0.0.0.0:%d\n%s", port(), port(), indentYAML(serverTLS, "  ")), noAPI, ""),
			false, []string{"mqtt.listeners[0]", "allow_anonymous", "password_file"}},
		{"password file", base(fmt.Sprintf("  listen: 0.0.0.0:%d\n", port()), noAPI, authYAML(pw, "", "")), true, nil},
		{"client certificates", base(fmt.Sprintf("  listen: 127.0.0.1:%d\n  listeners:\n    - listen: 0.0.0.0:%d\n%s", port(), port(), indentYAML(mTLS, "  ")), noAPI, ""), true, nil},
		{"allow_anonymous", base(fmt.Sprintf("  listen: 0.0.0.0:%d\n  allow_anonymous: true\n", port()), noAPI, ""), true, nil},
		{"anonymous API on 0.0.0.0", base(fmt.Sprintf("  listen: 127.0.0.1:%d\n", port()), fmt.Sprintf("  listen: 0.0.0.0:%d\n", port()), ""), false, []string{"api.listen", "credentials_file", "allow_anonymous"}},
		{"API credentials", base(fmt.Sprintf("  listen: 127.0.0.1:%d\n", port()), fmt.Sprintf("  listen: 0.0.0.0:%d\n  credentials_file: %q\n", port(), creds), ""), true, nil},
	} {
		cfg := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".yaml")
		writeFile(t, cfg, c.yaml)
		stdout, stderr, code := harness.RunWeir(t, dir, "check-config", cfg)
		if c.ok != (code == 0) {
			t.Errorf("%s: check-config exit %d, want ok=%v:\n%s\n%s%s", c.name, code, c.ok, c.yaml, stdout, stderr)
			continue
		}
		for _, word := range c.naming {
			if !strings.Contains(stdout+stderr, word) {
				t.Errorf("%s: the refusal does not name %s:\n%s%s", c.name, word, stdout, stderr)
			}
		}
	}
}

func indentYAML(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = prefix + lines[i]
	}
	return strings.Join(lines, "\n") + "\n"
}

func sortedPairs(m map[string]string) []string {
	var s []string
	for k, v := range m {
		s = append(s, k+"="+v)
	}
	sort.Strings(s)
	return s
}

func ptr[T any](v T) *T { return &v }
