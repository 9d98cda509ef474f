// The append lock and group commit (append.h).
#include "ledger/append.h"

#include <algorithm>

#include "common/strings.h"
#include "common/sha256.h"
#include "ledger/ledger_impl.h"
#include "ledger/parties.h"
#include "ledger/store.h"

namespace assent::internal {

Result<std::unique_ptr<AppendLock>> AppendLock::Take(LedgerImpl* ledger) {
  auto head = ledger->store_->BeginAppend();
  if (!head) {
    ledger->NoteStore(Status(std::unexpected(head.error())));
    return std::unexpected(head.error());
  }
  std::unique_ptr<AppendLock> lock(new AppendLock(ledger, *head));
  if (auto st = ledger->CatchUpLocked(*head); !st) return std::unexpected(st.error());
  return lock;
}

AppendLock::AppendLock(LedgerImpl* ledger, uint64_t head)
    : ledger_(ledger), head_(head), write_(ledger->committer_->commit_mu) {}

AppendLock::~AppendLock() {
  if (open_) ledger_->store_->AbortAppend();
}

Status AppendLock::Commit(std::span<const StoredEntry> entries,
                          std::span<const PartyChange> parties) {
  open_ = false;
  Status st = ledger_->store_->CommitAppend(entries, parties);
  ledger_->NoteStore(st);
  return st;
}

Result<std::vector<Receipt>> GroupCommitter::Submit(std::vector<ConsentEvent> events) {
  Request req;
  req.events = std::move(events);
  std::unique_lock lock(mu_);
  queue_.push_back(&req);
  while (!req.done) {
    if (!leader_active_) {
      leader_active_ = true;
      std::vector<Request*> batch;
      if (group_) {
        batch.swap(queue_);
      } else {  // one request per transaction
        batch.push_back(queue_.front());
        queue_.erase(queue_.begin());
      }
      lock.unlock();
      CommitAll(batch);
      lock.lock();
      for (Request* r : batch) r->done = true;
      leader_active_ = false;
      cv_.notify_all();
    } else {
      cv_.wait(lock);
    }
  }
  return std::move(req.result);
}


// A stated notice must be the text of a rule of the event's terms (of its own rule, when it
// names one) in a locale the terms offer: a receipt then proves what was shown.
Status CheckNotice(const ConsentEvent& e, const Terms& t) {
  if (e.notice_sha256.empty() && e.notice_locale.empty()) return OkStatus();
  const auto locales = NoticeLocales(t);
  if (std::find(locales.begin(), locales.end(), e.notice_locale) == locales.end()) {
    return InvalidArgumentError("notice: terms " + t.label() + " have no text in locale '" +
                                e.notice_locale + "' (they offer: " + Join(locales, ", ") + ")");
  }
  const int32_t shown = FindNotice(t, e.notice_locale, e.notice_sha256);
  if (shown < 0) {
    return InvalidArgumentError(
        "notice: " + e.notice_sha256 + " is not the SHA-256 of any rule's notice in terms " +
        t.label() + " (" + e.notice_locale + "): send the hash of the text displayed — each "
        "rule's is in GET /v1/subjects/{id}/consents, and `assent terms notice --rule R` prints "
        "text and hash");
  }
  if (!e.rule.empty() && t.rules()[shown].id != e.rule) {
    return InvalidArgumentError("notice: it is the text of rule '" + t.rules()[shown].id +
                                "', but the choice is made under rule '" + e.rule + "'");
  }
  return OkStatus();
}

Status GroupCommitter::Complete(ConsentEvent& e, const Snapshot& snap, Timestamp now, Timestamp last_at) {
  if (e.at == 0) {
    e.at = std::max(now, last_at);
  } else if (!TimeInRange(e.at)) {
    return InvalidArgumentError("time " + FormatTime(e.at) + " is outside the range a ledger "
                                "stores (years 0001 to 9999, UTC)");
  } else if (e.at > now + kMaxClockSkew) {
    // Times never decrease with position: one event in the future would hold every later
    // event's time there, and decisions about now would ignore them (withdrawals included).
    return InvalidArgumentError("time " + FormatTime(e.at) + " is in the future (now " +
                                FormatTime(now) + "): a choice is recorded when it is made; "
                                "leave the time out and the server stamps it");
  }
  const TermsSet& ts = snap.terms();
  int32_t v = e.terms_version.empty() ? ts.VersionAt(e.at) : ts.FindVersion(e.terms_version);
  if (v < 0) {
    return InvalidArgumentError(
        e.terms_version.empty()
            ? "no terms are in effect at " + FormatTime(e.at) + ": publish terms first"
            : "unknown terms version '" + e.terms_version + "': publish it first");
  }
  const Terms& t = ts.version(v);
  e.terms_version = t.version();
  if (!e.rule.empty()) {
    int32_t r = t.FindRule(e.rule);
    if (r < 0) {
      return InvalidArgumentError("unknown rule '" + e.rule + "' in terms " + t.label());
    }
    const Rule& rule = t.rules()[r];
    if (e.categories.empty() && e.purposes.empty()) {
      for (int32_t c : rule.categories) e.categories.push_back(t.categories()[c].name);
      for (int32_t p : rule.purposes) e.purposes.push_back(t.purposes()[p].name);
    }
  }
  return CheckNotice(e, t);
}


void GroupCommitter::CommitAll(const std::vector<Request*>& batch) {
  // The append lock, then the write lock, caught up: positions and times are assigned
  // against the whole ledger, inside the committing transaction.
  auto append = AppendLock::Take(ledger_);
  if (!append) {
    for (Request* r : batch) {
      r->result = MakeError(append.error().code, "not recorded: " + append.error().message);
    }
    return;
  }
  if (broken) {
    for (Request* r : batch) {
      r->result = InternalError("the ledger stopped accepting writes after an internal error; "
                                "restart to recover from the stored ledger");
    }
    return;
  }
  auto snap = ledger_->engine_->snapshot();
  const Timestamp now = ledger_->clock_();
  Accepted accepted = Validate(batch, *snap, now);
  if (accepted.events.empty()) {  // (the append is aborted as `append` goes)
    for (auto& [r, first] : accepted.owners) r->result = std::vector<Receipt>{};
    return;
  }
  auto written = Write(accepted, **append, *snap, now);
  if (!written) return;
  ledger_->NotifyAppended(written->entries);
  if (auto st = ledger_->engine_->ApplyBatch(accepted.events); !st) {
    broken = true;  // durable but not applied: never answer from a state missing it
    for (auto& [r, first] : accepted.owners) {
      r->result = InternalError("recorded but not applied (" + st.error().message +
                                "); restart assent to reload the ledger");
    }
    return;
  }
  AnswerReceipts(accepted, *written, *snap);
}

bool GroupCommitter::AnswerRetry(Request* r, std::set<std::string>* batch_keys) {
  if (r->events.size() != 1 || r->events[0].idempotency_key.empty()) return false;
  const ConsentEvent& asked = r->events[0];
  if (!batch_keys->insert(asked.idempotency_key).second) {
    r->result = MakeError(ErrorCode::kUnavailable,
                          "a request with this idempotency key is being recorded; retry");
    return true;
  }
  auto found = ledger_->store_->FindIdempotencyKey(asked.idempotency_key);
  if (!found) {
    r->result = std::unexpected(found.error());
    return true;
  }
  if (!*found) return false;
  auto earlier = ledger_->ReceiptAt(**found);
  // The whole request must be the same, not only its party and action: a different scope
  // under a reused key would otherwise be answered with the first receipt and never recorded
  // (a withdrawal lost).
  if (earlier && (earlier->party != asked.party || earlier->party_kind != asked.party_kind ||
                  earlier->action != asked.action || earlier->method != asked.method ||
                  earlier->rule != asked.rule ||
                  (!asked.categories.empty() && earlier->categories != asked.categories) ||
                  (!asked.purposes.empty() && earlier->purposes != asked.purposes))) {
    r->result = AlreadyExistsError("this idempotency key was used for a different request "
                                   "(position " + std::to_string(**found) +
                                   "); use a new key for a new request");
  } else if (earlier) {
    earlier->replayed = true;
    r->result = std::vector<Receipt>{*earlier};
  } else if (earlier.error().code == ErrorCode::kNotFound) {
    // Recorded then, and the party erased since: its receipt is gone with its secret.
    r->result = MakeError(ErrorCode::kGone,
                          "this request was recorded at position " + std::to_string(**found) +
                              ", and the " + std::string(PartyKindName(asked.party_kind)) +
                              " has since been erased: the event stays in the log, "
                              "unlinkable; there is no receipt to give again");
  } else {
    r->result = std::unexpected(earlier.error());
  }
  return true;
}

GroupCommitter::Accepted GroupCommitter::Validate(const std::vector<Request*>& batch,
                                                  const Snapshot& snap, Timestamp now) {
  Engine& engine = *ledger_->engine_;
  uint64_t last_position = snap.position();
  Timestamp last_at = engine.last_consent_at();
  Accepted accepted;
  std::set<std::string> batch_keys;  // idempotency keys taken by requests of this batch
  for (Request* r : batch) {
    if (AnswerRetry(r, &batch_keys)) continue;
    const size_t mark = accepted.events.size();
    const uint64_t position_mark = last_position;
    const Timestamp at_mark = last_at;
    Status st = OkStatus();
    for (size_t i = 0; i < r->events.size() && st; ++i) {
      ConsentEvent e = r->events[i];
      e.position = last_position + 1;
      st = Complete(e, snap, now, last_at);
      if (st) st = engine.ValidateAfter(e, last_position, last_at);
      if (!st) {
        if (r->events.size() > 1) {
          st = MakeError(st.error().code,
                         "event " + std::to_string(i + 1) + ": " + st.error().message);
        }
        break;
      }
      last_position = e.position;
      last_at = e.at;
      accepted.events.push_back(std::move(e));
    }
    if (!st) {
      r->result = std::unexpected(st.error());
      accepted.events.resize(mark);
      last_position = position_mark;
      last_at = at_mark;
    } else {
      accepted.owners.emplace_back(r, mark);
    }
  }
  return accepted;
}

Result<GroupCommitter::Written> GroupCommitter::Write(Accepted& accepted, AppendLock& append,
                                                      const Snapshot& snap, Timestamp now) {
  LedgerStore& store = *ledger_->store_;
  Written w;
  w.entries.reserve(accepted.events.size());
  w.pseudonyms.reserve(accepted.events.size());
  std::vector<PartyChange> created;
  std::map<std::pair<PartyKind, std::string>, std::string> fresh;
  // After the catch-up this node knows every party the ledger names (replay loaded them, and
  // catch-ups fetch those of other nodes' entries), so a party it does not know is new.
  const bool shared = store.Shared();
  ConsentEvent named;  // the event as the entry names it: by pseudonym
  for (const auto& e : accepted.events) {
    auto pseudonym = ledger_->PseudonymForLocked(e.party_kind, e.party, &created, &fresh, !shared);
    if (!pseudonym) {
      for (auto& [r, first] : accepted.owners) {
        r->result = MakeError(pseudonym.error().code, "not recorded: " + pseudonym.error().message);
      }
      return std::unexpected(pseudonym.error());
    }
    w.pseudonyms.push_back(std::move(*pseudonym));
    named = e;
    named.party = w.pseudonyms.back();
    const int32_t tv = snap.terms().FindVersion(e.terms_version);
    w.entries.push_back(MakeConsentEntry(
        e.position, now, named, tv >= 0 ? std::string_view(snap.terms().version(tv).id()) : ""));
    w.entries.back().idempotency_key = e.idempotency_key;
  }
  Status committed = append.Commit(w.entries, created);
  if (!committed && shared && committed.error().code == ErrorCode::kAlreadyExists) {
    // Never expected (see above); should it happen, learn the stored rows so a retry uses
    // them, and ask the callers to retry rather than fail them for good.
    for (PartyKind kind : {PartyKind::kSubject, PartyKind::kAccount}) {
      std::vector<std::string> ids;
      for (const auto& c : created) {
        if (c.row.kind == kind) ids.push_back(c.row.id);
      }
      if (auto rows = store.FindParties(kind, ids); rows) {
        std::vector<PartyChange> known(rows->size());
        for (size_t i = 0; i < rows->size(); ++i) known[i].row = std::move((*rows)[i]);
        ledger_->AddPartiesLocked(known);
      }
    }
    committed = MakeError(ErrorCode::kUnavailable, committed.error().message + "; retry");
  }
  if (!committed) {
    for (auto& [r, first] : accepted.owners) {
      r->result = MakeError(committed.error().code, "not recorded: " + committed.error().message);
    }
    return std::unexpected(committed.error());
  }
  ledger_->AddPartiesLocked(created);
  return w;
}

void GroupCommitter::AnswerReceipts(const Accepted& accepted, const Written& written,
                                    const Snapshot& snap) {
  for (size_t k = 0; k < accepted.owners.size(); ++k) {
    auto [r, first] = accepted.owners[k];
    const size_t end =
        k + 1 < accepted.owners.size() ? accepted.owners[k + 1].second : accepted.events.size();
    std::vector<Receipt> receipts;
    for (size_t i = first; i < end; ++i) {
      receipts.push_back(ledger_->ReceiptOf(accepted.events[i], snap, written.entries[i].hash,
                                            written.pseudonyms[i]));
    }
    r->result = std::move(receipts);
  }
}

}  // namespace assent::internal
