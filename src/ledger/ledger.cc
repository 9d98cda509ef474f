// The public ledger (include/assent/ledger.h): every call goes to its implementation,
// src/ledger/ledger_impl.h, whose pieces live in their own files.
#include "assent/ledger.h"

#include "common/json_writer.h"
#include "engine/events_jsonl.h"
#include "ledger/events_file.h"
#include "ledger/ledger_impl.h"

namespace assent {

using internal::LedgerImpl;

Ledger::Ledger(std::unique_ptr<LedgerImpl> impl) : impl_(std::move(impl)) {}
Ledger::~Ledger() = default;

Result<std::unique_ptr<Ledger>> Ledger::Open(const LedgerOptions& options) {
  ASSENT_ASSIGN_OR_RETURN(auto impl, LedgerImpl::Open(options));
  return std::unique_ptr<Ledger>(new Ledger(std::move(impl)));
}

Engine& Ledger::engine() { return impl_->engine(); }
const Engine& Ledger::engine() const { return impl_->engine(); }
Result<PublishResult> Ledger::PublishTerms(std::string_view yaml, std::string_view file,
                                           PublishOptions options) {
  return impl_->PublishTerms(yaml, file, options);
}
Result<Receipt> Ledger::RecordConsent(ConsentEvent event) {
  return impl_->RecordConsent(std::move(event));
}
Result<std::vector<Receipt>> Ledger::RecordConsents(std::vector<ConsentEvent> events) {
  return impl_->RecordConsents(std::move(events));
}
Result<std::string> Ledger::CreateKey(Role role, std::string name) {
  return impl_->CreateKey(role, std::move(name));
}
Status Ledger::RevokeKey(std::string_view name) { return impl_->RevokeKey(name); }
std::vector<ApiKey> Ledger::Keys() const { return impl_->Keys(); }
std::optional<ApiKey> Ledger::Authenticate(std::string_view secret) const {
  return impl_->Authenticate(secret);
}
Status Ledger::SpendToken(std::string_view action, std::string_view token_sha256,
                          Timestamp expires) {
  return impl_->SpendToken(action, token_sha256, expires);
}
bool Ledger::TokenSpent(std::string_view token_sha256) const {
  return impl_->TokenSpent(token_sha256);
}
size_t Ledger::tokens_remembered() const { return impl_->tokens_remembered(); }
Result<uint64_t> Ledger::RegisterDataset(const DatasetRegistration& d) {
  return impl_->RegisterDataset(d);
}
Result<uint64_t> Ledger::RegisterModel(std::string name, std::vector<std::string> datasets) {
  return impl_->RegisterModel(std::move(name), std::move(datasets));
}
void Ledger::WithLineage(const std::function<void(const Lineage&)>& fn) const {
  impl_->WithLineage(fn);
}
Status Ledger::ScanEntries(
    uint64_t after,
    const std::function<Status(uint64_t, std::string_view, std::string_view, std::string_view)>&
        fn) const {
  return impl_->ScanEntries(after, fn);
}
void Ledger::SetAppendObserver(AppendObserver observer) {
  impl_->SetAppendObserver(std::move(observer));
}
Status Ledger::SetAppendObserver(AppendObserver observer, uint64_t seen) {
  return impl_->SetAppendObserver(std::move(observer), seen);
}
Result<uint64_t> Ledger::AppendCheckpoint(uint64_t size, std::string_view root_hex,
                                          std::string_view note) {
  return impl_->AppendCheckpoint(size, root_hex, note);
}
Result<uint64_t> Ledger::AppendCheckpoint(const CheckpointSigner& sign) {
  return impl_->AppendCheckpoint(sign);
}
Status Ledger::ScanConsents(uint64_t up_to,
                            const std::function<Status(const ConsentEvent&)>& fn) const {
  return impl_->ScanConsents(up_to, fn);
}
Result<Receipt> Ledger::ReceiptAt(uint64_t position) const { return impl_->ReceiptAt(position); }
Result<std::string> Ledger::EntryHash(uint64_t position) const {
  return impl_->EntryHash(position);
}
Status Ledger::Export(uint64_t since, std::ostream& out) const {
  return impl_->Export(since, out);
}
Status Ledger::ExportPage(uint64_t after, uint64_t up_to, size_t max_bytes, bool with_ids,
                          std::string* out, uint64_t* last) const {
  return impl_->ExportPage(after, up_to, max_bytes, with_ids, out, last);
}
std::optional<std::string> Ledger::PseudonymOf(PartyKind kind, std::string_view id) const {
  return impl_->PseudonymOf(kind, id);
}
Result<uint64_t> Ledger::EraseParty(PartyKind kind, const std::string& id,
                                    ErasureReport* report) {
  return impl_->EraseParty(kind, id, report);
}
Result<ErasureReport> Ledger::ErasureImpact(PartyKind kind, const std::string& id) const {
  return impl_->ErasureImpact(kind, id);
}
uint64_t Ledger::erased_events_skipped() const { return impl_->erased_events_skipped(); }
uint64_t Ledger::position() const { return impl_->position(); }
const std::string& Ledger::data_dir() const { return impl_->data_dir(); }
std::string Ledger::store_description() const { return impl_->store_description(); }
Status Ledger::CatchUp() { return impl_->CatchUp(); }
bool Ledger::store_reachable() const { return impl_->store_reachable(); }
std::string Ledger::store_problem() const { return impl_->store_problem(); }

std::string_view RoleName(Role r) {
  switch (r) {
    case Role::kOperator: return "operator";
    case Role::kService: return "service";
    case Role::kAuditor: return "auditor";
    case Role::kPortal: return "portal";
  }
  return "service";
}

std::optional<Role> ParseRole(std::string_view s) {
  if (s == "operator") return Role::kOperator;
  if (s == "service") return Role::kService;
  if (s == "auditor") return Role::kAuditor;
  if (s == "portal") return Role::kPortal;
  return std::nullopt;
}

std::string Receipt::ToJson() const {
  JsonWriter w;
  w.BeginObject();
  w.Key("position").UInt(position);
  w.Key(PartyKindName(party_kind)).String(party);
  if (!pseudonym.empty()) w.Key("pseudonym").String(pseudonym);
  if (!pseudonym_key.empty()) w.Key("pseudonym_key").String(pseudonym_key);
  w.Key("action").String(ActionName(action));
  w.Key("categories").BeginArray();
  for (const auto& c : categories) w.String(c);
  w.EndArray();
  w.Key("purposes").BeginArray();
  for (const auto& p : purposes) w.String(p);
  w.EndArray();
  w.Key("terms").String(terms);
  w.Key("at").String(FormatTime(at));
  w.Key("method").String(MethodName(method));
  if (!rule.empty()) w.Key("rule").String(rule);
  if (!actor.empty()) w.Key("actor").String(actor);
  if (notice_recorded) WriteNotice(w, notice_locale, notice_sha256);
  w.Key("hash").String(hash);
  if (replayed) w.Key("replayed").Bool(true);
  w.EndObject();
  return w.Take();
}

Result<std::vector<ConsentEvent>> ReadImportFile(const std::string& path) {
  ASSENT_ASSIGN_OR_RETURN(auto events, LoadEventsFile(path));
  for (auto& e : events) e.position = 0;  // the importing ledger assigns positions
  return events;
}
}  // namespace assent
