// Pseudonymous parties: the ledger's entries (and so the audit tree's leaves) never hold a
// subject's or account's plain id, only a keyed pseudonym, HMAC-SHA-256(secret, id) truncated
// to 128 bits and written as "p" + 22 base64url characters. The secret is random, one per
// party, and lives outside the tree (the store's parties table). Erasing a party deletes its
// secret and plain id: its entries stay, still verify, and can no longer be linked to anyone
// (crypto-shredding). docs/formats/ledger.md "Parties".
//
// PartyIndex maps both ways in memory and holds the secrets (receipts carry theirs, so that
// whoever holds a receipt can check that its pseudonym is the party's): about 88 bytes per
// party plus two tagged slots (8 bytes each, at most 3/4 full).
#ifndef ASSENT_LEDGER_PARTIES_H_
#define ASSENT_LEDGER_PARTIES_H_

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "assent/decision.h"

namespace assent::internal {

using PartySecret = std::array<uint8_t, 32>;
struct PartyRow;  // ledger/store.h

// From the OS's CSPRNG; kInternal when it fails (nothing is made of a predictable secret).
Result<PartySecret> NewPartySecret();
// "p" + base64url(HMAC-SHA-256(secret, kind ":" id)[0..16)), 23 characters.
std::string MakePseudonym(const PartySecret& secret, PartyKind kind, std::string_view id);
// Whether `s` has a pseudonym's shape (not whether it names anyone).
bool IsPseudonym(std::string_view s);

class PartyIndex {
 public:
  PartyIndex();
  // Adds a live party. REQUIRES: neither its id nor its pseudonym is present.
  // False (nothing added) when `pseudonym` is not one (IsPseudonym).
  bool Add(PartyKind kind, std::string_view id, std::string_view pseudonym,
           const PartySecret& secret);
  // The party's pseudonym, if it is known (and not erased).
  std::optional<std::string> PseudonymOf(PartyKind kind, std::string_view id,
                                         PartySecret* secret = nullptr) const;
  // The party a pseudonym names: false when it names no live party (erased or unknown).
  bool Resolve(std::string_view pseudonym, PartyKind* kind, std::string* id) const;
  // Resolves many at once, overlapping their memory look-ups (start-up replay): for each i,
  // (*ids)[i] gets the id and (*kinds)[i] the kind, or (*found)[i] = 0 when pseudonyms[i]
  // names no live party.
  void ResolveMany(std::span<const std::string_view> pseudonyms, std::vector<std::string>* ids,
                   std::vector<PartyKind>* kinds, std::vector<uint8_t>* found) const;
  // Adds many new parties (start-up load), overlapping their memory look-ups.
  void AddMany(std::span<const PartyRow> rows);
  // Forgets a party: its id is dropped from memory. False when it was not known.
  bool Erase(PartyKind kind, std::string_view id);
  size_t size() const { return live_; }
  void Reserve(size_t n);

 private:
  using Raw = std::array<uint8_t, 16>;
  struct Party {
    std::string id;  // empty once erased
    Raw pseudonym{};
    PartySecret secret{};  // zeroed once erased
    PartyKind kind = PartyKind::kSubject;
    bool live = false;
  };
  static bool Decode(std::string_view pseudonym, Raw* raw);
  static std::string Encode(const Raw& raw);
  static uint64_t IdHash(PartyKind kind, std::string_view id);
  static uint64_t RawHash(const Raw& raw);
  // Slot of the party with this id (or the empty slot where it would go).
  size_t FindId(PartyKind kind, std::string_view id, uint64_t hash) const;
  size_t FindRaw(const Raw& raw, uint64_t hash) const;
  void Grow();
  // A slot: (1 + index into parties_) in the low 32 bits, 0 when empty; the high 32 bits of the
  // key's hash above it, so a probe dereferences a party (a cache miss) only on a likely match.
  static uint64_t Slot(size_t index, uint64_t hash) { return (hash & ~0xffffffffULL) | (index + 1); }
  std::vector<Party> parties_;
  std::vector<uint64_t> by_id_, by_pseudonym_;
  size_t live_ = 0;
};

}  // namespace assent::internal

#endif  // ASSENT_LEDGER_PARTIES_H_
