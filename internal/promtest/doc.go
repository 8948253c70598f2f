// Package promtest scrapes a /metrics endpoint in tests the way Prometheus
// would: it parses the text with Prometheus's own parser (expfmt), runs
// Prometheus's own linter (promlint, what `promtool check metrics` runs)
// over it, and looks samples up by name and labels, whatever order the
// labels are written in.
package promtest
