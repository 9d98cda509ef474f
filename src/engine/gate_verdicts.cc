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
  const internal::PartyPresence& presence = Presence(snap);
  g->presence_words_ = presence.words.data();
  g->presence_mask_ = presence.mask;
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
  // Manifests name a few categories over and over: each name is remembered in a small table,
  // at a place given by its length and its first and last 8 bytes (no loop over names), and
  // checked by comparing it whole (category names are mostly 16 to 32 bytes: two fixed 16-byte
  // compares, no call).
  const size_t n = name.size();
  const char* b = name.data();
  uint64_t head = n, tail = 0;
  if (n >= 8) {
    std::memcpy(&head, b, 8);
    std::memcpy(&tail, b + n - 8, 8);
  } else if (n > 0) {
    tail = static_cast<uint8_t>(b[0]) | (uint64_t{static_cast<uint8_t>(b[n - 1])} << 8);
  }
  RecentCategory& r =
      recent_[((head ^ (tail * 0x9e3779b97f4a7c15ULL) ^ n) * 0xff51afd7ed558ccdULL) >> 60];
  const char* a = r.name.data();
  const bool same = r.category != -2 && r.name.size() == n &&
                    (n < 16 ? std::memcmp(a, b, n) == 0
                            : std::memcmp(a, b, 16) == 0 && std::memcmp(a + n - 16, b + n - 16, 16) == 0 &&
                                  (n <= 32 || std::memcmp(a + 16, b + 16, n - 32) == 0));
  if (same) return r.category;
  const TermsSet& ts = snap_.terms();
  const int32_t gc = ts.category_vocabulary().Find(name);
  const int32_t c = gc < 0 ? -1 : ts.LocalCategory(v_, gc);
  r.name.assign(name);
  r.category = c;
  return c;
}

GateVerdicts::PartyVerdict GateVerdicts::JudgeRecordedParty(uint64_t hash, PartyKind kind,
                                                            std::string_view id, int32_t category) {
  const CategoryRule& cr = rules_[category];
  uint64_t key = (hash ^ (static_cast<uint64_t>(category) * 0x9e3779b97f4a7c15ULL)) | 1;
  Slot& s = slots_[(key >> 17) & slot_mask_];
  const bool rememberable = id.size() <= Slot::kIdBytes && category <= 0xffff;
  if (s.hash == key && s.category == category && s.kind == static_cast<uint8_t>(kind) &&
      s.len == id.size() && std::memcmp(s.id, id.data(), id.size()) == 0) {
    return PartyVerdict(s.fails, s.erased, s.failure);
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
  return PartyVerdict(j.fails, erased, j.failure);
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
  const uint64_t* presence_words = presence_words_;
  const uint64_t presence_mask = presence_mask_;
  auto party = [&](PartyKind kind, std::string_view id, bool needed) {
    if (!needed) {
      erased = erased || (suppressing && snap_.Suppressed(kind, id));
      return;
    }
    // Most parties have no record (and, nobody erased, the presence filter says so): under
    // consent nothing said fails, under objectable it passes — Snapshot::JudgeParty's answer
    // for a party without events. Answered here, in the loop; the rest out of line.
    const uint64_t hash = internal::PartyHash(kind, id);
    if (!suppressing && !internal::PartyPresence::MayHave(presence_words, presence_mask, hash)) {
      if (consent && out.allow) out = {false, Reason::kNoConsent};
      return;
    }
    const PartyVerdict pv = JudgeRecordedParty(hash, kind, id, category);
    erased = erased || pv.erased();
    if (pv.fails() && out.allow) out = {false, pv.failure()};
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
