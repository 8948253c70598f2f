// Package scenario loads fleet scenario files (YAML): a mix of device
// groups, run settings and timed events, checked strictly (unknown keys
// are errors) and validated with file:line in every message.
//
// Format (every key optional except groups[].count):
//
//	name: sensors-and-cameras
//	description: 500 sensors at 1 msg/s, 20 camera uploaders, a storm at 30s
//	duration: 90s          # Go durations ("1m30s"); a bare number is an error
//	ramp: 10s              # spread the initial connects
//	seed: 1
//	settings:              # fleet-wide, all optional
//	  clean_session: true
//	  keepalive: 30s
//	  ack_timeout: 0s
//	  buffer: 1000         # messages a device buffers while offline
//	  drain: 5s
//	groups:
//	  - name: sensor       # default "dev"; device names "{group}-{n:05}"
//	    count: 500
//	    id: "sensor-{n:04}"           # placeholders: {n} {n:05} {i} {group}
//	    client_id: "{id}"             # + {id}
//	    topic: "devices/{id}/telemetry" # + {client_id}
//	    messages: 0        # per device, 0 = until the end of the run
//	    rate: 1            # msgs/s per device, 0 = as fast as acks allow
//	    jitter: 0.1        # ±10% per interval, exact mean
//	    qos: 1             # default 1
//	    inflight: 1
//	    payload: json      # json | cbor | binary
//	    size: 0            # bytes, "4KiB" or a range "64KiB-256KiB"
//	    mobile: false      # GPS fields that random-walk
//	    behaviour:
//	      slow: {fraction: 0.05, latency: 300ms, bandwidth: 2KiB}
//	      offline: {fraction: 0.1, after: 20s, every: 60s, for: 15s}
//	      duplicate_ids: 0.02
//	      oversize: {probability: 0.001, size: 2MiB, give_up: 5s}
//	      unrouted: {probability: 0.01, topic: "unrouted/{id}"}
//	events:
//	  - at: 30s
//	    type: storm        # storm | outage
//	    jitter: 5s         # each device returns after down + U(0, jitter)
//	    down: 0s
//	    fraction: 1        # of the devices in groups (default all groups)
//	    groups: [sensor]
package scenario
