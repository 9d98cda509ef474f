// The gate's lean verdict path (gate_verdicts.h): DESIGN.md "Decision semantics" steps as
// Snapshot::DecideImpl takes them, for one purpose and time fixed per run.
#include "engine/gate_verdicts.h"

#include <cstring>
#include <mutex>

#include "engine/consent_state.h"
#include "engine/unknown_name.h"

namespace assent {

Result<std::unique_ptr<GateVerdicts>> GateVerdicts::Make(const Snapshot& snap,
                                                         std::string_view purpose, Timestamp t, size_t expected_items) {
  const TermsSet& ts = snap.terms();
  const int32_t v = ts.VersionAt(t);
  if (v < 0) return FailedPreconditionError("no terms are in effect at " + FormatTime(t));
  const Terms& terms = ts.version(v);
  const int32_t gp = ts.purpose_vocabulary().Find(purpose);
  const int32_t p = gp < 0 ? -1 : ts.LocalPurpose(v, gp);
  if (p < 0) return internal::UnknownName("purpose", purpose, terms, terms.purposes());
  std::unique_ptr<GateVerdicts> g(new GateVerdicts(snap));
  g->presence_ = &Presence(snap);
  g->t_ = t;
  g->v_ = v;
  g->p_ = p;
  g->gp_ = gp;
  g->suppressing_ = snap.suppression_ && !snap.suppression_->hashes.empty();
  g->rules_.resize(terms.categories().size());
  for (size_t c = 0; c < terms.categories().size(); ++c) {
    CategoryRule& cr = g->rules_[c];
    cr.gc = ts.category_vocabulary().Find(terms.categories()[c].name);
    const int32_t r = terms.DecidingRule(static_cast<int32_t>(c), p);
    cr.rule = r == Terms::kUnlisted ? nullptr : &terms.rules()[r];
  }
  for (auto& [name, c] : g->recent_) c = -2;  // empty
  size_t slots = 256;
  while (slots < kMaxSlots && slots < expected_items) slots <<= 1;
  HugeArray<Slot>(slots).swap(g->slots_);
  g->slot_mask_ = slots - 1;
  return g;
}

const internal::PartyPresence& GateVerdicts::Presence(const Snapshot& snap) {
  std::call_once(snap.presence_once_, [&snap] {
    auto p = std::make_unique<internal::PartyPresence>();
    uint64_t words = 64;
    while (words < (uint64_t{1} << 22) && words * 64 < snap.parties_ * 16) words <<= 1;
    p->words.assign(words, 0);
    p->mask = words - 1;
    snap.state_->ForEach([&p](const internal::PartyRecord& r) {
      const uint64_t h = internal::PartyHash(r.kind(), r.id());
      p->Word(h) |= internal::PartyPresence::Bits(h);
    });
    snap.presence_ = std::move(p);
  });
  return *snap.presence_;
}

int32_t GateVerdicts::Category(std::string_view name) {
  // Manifests mostly repeat a few categories: the last one asked first, then the others.
  // (Category names are mostly 16 to 32 bytes: two fixed 16-byte compares, no call.)
  auto same = [name](const std::string& known) {
    const size_t n = name.size();
    if (known.size() != n || n == 0) return false;
    const char* a = known.data();
    const char* b = name.data();
    if (n < 16) return std::memcmp(a, b, n) == 0;
    return std::memcmp(a, b, 16) == 0 && std::memcmp(a + n - 16, b + n - 16, 16) == 0 &&
           (n <= 32 || std::memcmp(a + 16, b + 16, n - 32) == 0);
  };
  if (recent_[last_].second != -2 && same(recent_[last_].first)) return recent_[last_].second;
  for (size_t k = 0; k < recent_.size(); ++k) {
    if (recent_[k].second != -2 && same(recent_[k].first)) {
      last_ = k;
      return recent_[k].second;
    }
  }
  const TermsSet& ts = snap_.terms();
  const int32_t gc = ts.category_vocabulary().Find(name);
  const int32_t c = gc < 0 ? -1 : ts.LocalCategory(v_, gc);
  last_ = recent_next_;
  recent_[recent_next_] = {std::string(name), c};
  recent_next_ = (recent_next_ + 1) % recent_.size();
  return c;
}

GateVerdicts::PartyVerdict GateVerdicts::JudgeParty(PartyKind kind, std::string_view id,
                                                    int32_t category) {
  const uint64_t hash = internal::PartyHash(kind, id);
  const CategoryRule& cr = rules_[category];
  if (!suppressing_ && !presence_->MayHave(hash)) {
    // No record (and nobody erased): under consent nothing said fails, under objectable it
    // passes — Snapshot::JudgeParty's answer for a party without events.
    const bool consent = cr.rule->basis == Basis::kConsent;
    return {consent, false, consent ? Reason::kNoConsent : Reason::kNotObjected};
  }
  uint64_t key = (hash ^ (static_cast<uint64_t>(category) * 0x9e3779b97f4a7c15ULL)) | 1;
  Slot& s = slots_[(key >> 17) & slot_mask_];
  const bool rememberable = id.size() <= Slot::kIdBytes && category <= 0xffff;
  if (s.hash == key && s.category == category && s.kind == static_cast<uint8_t>(kind) &&
      s.len == id.size() && std::memcmp(s.id, id.data(), id.size()) == 0) {
    return {s.fails, s.erased, s.failure};
  }
  const Snapshot::PartyJudgement j =
      snap_.JudgeParty(snap_.state_->Find(hash, kind, id), *cr.rule, v_, category, p_, cr.gc, gp_, t_);
  const bool erased = snap_.Suppressed(kind, id);
  if (rememberable) {
    s.hash = key;
    s.category = static_cast<uint16_t>(category);
    s.kind = static_cast<uint8_t>(kind);
    s.len = static_cast<uint8_t>(id.size());
    s.fails = j.fails;
    s.erased = erased;
    s.failure = j.failure;
    std::memcpy(s.id, id.data(), id.size());
  }
  return {j.fails, erased, j.failure};
}

GateVerdicts::Verdict GateVerdicts::Judge(int32_t category, const std::string_view* account,
                                          std::span<const std::string_view> subjects) {
  const Rule* rule = rules_[category].rule;
  if (!rule) return {false, Reason::kUnlisted};
  switch (rule->basis) {
    case Basis::kProhibited:
      return {false, Reason::kProhibited};
    case Basis::kNecessary:
      return {true, Reason::kNecessary};
    case Basis::kConsent:
    case Basis::kObjectable:
      break;
  }
  const bool consent = rule->basis == Basis::kConsent;
  const bool need_account = rule->consent_from != ConsentFrom::kSubjects;
  const bool need_subjects = rule->consent_from != ConsentFrom::kAccount;
  if ((need_account && !account) || (need_subjects && subjects.empty())) {
    return {false, Reason::kNoSubject};  // fail closed: nobody to check the choice of
  }
  // As Decide: the first party that fails gives the reason (the account, then the subjects in
  // order); any party named that was erased makes it "erased", needed for the rule or not.
  const bool suppressing = suppressing_;
  Verdict out{true, consent ? Reason::kConsented : Reason::kNotObjected};
  bool erased = false;
  auto party = [&](PartyKind kind, std::string_view id, bool needed) {
    if (!needed) {
      erased = erased || (suppressing && snap_.Suppressed(kind, id));
      return;
    }
    const PartyVerdict pv = JudgeParty(kind, id, category);
    erased = erased || pv.erased;
    if (pv.fails && out.allow) out = {false, pv.failure};
  };
  if (account) party(PartyKind::kAccount, *account, need_account);
  for (std::string_view s : subjects) {
    // Without erasures the first party that fails decides: the rest cannot change the verdict.
    if (!out.allow && !suppressing) return out;
    party(PartyKind::kSubject, s, need_subjects);
  }
  if (erased) return {false, Reason::kErased};
  return out;
}

}  // namespace assent
