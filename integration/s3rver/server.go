package s3rver

import (
	"encoding/json"
	"testing"

	"github.com/weir-gateway/weir/integration/kinesalite"
)

// startScript runs s3rver bound to loopback on a port the kernel picks,
// prints the port, and exits when its stdin closes (the protocol of
// kinesalite.StartNode). argv: module path, data directory, JSON list of
// buckets.
const startScript = `
process.on('uncaughtException', (e) => process.stderr.write('uncaught: ' + (e && e.stack || e) + '\n'));
const S3rver = require(process.argv[1]);
const s = new S3rver({address: '127.0.0.1', port: 0, silent: true, directory: process.argv[2],
  configureBuckets: JSON.parse(process.argv[3]).map((name) => ({name}))});
s.run().then((addr) => process.stdout.write('PORT ' + addr.port + '\n'),
  (e) => { process.stderr.write('run: ' + (e && e.stack || e) + '\n'); process.exit(1); });
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
`

// Server is a running s3rver.
type Server struct {
	*kinesalite.Server        // Endpoint, Stop
	Dir                string // where it keeps buckets and objects
}

// Start starts s3rver with buckets created, over a directory of t's, and
// stops it when t ends.
func Start(t testing.TB, buckets ...string) *Server {
	t.Helper()
	s, err := StartServer(t.TempDir(), buckets...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// StartServer is Start without a testing.TB, for a TestMain that shares
// one server across tests. A later server over the same dir sees the same
// buckets and objects.
func StartServer(dir string, buckets ...string) (*Server, error) {
	if buckets == nil {
		buckets = []string{}
	}
	list, err := json.Marshal(buckets)
	if err != nil {
		return nil, err
	}
	s, err := kinesalite.StartNode("s3rver", startScript, dir, string(list))
	if err != nil {
		return nil, err
	}
	return &Server{Server: s, Dir: dir}, nil
}
