package api

// Target prefixes for clients (gateway/apiclient): X-Amz-Target is the
// prefix followed by the operation's name.
const (
	KinesisTargetPrefix = kinesisPrefix
	WeirTargetPrefix    = weirPrefix
)
