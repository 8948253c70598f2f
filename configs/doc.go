// Package configs holds the example configuration files and the systemd
// unit. It embeds the commented example so that `weir config example` can
// print it on a board that has only the binary; the file stays here, where
// the README and TestExampleFile (gateway/config) point.
package configs

import _ "embed"

// Example is weir.example.yaml: every key, documented, with its default.
//
//go:embed weir.example.yaml
var Example []byte
