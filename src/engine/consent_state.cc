// The persistent hash index behind ConsentState. Copy-on-write is decided top-down: a node is
// changed in place only when it and every node above it are held by this builder alone
// (reference count 1 along the whole path); otherwise the path is copied.
#include "engine/consent_state.h"

#include <bit>
#include <cstring>
#include <cstdlib>
#include <new>

#include "common/hash.h"

namespace assent::internal {

namespace {
constexpr int kBranchBits = 8;
constexpr int kFanout = 1 << kBranchBits;
constexpr uint32_t kInitialShard = 4;
}  // namespace

// Two branch levels (8 bits of the party hash each) lead to one of 65,536 shards; a shard is
// an open-addressing table of (hash, record) probed linearly from the hash's next bits. So a
// look-up touches the root and one branch (small, cache-resident), one shard line and the
// record: at 1M subjects the shard and the record are the only likely cache misses.
struct TrieNode {
  mutable std::atomic<uint32_t> refs{1};
  bool leaf = false;  // a shard
};

struct Branch : TrieNode {
  TrieNode* child[kFanout] = {};
  // In the lower branches, each child shard's log2(capacity): with it a look-up computes the
  // probe slot's address without first reading the shard's header (one cache miss fewer).
  uint8_t shard_bits[kFanout] = {};
};

struct LeafEntry {
  uint64_t hash;
  PartyRecord* record;  // null: an empty slot
};

struct Leaf : TrieNode {
  uint32_t count = 0;
  uint32_t capacity = 0;  // a power of two; count <= 3/4 capacity
  LeafEntry* entries() { return reinterpret_cast<LeafEntry*>(this + 1); }
  const LeafEntry* entries() const { return reinterpret_cast<const LeafEntry*>(this + 1); }
};

namespace {

inline uint32_t ProbeStart(uint64_t hash, uint32_t capacity) {
  return static_cast<uint32_t>(hash >> (2 * kBranchBits)) & (capacity - 1);
}

Leaf* NewLeaf(uint32_t capacity) {
  size_t bytes = sizeof(Leaf) + capacity * sizeof(LeafEntry);
  void* mem = ::operator new(bytes);
  Leaf* l = new (mem) Leaf();
  l->leaf = true;
  l->capacity = capacity;
  std::memset(static_cast<void*>(l->entries()), 0, capacity * sizeof(LeafEntry));
  return l;
}

void FreeLeafShell(Leaf* l) {
  l->~Leaf();
  ::operator delete(l);
}

// Inserts an entry known to be absent. REQUIRES: room left.
void InsertEntry(Leaf* l, const LeafEntry& e) {
  for (uint32_t i = ProbeStart(e.hash, l->capacity);; i = (i + 1) & (l->capacity - 1)) {
    if (!l->entries()[i].record) {
      l->entries()[i] = e;
      ++l->count;
      return;
    }
  }
}

// A leaf with `capacity` slots holding the entries of `src` (records not re-referenced).
Leaf* Rehash(const Leaf* src, uint32_t capacity) {
  Leaf* l = NewLeaf(capacity);
  for (uint32_t i = 0; i < src->capacity; ++i) {
    if (src->entries()[i].record) InsertEntry(l, src->entries()[i]);
  }
  return l;
}

void Unref(const TrieNode* n) {
  if (!n || n->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  if (n->leaf) {
    auto* l = const_cast<Leaf*>(static_cast<const Leaf*>(n));
    for (uint32_t i = 0; i < l->capacity; ++i) {
      if (l->entries()[i].record) l->entries()[i].record->Unref();
    }
    FreeLeafShell(l);
  } else {
    auto* b = const_cast<Branch*>(static_cast<const Branch*>(n));
    for (TrieNode* c : b->child) Unref(c);
    delete b;
  }
}

void Ref(const TrieNode* n) {
  if (n) n->refs.fetch_add(1, std::memory_order_relaxed);
}

// A private copy of a shared node: children and records gain a reference.
TrieNode* CopyNode(const TrieNode* n) {
  if (n->leaf) {
    auto* src = static_cast<const Leaf*>(n);
    Leaf* l = NewLeaf(src->capacity);
    l->count = src->count;
    std::memcpy(static_cast<void*>(l->entries()), src->entries(),
                src->capacity * sizeof(LeafEntry));
    for (uint32_t i = 0; i < l->capacity; ++i) {
      if (l->entries()[i].record) l->entries()[i].record->Ref();
    }
    return l;
  }
  auto* src = static_cast<const Branch*>(n);
  auto* b = new Branch();
  for (int i = 0; i < kFanout; ++i) {
    b->child[i] = src->child[i];
    b->shard_bits[i] = src->shard_bits[i];
    Ref(b->child[i]);
  }
  return b;
}

size_t Usage(const TrieNode* n) {
  if (!n) return 0;
  if (n->leaf) {
    auto* l = static_cast<const Leaf*>(n);
    size_t s = sizeof(Leaf) + l->capacity * sizeof(LeafEntry);
    for (uint32_t i = 0; i < l->capacity; ++i) {
      if (l->entries()[i].record) s += l->entries()[i].record->bytes();
    }
    return s;
  }
  size_t s = sizeof(Branch);
  for (const TrieNode* c : static_cast<const Branch*>(n)->child) s += Usage(c);
  return s;
}

void Visit(const TrieNode* n, const std::function<void(const PartyRecord&)>& f) {
  if (!n) return;
  if (n->leaf) {
    auto* l = static_cast<const Leaf*>(n);
    for (uint32_t i = 0; i < l->capacity; ++i) {
      if (l->entries()[i].record) f(*l->entries()[i].record);
    }
    return;
  }
  for (const TrieNode* c : static_cast<const Branch*>(n)->child) Visit(c, f);
}

// The shard for `hash` (null when none) and where its probe for `hash` starts.
inline const Leaf* ShardOf(const TrieNode* root, uint64_t hash, uint32_t* probe_start) {
  if (!root) return nullptr;
  auto* mid = static_cast<const Branch*>(static_cast<const Branch*>(root)->child[hash & (kFanout - 1)]);
  if (!mid) return nullptr;
  const size_t i = (hash >> kBranchBits) & (kFanout - 1);
  *probe_start = ProbeStart(hash, uint32_t{1} << mid->shard_bits[i]);
  return static_cast<const Leaf*>(mid->child[i]);
}

}  // namespace

PartyRecord* PartyRecord::Create(PartyKind kind, std::string_view id, uint32_t capacity) {
  void* mem = std::malloc(Bytes(id.size(), capacity));
  if (!mem) throw std::bad_alloc();
  auto* r = new (mem) PartyRecord();
  r->kind_ = kind;
  r->capacity_ = capacity;
  r->id_len_ = static_cast<uint16_t>(id.size());
  std::memcpy(r->id_ptr(), id.data(), id.size());
  return r;
}

PartyRecord* PartyRecord::Copy(const PartyRecord* src, uint32_t capacity) {
  PartyRecord* r = Create(src->kind_, src->id(), capacity);
  r->count_ = src->count_;
  std::memcpy(static_cast<void*>(r->events_ptr()), src->events_ptr(),
              src->count_ * sizeof(StoredEvent));
  return r;
}

void PartyRecord::Unref() const {
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    this->~PartyRecord();
    std::free(const_cast<PartyRecord*>(this));
  }
}

PartyRecord* PartyRecord::Grow(PartyRecord* r, uint32_t capacity) {
  // The layout is relative to the start (header, id, events), so realloc keeps it valid, and
  // often extends the block in place.
  void* mem = std::realloc(r, Bytes(r->id_len_, capacity));
  if (!mem) throw std::bad_alloc();
  auto* g = static_cast<PartyRecord*>(mem);
  g->capacity_ = capacity;
  return g;
}

bool PartyRecord::Append(const StoredEvent& e) {
  if (count_ == capacity_) return false;
  events_ptr()[count_++] = e;
  return true;
}

ConsentState::~ConsentState() { Unref(root_); }

ConsentState::ConsentState(const ConsentState& other) : root_(other.root_) { Ref(root_); }

const PartyRecord* ConsentState::Find(uint64_t hash, PartyKind kind, std::string_view id) const {
  uint32_t start = 0;
  const Leaf* l = ShardOf(root_, hash, &start);
  if (!l) return nullptr;
  for (uint32_t i = start;; i = (i + 1) & (l->capacity - 1)) {
    const LeafEntry& e = l->entries()[i];
    if (!e.record) return nullptr;
    if (e.hash == hash && e.record->kind() == kind && e.record->IdEquals(id)) return e.record;
  }
}


void ConsentState::LookupBranch(Lookup& l) const {
  if (!root_) return;
  const TrieNode* mid = static_cast<const Branch*>(root_)->child[l.hash & (kFanout - 1)];
  if (mid) {
    __builtin_prefetch(
        &static_cast<const Branch*>(mid)->child[(l.hash >> kBranchBits) & (kFanout - 1)]);
  }
}

void ConsentState::LookupShard(Lookup& l) const {
  auto* shard = ShardOf(root_, l.hash, &l.slot);
  l.shard = shard;
  if (shard) __builtin_prefetch(&shard->entries()[l.slot]);
}

void ConsentState::LookupCandidate(Lookup& l) const {
  auto* shard = static_cast<const Leaf*>(l.shard);
  if (!shard) return;
  for (uint32_t i = l.slot;; i = (i + 1) & (shard->capacity - 1)) {
    const LeafEntry& e = shard->entries()[i];
    if (!e.record || e.hash == l.hash) {
      l.candidate = e.record;
      l.slot = i;
      break;
    }
  }
  if (l.candidate) __builtin_prefetch(l.candidate);
}

const PartyRecord* ConsentState::LookupFinish(const Lookup& l, PartyKind kind,
                                              std::string_view id) const {
  if (!l.candidate) return nullptr;
  if (l.candidate->kind() == kind && l.candidate->IdEquals(id)) return l.candidate;
  return Find(l.hash, kind, id);  // a 64-bit hash collision: probe on
}

size_t ConsentState::MemoryUsage() const { return Usage(root_); }

void ConsentState::ForEach(const std::function<void(const PartyRecord&)>& f) const {
  Visit(root_, f);
}

ConsentStateBuilder::ConsentStateBuilder(const ConsentState& base) : root_(base.root_) {
  Ref(root_);
}

ConsentStateBuilder::~ConsentStateBuilder() { Unref(root_); }

std::unique_ptr<ConsentState> ConsentStateBuilder::Finish() {
  auto s = std::make_unique<ConsentState>();
  s->root_ = root_;
  root_ = nullptr;
  return s;
}

bool ConsentStateBuilder::Append(PartyKind kind, std::string_view id, const StoredEvent& ev) {
  const uint64_t hash = PartyHash(kind, id);
  // Make the path root -> branch -> shard this builder's own (copy what is shared).
  TrieNode** slot = &root_;
  Branch* mid = nullptr;
  for (int level = 0; level < 2; ++level) {
    TrieNode* n = *slot;
    if (!n) {
      n = *slot = new Branch();
    } else if (n->refs.load(std::memory_order_acquire) != 1) {
      TrieNode* copy = CopyNode(n);
      Unref(n);
      n = *slot = copy;
    }
    mid = static_cast<Branch*>(n);
    slot = &mid->child[(hash >> (level * kBranchBits)) & (kFanout - 1)];
  }
  uint8_t& shard_bits = mid->shard_bits[(hash >> kBranchBits) & (kFanout - 1)];
  Leaf* l = static_cast<Leaf*>(*slot);
  if (!l) {
    l = NewLeaf(kInitialShard);
    *slot = l;
    shard_bits = static_cast<uint8_t>(std::countr_zero(kInitialShard));
  } else if (l->refs.load(std::memory_order_acquire) != 1) {
    Leaf* copy = static_cast<Leaf*>(CopyNode(l));
    Unref(l);
    *slot = l = copy;
  }
  for (uint32_t i = ProbeStart(hash, l->capacity);; i = (i + 1) & (l->capacity - 1)) {
    LeafEntry& e = l->entries()[i];
    if (!e.record) break;
    if (e.hash != hash || e.record->kind() != kind || e.record->id() != id) continue;
    PartyRecord* r = e.record;
    const uint32_t size = static_cast<uint32_t>(r->events().size());
    if (r->Unique()) {  // ours alone: grow in place
      if (!r->Append(ev)) {
        r = e.record = PartyRecord::Grow(r, size + 1);
        r->Append(ev);
      }
      return false;
    }
    PartyRecord* grown = PartyRecord::Copy(r, size + 1);
    grown->Append(ev);
    r->Unref();
    e.record = grown;
    return false;
  }
  if ((l->count + 1) * 4 > l->capacity * 3) {  // keep probes short: load <= 3/4
    Leaf* bigger = Rehash(l, l->capacity * 2);
    FreeLeafShell(l);  // entries moved, not copied: no reference changes
    *slot = l = bigger;
    shard_bits = static_cast<uint8_t>(std::countr_zero(l->capacity));
  }
  PartyRecord* r = PartyRecord::Create(kind, id, 1);
  r->Append(ev);
  InsertEntry(l, {hash, r});
  return true;
}

int64_t ConsentStateBuilder::Remove(PartyKind kind, std::string_view id) {
  const uint64_t hash = PartyHash(kind, id);
  if (!root_) return -1;
  {  // Absent: change nothing (and copy nothing).
    ConsentState view;
    view.root_ = root_;
    const PartyRecord* found = view.Find(hash, kind, id);
    view.root_ = nullptr;
    if (!found) return -1;
  }
  TrieNode** slot = &root_;
  Branch* mid = nullptr;
  for (int level = 0; level < 2; ++level) {
    TrieNode* n = *slot;
    if (n->refs.load(std::memory_order_acquire) != 1) {
      TrieNode* copy = CopyNode(n);
      Unref(n);
      n = *slot = copy;
    }
    mid = static_cast<Branch*>(n);
    slot = &mid->child[(hash >> (level * kBranchBits)) & (kFanout - 1)];
  }
  Leaf* l = static_cast<Leaf*>(*slot);
  if (l->refs.load(std::memory_order_acquire) != 1) {
    Leaf* copy = static_cast<Leaf*>(CopyNode(l));
    Unref(l);
    *slot = l = copy;
  }
  const uint32_t mask = l->capacity - 1;
  uint32_t i = ProbeStart(hash, l->capacity);
  for (;; i = (i + 1) & mask) {
    LeafEntry& e = l->entries()[i];
    if (e.hash == hash && e.record->kind() == kind && e.record->id() == id) break;
  }
  const auto events = static_cast<int64_t>(l->entries()[i].record->events().size());
  l->entries()[i].record->Unref();
  l->entries()[i] = LeafEntry{0, nullptr};
  --l->count;
  // Backward-shift deletion: move later entries of the probe run into the hole when their
  // probe start does not lie cyclically in (hole, j].
  uint32_t hole = i;
  for (uint32_t j = (i + 1) & mask; l->entries()[j].record; j = (j + 1) & mask) {
    const uint32_t start = ProbeStart(l->entries()[j].hash, l->capacity);
    const bool in_range = hole <= j ? (hole < start && start <= j) : (hole < start || start <= j);
    if (in_range) continue;
    l->entries()[hole] = l->entries()[j];
    l->entries()[j] = LeafEntry{0, nullptr};
    hole = j;
  }
  return events;
}

}  // namespace assent::internal
