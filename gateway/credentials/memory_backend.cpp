// The memory backend: one map per process, shared by the loops; answers are posted back to
// the asking loop so callers see the same asynchrony as with Redis.
#include <vector>

#include "credentials/store_backend.h"

namespace mcpgate::credentials {

StoreBackendPtr make_redis_backend(const config::TokenStoreConfig& config, core::EventLoop& loop);

namespace {

using Clock = std::chrono::steady_clock;
constexpr uint64_t kSweepEveryWrites = 1024;

Clock::time_point expiry_for(int64_t ttl_ms) {
  return ttl_ms > 0 ? Clock::now() + std::chrono::milliseconds(ttl_ms) : Clock::time_point::max();
}

class MemoryBackend : public StoreBackend {
 public:
  MemoryBackend(core::EventLoop& loop, std::shared_ptr<MemoryStoreData> data) : loop_(loop), data_(std::move(data)) {}

  void get(const std::string& key, ValueCallback done) override {
    std::string value;
    const StoreStatus status = with_entry(key, false, &value);
    reply(std::move(done), status, std::move(value));
  }

  void take(const std::string& key, ValueCallback done) override {
    std::string value;
    const StoreStatus status = with_entry(key, true, &value);
    reply(std::move(done), status, std::move(value));
  }

  void set(const std::string& key, const std::string& value, int64_t ttl_ms, StatusCallback done) override {
    {
      std::lock_guard lock(data_->mutex);
      data_->entries[key] = {value, expiry_for(ttl_ms)};
      sweep_locked();
    }
    reply(std::move(done), StoreStatus::Ok);
  }

  void add(const std::string& key, const std::string& value, int64_t ttl_ms, StatusCallback done) override {
    StoreStatus status = StoreStatus::Ok;
    {
      std::lock_guard lock(data_->mutex);
      auto found = data_->entries.find(key);
      if (found != data_->entries.end() && found->second.expires_at > Clock::now()) {
        status = StoreStatus::Conflict;
      } else {
        data_->entries[key] = {value, expiry_for(ttl_ms)};
        sweep_locked();
      }
    }
    reply(std::move(done), status);
  }

  void remove(const std::string& key, StatusCallback done) override {
    {
      std::lock_guard lock(data_->mutex);
      data_->entries.erase(key);
    }
    reply(std::move(done), StoreStatus::Ok);
  }

  void remove_if(const std::string& key, const std::string& value, StatusCallback done) override {
    StoreStatus status = StoreStatus::NotFound;
    {
      std::lock_guard lock(data_->mutex);
      auto found = data_->entries.find(key);
      if (found != data_->entries.end() && found->second.value == value) {
        data_->entries.erase(found);
        status = StoreStatus::Ok;
      }
    }
    reply(std::move(done), status);
  }

 private:
  StoreStatus with_entry(const std::string& key, bool erase, std::string* value) {
    std::lock_guard lock(data_->mutex);
    auto found = data_->entries.find(key);
    if (found == data_->entries.end()) return StoreStatus::NotFound;
    if (found->second.expires_at <= Clock::now()) {
      data_->entries.erase(found);
      return StoreStatus::NotFound;
    }
    *value = found->second.value;
    if (erase) data_->entries.erase(found);
    return StoreStatus::Ok;
  }

  void sweep_locked() {
    if (++data_->writes % kSweepEveryWrites != 0) return;
    const auto now = Clock::now();
    for (auto it = data_->entries.begin(); it != data_->entries.end();)
      it = it->second.expires_at <= now ? data_->entries.erase(it) : std::next(it);
  }

  void reply(ValueCallback done, StoreStatus status, std::string value) {
    if (!done) return;
    loop_.post([done = std::move(done), status, value = std::move(value)]() mutable { done(status, std::move(value)); });
  }
  void reply(StatusCallback done, StoreStatus status) {
    if (!done) return;
    loop_.post([done = std::move(done), status] { done(status); });
  }

  core::EventLoop& loop_;
  std::shared_ptr<MemoryStoreData> data_;
};

}  // namespace

StoreBackendPtr make_store_backend(const config::TokenStoreConfig& config, core::EventLoop& loop,
                                   std::shared_ptr<MemoryStoreData> memory) {
  if (config.backend == config::StoreBackendType::Redis) return make_redis_backend(config, loop);
  return std::make_unique<MemoryBackend>(loop, std::move(memory));
}

}  // namespace mcpgate::credentials
