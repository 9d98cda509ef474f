// The persistent hash trie behind ConsentState. Branches have 64 children (6 bits of the
// party hash per level); leaves hold up to kLeafMax (hash, record) entries before they split.
// Copy-on-write is decided top-down: a node is changed in place only when it and every node
// above it are held by this builder alone (reference count 1 along the whole path).
#include "engine/consent_state.h"

#include <cstring>
#include <new>

#include "common/hash.h"

namespace assent::internal {

namespace {
constexpr int kBits = 6;
constexpr int kFanout = 1 << kBits;
constexpr uint32_t kLeafMax = 16;
constexpr int kMaxShift = 60;  // below this, leaves grow instead of splitting
}  // namespace

struct TrieNode {
  mutable std::atomic<uint32_t> refs{1};
  bool leaf = false;
};

struct Branch : TrieNode {
  TrieNode* child[kFanout] = {};
};

struct LeafEntry {
  uint64_t hash;
  PartyRecord* record;
};

struct Leaf : TrieNode {
  uint32_t count = 0;
  uint32_t capacity = 0;
  LeafEntry* entries() { return reinterpret_cast<LeafEntry*>(this + 1); }
  const LeafEntry* entries() const { return reinterpret_cast<const LeafEntry*>(this + 1); }
};

namespace {

Leaf* NewLeaf(uint32_t capacity) {
  void* mem = ::operator new(sizeof(Leaf) + capacity * sizeof(LeafEntry));
  Leaf* l = new (mem) Leaf();
  l->leaf = true;
  l->capacity = capacity;
  return l;
}

void FreeLeafShell(Leaf* l) {
  l->~Leaf();
  ::operator delete(l);
}

void Unref(const TrieNode* n) {
  if (!n || n->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  if (n->leaf) {
    auto* l = const_cast<Leaf*>(static_cast<const Leaf*>(n));
    for (uint32_t i = 0; i < l->count; ++i) l->entries()[i].record->Unref();
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
    Leaf* l = NewLeaf(src->count + 1);
    l->count = src->count;
    std::memcpy(static_cast<void*>(l->entries()), src->entries(), src->count * sizeof(LeafEntry));
    for (uint32_t i = 0; i < l->count; ++i) l->entries()[i].record->Ref();
    return l;
  }
  auto* src = static_cast<const Branch*>(n);
  auto* b = new Branch();
  for (int i = 0; i < kFanout; ++i) {
    b->child[i] = src->child[i];
    Ref(b->child[i]);
  }
  return b;
}

size_t Usage(const TrieNode* n) {
  if (!n) return 0;
  if (n->leaf) {
    auto* l = static_cast<const Leaf*>(n);
    size_t s = sizeof(Leaf) + l->capacity * sizeof(LeafEntry);
    for (uint32_t i = 0; i < l->count; ++i) s += l->entries()[i].record->bytes();
    return s;
  }
  size_t s = sizeof(Branch);
  for (const TrieNode* c : static_cast<const Branch*>(n)->child) s += Usage(c);
  return s;
}

}  // namespace

uint64_t PartyHash(PartyKind kind, std::string_view id) {
  return Hash64(id, kind == PartyKind::kSubject ? 0x5bd1e9955bd1e995ULL : 0x9e3779b97f4a7c15ULL);
}

PartyRecord* PartyRecord::Create(PartyKind kind, std::string_view id, uint32_t capacity) {
  void* mem = ::operator new(sizeof(PartyRecord) + capacity * sizeof(StoredEvent) + id.size());
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
    ::operator delete(const_cast<PartyRecord*>(this));
  }
}

bool PartyRecord::Append(const StoredEvent& e) {
  if (count_ == capacity_) return false;
  events_ptr()[count_++] = e;
  return true;
}

ConsentState::~ConsentState() { Unref(root_); }

ConsentState::ConsentState(const ConsentState& other) : root_(other.root_) { Ref(root_); }

const PartyRecord* ConsentState::Find(uint64_t hash, PartyKind kind, std::string_view id) const {
  const TrieNode* n = root_;
  int shift = 0;
  while (n && !n->leaf) {
    n = static_cast<const Branch*>(n)->child[(hash >> shift) & (kFanout - 1)];
    shift += kBits;
  }
  if (!n) return nullptr;
  auto* l = static_cast<const Leaf*>(n);
  for (uint32_t i = 0; i < l->count; ++i) {
    const LeafEntry& e = l->entries()[i];
    if (e.hash == hash && e.record->kind() == kind && e.record->id() == id) return e.record;
  }
  return nullptr;
}

size_t ConsentState::MemoryUsage() const { return Usage(root_); }

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
  TrieNode** slot = &root_;
  int shift = 0;
  for (;;) {
    TrieNode* n = *slot;
    if (!n) {
      Leaf* l = NewLeaf(1);
      PartyRecord* r = PartyRecord::Create(kind, id, 1);
      r->Append(ev);
      l->entries()[0] = {hash, r};
      l->count = 1;
      *slot = l;
      return true;
    }
    if (n->refs.load(std::memory_order_acquire) != 1) {  // shared: make it ours
      TrieNode* copy = CopyNode(n);
      Unref(n);
      *slot = n = copy;
    }
    if (!n->leaf) {
      slot = &static_cast<Branch*>(n)->child[(hash >> shift) & (kFanout - 1)];
      shift += kBits;
      continue;
    }
    auto* l = static_cast<Leaf*>(n);
    for (uint32_t i = 0; i < l->count; ++i) {
      LeafEntry& e = l->entries()[i];
      if (e.hash != hash || e.record->kind() != kind || e.record->id() != id) continue;
      PartyRecord* r = e.record;
      if (r->Unique() && r->Append(ev)) return false;
      PartyRecord* grown = PartyRecord::Copy(r, static_cast<uint32_t>(r->events().size()) + 1);
      grown->Append(ev);
      r->Unref();
      e.record = grown;
      return false;
    }
    if (l->count < kLeafMax || shift >= kMaxShift) {
      if (l->count == l->capacity) {
        Leaf* bigger = NewLeaf(l->capacity + 1);
        bigger->count = l->count;
        std::memcpy(static_cast<void*>(bigger->entries()), l->entries(),
                    l->count * sizeof(LeafEntry));
        FreeLeafShell(l);  // entries moved, not copied: no reference changes
        *slot = l = bigger;
      }
      PartyRecord* r = PartyRecord::Create(kind, id, 1);
      r->Append(ev);
      l->entries()[l->count++] = {hash, r};
      return true;
    }
    // Split the full leaf into a branch of smaller leaves, moving the entries.
    auto* b = new Branch();
    for (uint32_t i = 0; i < l->count; ++i) {
      const LeafEntry& e = l->entries()[i];
      TrieNode*& c = b->child[(e.hash >> shift) & (kFanout - 1)];
      Leaf* cl = static_cast<Leaf*>(c);
      if (!cl) {
        cl = NewLeaf(2);
      } else if (cl->count == cl->capacity) {
        Leaf* bigger = NewLeaf(cl->capacity * 2);
        bigger->count = cl->count;
        std::memcpy(static_cast<void*>(bigger->entries()), cl->entries(),
                    cl->count * sizeof(LeafEntry));
        FreeLeafShell(cl);
        cl = bigger;
      }
      cl->entries()[cl->count++] = e;
      c = cl;
    }
    FreeLeafShell(l);
    *slot = b;
  }
}

}  // namespace assent::internal
