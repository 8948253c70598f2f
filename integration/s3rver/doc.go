// Package s3rver runs s3rver, an S3 emulator from the npm registry that no
// one on this project wrote, for tests: Start installs the pinned version
// if needed (through kinesalite.NodeModules, which owns the pins and the
// install lock), runs it on a free loopback port over a temporary
// directory with the buckets asked for, and NewClient reads it back with
// the AWS SDK.
//
// s3rver accepts the access key S3RVER (any secret: it does not check
// SigV4 signatures, only that the key exists), answers InvalidAccessKeyId
// for any other key and NoSuchBucket for a bucket it does not have, and
// supports multipart uploads.
package s3rver
