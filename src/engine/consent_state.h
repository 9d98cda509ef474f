// The consent state: every party's consent events, in a persistent hash index so that a new
// snapshot shares all but the path it changed (copy-on-write per party, not per world).
// Readers walk a snapshot's trie without locks; one writer at a time builds the next one.
#ifndef ASSENT_ENGINE_CONSENT_STATE_H_
#define ASSENT_ENGINE_CONSENT_STATE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "assent/decision.h"
#include "assent/time.h"
#include "common/hash.h"

namespace assent::internal {

// A consent event as stored in memory: 24 bytes. Scope and version are interned.
struct StoredEvent {
  uint64_t position;
  Timestamp at;
  uint32_t scope;    // index into SharedTables::scopes
  // The terms version given under (bits 0-11, an index into the TermsSet) and the language
  // the notice was in (bits 12-15, TermsSet::LocaleCode; 0: the version's own).
  uint16_t version;
  Action action;
  Method method;
};
static_assert(sizeof(StoredEvent) == 24);
inline int32_t VersionOf(const StoredEvent& e) { return e.version & 0xfff; }
inline int32_t LocaleOf(const StoredEvent& e) { return e.version >> 12; }

// One party's events in one allocation: a 16-byte header, the id bytes (padded to 8), then
// the events — so a look-up's id comparison reads the same cache line as the header.
// Immutable once reachable from a published snapshot. Thread-safe reference counting.
class PartyRecord {
 public:
  // A new record with room for `capacity` events. The caller owns the one reference.
  static PartyRecord* Create(PartyKind kind, std::string_view id, uint32_t capacity);
  // `r` resized to room for `capacity` (>= its size) events; `r` is invalid afterwards.
  // REQUIRES: exclusively owned.
  static PartyRecord* Grow(PartyRecord* r, uint32_t capacity);
  // A copy of `src` with room for `capacity` (>= src->size()) events.
  static PartyRecord* Copy(const PartyRecord* src, uint32_t capacity);

  void Ref() const { refs_.fetch_add(1, std::memory_order_relaxed); }
  void Unref() const;
  bool Unique() const { return refs_.load(std::memory_order_acquire) == 1; }

  PartyKind kind() const { return kind_; }
  std::string_view id() const { return {id_ptr(), id_len_}; }
  // Same as id() == other, without a library call for short ids.
  bool IdEquals(std::string_view other) const {
    if (other.size() != id_len_) return false;
    const char* a = id_ptr();
    for (size_t i = 0; i < other.size(); ++i) {
      if (a[i] != other[i]) return false;
    }
    return true;
  }
  std::span<const StoredEvent> events() const { return {events_ptr(), count_}; }
  // Appends when there is room; false otherwise. REQUIRES: exclusively owned.
  bool Append(const StoredEvent& e);
  size_t bytes() const { return Bytes(id_len_, capacity_); }
  static size_t Bytes(size_t id_len, uint32_t capacity) {
    return sizeof(PartyRecord) + PaddedId(id_len) + capacity * sizeof(StoredEvent);
  }

 private:
  PartyRecord() = default;
  static size_t PaddedId(size_t id_len) { return (id_len + 7) & ~size_t{7}; }
  const char* id_ptr() const { return reinterpret_cast<const char*>(this + 1); }
  char* id_ptr() { return reinterpret_cast<char*>(this + 1); }
  const StoredEvent* events_ptr() const {
    return reinterpret_cast<const StoredEvent*>(id_ptr() + PaddedId(id_len_));
  }
  StoredEvent* events_ptr() {
    return reinterpret_cast<StoredEvent*>(id_ptr() + PaddedId(id_len_));
  }

  mutable std::atomic<uint32_t> refs_{1};
  uint32_t count_ = 0;
  uint32_t capacity_ = 0;
  uint16_t id_len_ = 0;
  PartyKind kind_ = PartyKind::kSubject;
  [[maybe_unused]] uint8_t unused_ = 0;  // padding, named: the layout is pinned below
};
static_assert(sizeof(PartyRecord) == 16);

struct TrieNode;

// The hash of a party: its id and kind (inline: the gate asks it for every party it meets).
inline uint64_t PartyHash(PartyKind kind, std::string_view id) {
  return Hash64(id, kind == PartyKind::kSubject ? 0x5bd1e9955bd1e995ULL : 0x9e3779b97f4a7c15ULL);
}

// An immutable consent state. Copying shares the trie (one reference count).
class ConsentState {
 public:
  ConsentState() = default;
  ~ConsentState();
  ConsentState(const ConsentState& other);
  ConsentState& operator=(const ConsentState&) = delete;

  // The party's record, or null. Valid while this state lives. Thread-safe.
  const PartyRecord* Find(PartyKind kind, std::string_view id) const {
    return Find(PartyHash(kind, id), kind, id);
  }
  const PartyRecord* Find(uint64_t hash, PartyKind kind, std::string_view id) const;

  // A look-up in stages, for batches: run each stage over a group of look-ups before the
  // next stage, so that their cache misses are in flight together. Each stage but the last
  // only prefetches what the next one reads.
  struct Lookup {
    uint64_t hash = 0;
    const void* shard = nullptr;
    uint32_t slot = 0;
    const PartyRecord* candidate = nullptr;
  };
  void LookupBranch(Lookup& l) const;          // prefetch the branch slot
  void LookupShard(Lookup& l) const;           // read the shard pointer; prefetch the slot
  void LookupCandidate(Lookup& l) const;       // first entry with the hash; prefetch its record
  const PartyRecord* LookupFinish(const Lookup& l, PartyKind kind, std::string_view id) const;

  // Bytes held by the trie and the records it reaches.
  size_t MemoryUsage() const;

  // Calls `f` with every party's record, in no particular order.
  void ForEach(const std::function<void(const PartyRecord&)>& f) const;

 private:
  friend class ConsentStateBuilder;
  TrieNode* root_ = nullptr;
};

// Builds the next state from a base one by appending events. Nodes it creates are mutated
// in place while they are exclusively its own, so replaying millions of events costs one
// allocation per change, not one path copy. Not thread-safe; one builder at a time.
class ConsentStateBuilder {
 public:
  explicit ConsentStateBuilder(const ConsentState& base);
  ~ConsentStateBuilder();

  // Appends `e` to the party's events, creating the party if new. Returns true when the
  // party was new.
  bool Append(PartyKind kind, std::string_view id, const StoredEvent& e);

  // Removes the party and its events. Returns the number of events it had, or -1 when the
  // party was not there.
  int64_t Remove(PartyKind kind, std::string_view id);

  // The built state. The builder is empty afterwards.
  std::unique_ptr<ConsentState> Finish();

 private:
  TrieNode* root_ = nullptr;
};

}  // namespace assent::internal

#endif  // ASSENT_ENGINE_CONSENT_STATE_H_
