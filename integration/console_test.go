package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/fxamacker/cbor/v2"

	"github.com/weir-gateway/weir/integration/harness"
)

// chromiumPath is Debian's chromium (scripts/install-deps.sh).
const chromiumPath = "/usr/bin/chromium"

// artefactsDir is where screenshots go: $WEIR_ARTEFACTS, or
// integration/artefacts (gitignored).
func artefactsDir(t *testing.T) string {
	dir := os.Getenv("WEIR_ARTEFACTS")
	if dir == "" {
		dir = "artefacts"
	}
	dir = filepath.Join(dir, "console")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestConsoleInBrowser drives the web console in headless Chromium
// against a real gateway with a publishing fleet, a probe stream and a
// forwarder whose upstream is down, and checks what an operator would
// see on each page, at desktop and phone width: the overview's rate and
// charts, the fleet in the devices table, a just-published JSON and CBOR
// payload decoded in the record browser, a forwarder paused from the
// console shown as paused; no console errors, no request leaves the
// gateway.
func TestConsoleInBrowser(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("the console test needs Debian's chromium at %s (scripts/install-deps.sh installs it): %v", chromiumPath, err)
	}
	deadUpstream := "http://127.0.0.1:" + strconv.Itoa(harness.FreePort(t))
	w := harness.StartWeir(t, harness.Opts{
		Streams: []harness.Stream{{Name: "telemetry", Shards: 2}, {Name: "probes", Shards: 1}},
		Routes: []harness.Route{
			{Filter: "devices/+/telemetry", Stream: "telemetry", PartitionKey: "{topic.1}"},
			{Filter: "probe/+", Stream: "probes", PartitionKey: "{topic.1}"},
		},
		Extra: harness.ForwardersYAML(harness.Forwarder{TargetStream: "upstream-telemetry", Endpoint: deadUpstream}),
		Env:   harness.AWSTestEnv(t.TempDir()),
	})
	const devices = 12
	fleet := harness.StartFleet(t, harness.FleetOpts{Broker: w.MQTTURL(), Devices: devices, Rate: 4, Prefix: "console"})
	defer fleet.Stop()

	base := "http://" + w.APIAddr + "/console/"
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900))
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	defer cancelT()

	var (
		mu       sync.Mutex
		problems []string
	)
	messages := chromedp.Console(ctx)
	requests := chromedp.Events(ctx, network.RequestWillBeSent)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException {
				mu.Lock()
				problems = append(problems, "console "+string(m.Type)+": "+m.Text)
				mu.Unlock()
			}
		}
	}()
	go func() {
		for ev, err := range requests {
			if err != nil {
				return
			}
			u := ev.Request.URL
			if !strings.HasPrefix(u, "http://"+w.APIAddr+"/") && !strings.HasPrefix(u, "data:") {
				mu.Lock()
				problems = append(problems, "request outside the gateway: "+u)
				mu.Unlock()
			}
		}
	}()

	shots := artefactsDir(t)
	shot := func(name string) {
		t.Helper()
		b, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name+".png"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	do := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	wait := func(what, js string, d time.Duration) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(d))); err != nil {
			text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('main').innerText`))
			t.Fatalf("%s: %v\npage shows:\n%s", what, err, text)
		}
	}

	// Overview: the second sample (5 s after start) has a rate.
	do("open overview", chromedp.Navigate(base+"#/overview"))
	wait("overview rate above zero", `parseFloat((document.getElementById('t-msgs')||{}).textContent) > 0`, 20*time.Second)
	wait("rate chart has points", `+document.querySelector('.chart[data-series=msgs]').dataset.points >= 2`, 5*time.Second)
	wait("forwarder listed", `!!document.querySelector('.fwd-state[data-target="upstream-telemetry"]')`, 5*time.Second)
	shot("overview-desktop")

	// Pause the forwarder from the page, with its confirmation.
	do("pause forwarder", chromedp.Click(chromedp.CSS(`.act-pause`)), chromedp.WaitVisible(chromedp.CSS(`#modal-ok`)),
		chromedp.Click(chromedp.CSS(`#modal-ok`)))
	wait("forwarder shown as paused", `(document.querySelector('.fwd-state[data-target="upstream-telemetry"]')||{}).textContent?.startsWith('paused')`, 15*time.Second)

	// Streams: shards of both streams, the forwarder paused there too.
	do("open streams", chromedp.Navigate(base+"#/streams"))
	wait("streams page", `document.querySelectorAll('section.stream').length === 2 && document.body.innerText.includes('shardId-000000000001')`, 10*time.Second)
	wait("paused on streams page", `[...document.querySelectorAll('.fwd-state')].some(e => e.textContent.startsWith('paused'))`, 5*time.Second)
	shot("streams-desktop")

	// Devices: every client id of the fleet, and the search.
	do("open devices", chromedp.Navigate(base+"#/devices"))
	var ids []string
	for i := 1; i <= devices; i++ {
		ids = append(ids, fmt.Sprintf("'console-%05d'", i))
	}
	wait("fleet in devices table", `[`+strings.Join(ids, ",")+`].every(id => document.getElementById('devices').innerText.includes(id))`, 10*time.Second)
	shot("devices-desktop")
	do("search devices", chromedp.SendKeys(chromedp.CSS(`#device-search`), "console-00007"))
	wait("search narrows to one", `document.querySelectorAll('#devices tbody tr').length === 1 && document.getElementById('devices').innerText.includes('console-00007')`, 5*time.Second)

	// Record browser: live tail of the probe stream shows payloads
	// published after it opened, decoded.
	do("open records", chromedp.Navigate(base+"#/records?stream=probes"))
	wait("tail open", `document.getElementById('rec-status')?.textContent === 'live'`, 10*time.Second)
	nonce := strconv.FormatInt(time.Now().UnixNano(), 36)
	publishProbes(t, w.MQTTURL(), nonce)
	wait("JSON payload pretty", `[...document.querySelectorAll('pre.payload')].some(p => p.textContent.includes('{\n  "probe": "json-`+nonce+`"'))`, 10*time.Second)
	wait("CBOR payload as JSON", `[...document.querySelectorAll('.record')].some(r => r.querySelector('.kind-cbor') && r.querySelector('pre').textContent.includes('"probe": "cbor-`+nonce+`"'))`, 10*time.Second)
	shot("records-desktop")

	// Phone width: every page fits without sideways scrolling.
	do("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch))
	for _, page := range []string{"overview", "streams", "devices", "records"} {
		hash := "#/" + page
		if page == "records" {
			hash += "?stream=probes"
		}
		do("open "+page+" on a phone", chromedp.Navigate(base+hash), chromedp.Reload())
		wait(page+" rendered on a phone", `!document.querySelector('#main > p.muted') && document.querySelector('#main h1') !== null`, 10*time.Second)
		if page == "overview" {
			wait("phone chart has points", `+document.querySelector('.chart[data-series=msgs]').dataset.points >= 1`, 10*time.Second)
		}
		wait(page+" fits the phone's width", `document.documentElement.scrollWidth <= window.innerWidth + 1`, 3*time.Second)
		shot(page + "-phone")
	}

	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Error(p)
	}
	t.Logf("screenshots in %s", shots)
}

// publishProbes publishes one JSON and one CBOR payload to the probes
// stream, QoS 1.
func publishProbes(t *testing.T, broker, nonce string) {
	t.Helper()
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID("probe-" + nonce).SetConnectTimeout(5 * time.Second))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("probe connect: %v", tok.Error())
	}
	defer c.Disconnect(100)
	cb, err := cbor.Marshal(map[string]any{"probe": "cbor-" + nonce, "n": 7})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range [][]byte{[]byte(`{"probe":"json-` + nonce + `","temp":21.5}`), cb} {
		if tok := c.Publish("probe/p1", 1, false, p); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("probe publish: %v", tok.Error())
		}
	}
}
