// Pseudonyms and the in-memory two-way party index (open addressing over one vector).
#include "ledger/parties.h"

#include <openssl/hmac.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <array>
#include <cstring>
#include <stdexcept>

#include "common/hash.h"
#include "ledger/store.h"

namespace assent::internal {
namespace {
constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr size_t kEncoded = 22;  // base64url of 16 bytes, no padding

// base64url's value of each byte, -1 for bytes outside its alphabet (a table: replaying a
// ledger decodes every entry's pseudonym).
constexpr std::array<int8_t, 256> kDecode = [] {
  std::array<int8_t, 256> t{};
  t.fill(-1);
  for (int i = 0; i < 26; ++i) t['A' + i] = static_cast<int8_t>(i), t['a' + i] = static_cast<int8_t>(26 + i);
  for (int i = 0; i < 10; ++i) t['0' + i] = static_cast<int8_t>(52 + i);
  t['-'] = 62;
  t['_'] = 63;
  return t;
}();

int8_t DecodeChar(char c) { return kDecode[static_cast<unsigned char>(c)]; }

std::string EncodeRaw(const std::array<uint8_t, 16>& raw) {
  std::string out = "p";
  uint32_t acc = 0;
  int bits = 0;
  for (uint8_t b : raw) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kAlphabet[(acc >> bits) & 63];
    }
  }
  if (bits > 0) out += kAlphabet[(acc << (6 - bits)) & 63];
  return out;
}
}  // namespace

Result<PartySecret> NewPartySecret() {
  PartySecret s;
  if (RAND_bytes(s.data(), static_cast<int>(s.size())) != 1) {
    return InternalError("the system's random number generator failed: no pseudonym secret "
                         "could be made");
  }
  return s;
}

std::string MakePseudonym(const PartySecret& secret, PartyKind kind, std::string_view id) {
  std::string message(PartyKindName(kind));
  message += ':';
  message += id;
  unsigned char mac[32];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &len);
  std::array<uint8_t, 16> raw;
  std::memcpy(raw.data(), mac, raw.size());
  return EncodeRaw(raw);
}

bool IsPseudonym(std::string_view s) {
  if (s.size() != 1 + kEncoded || s[0] != 'p') return false;
  for (char c : s.substr(1)) {
    if (DecodeChar(c) < 0) return false;
  }
  return (DecodeChar(s.back()) & 0x0f) == 0;  // the last character carries 2 bits
}

PartyIndex::PartyIndex() { by_id_.assign(16, 0), by_pseudonym_.assign(16, 0); }

bool PartyIndex::Decode(std::string_view p, Raw* raw) {
  if (!IsPseudonym(p)) return false;
  uint32_t acc = 0;
  int bits = 0;
  size_t n = 0;
  for (char c : p.substr(1)) {
    acc = (acc << 6) | static_cast<uint32_t>(DecodeChar(c));
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (n < raw->size()) (*raw)[n++] = static_cast<uint8_t>(acc >> bits);
    }
  }
  return n == raw->size();
}

std::string PartyIndex::Encode(const Raw& raw) { return EncodeRaw(raw); }

uint64_t PartyIndex::IdHash(PartyKind kind, std::string_view id) {
  return Hash64(id, kind == PartyKind::kSubject ? 0x2545f4914f6cdd1dULL : 0x9e3779b97f4a7c15ULL);
}

uint64_t PartyIndex::RawHash(const Raw& raw) {
  uint64_t h;
  std::memcpy(&h, raw.data(), 8);  // an HMAC output: already uniform
  return h;
}

size_t PartyIndex::FindId(PartyKind kind, std::string_view id, uint64_t hash) const {
  const size_t mask = by_id_.size() - 1;
  const uint64_t tag = hash & ~0xffffffffULL;
  for (size_t i = hash & mask;; i = (i + 1) & mask) {
    const uint64_t s = by_id_[i];
    if (s == 0) return i;
    if ((s & ~0xffffffffULL) != tag) continue;
    const Party& p = parties_[(s & 0xffffffff) - 1];
    if (p.live && p.kind == kind && p.id == id) return i;
  }
}

size_t PartyIndex::FindRaw(const Raw& raw, uint64_t hash) const {
  const size_t mask = by_pseudonym_.size() - 1;
  const uint64_t tag = hash & ~0xffffffffULL;
  for (size_t i = hash & mask;; i = (i + 1) & mask) {
    const uint64_t s = by_pseudonym_[i];
    if (s == 0) return i;
    if ((s & ~0xffffffffULL) == tag && parties_[(s & 0xffffffff) - 1].pseudonym == raw) return i;
  }
}

void PartyIndex::Reserve(size_t n) {
  parties_.reserve(n);
  while (by_id_.size() * 3 < n * 4) Grow();  // load at most 3/4: tags keep probes cheap
}

void PartyIndex::Grow() {
  const size_t cap = by_id_.size() * 2;
  by_id_.assign(cap, 0);
  by_pseudonym_.assign(cap, 0);
  for (size_t k = 0; k < parties_.size(); ++k) {
    const Party& p = parties_[k];
    if (p.live) {
      const uint64_t h = IdHash(p.kind, p.id);
      by_id_[FindId(p.kind, p.id, h)] = Slot(k, h);
    }
    const uint64_t h = RawHash(p.pseudonym);
    by_pseudonym_[FindRaw(p.pseudonym, h)] = Slot(k, h);
  }
}

bool PartyIndex::Add(PartyKind kind, std::string_view id, std::string_view pseudonym,
                     const PartySecret& secret) {
  Party p;
  p.secret = secret;
  if (!Decode(pseudonym, &p.pseudonym)) return false;
  p.id.assign(id);
  p.kind = kind;
  p.live = true;
  if ((parties_.size() + 1) * 4 > by_id_.size() * 3) Grow();
  const uint64_t id_hash = IdHash(kind, id), raw_hash = RawHash(p.pseudonym);
  const size_t id_slot = FindId(kind, id, id_hash);
  const size_t ps_slot = FindRaw(p.pseudonym, raw_hash);
  parties_.push_back(std::move(p));
  const size_t index = parties_.size() - 1;
  by_id_[id_slot] = Slot(index, id_hash);
  if (by_pseudonym_[ps_slot] == 0) by_pseudonym_[ps_slot] = Slot(index, raw_hash);
  ++live_;
  return true;
}

std::optional<std::string> PartyIndex::PseudonymOf(PartyKind kind, std::string_view id,
                                                   PartySecret* secret) const {
  const uint64_t s = by_id_[FindId(kind, id, IdHash(kind, id))];
  if (s == 0) return std::nullopt;
  const Party& p = parties_[(s & 0xffffffff) - 1];
  if (secret) *secret = p.secret;
  return Encode(p.pseudonym);
}

bool PartyIndex::Resolve(std::string_view pseudonym, PartyKind* kind, std::string* id) const {
  Raw raw;
  if (!Decode(pseudonym, &raw)) return false;
  const uint64_t s = by_pseudonym_[FindRaw(raw, RawHash(raw))];
  if (s == 0 || !parties_[(s & 0xffffffff) - 1].live) return false;
  const Party& p = parties_[(s & 0xffffffff) - 1];
  if (kind) *kind = p.kind;
  if (id) id->assign(p.id);
  return true;
}

void PartyIndex::ResolveMany(std::span<const std::string_view> pseudonyms,
                             std::vector<std::string>* ids, std::vector<PartyKind>* kinds,
                             std::vector<uint8_t>* found) const {
  constexpr size_t kGroup = 16;
  const size_t n = pseudonyms.size();
  ids->resize(n);
  kinds->resize(n);
  found->assign(n, 0);
  Raw raw[kGroup];
  uint64_t hash[kGroup];
  bool valid[kGroup];
  const size_t mask = by_pseudonym_.size() - 1;
  for (size_t base = 0; base < n; base += kGroup) {
    const size_t m = std::min(kGroup, n - base);
    for (size_t j = 0; j < m; ++j) {  // the slots' cache lines, all at once
      valid[j] = Decode(pseudonyms[base + j], &raw[j]);
      hash[j] = valid[j] ? RawHash(raw[j]) : 0;
      __builtin_prefetch(&by_pseudonym_[hash[j] & mask]);
    }
    for (size_t j = 0; j < m; ++j) {  // then the parties they point at
      const uint64_t s = by_pseudonym_[hash[j] & mask];
      if (s != 0) __builtin_prefetch(&parties_[(s & 0xffffffff) - 1]);
    }
    for (size_t j = 0; j < m; ++j) {
      if (!valid[j]) continue;
      const uint64_t s = by_pseudonym_[FindRaw(raw[j], hash[j])];
      if (s == 0) continue;
      const Party& p = parties_[(s & 0xffffffff) - 1];
      if (!p.live) continue;
      (*ids)[base + j].assign(p.id);
      (*kinds)[base + j] = p.kind;
      (*found)[base + j] = 1;
    }
  }
}

void PartyIndex::AddMany(std::span<const PartyRow> rows) {
  if ((parties_.size() + rows.size()) * 4 > by_id_.size() * 3) {
    Reserve(parties_.size() + rows.size());
  }
  const size_t mask = by_id_.size() - 1;
  for (const PartyRow& r : rows) {  // the slots' cache lines first
    __builtin_prefetch(&by_id_[IdHash(r.kind, r.id) & mask]);
    Raw raw;
    if (Decode(r.pseudonym, &raw)) __builtin_prefetch(&by_pseudonym_[RawHash(raw) & mask]);
  }
  for (const PartyRow& r : rows) Add(r.kind, r.id, r.pseudonym, r.secret);
}

bool PartyIndex::Erase(PartyKind kind, std::string_view id) {
  const uint64_t s = by_id_[FindId(kind, id, IdHash(kind, id))];
  if (s == 0) return false;
  Party& p = parties_[(s & 0xffffffff) - 1];
  p.live = false;
  std::string().swap(p.id);  // the plain id and the secret leave memory too
  OPENSSL_cleanse(p.secret.data(), p.secret.size());
  --live_;
  return true;
}

}  // namespace assent::internal
