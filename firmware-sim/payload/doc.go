// Package payload makes the bytes a simulated device publishes and reads
// them back for verification.
//
// Three formats, all carrying the device name and its per-device sequence
// number so that a record read back from a stream can be matched to the
// ledger:
//
//   - json: a telemetry object, e.g.
//     {"device":"dev-00001","seq":17,"ts":1732560000123,"temp_c":21.37,
//     "humidity":48.2,"battery":97.41,"rssi":-67,"lat":52.37,"lon":4.89}
//     (lat/lon/speed_kmh/heading only for mobile assets; "pad" only when a
//     size is asked for).
//   - cbor: the same object encoded as a CBOR map with the same keys
//     (RFC 8949; "pad" is a byte string).
//   - binary: an upload blob with a small header, big-endian:
//     "WSIM" | version (1) | name length (1) | name | seq (8) | ts ms (8) |
//     filler bytes up to the requested size.
//
// Sensor values drift plausibly: temperature and humidity are bounded
// random walks, the battery drains slowly, RSSI wanders around a per-device
// baseline and mobile assets move in a random walk. Everything except the
// timestamp is a function of the seed, the device and the number of
// messages generated so far, so runs with the same --seed produce the same
// payload bytes (timestamps aside).
package payload
