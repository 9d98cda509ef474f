// Snapshot files. Grammar (all integers unsigned LEB128 varints unless said):
//   file    = magic header body
//   magic   = "ASSENT-SNAPSHOT 3\n"   (2 is read too: it never sets flags bit5)
//   header  = one JSON line: {"position":N,"events":N,"ledger":HEX,"sha256":HEX}\n
//             ledger: the hash of the ledger's first entry (which ledger it came from);
//             sha256: of HEAD + body, where HEAD = {"position":N,"events":N,"ledger":HEX}\n
//             (the header without sha256), so every byte of the file is covered
//   body    = terms strings events
//   terms   = count, then per version: len, YAML bytes                (publication order)
//   strings = count, then per string: len, bytes                      (ids and names, interned)
//   events  = count, then per event:
//             position-delta, at (zigzag delta from the previous event's time in µs),
//             flags (bit0 account, bit1 withdraw, bits2-4 method, bit5 notice), party string
//             index, terms_version string index, ncat, cat string indexes, npur, purpose
//             indexes, rule string index + 1 (0: none), and with bit5: the notice's locale
//             and sha256 string indexes (the language a grant was given in decides when it
//             goes stale)
//   then    = 0x00, or 0x01 key[16] count hash... (the suppression list: erased parties)
// Any changed byte — header or body — is detected on load. Format 1 (whose hash did not cover
// its header) is refused.
#include "filter/snapshot.h"

#include <simdjson.h>

#include <unistd.h>

#include <array>
#include <cstring>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include "common/json_keys.h"
#include "common/sha256.h"

namespace assent {
namespace {

constexpr std::string_view kMagic = "ASSENT-SNAPSHOT 3\n";
constexpr std::string_view kMagicV2 = "ASSENT-SNAPSHOT 2\n";
constexpr std::string_view kMagicV1 = "ASSENT-SNAPSHOT 1\n";

// The header as the hash covers it (without "sha256").
std::string CoveredHead(uint64_t position, uint64_t events, std::string_view ledger) {
  return "{\"position\":" + std::to_string(position) + ",\"events\":" + std::to_string(events) +
         ",\"ledger\":\"" + std::string(ledger) + "\"}\n";
}

void PutVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

bool GetVarint(std::string_view& in, uint64_t* v) {
  *v = 0;
  for (int shift = 0; shift < 64 && !in.empty(); shift += 7) {
    auto b = static_cast<uint8_t>(in.front());
    in.remove_prefix(1);
    *v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}

bool GetBytes(std::string_view& in, std::string* out) {
  uint64_t n;
  if (!GetVarint(in, &n) || n > in.size()) return false;
  out->assign(in.substr(0, n));
  in.remove_prefix(n);
  return true;
}

}  // namespace

namespace {

// The snapshot file's bytes for the state at `position`, with what its header says.
Result<std::string> SnapshotFile(const Ledger& ledger, uint64_t position, SnapshotInfo* out) {
  auto snap = ledger.engine().snapshot();
  if (position == 0) position = snap->position();
  if (position > snap->position()) {
    return InvalidArgumentError("the ledger is at position " + std::to_string(snap->position()) +
                                ", not " + std::to_string(position));
  }
  std::string body;
  const TermsSet& ts = snap->terms();
  PutVarint(body, ts.size());
  for (int32_t v = 0; v < ts.size(); ++v) {
    const std::string& yaml = ts.version(v).source();
    PutVarint(body, yaml.size());
    body += yaml;
  }
  std::unordered_map<std::string, uint64_t> index;
  std::vector<std::string> strings;
  auto intern = [&](const std::string& s) {
    auto [it, fresh] = index.emplace(s, strings.size());
    if (fresh) strings.push_back(s);
    return it->second;
  };
  std::string events;
  uint64_t count = 0, last_position = 0;
  Timestamp last_at = 0;
  ASSENT_RETURN_IF_ERROR(ledger.ScanConsents(position, [&](const ConsentEvent& e) -> Status {
    PutVarint(events, e.position - last_position);
    int64_t d = e.at - last_at;
    PutVarint(events, static_cast<uint64_t>((d << 1) ^ (d >> 63)));
    const bool notice = !e.notice_locale.empty();
    PutVarint(events, (e.party_kind == PartyKind::kAccount ? 1u : 0u) |
                          (e.action == Action::kWithdraw ? 2u : 0u) |
                          static_cast<unsigned>(e.method) << 2 | (notice ? 32u : 0u));
    PutVarint(events, intern(e.party));
    PutVarint(events, intern(e.terms_version));
    PutVarint(events, e.categories.size());
    for (const auto& c : e.categories) PutVarint(events, intern(c));
    PutVarint(events, e.purposes.size());
    for (const auto& p : e.purposes) PutVarint(events, intern(p));
    PutVarint(events, e.rule.empty() ? 0 : intern(e.rule) + 1);
    if (notice) {
      PutVarint(events, intern(e.notice_locale));
      PutVarint(events, intern(e.notice_sha256));
    }
    last_position = e.position;
    last_at = e.at;
    ++count;
    return OkStatus();
  }));
  PutVarint(body, strings.size());
  for (const auto& s : strings) {
    PutVarint(body, s.size());
    body += s;
  }
  PutVarint(body, count);
  body += events;
  // The suppression list: erased parties stay unusable for stateless workers too.
  if (auto key = ledger.engine().suppression_key()) {
    body.push_back('\x01');
    body.append(reinterpret_cast<const char*>(key->data()), key->size());
    const std::vector<uint64_t> erased = ledger.engine().suppressed();
    PutVarint(body, erased.size());
    for (uint64_t h : erased) PutVarint(body, h);
  } else {
    body.push_back('\x00');
  }
  auto first = ledger.EntryHash(1);
  if (!first) return std::unexpected(first.error());
  const std::string head = CoveredHead(position, count, *first);
  *out = SnapshotInfo{position, count, ToHex(Sha256(head + body)), *first};
  return std::string(kMagic) + head.substr(0, head.size() - 2) + ",\"sha256\":\"" + out->sha256 +
         "\"}\n" + body;
}

}  // namespace

Result<SnapshotInfo> WriteSnapshot(const Ledger& ledger, uint64_t position,
                                   const std::string& path) {
  SnapshotInfo info;
  ASSENT_ASSIGN_OR_RETURN(const std::string file, SnapshotFile(ledger, position, &info));
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << file;
    out.close();
    if (!out) {
      std::remove(tmp.c_str());
      return MakeError(ErrorCode::kUnavailable, "cannot write '" + tmp + "'");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return MakeError(ErrorCode::kUnavailable, "cannot rename '" + tmp + "' to '" + path + "'");
  }
  return info;
}

Result<std::unique_ptr<Engine>> EngineAt(const Ledger& ledger, uint64_t position, Clock clock) {
  SnapshotInfo info;
  ASSENT_ASSIGN_OR_RETURN(const std::string file, SnapshotFile(ledger, position, &info));
  return LoadSnapshotBytes(file, "the ledger at position " + std::to_string(position), &info,
                           std::move(clock));
}

Result<std::unique_ptr<Engine>> LoadSnapshot(const std::string& path, SnapshotInfo* info,
                                             Clock clock) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError("cannot read snapshot '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return LoadSnapshotBytes(ss.str(), path, info, std::move(clock));
}

Result<std::unique_ptr<Engine>> LoadSnapshotBytes(std::string_view file, const std::string& path,
                                                  SnapshotInfo* info, Clock clock) {
  auto bad = [&](const std::string& why) {
    return DataLossError("snapshot '" + path + "' " + why);
  };
  if (file.starts_with(kMagicV1)) {
    return bad("is in format 1, whose hash does not cover its header: make a new one with "
               "`assent snapshot`");
  }
  const bool v2 = file.starts_with(kMagicV2);
  if (!v2 && !file.starts_with(kMagic)) return bad("is not an Assent snapshot");
  const size_t nl = file.find('\n', kMagic.size());
  if (nl == std::string_view::npos) return bad("has no header");
  const std::string_view header = file.substr(kMagic.size(), nl - kMagic.size());
  std::string_view body = file.substr(nl + 1);
  simdjson::dom::parser parser;
  simdjson::dom::object h;
  std::string_view ledger_hash, sha;
  if (parser.parse(header.data(), header.size()).get_object().get(h) || DuplicateKey(h) ||
      h.size() != 4 || h["position"].get_uint64().get(info->position) ||
      h["events"].get_uint64().get(info->events) || h["ledger"].get_string().get(ledger_hash) ||
      h["sha256"].get_string().get(sha)) {
    return bad("has a damaged header");
  }
  info->ledger = std::string(ledger_hash);
  info->sha256 = std::string(sha);
  const std::string head = CoveredHead(info->position, info->events, info->ledger);
  Sha256Digest digest;
  {
    std::string covered = head;
    covered.append(body);
    digest = Sha256(covered);
  }
  if (info->sha256 != ToHex(digest)) return bad("does not match its sha256: it was changed");
  uint64_t n;
  if (!GetVarint(body, &n)) return bad("is truncated");
  std::vector<std::shared_ptr<const Terms>> versions;
  for (uint64_t i = 0; i < n; ++i) {
    std::string yaml;
    if (!GetBytes(body, &yaml)) return bad("is truncated");
    auto t = CompileTerms(yaml, path);
    if (!t) return bad("holds terms that do not compile: " + t.error().message);
    versions.push_back(*t);
  }
  ASSENT_ASSIGN_OR_RETURN(auto set, TermsSet::Create(versions));
  std::vector<std::string> strings;
  if (!GetVarint(body, &n)) return bad("is truncated");
  for (uint64_t i = 0; i < n; ++i) {
    std::string s;
    if (!GetBytes(body, &s)) return bad("is truncated");
    strings.push_back(std::move(s));
  }
  auto str = [&](uint64_t i, std::string* out) {
    if (i >= strings.size()) return false;
    *out = strings[i];
    return true;
  };
  uint64_t count;
  if (!GetVarint(body, &count)) return bad("is truncated");
  if (count != info->events) return bad("holds another number of events than its header says");
  auto engine = std::make_unique<Engine>(set, clock);
  engine->BeginBulkLoad();
  std::vector<ConsentEvent> batch;
  uint64_t position = 0;
  Timestamp at = 0;
  for (uint64_t i = 0; i < count; ++i) {
    ConsentEvent e;
    uint64_t dp, zat, flags, party, version, nc, np, rule;
    if (!GetVarint(body, &dp) || !GetVarint(body, &zat) || !GetVarint(body, &flags) ||
        !GetVarint(body, &party) || !GetVarint(body, &version) || !GetVarint(body, &nc)) {
      return bad("is truncated");
    }
    // Deltas are added as unsigned (wrapping, never undefined) and the results checked.
    const uint64_t next_position = position + dp;
    if (dp == 0 || next_position < position) return bad("is damaged (positions)");
    position = next_position;
    const int64_t delta = static_cast<int64_t>(zat >> 1) ^ -static_cast<int64_t>(zat & 1);
    at = static_cast<Timestamp>(static_cast<uint64_t>(at) + static_cast<uint64_t>(delta));
    if (!TimeInRange(at)) return bad("is damaged (times)");
    e.position = position;
    e.at = at;
    e.party_kind = flags & 1 ? PartyKind::kAccount : PartyKind::kSubject;
    e.action = flags & 2 ? Action::kWithdraw : Action::kGrant;
    const uint64_t method = (flags >> 2) & 7;
    const bool notice = flags & 32;
    if (flags >> 6 || (v2 && notice) || method > static_cast<uint64_t>(Method::kImport)) {
      return bad("is damaged (flags)");
    }
    e.method = static_cast<Method>(method);
    if (!str(party, &e.party) || !str(version, &e.terms_version) || nc > 1000) {
      return bad("is damaged");
    }
    for (uint64_t k = 0; k < nc; ++k) {
      uint64_t c;
      e.categories.emplace_back();
      if (!GetVarint(body, &c) || !str(c, &e.categories.back())) return bad("is damaged");
    }
    if (!GetVarint(body, &np) || np > 1000) return bad("is damaged");
    for (uint64_t k = 0; k < np; ++k) {
      uint64_t p;
      e.purposes.emplace_back();
      if (!GetVarint(body, &p) || !str(p, &e.purposes.back())) return bad("is damaged");
    }
    if (!GetVarint(body, &rule) || (rule && !str(rule - 1, &e.rule))) return bad("is damaged");
    if (notice) {
      uint64_t locale, sha;
      if (!GetVarint(body, &locale) || !GetVarint(body, &sha) || !str(locale, &e.notice_locale) ||
          !str(sha, &e.notice_sha256)) {
        return bad("is damaged (notice)");
      }
    }
    batch.push_back(std::move(e));
    if (batch.size() == 65536) {
      if (auto st = engine->ApplyBatch(batch); !st) return bad("holds a bad event: " + st.error().message);
      batch.clear();
    }
  }
  if (auto st = engine->ApplyBatch(batch); !st) return bad("holds a bad event: " + st.error().message);
  engine->EndBulkLoad();
  if (engine->snapshot()->position() < info->position) {
    ASSENT_RETURN_IF_ERROR(engine->AdvancePosition(info->position));
  }
  if (body.empty()) return bad("is truncated (no suppression list)");
  const char has_suppression = body.front();
  body.remove_prefix(1);
  if (has_suppression == '\x01') {
    if (body.size() < 16) return bad("is truncated");
    std::array<uint8_t, 16> key;
    std::memcpy(key.data(), body.data(), 16);
    body.remove_prefix(16);
    engine->SetSuppressionKey(key);
    uint64_t erased;
    if (!GetVarint(body, &erased) || erased > body.size()) return bad("is damaged (suppression)");
    for (uint64_t i = 0; i < erased; ++i) {
      uint64_t h;
      if (!GetVarint(body, &h)) return bad("is truncated");
      ASSENT_RETURN_IF_ERROR(engine->Suppress(h));
    }
  } else if (has_suppression != '\x00') {
    return bad("is damaged (suppression flag)");
  }
  if (!body.empty()) return bad("has trailing bytes");
  return engine;
}

Status CheckSnapshotFor(const Ledger& ledger, const SnapshotInfo& info, uint64_t* behind) {
  auto first = ledger.EntryHash(1);
  if (!first || *first != info.ledger) {
    return FailedPreconditionError(
        "the snapshot was made from another ledger (first entry " + info.ledger.substr(0, 16) +
        "…, this ledger's " + (first ? first->substr(0, 16) + "…" : std::string("none")) +
        "): a dataset is recorded only in the ledger its decisions came from");
  }
  const uint64_t head = ledger.position();
  if (info.position > head) {
    return FailedPreconditionError("the snapshot claims ledger position " +
                                   std::to_string(info.position) + ", beyond this ledger's head (" +
                                   std::to_string(head) + ")");
  }
  *behind = head - info.position;
  return OkStatus();
}

}  // namespace assent
