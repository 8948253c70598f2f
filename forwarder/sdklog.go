package forwarder

import (
	"fmt"

	"github.com/aws/smithy-go/logging"
	"github.com/rs/zerolog"
)

// sdkLogger sends the AWS SDK's own log lines (the IMDS client's "falling
// back to IMDSv1", deprecation and checksum notices) to the forwarder's
// zerolog logger, so the JSON log has no raw "SDK ..." line from the SDK's
// default stderr logger. Warnings stay warnings; the rest is debug.
type sdkLogger struct{ log zerolog.Logger }

func (l sdkLogger) Logf(c logging.Classification, format string, v ...any) {
	e := l.log.Debug()
	if c == logging.Warn {
		e = l.log.Warn()
	}
	e.Str("source", "aws-sdk").Msg(fmt.Sprintf(format, v...))
}
