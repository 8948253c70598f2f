// Package console is weir's built-in web console, served on the API
// listener at /console/ (gateway/api Server.Handle): an overview with
// live charts of the last hour, streams and shards with consumers and
// forwarders, the connected devices, a record browser and the few actions
// an operator needs (pause/resume a forwarder, reset a consumer's
// checkpoint, split/merge a shard).
//
// Everything it shows is read from the parts themselves through small
// interfaces the gateway wires (Sources): the store, the broker's client
// table and publish counters, the forwarders' Lag. The page is plain
// HTML, CSS and ES modules embedded with go:embed, plus uPlot (vendored,
// static/vendor/uplot, MIT); it fetches nothing from anywhere else.
//
// Files:
//   - console.go: Sources, New, the HTTP routes.
//   - ring.go: the history behind the charts, a fixed ring of samples.
//   - sampler.go: one sample every Interval, shared by every browser and
//     pushed over server-sent events (events.go).
//   - session.go: login with an API access key, session cookie, CSRF.
//   - views.go: the JSON of each page; records.go the record browser;
//     decode.go how a payload is shown; actions.go the actions.
package console
