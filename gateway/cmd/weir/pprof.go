//go:build weirpprof

package main

import (
	"net/http"
	_ "net/http/pprof" // profiling endpoints, only in binaries built with -tags weirpprof
	"os"
)

// Binaries built with -tags weirpprof serve pprof on $WEIR_PPROF (e.g.
// 127.0.0.1:6060) for profiling the ingest path under load.
func init() {
	if addr := os.Getenv("WEIR_PPROF"); addr != "" {
		go http.ListenAndServe(addr, nil)
	}
}
