// WAL pre-filling: each RocksDB write-ahead log is filled with zeros a little
// ahead of where RocksDB writes, so that the WAL sync of a commit overwrites
// blocks the file already owns instead of growing the file.
//
// Why: on ext4 (and other journaling file systems) fdatasync after an append
// must also commit the new file size and extent state to the journal, a second
// device flush; after an overwrite inside the file it writes the data only.
// This is PostgreSQL's wal_init_zero. On this project's machines it cuts a
// small synced append from ~200 us to ~140 us (BENCHMARKS.md).
//
// Safety: RocksDB's WAL reader skips zero-filled space as padding (it is what
// a preallocated file looks like after a crash), so a crash leaves a log that
// recovers exactly as before; the zeros are trimmed when the log is closed.
// Only new WAL files (NNNNNN.log) directly in the database's directory, on
// the real file system, are pre-filled (not the copies a checkpoint writes);
// a failed fill (disk full) just stops pre-filling that file.
//
// What the zeros change: the bytes after the end of the log are zeros on
// disk, not unallocated. RocksDB's reader skips zero-filled space, so a copy
// of a live log read while RocksDB appends to it can miss a record and keep
// later ones; Store::Checkpoint therefore keeps no log in its copies. After
// a power cut, only writes that were never synced (nothing acknowledged with
// --durability sync) can be lost out of order.
// Internal to storage/.
#pragma once

#include <rocksdb/file_system.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace idem::storage {

// True for RocksDB's write-ahead log names (NNNNNN.log), without a directory.
bool IsWalFileName(std::string_view name);

// Wraps `target`, which must be the POSIX file system: the fill is written
// through a second descriptor of the same file. chunk_bytes > 0. db_dir: the
// database directory, as given to RocksDB.
std::shared_ptr<rocksdb::FileSystem> NewWalPrefillFileSystem(
    const std::shared_ptr<rocksdb::FileSystem>& target, uint64_t chunk_bytes,
    const std::string& db_dir);

}  // namespace idem::storage
