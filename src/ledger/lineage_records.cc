// Recording datasets and models (ledger_impl.h); their entries become lineage in entry_applier.cc.
#include "ledger/ledger_impl.h"

#include <algorithm>
#include <map>

#include "common/strings.h"
#include "ledger/append.h"
#include "ledger/lineage.h"
#include "ledger/store.h"

namespace assent::internal {

void LedgerImpl::WithLineage(const std::function<void(const Lineage&)>& fn) const {
  std::shared_lock lock(lineage_mu_);
  fn(*lineage_);
}

namespace {
// Dataset and model names: 1-128 of A-Z a-z 0-9 . _ - (they are printed one per line, used in
// file names and URLs; a newline or blank would split or hide them).
Status CheckLineageName(std::string_view what, std::string_view name) {
  const bool ok = !name.empty() && name.size() <= 128 &&
                  std::all_of(name.begin(), name.end(), [](char c) {
                    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                           (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
                  });
  if (ok) return OkStatus();
  return InvalidArgumentError("a " + std::string(what) + " name is 1 to 128 letters, digits, '.', "
                              "'_' or '-' (e.g. assistant-v3)");
}
}  // namespace

Result<uint64_t> LedgerImpl::RegisterDataset(const DatasetRegistration& r) {
  if (read_only_) return FailedPreconditionError("the ledger was opened read-only");
  ASSENT_RETURN_IF_ERROR(CheckLineageName("dataset", r.name));
  // What the dataset was decided at must be a real point of this ledger, and its purpose one
  // the terms define: a person's page compares the positions with their own choices.
  if (r.ledger_position == 0) {
    return InvalidArgumentError("ledger_position: the position the dataset was decided at is "
                                "required (the filter's report gives it)");
  }
  if (r.ledger_position > position()) {
    return InvalidArgumentError("ledger_position: a dataset decided at ledger position " +
                                std::to_string(r.ledger_position) +
                                " cannot be recorded: the ledger's head is " +
                                std::to_string(position()));
  }
  {
    auto snap = engine_->snapshot();
    bool defined = false;
    std::vector<std::string> known;  // for "did you mean"
    for (int32_t v = 0; v < snap->terms().size() && !defined; ++v) {
      defined = snap->terms().version(v).FindPurpose(r.purpose) >= 0;
      for (const auto& p : snap->terms().version(v).purposes()) known.push_back(p.name);
    }
    if (!defined) {
      return InvalidArgumentError("purpose: '" + r.purpose + "' is not a purpose of any "
                                  "published terms version" + DidYouMeanSuffix(r.purpose, known));
    }
  }
  ASSENT_ASSIGN_OR_RETURN(auto append, AppendLock::Take(this));
  DatasetFields f;
  f.name = r.name;
  f.purpose = r.purpose;
  f.terms = r.terms;
  f.ledger_position = r.ledger_position;
  f.items = r.items;
  f.input_sha256 = r.input_sha256;
  f.output_sha256 = r.output_sha256;
  f.snapshot_sha256 = r.snapshot_sha256;
  // The entry names parties by pseudonym, like consent entries (a party with no consent event
  // yet, kept under a necessary or objectable rule, gets its pseudonym here).
  std::vector<PartyChange> created;
  std::map<std::pair<PartyKind, std::string>, std::string> fresh;
  std::map<std::string, std::string> subject_ps, account_ps;  // id -> pseudonym
  auto name = [&](PartyKind kind, const std::string& id, std::map<std::string, std::string>* to)
      -> Status {
    if (to->count(id)) return OkStatus();
    ASSENT_ASSIGN_OR_RETURN((*to)[id], PseudonymForLocked(kind, id, &created, &fresh));
    return OkStatus();
  };
  for (const auto& s : r.subjects) ASSENT_RETURN_IF_ERROR(name(PartyKind::kSubject, s, &subject_ps));
  for (const auto& sh : r.shards) {
    for (const auto& s : sh.subjects) {
      ASSENT_RETURN_IF_ERROR(name(PartyKind::kSubject, s, &subject_ps));
    }
  }
  for (const auto& a : r.accounts) ASSENT_RETURN_IF_ERROR(name(PartyKind::kAccount, a, &account_ps));
  {
    std::shared_lock lock(lineage_mu_);
    if (lineage_->FindDataset(r.name)) {
      return AlreadyExistsError("a dataset named '" + r.name + "' is recorded already");
    }
    // Ids continue where the directory ends; these pseudonyms get them in this order.
    uint32_t next_subject = static_cast<uint32_t>(lineage_->subjects.size());
    uint32_t next_account = static_cast<uint32_t>(lineage_->accounts.size());
    std::map<std::string, uint32_t> new_subjects, new_accounts;
    auto subject_id = [&](const std::string& id) {
      const std::string& s = subject_ps.at(id);
      if (auto found = lineage_->subjects.Find(s)) return *found;
      auto it = new_subjects.find(s);
      if (it != new_subjects.end()) return it->second;
      f.new_subjects.push_back(s);
      return new_subjects[s] = next_subject++;
    };
    Roaring subjects, accounts;
    for (const auto& s : r.subjects) subjects.add(subject_id(s));
    for (const auto& id : r.accounts) {
      const std::string& a = account_ps.at(id);
      uint32_t dense;
      if (auto found = lineage_->accounts.Find(a)) {
        dense = *found;
      } else if (new_accounts.count(a)) {
        dense = new_accounts[a];
      } else {
        f.new_accounts.push_back(a);
        dense = new_accounts[a] = next_account++;
      }
      accounts.add(dense);
    }
    f.subjects = EncodeBitmap(subjects);
    f.accounts = EncodeBitmap(accounts);
    for (const auto& sh : r.shards) {
      Roaring b;
      for (const auto& s : sh.subjects) b.add(subject_id(s));
      f.shards.push_back({sh.file, sh.items, EncodeBitmap(b)});
    }
  }
  ASSENT_ASSIGN_OR_RETURN(auto at, AppendEntryLocked(*append,
                                       [&](uint64_t pos, Timestamp now) {
                                         return MakeDatasetEntry(pos, now, f);
                                       },
                                       created));
  ASSENT_RETURN_IF_ERROR(ApplyDataset(at.first, at.second, f));
  return at.first;
}

Result<uint64_t> LedgerImpl::RegisterModel(std::string name, std::vector<std::string> datasets) {
  if (read_only_) return FailedPreconditionError("the ledger was opened read-only");
  ASSENT_RETURN_IF_ERROR(CheckLineageName("model", name));
  if (datasets.empty()) return InvalidArgumentError("a model is trained on at least one dataset");
  ASSENT_ASSIGN_OR_RETURN(auto append, AppendLock::Take(this));
  {
    std::shared_lock lock(lineage_mu_);
    if (lineage_->FindModel(name)) return AlreadyExistsError("a model named '" + name + "' exists");
    for (const auto& d : datasets) {
      if (!lineage_->FindDataset(d)) {
        return NotFoundError("no dataset named '" + d + "': register it with assent filter --dataset");
      }
    }
  }
  ModelFields f{std::move(name), std::move(datasets)};
  ASSENT_ASSIGN_OR_RETURN(auto at, AppendEntryLocked(*append, [&](uint64_t pos, Timestamp now) {
    return MakeModelEntry(pos, now, f);
  }));
  ASSENT_RETURN_IF_ERROR(ApplyModel(at.first, at.second, f));
  return at.first;
}

}  // namespace assent::internal
