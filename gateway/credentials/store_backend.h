// The key/value back-end under the token store: values are opaque (already sealed) bytes.
// One backend object per event loop; every callback runs on that loop, never inside the
// call that started the operation. Callbacks may outlive their requester: they capture
// weak pointers, never raw pointers to request state.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/event_loop.h"

namespace mcpgate::credentials {

enum class StoreStatus { Ok, NotFound, Conflict, Unavailable };

// The status's name, for messages.
constexpr const char* status_name(StoreStatus status) {
  switch (status) {
    case StoreStatus::Ok: return "Ok";
    case StoreStatus::NotFound: return "NotFound";
    case StoreStatus::Conflict: return "Conflict";
    case StoreStatus::Unavailable: return "Unavailable";
  }
  return "?";
}

// One token bucket a rate-limited request takes from: full at first, `capacity` tokens at most,
// one back every `refill_interval_ms`; the request needs `cost` of them.
struct BucketTake {
  std::string key;
  uint32_t capacity = 1;
  double refill_interval_ms = 1000;
  uint32_t cost = 1;
};

// Whether every bucket gave its tokens; if not, how long until they all could, and the first
// (by index) that could not. A refused request takes nothing from any bucket.
struct BucketVerdict {
  bool allowed = true;
  int64_t retry_after_ms = 0;
  std::size_t limited = 0;
};

class StoreBackend {
 public:
  using ValueCallback = std::function<void(StoreStatus, std::string value)>;
  using StatusCallback = std::function<void(StoreStatus)>;

  virtual ~StoreBackend() = default;
  // Ok with the value, NotFound, or Unavailable (backend down).
  virtual void get(const std::string& key, ValueCallback done) = 0;
  // Writes `value`; it expires after ttl_ms (0: never).
  virtual void set(const std::string& key, const std::string& value, int64_t ttl_ms, StatusCallback done) = 0;
  // Ok whether or not the key existed.
  virtual void remove(const std::string& key, StatusCallback done) = 0;
  // Reads and deletes in one step (single-use records): Ok with the value, or NotFound.
  virtual void take(const std::string& key, ValueCallback done) = 0;
  // Writes only when the key is absent (a lock, a used-once marker): Ok, or Conflict.
  virtual void add(const std::string& key, const std::string& value, int64_t ttl_ms, StatusCallback done) = 0;
  // Deletes the key only while it holds `value` (releasing one's own lock): Ok or NotFound.
  virtual void remove_if(const std::string& key, const std::string& value, StatusCallback done) = 0;

  using BucketCallback = std::function<void(StoreStatus, BucketVerdict)>;
  // Rate-limit buckets shared between processes: only a backend that is shared keeps them
  // (the memory backend does not: a process's own buckets are policy::LocalBuckets).
  virtual bool shares_buckets() const { return false; }
  // Takes from every bucket in one atomic step, or from none. Ok with the verdict, or Unavailable.
  virtual void take_tokens(const std::vector<BucketTake>& buckets, BucketCallback done) {
    if (done) done(StoreStatus::Unavailable, {});
  }
};

using StoreBackendPtr = std::unique_ptr<StoreBackend>;

// The process-wide map behind every loop's memory backend. Guarded by its mutex, which is
// held only for a map operation, never across a callback.
class MemoryStoreData {
 public:
  struct Entry {
    std::string value;
    std::chrono::steady_clock::time_point expires_at;  // max(): never
  };
  std::mutex mutex;
  std::map<std::string, Entry> entries;
  uint64_t writes = 0;  // every so many writes, expired entries are swept
};

// (Every `done` above may be empty: the caller does not need the answer.)

// Builds the backend for one loop from the store config. The memory backends of one
// process share `memory`; a Redis backend opens its own connection on `loop`.
StoreBackendPtr make_store_backend(const config::TokenStoreConfig& config, core::EventLoop& loop,
                                   std::shared_ptr<MemoryStoreData> memory);

}  // namespace mcpgate::credentials
