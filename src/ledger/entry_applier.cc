// The one place a stored entry becomes state (ledger_impl.h): replay and catch-up hand every
// entry that is not a consent event here (consent events are folded into the engine in
// batches, by replay and catch-up themselves).
#include "ledger/ledger_impl.h"

#include "ledger/lineage.h"
#include "ledger/parties.h"
#include "ledger/store.h"
#include "terms/compiler.h"

namespace assent::internal {

Status LedgerImpl::ApplyEntry(const EntryView& v, EntryDecoder& decoder) {
  Status st = OkStatus();
  switch (v.kind) {
    case EntryKind::kTerms: {
      EntryDecoder::TermsFields f;
      ASSENT_RETURN_IF_ERROR(decoder.Decode(v, nullptr, &f));
      return ApplyTermsEntry(v.position, f.id, f.version, f.yaml);
    }
    case EntryKind::kKey: {
      KeyFields k;
      ASSENT_RETURN_IF_ERROR(decoder.DecodeKey(v, &k));
      st = ApplyKey(v.position, k.action, k.name, k.role, k.key_sha256, k.recorded_at);
      break;
    }
    case EntryKind::kDataset: {
      DatasetFields d;
      Timestamp recorded = 0;
      ASSENT_RETURN_IF_ERROR(decoder.DecodeDataset(v, &d, &recorded));
      st = ApplyDataset(v.position, recorded, d);
      break;
    }
    case EntryKind::kModel: {
      ModelFields m;
      Timestamp recorded = 0;
      ASSENT_RETURN_IF_ERROR(decoder.DecodeModel(v, &m, &recorded));
      st = ApplyModel(v.position, recorded, m);
      break;
    }
    case EntryKind::kErasure:
      st = ApplyErasure(v, decoder);
      break;
    case EntryKind::kToken: {
      TokenFields t;
      ASSENT_RETURN_IF_ERROR(decoder.DecodeToken(v, &t));
      ApplyToken(t.token_sha256, t.expires);
      break;
    }
    case EntryKind::kCheckpoint:
    case EntryKind::kConsent:
      break;
  }
  if (!st) {
    return DataLossError(std::string(EntryKindName(v.kind)) + " entry at ledger position " +
                         std::to_string(v.position) + " cannot be applied: " +
                         st.error().message);
  }
  return OkStatus();
}

// The party's keyed hash joins the suppression list (its key row came with the first erasure,
// from whichever node made it), and a party this node still knows is forgotten. (At start-up
// an erased party's row is gone already, so replay skipped its events.)
Status LedgerImpl::ApplyErasure(const EntryView& v, EntryDecoder& decoder) {
  PartyKind kind;
  std::string pseudonym, id;
  std::optional<uint64_t> suppressed;
  ASSENT_RETURN_IF_ERROR(decoder.DecodeErasure(v, &kind, &pseudonym, &suppressed));
  if (suppressed) {  // erasures from before the suppression list carry none
    if (!engine_->has_suppression_key()) {
      ASSENT_ASSIGN_OR_RETURN(auto row, store_->FindParty(PartyKind::kSubject, kSuppressionKeyId));
      if (!row) return DataLossError("an erasure but no suppression key");
      engine_->SetSuppressionKey(SuppressionKeyOf(row->secret));
    }
    ASSENT_RETURN_IF_ERROR(engine_->Suppress(*suppressed));
  }
  bool known;
  {
    std::shared_lock lock(parties_mu_);
    known = parties_->Resolve(pseudonym, nullptr, &id);
  }
  if (!known) return OkStatus();
  {
    std::unique_lock lock(parties_mu_);
    parties_->Erase(kind, id);
  }
  return engine_->ForgetParty(kind, id);
}

Status LedgerImpl::ApplyTermsEntry(uint64_t position, const std::string& id,
                               const std::string& version, const std::string& yaml) {
  const std::string where = "terms at ledger position " + std::to_string(position);
  auto terms = CompileTerms(yaml, "ledger position " + std::to_string(position));
  if (!terms) return DataLossError(where + " no longer compile: " + terms.error().message);
  if ((*terms)->version() != version || (*terms)->id() != id) {
    return DataLossError(where + " do not match their recorded id and version");
  }
  if (auto p = engine_->PublishTerms(*terms, position); !p) {
    return DataLossError(where + " cannot be applied: " + p.error().message);
  }
  published_at_[(*terms)->version()] = position;
  return OkStatus();
}

// Applies the entries after the engine's position up to `head` that other nodes appended,
// in order, as replay does (one thread: these are few). Consent entries naming a party this

Status LedgerImpl::ApplyDataset(uint64_t position, Timestamp at, const DatasetFields& f) {
  std::unique_lock lock(lineage_mu_);
  Lineage& l = *lineage_;
  if (l.FindDataset(f.name)) return AlreadyExistsError("dataset '" + f.name + "' is recorded already");
  for (const auto& n : f.new_subjects) {
    if (l.subjects.Find(n)) return InvalidArgumentError("subject '" + n + "' has an id already");
    l.subjects.Add(n);
  }
  for (const auto& n : f.new_accounts) {
    if (l.accounts.Find(n)) return InvalidArgumentError("account '" + n + "' has an id already");
    l.accounts.Add(n);
  }
  DatasetInfo d;
  d.name = f.name;
  d.purpose = f.purpose;
  d.terms = f.terms;
  d.position = position;
  d.ledger_position = f.ledger_position;
  d.recorded_at = at;
  d.input_sha256 = f.input_sha256;
  d.output_sha256 = f.output_sha256;
  d.snapshot_sha256 = f.snapshot_sha256;
  d.items = f.items;
  if (!DecodeBitmap(f.subjects, &d.subjects) || !DecodeBitmap(f.accounts, &d.accounts)) {
    return InvalidArgumentError("damaged bitmap");
  }
  for (const auto& sh : f.shards) {
    ShardInfo s;
    s.file = sh.file;
    s.items = sh.items;
    if (!DecodeBitmap(sh.subjects, &s.subjects)) return InvalidArgumentError("damaged bitmap");
    d.shards.push_back(std::move(s));
  }
  l.datasets.push_back(std::move(d));
  return OkStatus();
}

Status LedgerImpl::ApplyModel(uint64_t position, Timestamp at, const ModelFields& f) {
  std::unique_lock lock(lineage_mu_);
  if (lineage_->FindModel(f.name)) return AlreadyExistsError("model '" + f.name + "' exists");
  for (const auto& d : f.datasets) {
    if (!lineage_->FindDataset(d)) return NotFoundError("no dataset named '" + d + "'");
  }
  lineage_->models.push_back(ModelInfo{f.name, f.datasets, position, at});
  return OkStatus();
}

void LedgerImpl::ApplyToken(const std::string& token_sha256, Timestamp expires) {
  const Timestamp now = clock_();
  std::lock_guard lock(tokens_mu_);
  for (int n = 0; n < 8 && !token_expiry_.empty() && token_expiry_.begin()->first <= now; ++n) {
    tokens_.erase(token_expiry_.begin()->second);
    token_expiry_.erase(token_expiry_.begin());
  }
  if (expires <= now) return;  // can no longer be presented: nothing to remember
  if (tokens_.emplace(token_sha256, expires).second) token_expiry_.emplace(expires, token_sha256);
}


}  // namespace assent::internal
