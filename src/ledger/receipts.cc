// Receipts, entry hashes, consent scans and the export (ledger_impl.h).
#include "ledger/ledger_impl.h"

#include <ostream>

#include "common/sha256.h"
#include "ledger/parties.h"
#include "ledger/store.h"

namespace assent::internal {

Status LedgerImpl::ScanConsents(uint64_t up_to,
                            const std::function<Status(const ConsentEvent&)>& fn) const {
  EntryDecoder decoder;
  return store_->Scan(0, [&](const EntryView& v) -> Result<ScanControl> {
    if (v.position > up_to) return ScanControl::kStop;
    if (v.kind != EntryKind::kConsent) return ScanControl::kContinue;
    ConsentEvent e;
    ASSENT_RETURN_IF_ERROR(decoder.Decode(v, &e, nullptr));
    const std::string pseudonym = std::move(e.party);
    {
      std::shared_lock lock(parties_mu_);
      if (!parties_->Resolve(pseudonym, nullptr, &e.party)) return ScanControl::kContinue;
    }
    ASSENT_RETURN_IF_ERROR(fn(e));
    return ScanControl::kContinue;
  });
}

Receipt LedgerImpl::ReceiptOf(const ConsentEvent& e, const Snapshot& snap,
                              const Sha256Digest& hash, const std::string& pseudonym) const {
  Receipt rc;
  rc.position = e.position;
  rc.party_kind = e.party_kind;
  rc.party = e.party;
  rc.action = e.action;
  rc.categories = e.categories;
  rc.purposes = e.purposes;
  const int32_t v = snap.terms().FindVersion(e.terms_version);
  rc.terms = v >= 0 ? snap.terms().version(v).label() : e.terms_version;
  rc.at = e.at;
  rc.method = e.method;
  rc.rule = e.rule;
  rc.actor = e.actor;
  rc.hash = ToHex(hash);
  rc.pseudonym = pseudonym;
  rc.pseudonym_key = PartyKeyLocked(e.party_kind, e.party);
  return rc;
}

Result<Receipt> LedgerImpl::ReceiptAt(uint64_t position) const {
  if (position == 0) return NotFoundError("position 0 holds no entry");
  std::optional<StoredEntry> entry;
  ASSENT_RETURN_IF_ERROR(store_->Scan(position - 1, [&](const EntryView& v) -> Result<ScanControl> {
    if (v.position == position) {
      entry.emplace();
      entry->position = v.position;
      entry->kind = v.kind;
      entry->body.assign(v.body);
      entry->hash.fill(0);
      if (v.hash.size() == 32) std::copy(v.hash.begin(), v.hash.end(), entry->hash.begin());
    }
    return ScanControl::kStop;  // the first entry is the one
  }));
  if (!entry) return NotFoundError("no entry at position " + std::to_string(position));
  if (entry->kind != EntryKind::kConsent) {
    return NotFoundError("the entry at position " + std::to_string(position) +
                         " is not a consent event");
  }
  EntryDecoder decoder;
  ConsentEvent e;
  ASSENT_RETURN_IF_ERROR(
      decoder.Decode(EntryView{entry->position, entry->kind, entry->body, entry->hash}, &e, nullptr));
  const std::string pseudonym = std::move(e.party);
  {
    std::shared_lock lock(parties_mu_);
    if (!parties_->Resolve(pseudonym, nullptr, &e.party)) {
      return NotFoundError("the party of the event at position " + std::to_string(position) +
                           " was erased");
    }
  }
  Receipt rc = ReceiptOf(e, *engine_->snapshot(), entry->hash, pseudonym);
  return rc;
}

Result<std::string> LedgerImpl::EntryHash(uint64_t position) const {
  if (position == 0) return NotFoundError("position 0 holds no entry");
  std::string hash;
  ASSENT_RETURN_IF_ERROR(store_->Scan(position - 1, [&](const EntryView& v) -> Result<ScanControl> {
    if (v.position == position) hash = ToHex(v.hash.data(), v.hash.size());
    return ScanControl::kStop;  // the first entry is the one
  }));
  if (hash.empty()) return NotFoundError("no entry at position " + std::to_string(position));
  return hash;
}

Status LedgerImpl::Export(uint64_t since, std::ostream& out) const {
  EntryDecoder decoder;
  ConsentEvent e;
  std::string id;
  ASSENT_RETURN_IF_ERROR(store_->Scan(since, [&](const EntryView& v) -> Result<ScanControl> {
    if (v.kind == EntryKind::kConsent) {
      ASSENT_RETURN_IF_ERROR(decoder.Decode(v, &e, nullptr));
      bool known;
      {
        std::shared_lock lock(parties_mu_);
        known = parties_->Resolve(e.party, nullptr, &id);
      }
      out << ExportLineResolved(v.body, v.hash, e.party_kind, e.party,
                                          known ? &id : nullptr);
    } else {
      out << ExportLine(v.body, v.hash);
    }
    if (!out) return MakeError(ErrorCode::kUnavailable, "cannot write the export");
    return ScanControl::kContinue;
  }));
  out.flush();
  if (!out) return MakeError(ErrorCode::kUnavailable, "cannot write the export");
  return OkStatus();
}



}  // namespace assent::internal
