// Package s3rver runs s3rver, an S3 emulator from the npm registry that no
// one on this project wrote, for tests: Start installs the pinned version
// if needed and runs it with kinesalite.StartNode (that package owns the
// npm pins and the install lock) on a free loopback port, over a
// temporary directory, with the buckets asked for; NewClient reads it
// back with the AWS SDK.
//
// s3rver accepts the access key S3RVER (any secret: it does not check
// SigV4 signatures, only that the key exists), answers InvalidAccessKeyId
// for any other key and NoSuchBucket for a bucket it does not have, and
// supports multipart uploads but not AbortMultipartUpload (it answers
// MethodNotAllowed) and does not check Content-MD5.
package s3rver
