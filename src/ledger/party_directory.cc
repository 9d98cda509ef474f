// Parties by pseudonym, and erasure: crypto-shredding with the suppression list (ledger_impl.h).
#include "ledger/ledger_impl.h"

#include <algorithm>
#include <set>

#include "common/strings.h"
#include "ledger/append.h"
#include "ledger/lineage.h"
#include "ledger/parties.h"
#include "ledger/store.h"

namespace assent::internal {

Result<std::string> LedgerImpl::PseudonymForLocked(
    PartyKind kind, const std::string& id, std::vector<PartyChange>* created,
    std::map<std::pair<PartyKind, std::string>, std::string>* fresh, bool ask_store) {
  {
    std::shared_lock lock(parties_mu_);
    if (auto p = parties_->PseudonymOf(kind, id)) return *p;
  }
  auto key = std::make_pair(kind, id);
  if (auto it = fresh->find(key); it != fresh->end()) return it->second;
  if (ask_store && store_->Shared()) {  // another node may have named this party first
    if (auto row = store_->FindParty(kind, id); row && *row) {
      if (!IsPseudonym((*row)->pseudonym)) {
        return DataLossError("the stored pseudonym of " + std::string(PartyKindName(kind)) +
                             " '" + id + "' is damaged");
      }
      PartyChange known;
      known.row = **row;
      AddPartiesLocked({&known, 1});
      return known.row.pseudonym;
    }
    // Unreachable or not there: a new row; a taken id fails the append (kAlreadyExists).
  }
  PartyChange c;
  c.row.kind = kind;
  c.row.id = id;
  for (;;) {  // a 128-bit pseudonym taken already: never seen, but never allowed either
    ASSENT_ASSIGN_OR_RETURN(c.row.secret, NewPartySecret());
    c.row.pseudonym = MakePseudonym(c.row.secret, kind, id);
    std::shared_lock lock(parties_mu_);
    if (!parties_->Resolve(c.row.pseudonym, nullptr, nullptr)) break;
  }
  (*fresh)[key] = c.row.pseudonym;
  created->push_back(std::move(c));
  return created->back().row.pseudonym;
}

void LedgerImpl::AddPartiesLocked(std::span<const PartyChange> created) {
  if (created.empty()) return;
  std::unique_lock lock(parties_mu_);
  for (const auto& c : created) {
    if (c.row.id == kSuppressionKeyId) continue;  // a key, not a party
    if (c.erase) {
      parties_->Erase(c.row.kind, c.row.id);
    } else {
      parties_->Add(c.row.kind, c.row.id, c.row.pseudonym, c.row.secret);
    }
  }
}

std::string LedgerImpl::PartyKeyLocked(PartyKind kind, std::string_view id) const {
  PartySecret secret;
  std::shared_lock lock(parties_mu_);
  if (!parties_->PseudonymOf(kind, id, &secret)) return "";
  return Base64Encode(std::string_view(reinterpret_cast<const char*>(secret.data()), 32));
}

std::optional<std::string> LedgerImpl::PseudonymOf(PartyKind kind, std::string_view id) const {
  std::shared_lock lock(parties_mu_);
  return parties_->PseudonymOf(kind, id);
}

Result<uint64_t> LedgerImpl::EraseParty(PartyKind kind, const std::string& id,
                                    ErasureReport* report) {
  if (read_only_) return FailedPreconditionError("the ledger was opened read-only");
  if (BlankId(id) || std::any_of(id.begin(), id.end(), [](char c) {
        return static_cast<unsigned char>(c) < 0x20;
      })) {
    return InvalidArgumentError("not a party id: empty, blank or with control characters");
  }
  ASSENT_ASSIGN_OR_RETURN(auto append, AppendLock::Take(this));
  auto pseudonym = PseudonymOf(kind, id);
  if (!pseudonym) {
    return NotFoundError("the ledger holds nothing about " + std::string(PartyKindName(kind)) +
                         " '" + id + "': nothing to erase");
  }
  std::vector<PartyChange> changes(1);
  changes[0].erase = true;
  changes[0].row.kind = kind;
  changes[0].row.id = id;
  // The suppression key: made with the first erasure, in the same transaction.
  std::array<uint8_t, 16> key{};
  if (auto known = engine_->suppression_key()) {
    key = *known;
  } else {
    PartyChange k;
    k.row.kind = PartyKind::kSubject;
    k.row.id = std::string(kSuppressionKeyId);
    ASSENT_ASSIGN_OR_RETURN(k.row.secret, NewPartySecret());
    k.row.pseudonym = MakePseudonym(k.row.secret, k.row.kind, k.row.id);
    key = SuppressionKeyOf(k.row.secret);
    changes.push_back(std::move(k));
  }
  ErasureFields fields;
  fields.suppressed = ErasedPartyHash(key, kind, id);
  ErasureReport held = Holding(kind, *pseudonym);
  fields.datasets = held.datasets;
  fields.shards = held.shards;
  fields.models = held.models;
  ASSENT_ASSIGN_OR_RETURN(auto at, AppendEntryLocked(*append,
                                       [&](uint64_t pos, Timestamp now) {
                                         return MakeErasureEntry(pos, now, kind,
                                                                           *pseudonym, fields);
                                       },
                                       changes));
  if (changes.size() > 1) engine_->SetSuppressionKey(key);
  ASSENT_RETURN_IF_ERROR(engine_->Suppress(*fields.suppressed));
  if (report) *report = std::move(held);
  ASSENT_RETURN_IF_ERROR(engine_->ForgetParty(kind, id));
  append.reset();  // the store's locks are taken before the write lock, never inside it
  // Old copies of the row may remain in the WAL until it is checkpointed; with readers
  // holding it open, the next checkpoint (at the latest, at close) removes them.
  (void)store_->Purge();
  return at.first;
}

ErasureReport LedgerImpl::Holding(PartyKind kind, const std::string& pseudonym) const {
  ErasureReport r;
  WithLineage([&](const Lineage& l) {
    auto dense = kind == PartyKind::kSubject ? l.subjects.Find(pseudonym)
                                             : l.accounts.Find(pseudonym);
    if (!dense) return;
    std::set<std::string> models;
    for (const auto& d : l.datasets) {
      const Roaring& set = kind == PartyKind::kSubject ? d.subjects : d.accounts;
      if (!set.contains(*dense)) continue;
      r.datasets.push_back(d.name);
      for (const auto& s : d.shards) {
        if (kind == PartyKind::kSubject && s.subjects.contains(*dense)) r.shards.push_back(s.file);
      }
      for (const auto& m : l.models) {
        if (std::find(m.datasets.begin(), m.datasets.end(), d.name) != m.datasets.end()) {
          models.insert(m.name);
        }
      }
    }
    r.models.assign(models.begin(), models.end());
  });
  return r;
}

Result<ErasureReport> LedgerImpl::ErasureImpact(PartyKind kind, const std::string& id) const {
  auto pseudonym = PseudonymOf(kind, id);
  if (!pseudonym) {
    return NotFoundError("the ledger holds nothing about " + std::string(PartyKindName(kind)) +
                         " '" + id + "': nothing to erase");
  }
  return Holding(kind, *pseudonym);
}

}  // namespace assent::internal
