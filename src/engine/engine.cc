// The write side of the engine: validating consent events, folding them into a new consent
// state and publishing it as the next snapshot. Writers are serialized by one mutex;
// readers never take it.
#include "assent/engine.h"

#include <algorithm>

#include "common/siphash.h"
#include "common/strings.h"
#include "engine/consent_state.h"
#include "engine/gate_verdicts.h"
#include "engine/shared_tables.h"

namespace assent {

using internal::ConsentState;
using internal::ConsentStateBuilder;
using internal::Scope;
using internal::StoredEvent;

namespace {

constexpr size_t kMaxPartyIdBytes = 1024;

// An event checked against the terms, with its scope as vocabulary ids.
struct Resolved {
  int32_t version = -1;
  int32_t locale = 0;  // TermsSet::LocaleCode of the notice's language
  InlineVector<int32_t, 6> categories, purposes;  // no allocation for ordinary scopes
};

std::string ScopeKey(const Resolved& r) {
  std::string k;
  for (int32_t c : r.categories) k += std::to_string(c) + ",";
  k += "|";
  for (int32_t p : r.purposes) k += std::to_string(p) + ",";
  return k;
}

Status CheckPartyId(std::string_view kind, std::string_view id) {
  if (BlankId(id)) {
    return InvalidArgumentError("the " + std::string(kind) + " id is empty or only whitespace");
  }
  if (id.size() > kMaxPartyIdBytes) {
    return InvalidArgumentError("the " + std::string(kind) + " id is longer than " +
                                std::to_string(kMaxPartyIdBytes) + " bytes");
  }
  for (unsigned char c : id) {
    if (c < 0x20 || c == 0x7f) {
      return InvalidArgumentError("the " + std::string(kind) +
                                  " id contains a control character");
    }
  }
  if (!ValidUtf8(id)) {
    return InvalidArgumentError("the " + std::string(kind) + " id is not valid UTF-8");
  }
  return OkStatus();
}

// Resolves the event's terms version and scope; kInvalidArgument says what is wrong.
Result<Resolved> Resolve(const TermsSet& ts, const ConsentEvent& e) {
  Resolved r;
  if (!e.terms_version.empty()) {
    r.version = ts.FindVersion(e.terms_version);
    if (r.version < 0) {
      return InvalidArgumentError("unknown terms version '" + e.terms_version +
                                  "': publish it before recording consent under it");
    }
  } else {
    r.version = ts.VersionAt(e.at);
    if (r.version < 0) {
      return InvalidArgumentError("no terms are in effect at " + FormatTime(e.at) +
                                  ": a consent event must be given under some terms version");
    }
  }
  const Terms& t = ts.version(r.version);
  r.locale = ts.LocaleCode(r.version, e.notice_locale);
  if (r.locale < 0) {
    return InvalidArgumentError("the notice's language '" + e.notice_locale + "' is not one terms " +
                                t.label() + " are offered in");
  }
  if (e.categories.empty()) return InvalidArgumentError("the scope names no category");
  if (e.purposes.empty()) return InvalidArgumentError("the scope names no purpose");
  auto names = [](const std::vector<TaxonomyNode>& nodes) {
    std::vector<std::string> out;
    for (const auto& n : nodes) out.push_back(n.name);
    return out;
  };
  for (const auto& c : e.categories) {
    if (t.FindCategory(c) < 0) {
      return InvalidArgumentError("unknown category '" + c + "' in terms " + t.label() +
                                  DidYouMeanSuffix(c, names(t.categories())));
    }
    r.categories.push_back(ts.category_vocabulary().Find(c));
  }
  for (const auto& p : e.purposes) {
    if (t.FindPurpose(p) < 0) {
      return InvalidArgumentError("unknown purpose '" + p + "' in terms " + t.label() +
                                  DidYouMeanSuffix(p, names(t.purposes())));
    }
    r.purposes.push_back(ts.purpose_vocabulary().Find(p));
  }
  for (auto* v : {&r.categories, &r.purposes}) {
    std::sort(v->begin(), v->end());
    v->truncate(static_cast<size_t>(std::unique(v->begin(), v->end()) - v->begin()));
  }
  return r;
}

}  // namespace

Snapshot::~Snapshot() = default;

Engine::Engine(std::shared_ptr<const TermsSet> terms, Clock clock) : clock_(std::move(clock)) {
  std::shared_ptr<Snapshot> s(new Snapshot());
  s->terms_ = std::move(terms);
  s->tables_ = std::make_shared<internal::SharedTables>();
  s->state_ = std::make_unique<ConsentState>();
  current_.store(std::move(s));
}

Engine::~Engine() = default;

Engine::Pending Engine::Pending::Of(const Snapshot& s) {
  return Pending{s.position_, s.consent_count_, s.parties_, s.last_at_};
}

void Engine::Pending::ApplyTo(Snapshot& s, const internal::SharedTables& tables) const {
  s.position_ = position;
  s.consent_count_ = consent_count;
  s.parties_ = parties;
  s.last_at_ = last_at;
  s.position_breaks_ = tables.position_breaks.size();
}

namespace {

// Checks one event against the terms and the running position and time; its resolution.
Result<Resolved> Check(const ConsentEvent& e, const TermsSet& ts, uint64_t last_position,
                       Timestamp last_at);

}  // namespace

Status Engine::ValidateLocked(const ConsentEvent& e, const Snapshot& s, uint64_t last_position,
                              Timestamp last_at) const {
  auto r = Check(e, s.terms(), last_position, last_at);
  if (!r) return std::unexpected(r.error());
  return OkStatus();
}

namespace {

Result<Resolved> Check(const ConsentEvent& e, const TermsSet& ts, uint64_t last_position,
                       Timestamp last_at) {
  ASSENT_RETURN_IF_ERROR(CheckPartyId(PartyKindName(e.party_kind), e.party));
  if (!ValidUtf8(e.actor) || !ValidUtf8(e.rule)) {
    return InvalidArgumentError("the actor and rule must be valid UTF-8");
  }
  if (e.position <= last_position) {
    return InvalidArgumentError("position " + std::to_string(e.position) +
                                " does not follow the last applied position " +
                                std::to_string(last_position));
  }
  if (e.at < last_at) {
    return InvalidArgumentError("time " + FormatTime(e.at) + " is before the latest consent " +
                                "event's (" + FormatTime(last_at) +
                                "): history is appended in order, never inserted");
  }
  return Resolve(ts, e);
}

}  // namespace

Status Engine::Validate(const ConsentEvent& e) const {
  auto s = snapshot();
  return ValidateLocked(e, *s, s->position_, s->last_at_);
}

Status Engine::ValidateBatch(std::span<const ConsentEvent> events, size_t* failed_index) const {
  std::shared_ptr<const Snapshot> cur = current_.load();
  uint64_t last_position = cur->position_;
  Timestamp last_at = cur->last_at_;
  for (size_t i = 0; i < events.size(); ++i) {
    if (auto st = ValidateLocked(events[i], *cur, last_position, last_at); !st) {
      if (failed_index) *failed_index = i;
      return st;
    }
    last_position = events[i].position;
    last_at = events[i].at;
  }
  return OkStatus();
}

Status Engine::Apply(const ConsentEvent& event) { return ApplyBatch({&event, 1}); }

namespace {

// Checks every event against the terms and the ones before it; fills `resolved`.
Status ResolveBatch(std::span<const ConsentEvent> events, const TermsSet& ts,
                    uint64_t last_position, Timestamp last_at, size_t* failed_index,
                    std::vector<Resolved>* resolved) {
  resolved->clear();
  resolved->reserve(events.size());
  for (size_t i = 0; i < events.size(); ++i) {
    const ConsentEvent& e = events[i];
    auto r = Check(e, ts, last_position, last_at);
    if (!r) {
      if (failed_index) {
        *failed_index = i;
        return MakeError(r.error().code, r.error().message);
      }
      return MakeError(r.error().code, events.size() == 1
                                           ? r.error().message
                                           : "event " + std::to_string(i + 1) +
                                                 " of the batch: " + r.error().message);
    }
    resolved->push_back(std::move(*r));
    last_position = e.position;
    last_at = e.at;
  }
  return OkStatus();
}

// The scope id of each event (a scope seen for the first time is added to the tables).
Status InternScopes(std::span<const Resolved> resolved, internal::SharedTables& tables,
                    std::vector<uint32_t>* scope_ids) {
  scope_ids->clear();
  scope_ids->reserve(resolved.size());
  for (const Resolved& r : resolved) {
    std::string key = ScopeKey(r);
    auto it = tables.scope_index.find(key);
    if (it == tables.scope_index.end()) {
      auto scope = std::make_unique<Scope>();
      scope->categories.assign(r.categories.begin(), r.categories.end());
      scope->purposes.assign(r.purposes.begin(), r.purposes.end());
      uint32_t id = static_cast<uint32_t>(tables.scopes.size());
      if (!tables.scopes.push_back(scope.get())) {
        return FailedPreconditionError("too many distinct consent scopes for one engine");
      }
      tables.scope_storage.push_back(std::move(scope));
      it = tables.scope_index.emplace(std::move(key), id).first;
    }
    scope_ids->push_back(it->second);
  }
  return OkStatus();
}

// Each event's time on the timeline and its position (as breaks in the dense count), all or
// nothing.
Status AppendTimeline(std::span<const ConsentEvent> events, uint64_t consent_count,
                      internal::SharedTables& tables) {
  const size_t timeline_before = tables.timeline.size();
  const size_t breaks_before = tables.position_breaks.size();
  const uint64_t delta_before = tables.last_delta;
  for (size_t i = 0; i < events.size(); ++i) {
    const uint64_t index = consent_count + i;
    bool ok = tables.timeline.push_back(events[i].at);
    if (ok && events[i].position != index + 1 + tables.last_delta) {
      tables.last_delta = events[i].position - index - 1;
      ok = tables.position_breaks.push_back({index, tables.last_delta});
    }
    if (!ok) {
      tables.timeline.truncate(timeline_before);
      tables.position_breaks.truncate(breaks_before);
      tables.last_delta = delta_before;
      return FailedPreconditionError("too many consent events for one engine");
    }
  }
  return OkStatus();
}

}  // namespace

Status Engine::ApplyBatch(std::span<const ConsentEvent> events, size_t* failed_index) {
  std::lock_guard lock(write_mu_);
  std::shared_ptr<const Snapshot> cur = current_.load();
  // Where the ledger stands: the published snapshot, or the bulk load's unpublished state.
  Pending base = bulk_builder_ ? pending_ : Pending::Of(*cur);
  // Scratch space reused from batch to batch (ApplyBatch runs under write_mu_).
  thread_local std::vector<Resolved> resolved;
  thread_local std::vector<uint32_t> scope_ids;
  ASSENT_RETURN_IF_ERROR(
      ResolveBatch(events, cur->terms(), base.position, base.last_at, failed_index, &resolved));
  internal::SharedTables& tables = *cur->tables_;
  ASSENT_RETURN_IF_ERROR(InternScopes(resolved, tables, &scope_ids));
  ASSENT_RETURN_IF_ERROR(AppendTimeline(events, base.consent_count, tables));
  std::unique_ptr<ConsentStateBuilder> own;
  ConsentStateBuilder* builder = bulk_builder_.get();
  if (bulk_ && !builder) {
    bulk_builder_ = std::make_unique<ConsentStateBuilder>(*cur->state_);
    builder = bulk_builder_.get();
  } else if (!bulk_) {
    own = std::make_unique<ConsentStateBuilder>(*cur->state_);
    builder = own.get();
  }
  uint64_t new_parties = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    const ConsentEvent& e = events[i];
    StoredEvent se{e.position, e.at, scope_ids[i],
                   static_cast<uint16_t>(resolved[i].version | resolved[i].locale << 12), e.action,
                   e.method};
    new_parties += builder->Append(e.party_kind, e.party, se);
  }
  Pending next_state = base;
  if (!events.empty()) {
    next_state.position = events.back().position;
    next_state.last_at = events.back().at;
  }
  next_state.consent_count += events.size();
  next_state.parties += new_parties;
  if (bulk_) {  // folded into the private builder; published at the end of the bulk load
    pending_ = next_state;
    return OkStatus();
  }
  std::shared_ptr<Snapshot> next = DeriveSnapshot(*cur);
  next->state_ = builder->Finish();
  next_state.ApplyTo(*next, tables);
  Publish(std::move(next));
  return OkStatus();
}

void Engine::BeginBulkLoad() {
  std::lock_guard lock(write_mu_);
  bulk_ = true;
}

void Engine::EndBulkLoad() {
  std::lock_guard lock(write_mu_);
  FlushBulkLocked();
  bulk_ = false;
}

void Engine::FlushBulkLocked() {
  if (!bulk_builder_) return;
  std::shared_ptr<const Snapshot> cur = current_.load();
  std::shared_ptr<Snapshot> next = DeriveSnapshot(*cur);
  next->state_ = bulk_builder_->Finish();
  pending_.ApplyTo(*next, *cur->tables_);
  bulk_builder_.reset();
  Publish(std::move(next));
}

std::shared_ptr<Snapshot> Engine::DeriveSnapshot(const Snapshot& cur) {
  std::shared_ptr<Snapshot> next(new Snapshot());
  next->terms_ = cur.terms_;
  next->tables_ = cur.tables_;
  next->state_ = std::make_unique<ConsentState>(*cur.state_);
  next->position_ = cur.position_;
  next->consent_count_ = cur.consent_count_;
  next->position_breaks_ = cur.position_breaks_;
  next->parties_ = cur.parties_;
  next->last_at_ = cur.last_at_;
  next->terms_positions_ = cur.terms_positions_;
  next->suppression_ = cur.suppression_;
  return next;
}

Status Engine::PublishTerms(std::shared_ptr<const Terms> terms, uint64_t position) {
  std::lock_guard lock(write_mu_);
  FlushBulkLocked();
  std::shared_ptr<const Snapshot> cur = current_.load();
  if (position != 0 && position <= cur->position_) {
    return InvalidArgumentError("position " + std::to_string(position) +
                                " does not follow the last applied position " +
                                std::to_string(cur->position_));
  }
  ASSENT_ASSIGN_OR_RETURN(auto set, cur->terms_->With(std::move(terms)));
  std::shared_ptr<Snapshot> next = DeriveSnapshot(*cur);
  next->terms_ = std::move(set);
  next->terms_positions_.resize(next->terms_->size() - 1, 0);
  next->terms_positions_.push_back(position);
  if (position) next->position_ = position;
  Publish(std::move(next));
  return OkStatus();
}

Status Engine::AdvancePosition(uint64_t position) {
  std::lock_guard lock(write_mu_);
  FlushBulkLocked();
  std::shared_ptr<const Snapshot> cur = current_.load();
  if (position <= cur->position_) {
    return InvalidArgumentError("position " + std::to_string(position) +
                                " does not follow the last applied position " +
                                std::to_string(cur->position_));
  }
  std::shared_ptr<Snapshot> next = DeriveSnapshot(*cur);
  next->position_ = position;
  Publish(std::move(next));
  return OkStatus();
}

uint64_t ErasedPartyHash(const std::array<uint8_t, 16>& key, PartyKind kind, std::string_view id) {
  std::string text(PartyKindName(kind));
  text += ':';
  text.append(id);
  return SipHash24(key, text);
}

bool Snapshot::Suppressed(PartyKind kind, std::string_view id) const {
  if (!suppression_ || suppression_->hashes.empty()) return false;
  return std::binary_search(suppression_->hashes.begin(), suppression_->hashes.end(),
                            ErasedPartyHash(suppression_->key, kind, id));
}

void Engine::SetSuppressionKey(const std::array<uint8_t, 16>& key) {
  std::lock_guard lock(write_mu_);
  FlushBulkLocked();
  std::shared_ptr<const Snapshot> cur = current_.load();
  auto s = std::make_shared<Suppression>(cur->suppression_ ? *cur->suppression_ : Suppression{});
  s->key = key;
  s->has_key = true;
  std::shared_ptr<Snapshot> next = DeriveSnapshot(*cur);
  next->suppression_ = std::move(s);
  Publish(std::move(next));
}

std::vector<uint64_t> Engine::suppressed() const {
  auto cur = current_.load();
  return cur->suppression_ ? cur->suppression_->hashes : std::vector<uint64_t>{};
}

std::optional<std::array<uint8_t, 16>> Engine::suppression_key() const {
  auto cur = current_.load();
  if (!cur->suppression_ || !cur->suppression_->has_key) return std::nullopt;
  return cur->suppression_->key;
}

Status Engine::Suppress(uint64_t erased_party_hash) {
  std::lock_guard lock(write_mu_);
  FlushBulkLocked();
  std::shared_ptr<const Snapshot> cur = current_.load();
  if (!cur->suppression_ || !cur->suppression_->has_key) {
    return FailedPreconditionError("an erasure was recorded but the suppression key is missing");
  }
  auto s = std::make_shared<Suppression>(*cur->suppression_);
  auto at = std::lower_bound(s->hashes.begin(), s->hashes.end(), erased_party_hash);
  if (at == s->hashes.end() || *at != erased_party_hash) s->hashes.insert(at, erased_party_hash);
  std::shared_ptr<Snapshot> next = DeriveSnapshot(*cur);
  next->suppression_ = std::move(s);
  Publish(std::move(next));
  return OkStatus();
}

Status Engine::ForgetParty(PartyKind kind, std::string_view id) {
  std::lock_guard lock(write_mu_);
  FlushBulkLocked();
  std::shared_ptr<const Snapshot> cur = current_.load();
  ConsentStateBuilder builder(*cur->state_);
  if (builder.Remove(kind, id) < 0) return OkStatus();
  std::shared_ptr<Snapshot> next = DeriveSnapshot(*cur);
  next->state_ = builder.Finish();
  --next->parties_;
  Publish(std::move(next));
  return OkStatus();
}

size_t Engine::MemoryUsage() const { return snapshot()->state_->MemoryUsage(); }

std::vector<ConsentEvent> Snapshot::EventsOf(PartyKind kind, std::string_view id) const {
  std::vector<ConsentEvent> out;
  const internal::PartyRecord* rec = state_->Find(kind, id);
  if (!rec) return out;
  for (const StoredEvent& se : rec->events()) {
    ConsentEvent e;
    e.position = se.position;
    e.party_kind = kind;
    e.party = std::string(id);
    e.action = se.action;
    e.at = se.at;
    e.method = se.method;
    e.terms_version = terms_->version(internal::VersionOf(se)).version();
    const Scope& scope = *tables_->scopes[se.scope];
    for (int32_t c : scope.categories) e.categories.push_back(terms_->category_vocabulary().name(c));
    for (int32_t p : scope.purposes) e.purposes.push_back(terms_->purpose_vocabulary().name(p));
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace assent

namespace assent {

void Snapshot::ForEachParty(const std::function<void(PartyKind, std::string_view)>& f) const {
  state_->ForEach([&](const internal::PartyRecord& r) {
    if (!Suppressed(r.kind(), r.id())) f(r.kind(), r.id());
  });
}

}  // namespace assent
