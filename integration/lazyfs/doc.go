// Package lazyfs is a FUSE filesystem for power-cut tests: a loopback over
// a real backing directory that behaves like a disk under a page cache, as
// Jepsen's lazyfs does. Every change is visible at once (it is passed
// straight through to the backing files), but PowerCut undoes every change
// that was not made durable, as losing power would. A kill -9 test cannot
// tell a program that fsyncs from one that does not, because the kernel's
// page cache outlives the process; lazyfs can.
//
//	f, err := lazyfs.Mount(backing, mountpoint, lazyfs.Options{})
//	// run the program under test with its data dir inside mountpoint
//	// kill -9 it and wait for it to die
//	err = f.PowerCut()  // only what was durable is left
//	// restart the program on what survived; check what it acknowledged
//	err = f.Unmount()
//
// It needs root (Mount uses go-fuse's DirectMount, no fusermount) and
// /dev/fuse; EnsureFUSE loads the module and creates the device if needed.
//
// # Durability model
//
// Everything in backing at Mount, and everything left by a cut, is durable.
// After that, durability is tracked per backing inode and per directory:
//
//   - File content and size. fsync(2) and fdatasync(2) on any descriptor
//     of a regular file make its whole current content and size durable
//     (fdatasync also flushes a size change, so the two are the same here).
//     So does every write through a descriptor opened O_SYNC or O_DSYNC,
//     when it returns. Nothing else does: not close, not sync_file_range
//     (FUSE never sees it), not sync(2) or syncfs(2) (FUSE does not forward
//     them), not an fsync of the directory. A cut restores the content and
//     size as of the file's last sync: writes, truncates (ftruncate,
//     truncate by name, O_TRUNC), fallocate (including size growth, hole
//     punching, zeroing, collapsing, inserting), copy_file_range (the
//     kernel falls back to writes through the mount) and shared-mmap
//     writes (they arrive as writes on msync, munmap or writeback) are all
//     undone. A file created since the last cut has durable size 0 until
//     it is synced.
//   - Directory entries. fsync of a directory (FUSE FSYNCDIR; also via
//     fdatasync or (*os.File).Sync on the directory) makes its current
//     entries durable. A cut restores every reachable directory's entries
//     to what they were at its last fsync: created files, directories,
//     symlinks, hard links and device nodes disappear; unlinked files and
//     removed directories come back (the same inode, with its durable
//     content); renamed entries go back. Durability is strictly per
//     directory: fsync of a file does not make its name durable, and a
//     directory whose own entry in its parent is not durable takes
//     everything below it with it, synced or not.
//   - Renames. A rename is one atomic operation, as in a journaling
//     filesystem. It becomes durable with the first fsync of either of its
//     directories after it, and then in both: the inode is never durable
//     under both names, nor under neither. Renames of the same inode are
//     ordered, so making one durable also makes the earlier ones durable
//     (a directory moved a -> b -> c is durable in c, not in a and c).
//     RENAME_EXCHANGE swaps atomically the same way; RENAME_NOREPLACE is
//     honoured; RENAME_WHITEOUT is refused (EINVAL).
//
// Consequences worth knowing: a file created, written and fsynced in a
// directory that is never fsynced is gone after a cut; a file whose entry
// was made durable but whose content never was comes back empty (the
// zero-length file ext4 is known for); "write temp, fsync, rename, fsync
// dir" survives, and leaving out either fsync shows. This is stricter than
// ext4 with data=ordered, which commits every earlier metadata change with
// any fsync; it is what POSIX promises, which is what a program that wants
// to survive every filesystem may rely on.
//
// Not modelled (they pass through and survive a cut as they are): mode,
// owner, timestamps, xattrs. Torn or reordered writes within unsynced data
// are not simulated either: an unsynced change is lost whole, so a cut
// never leaves a partial unsynced write behind. O_TMPFILE is refused
// (EOPNOTSUPP). The backing directory must not be changed except through
// the mount while mounted.
//
// # How it works
//
// Each regular file has an undo log: on the first change since its last
// sync it records the durable size, and before any change to a 4 KiB page
// below that size it saves the page's durable bytes (once per sync
// interval). A sync drops the log; a cut truncates to the durable size and
// writes the saved pages back.
//
// Each directory, on its first change since its last fsync, snapshots its
// entries (name -> backing inode). Removed inodes are not freed: unlink,
// and rename over a file, first hard-link the inode into a stash directory
// next to backing (same filesystem); rmdir, and rename over an empty
// directory, move the directory into the stash. So every inode a durable
// entry may name is still there, and inode numbers are not reused while
// state about them exists. Stashed inodes that no durable entry or pending
// rename can name any more are dropped at the next directory fsync.
//
// PowerCut unmounts, then rebuilds the durable tree from the root (a
// directory's durable entries are its snapshot if it has one, else its
// current entries): it keeps every inode of that tree in the stash (files
// by hard link, directories by rename, deepest first), empties the root
// and the kept directories, rolls contents back, relinks the tree
// top-down, empties the stash and mounts again. Nothing but the undo pages
// is copied.
//
// # Kernel caches
//
// Every file is opened with FOPEN_DIRECT_IO, the writeback cache and FUSE
// passthrough are off, and entry, attribute and negative timeouts are 0:
// every read, write, lookup and getattr reaches lazyfs, so the kernel
// holds no dirty data lazyfs has not seen and serves nothing stale.
// PowerCut still remounts (a fresh go-fuse server and a fresh kernel
// superblock), so no inode, dentry or mmap page of the old mount survives;
// that is why it needs the mount idle and returns ErrBusy otherwise.
//
// # Hazards
//
// A process that serves the mount must not mmap files on it: a goroutine
// faulting on a mapped FUSE page is stuck in the kernel where the Go
// runtime cannot stop it, the next garbage collection waits for it, and
// the FUSE server in the same process never answers. Tests do such work in
// a child process. If a mount hangs anyway, Abort aborts the kernel
// connection (fusectl) and detaches it; SweepStale removes mounts left by
// dead or zombie processes without touching live ones.
//
// # Cost
//
// See BenchmarkOverhead: each 4 KiB write costs one FUSE round trip (a few
// times a direct write), and fsync is not forwarded by default
// (Options.SyncBacking), so synced writes are much faster than on a real
// disk. Measure the program under test on a real disk, never on lazyfs.
package lazyfs
