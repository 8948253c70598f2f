// Package apiclient is the one client of weir's own API for weir's tools:
// `weir read`, `weir streams`, the Go consumer package, firmware-sim and the
// integration harness.
//
// It speaks Kinesis JSON 1.1 (POST / with X-Amz-Target and
// application/x-amz-json-1.1), both the Kinesis_20131202 operations and
// weir's WeirGateway_20261125 ones, and decodes every error answer one way
// into *Error (HTTP status, exception type without its "namespace#" prefix,
// falling back to the X-Amzn-ErrorType header, and message).
//
// Every request is signed with AWS Signature Version 4 (service "kinesis")
// using the standard AWS credential chain: AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY, AWS_PROFILE or Options.Profile, the shared config
// and credentials files (AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE),
// SSO, credential_process and container credentials. The EC2 instance
// metadata service is never asked: a gateway box is not an EC2 instance,
// and asking costs seconds of timeouts. When the chain finds no
// credentials requests go unsigned, which a gateway without
// api.credentials_file accepts (its default, on loopback); a gateway that
// requires signatures then answers MissingAuthenticationTokenException.
//
// https endpoints verify the gateway's certificate against the system
// roots plus Options.CAFile (or AWS_CA_BUNDLE, which the AWS CLI honours
// too), for gateways with a certificate of their own CA.
//
// Retries are the caller's: the consumer retries forever while the gateway
// restarts, a CLI command fails at once.
package apiclient
