// Impact of a withdrawal on recorded datasets, shards and models.
#include "filter/impact.h"

#include <fmt/core.h>

#include "common/json_writer.h"
#include "ledger/lineage.h"

namespace assent {
namespace {

struct Row {
  std::string name, purpose;
  Timestamp recorded_at = 0;
  uint64_t ledger_position = 0, withdrawal = 0;
  std::string status;
  std::vector<std::string> shards, models;
};

bool Overlaps(const std::string& a, const std::string& b) {
  auto covers = [](const std::string& p, const std::string& n) {
    return n == p || n.rfind(p + ".", 0) == 0;
  };
  return covers(a, b) || covers(b, a);
}

std::vector<Row> Rows(const Ledger& ledger, PartyKind kind, const std::string& id,
                      const std::optional<std::string>& purpose) {
  std::vector<Row> rows;
  auto events = ledger.engine().snapshot()->EventsOf(kind, id);
  // Datasets name parties by pseudonym; an erased party has none and so appears in none.
  const auto pseudonym = ledger.PseudonymOf(kind, id);
  if (!pseudonym) return rows;
  ledger.WithLineage([&](const Lineage& l) {
    auto dense = kind == PartyKind::kSubject ? l.subjects.Find(*pseudonym)
                                             : l.accounts.Find(*pseudonym);
    if (!dense) return;
    for (const auto& d : l.datasets) {
      if (purpose && !Overlaps(*purpose, d.purpose)) continue;
      const Roaring& set = kind == PartyKind::kSubject ? d.subjects : d.accounts;
      if (!set.contains(*dense)) continue;
      Row r;
      r.name = d.name;
      r.purpose = d.purpose;
      r.ledger_position = d.ledger_position;
      r.recorded_at = d.recorded_at;
      for (const auto& e : events) {
        if (e.action != Action::kWithdraw) continue;
        for (const auto& p : e.purposes) {
          if (Overlaps(p, d.purpose)) r.withdrawal = std::max(r.withdrawal, e.position);
        }
      }
      r.status = r.withdrawal == 0                      ? "no-withdrawal"
                 : d.ledger_position < r.withdrawal ? "built-before-withdrawal"
                                                    : "built-after-withdrawal";
      if (kind == PartyKind::kSubject) {
        for (const auto& s : d.shards) {
          if (s.subjects.contains(*dense)) r.shards.push_back(s.file);
        }
      }
      for (const auto& m : l.models) {
        if (std::find(m.datasets.begin(), m.datasets.end(), d.name) != m.datasets.end()) {
          r.models.push_back(m.name);
        }
      }
      rows.push_back(std::move(r));
    }
  });
  return rows;
}

}  // namespace

std::string ImpactJson(const Ledger& ledger, PartyKind kind, const std::string& id,
                       const std::optional<std::string>& purpose) {
  JsonWriter w;
  w.BeginObject().Key(PartyKindName(kind)).String(id).Key("datasets").BeginArray();
  for (const auto& r : Rows(ledger, kind, id, purpose)) {
    w.BeginObject().Key("name").String(r.name).Key("purpose").String(r.purpose);
    w.Key("recorded_at").String(FormatTime(r.recorded_at));
    w.Key("ledger_position").UInt(r.ledger_position).Key("withdrawal");
    if (r.withdrawal) {
      w.UInt(r.withdrawal);
    } else {
      w.Null();
    }
    w.Key("status").String(r.status).Key("shards").BeginArray();
    for (const auto& s : r.shards) w.String(s);
    w.EndArray().Key("models").BeginArray();
    for (const auto& m : r.models) w.String(m);
    w.EndArray().EndObject();
  }
  w.EndArray().EndObject();
  return w.Take();
}

std::string ImpactText(const Ledger& ledger, PartyKind kind, const std::string& id,
                       const std::optional<std::string>& purpose) {
  auto rows = Rows(ledger, kind, id, purpose);
  std::string out = fmt::format("{} {}: in {} recorded dataset(s)\n", PartyKindName(kind), id,
                                rows.size());
  for (const auto& r : rows) {
    out += fmt::format("  {} ({}, built at ledger position {}): {}{}\n", r.name, r.purpose,
                       r.ledger_position, r.status,
                       r.withdrawal ? fmt::format(" (withdrawal at {})", r.withdrawal) : "");
    for (const auto& s : r.shards) out += "    shard " + s + "\n";
    for (const auto& m : r.models) {
      out += "    model " + m +
             (r.status == "built-before-withdrawal" ? " — retrain without this data\n" : "\n");
    }
  }
  return out;
}

}  // namespace assent
