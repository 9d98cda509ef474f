// Receipts, entry hashes, consent scans and the export (ledger_impl.h).
#include "ledger/ledger_impl.h"

#include <map>
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
  rc.notice_locale = e.notice_locale;
  rc.notice_sha256 = e.notice_sha256;
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
  // Entries before schema 3 state no notice (the field is always last when there is one).
  rc.notice_recorded = entry->body.find(",\"notice\":") != std::string::npos;
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

Status LedgerImpl::ExportPage(uint64_t after, uint64_t up_to, size_t max_bytes, bool with_ids,
                              std::string* out, uint64_t* last) const {
  *last = after;
  if (up_to <= after) return OkStatus();
  // The page's entries first; then the ids of the parties they name (a store cannot be asked
  // about parties in the middle of a scan). Parties this process has not seen (appended by
  // another process or node since it opened) are looked up in the store; a party whose row is
  // gone was erased.
  struct Pending {
    StoredEntry entry;
    PartyKind kind = PartyKind::kSubject;
    std::string pseudonym;  // empty: not a consent entry, or no ids wanted
  };
  std::vector<Pending> page;
  size_t bytes = out->size();
  EntryDecoder decoder;
  ConsentEvent e;
  ASSENT_RETURN_IF_ERROR(store_->Scan(after, [&](const EntryView& v) -> Result<ScanControl> {
    if (v.position > up_to || (!page.empty() && bytes >= max_bytes)) return ScanControl::kStop;
    Pending p;
    p.entry.position = v.position;
    p.entry.kind = v.kind;
    p.entry.body.assign(v.body);
    p.entry.hash.fill(0);
    if (v.hash.size() == 32) std::copy(v.hash.begin(), v.hash.end(), p.entry.hash.begin());
    if (v.kind == EntryKind::kConsent && with_ids) {
      ASSENT_RETURN_IF_ERROR(decoder.Decode(v, &e, nullptr));
      p.kind = e.party_kind;
      p.pseudonym = e.party;
    }
    bytes += v.body.size() + 96;
    page.push_back(std::move(p));
    return ScanControl::kContinue;
  }));
  std::map<std::string, std::optional<std::string>, std::less<>> ids;
  std::vector<std::string> unknown;
  for (const Pending& p : page) {
    if (p.pseudonym.empty() || ids.count(p.pseudonym)) continue;
    std::string id;
    bool known;
    {
      std::shared_lock lock(parties_mu_);
      known = parties_->Resolve(p.pseudonym, nullptr, &id);
    }
    if (known) {
      ids[p.pseudonym] = std::move(id);
    } else {
      ids[p.pseudonym] = std::nullopt;
      unknown.push_back(p.pseudonym);
    }
  }
  if (!unknown.empty()) {
    ASSENT_ASSIGN_OR_RETURN(auto rows, store_->FindPseudonyms(unknown));
    for (PartyRow& row : rows) ids[row.pseudonym] = std::move(row.id);
  }
  for (const Pending& p : page) {
    const std::string_view body = p.entry.body;
    if (p.pseudonym.empty()) {
      out->append(ExportLine(body, p.entry.hash));
    } else {
      const auto& id = ids[p.pseudonym];
      out->append(ExportLineResolved(body, p.entry.hash, p.kind, p.pseudonym,
                                     id ? &*id : nullptr));
    }
    *last = p.entry.position;
  }
  return OkStatus();
}

}  // namespace assent::internal
