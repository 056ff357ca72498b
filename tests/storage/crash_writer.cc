// Helper process for token_source_test: opens the database, grants tokens
// for keys k0..kN-1 writing each grant WITHOUT sync, prints each token on its
// own line, then kills itself with SIGKILL: a crash between writing and
// syncing. Usage: crash_writer DB_DIR N
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "storage/key_codec.h"
#include "storage/state_machine.h"
#include "storage/store.h"
#include "storage/token_source.h"

int main(int argc, char** argv) {
  using namespace idem::storage;
  if (argc != 3) return 2;
  StoreOptions options;
  options.path = argv[1];
  std::unique_ptr<Store> store;
  if (!Store::Open(options, idem::SystemClock::Default(), &store).ok()) return 3;
  std::unique_ptr<TokenSource> tokens;
  if (!TokenSource::Open(store.get(), &tokens).ok()) return 4;
  const int n = std::atoi(argv[2]);
  Limits limits;
  for (int i = 0; i < n; ++i) {
    const uint64_t now = idem::SystemClock::Default()->NowWallMs();
    Decision d = DecideReserve(nullptr, ReserveOp{}, now, tokens->Peek(), limits);
    Batch batch;
    batch.Put(EncodeRecordKey("tenant", "scope", "k" + std::to_string(i)), d.record);
    if (!store->Write(&batch, /*sync=*/false).ok() || !tokens->Consume().ok()) return 5;
    std::printf("%llu\n", static_cast<unsigned long long>(d.token));
  }
  std::fflush(stdout);
  raise(SIGKILL);
  return 6;
}
