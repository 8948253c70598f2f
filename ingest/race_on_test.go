//go:build race

package ingest

// raceEnabled: the race detector enlarges stack frames.
const raceEnabled = true
