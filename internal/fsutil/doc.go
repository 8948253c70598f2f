// Package fsutil holds the durability steps shared by every package that
// keeps state in files: making a directory entry durable (SyncDir) and
// replacing a small file atomically (WriteFile).
//
// WriteFile writes a temp file beside the target (path + ".tmp"), fsyncs
// it, renames it over the target and fsyncs the directory, so a crash at
// any point leaves the old content or the new one, never a mix or nothing.
// The temp file is created fresh with the caller's permission, so a secret
// is never readable by others, not even between create and rename, and
// its mode is part of the inode the rename makes durable (a chmod after
// the fact is a separate metadata change a power cut can lose).
//
// SpaceOf reads the free, used and total bytes of a directory's
// filesystem (statfs), for /metrics and DescribeGateway.
package fsutil
