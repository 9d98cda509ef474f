// Properties of the decision engine over generated event histories (rapidcheck).
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include "assent/engine.h"
#include "engine/test_terms.h"

namespace assent {
namespace {

const std::vector<std::string> kCategories = {"content",       "content.audio",
                                              "content.video", "content.chat",
                                              "service_generated",
                                              "service_generated.telemetry"};
const std::vector<std::string> kPurposes = {"service", "service.delivery", "ai_training",
                                            "ai_training.first_party",
                                            "ai_training.third_party"};
const std::vector<std::string> kSubjects = {"u1", "u2", "u3", "u4"};
const Timestamp kStart = *ParseTime("2023-09-01T00:00:00Z");

struct GenEvent {
  int subject, category, purpose;
  bool grant;
  int gap;  // seconds after the previous event
};

std::vector<ConsentEvent> Build(const std::vector<GenEvent>& gen, uint64_t first_position = 1) {
  std::vector<ConsentEvent> out;
  Timestamp at = kStart;
  uint64_t pos = first_position;
  for (const auto& g : gen) {
    at += static_cast<Timestamp>(g.gap) * kMicrosPerSecond;
    ConsentEvent e;
    e.position = pos++;
    e.party = kSubjects[g.subject];
    e.action = g.grant ? Action::kGrant : Action::kWithdraw;
    e.categories = {kCategories[g.category]};
    e.purposes = {kPurposes[g.purpose]};
    e.at = at;
    out.push_back(e);
  }
  return out;
}

rc::Gen<std::vector<GenEvent>> Events() {
  return rc::gen::container<std::vector<GenEvent>>(rc::gen::build<GenEvent>(
      rc::gen::set(&GenEvent::subject, rc::gen::inRange(0, 4)),
      rc::gen::set(&GenEvent::category, rc::gen::inRange(0, 6)),
      rc::gen::set(&GenEvent::purpose, rc::gen::inRange(0, 5)),
      rc::gen::set(&GenEvent::grant, rc::gen::arbitrary<bool>()),
      rc::gen::set(&GenEvent::gap, rc::gen::inRange(0, 3))));
}

Decision Ask(Engine& e, const std::string& category, const std::string& purpose,
             std::span<const std::string_view> subjects) {
  DecisionRequest q;
  q.category = category;
  q.purpose = purpose;
  q.subjects = subjects;
  auto d = e.snapshot()->Decide(q, kStart + 1'000'000'000'000);
  RC_ASSERT(d.has_value());
  return *d;
}

RC_GTEST_PROP(EnginePropertyTest, ProhibitedIsNeverAllowed, ()) {
  Engine engine(testing_terms::BaseTerms());
  RC_ASSERT(engine.ApplyBatch(Build(*Events())).has_value());
  std::vector<std::string_view> subjects(kSubjects.begin(), kSubjects.end());
  for (const auto& c : kCategories) {
    Decision d = Ask(engine, c, "ai_training.third_party", subjects);
    RC_ASSERT(!d.allow);
    RC_ASSERT(d.reason == Reason::kProhibited);
  }
}

RC_GTEST_PROP(EnginePropertyTest, OlderGrantNeverOverridesNewerWithdraw, ()) {
  // Any history, then a withdrawal of everything by u1: no later-asked decision that needs u1
  // can allow under consent, whatever older grants said.
  auto gen = *Events();
  auto events = Build(gen);
  ConsentEvent w;
  w.position = events.size() + 1;
  w.party = "u1";
  w.action = Action::kWithdraw;
  w.categories = {"content", "service_generated"};
  w.purposes = {"service", "ai_training"};
  w.at = (events.empty() ? kStart : events.back().at) + 1;
  events.push_back(w);
  Engine engine(testing_terms::BaseTerms());
  RC_ASSERT(engine.ApplyBatch(events).has_value());
  std::string_view subjects[] = {"u1"};
  for (const auto& c : {"content.audio", "content.video", "content.chat"}) {
    Decision d = Ask(engine, c, "ai_training.first_party", subjects);
    RC_ASSERT(!d.allow);
    RC_ASSERT(d.reason == Reason::kWithdrawn);
  }
  Decision t = Ask(engine, "service_generated.telemetry", "ai_training.first_party", subjects);
  RC_ASSERT(t.reason == Reason::kObjected);
}

RC_GTEST_PROP(EnginePropertyTest, EventsAboutOthersNeverChangeADecision, ()) {
  auto mine = *Events();
  auto others = *Events();
  for (auto& g : mine) g.subject = 0;
  for (auto& g : others) g.subject = 1 + g.subject % 3;
  // Interleave: u1's events, with other subjects' events spliced in between.
  std::vector<GenEvent> mixed;
  size_t j = 0;
  for (const auto& g : mine) {
    if (j < others.size()) mixed.push_back(others[j++]);
    mixed.push_back(g);
  }
  while (j < others.size()) mixed.push_back(others[j++]);
  // Same times for u1's events in both histories: put others at gap 0.
  for (auto& g : mixed) {
    if (g.subject != 0) g.gap = 0;
  }
  Engine alone(testing_terms::BaseTerms()), together(testing_terms::BaseTerms());
  RC_ASSERT(alone.ApplyBatch(Build(mine)).has_value());
  RC_ASSERT(together.ApplyBatch(Build(mixed)).has_value());
  std::string_view subjects[] = {"u1"};
  for (const auto& c : kCategories) {
    for (const auto& p : kPurposes) {
      Decision a = Ask(alone, c, p, subjects);
      Decision b = Ask(together, c, p, subjects);
      RC_ASSERT(a.allow == b.allow);
      RC_ASSERT(a.reason == b.reason);
      RC_ASSERT(a.parties.size() == b.parties.size());
      for (size_t i = 0; i < a.parties.size(); ++i) {
        RC_ASSERT(a.parties[i].state == b.parties[i].state);
      }
    }
  }
}

RC_GTEST_PROP(EnginePropertyTest, BatchAndOneByOneAgree, ()) {
  auto events = Build(*Events());
  Engine batch(testing_terms::BaseTerms()), single(testing_terms::BaseTerms());
  RC_ASSERT(batch.ApplyBatch(events).has_value());
  for (const auto& e : events) RC_ASSERT(single.Apply(e).has_value());
  std::vector<std::string_view> subjects(kSubjects.begin(), kSubjects.end());
  for (const auto& s : subjects) {
    std::string_view one[] = {s};
    for (const auto& c : kCategories) {
      Decision a = Ask(batch, c, "ai_training.first_party", one);
      Decision b = Ask(single, c, "ai_training.first_party", one);
      RC_ASSERT(a.allow == b.allow);
      RC_ASSERT(a.reason == b.reason);
    }
  }
}

}  // namespace
}  // namespace assent
