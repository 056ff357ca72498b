// Store::Scan: one page of a tenant's live records in (scope, key) order.
//
// A cursor is the position of the last record examined, relative to the
// tenant's prefix (Escaped(scope) | key). The tenant is never part of it, so a
// cursor cannot lead outside the caller's tenant whatever bytes it holds.

#include <rocksdb/db.h>

#include <shared_mutex>

#include "storage/key_codec.h"
#include "storage/state_machine.h"
#include "storage/store.h"

namespace idem::storage {

namespace {

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

// Checks that `cursor` lies inside the scanned range; `range_in_tenant` is
// the range's prefix without the tenant part.
Status CheckCursor(const ScanOptions& o, std::string_view range_in_tenant) {
  if (o.cursor.empty()) return Status::OK();
  std::string_view rest = o.cursor;
  std::string scope;
  if (!ConsumeEscaped(&rest, &scope) || !StartsWith(o.cursor, range_in_tenant)) {
    return Status::InvalidArgument("cursor does not belong to this scan");
  }
  return Status::OK();
}

}  // namespace

Status Store::Scan(const ScanOptions& o, uint64_t now_ms, ScanPage* page) {
  page->items.clear();
  page->next_cursor.clear();
  const std::string tenant_prefix = TenantPrefix(o.tenant);
  const std::string range =
      o.all_scopes ? tenant_prefix : ScopePrefix(o.tenant, o.scope) + o.prefix;
  IDEM_RETURN_IF_ERROR(CheckCursor(o, std::string_view(range).substr(tenant_prefix.size())));

  std::string seek = range;
  if (!o.cursor.empty()) {
    seek = tenant_prefix + o.cursor;
    seek.push_back('\0');  // the smallest key after the cursor
  }
  const uint32_t limit = std::max<uint32_t>(o.limit, 1);
  uint32_t examined = 0;
  std::shared_lock lock(mu_);
  if (!db_) return Closed();
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(seek); it->Valid(); it->Next()) {
    const std::string_view raw(it->key().data(), it->key().size());
    if (!StartsWith(raw, range)) break;
    ++examined;
    ScanItem item;
    std::string tenant;
    if (!DecodeRecordKey(raw, &tenant, &item.scope, &item.key)) {
      return Status::Corruption("scan met a malformed record key");
    }
    const bool wanted = !o.all_scopes || StartsWith(item.key, o.prefix);
    if (wanted) {
      IDEM_RETURN_IF_ERROR(DecodeRecord({it->value().data(), it->value().size()}, &item.record));
      if (StateAt(&item.record, now_ms) != KeyState::kAbsent) {
        page->items.push_back(std::move(item));
      }
    }
    if (page->items.size() >= limit || examined >= o.max_examined) {
      page->next_cursor.assign(raw.substr(tenant_prefix.size()));
      break;
    }
  }
  if (!it->status().ok()) {
    page->items.clear();
    page->next_cursor.clear();
    return Status::IOError("scan: " + it->status().ToString());
  }
  return Status::OK();
}

}  // namespace idem::storage
