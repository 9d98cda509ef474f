#include "assent/ledger.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "common/sha256.h"
#include "engine/events_jsonl.h"
#include "ledger/events_file.h"
#include "ledger/ledger_impl.h"
#include "ledger/store.h"

namespace assent {

class LedgerTestPeer {
 public:
  static internal::LedgerStore* store(Ledger& l) { return l.impl_->store_.get(); }
};

namespace {

namespace fs = std::filesystem;

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const std::string kExamples = std::string(ASSENT_SOURCE_DIR) + "/examples/terms/";
const std::string kV2 = kExamples + "example-meetings-2023-08-07.yaml";
const std::string kV3 = kExamples + "example-meetings-2023-08-11.yaml";
const Timestamp kNow = *ParseTime("2024-01-01T00:00:00Z");

class LedgerTest : public testing::Test {
 protected:
  void SetUp() override {
    static std::mt19937_64 rng(std::random_device{}());
    dir_ = (fs::temp_directory_path() / ("assent-ledger-" + std::to_string(rng()))).string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  Result<std::unique_ptr<Ledger>> Open(bool read_only = false) {
    LedgerOptions o;
    o.data_dir = dir_;
    o.read_only = read_only;
    o.threads = threads_;
    o.clock = [] { return kNow; };
    return Ledger::Open(o);
  }

  std::unique_ptr<Ledger> OpenWithTerms() {
    auto l = Open();
    EXPECT_TRUE(l) << l.error().message;
    EXPECT_TRUE((*l)->PublishTerms(ReadText(kV2), kV2, {.backfill = true}));
    EXPECT_TRUE((*l)->PublishTerms(ReadText(kV3), kV3, {.backfill = true}));
    return std::move(*l);
  }

  // Opening the ledger again fails with kDataLoss, its message naming `what`.
  // `thousands` batches of 1,000 events (u0, u1, ...: one `action` each on product usage for
  // marketing), each batch recorded at once.
  static void RecordThousands(Ledger& l, int thousands, Action action) {
    for (int b = 0; b < thousands; ++b) {
      std::vector<ConsentEvent> events;
      for (int i = 0; i < 1000; ++i) {
        events.push_back(Event("u" + std::to_string(b * 1000 + i), action,
                               "service_generated.product_usage", "marketing", "2023-08-12T00:00:00Z"));
      }
      ASSERT_TRUE(l.RecordConsents(std::move(events)));
    }
  }

  // The same with a reading thread (the default) and with the calling thread alone.
  void ExpectRefusedToStart(const std::string& what) {
    for (int threads : {0, 1}) {
      threads_ = threads;
      auto l = Open();
      ASSERT_FALSE(l) << "threads " << threads;
      EXPECT_EQ(l.error().code, ErrorCode::kDataLoss);
      EXPECT_NE(l.error().message.find(what), std::string::npos) << l.error().message;
    }
    threads_ = 0;
  }

  static ConsentEvent Event(const std::string& subject, Action action, const std::string& category,
                            const std::string& purpose, const std::string& at) {
    ConsentEvent e;
    e.party = subject;
    e.action = action;
    e.categories = {category};
    e.purposes = {purpose};
    e.at = *ParseTime(at);
    return e;
  }

  static std::string Ask(Ledger& l, const std::string& category, const std::string& purpose,
                         const std::string& subject, std::optional<std::string> at = {}) {
    std::string_view subjects[] = {subject};
    DecisionRequest q;
    q.category = category;
    q.purpose = purpose;
    q.subjects = subjects;
    if (at) q.at = *ParseTime(*at);
    auto snap = l.engine().snapshot();
    auto d = snap->Decide(q, kNow);
    return d ? DecisionToJson(*d) : "error: " + d.error().message;
  }

  std::string dir_;
  int threads_ = 0;  // LedgerOptions::threads for Open
};

// One event stamped in the future would hold every later event's time there (times never
// decrease) and decisions about now would ignore them: refused, and nothing is written.
TEST_F(LedgerTest, AFutureTimeIsRefusedAndLaterWithdrawalsStillCount) {
  auto l = OpenWithTerms();
  const uint64_t before = l->position();
  ConsentEvent future = Event("u1", Action::kGrant, "service_generated.product_usage",
                              "marketing",
                              "2024-01-01T01:00:00Z");  // an hour ahead of the clock
  auto r = l->RecordConsent(future);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(r.error().message.find("future"), std::string::npos) << r.error().message;
  EXPECT_EQ(l->position(), before);
  ConsentEvent far = future;
  far.at = kMaxTime + 1;  // past what the ledger can store and read back
  EXPECT_FALSE(l->RecordConsent(far));
  // Live writes (no time given) are stamped now, and a withdrawal after a grant counts.
  ConsentEvent grant = future;
  grant.at = 0;
  ASSERT_TRUE(l->RecordConsent(grant));
  ConsentEvent withdraw = grant;
  withdraw.action = Action::kWithdraw;
  ASSERT_TRUE(l->RecordConsent(withdraw));
  EXPECT_NE(Ask(*l, "service_generated.product_usage", "marketing", "u1").find("\"objected\""),
            std::string::npos);
  EXPECT_EQ(l->position(), before + 2);
}

// An empty or blank subject names nobody: a decision about it is an error, never "not objected".
TEST_F(LedgerTest, BlankIdsAreRefusedEverywhere) {
  auto l = OpenWithTerms();
  for (const std::string id : {"", " ", "\t", " \n "}) {
    std::string_view subjects[] = {id};
    DecisionRequest q;
    q.category = "service_generated.telemetry";
    q.purpose = "ai_training.first_party";
    q.subjects = subjects;
    auto d = l->engine().snapshot()->Decide(q, kNow);
    ASSERT_FALSE(d) << "'" << id << "'";
    EXPECT_EQ(d.error().code, ErrorCode::kInvalidArgument);
    ConsentEvent e = Event(id, Action::kWithdraw, "service_generated", "marketing",
                           "2023-09-01T00:00:00Z");
    EXPECT_FALSE(l->RecordConsent(e)) << "'" << id << "'";
  }
}

// A connection string's secrets never reach a message, whatever its quoting or form: only host,
// port and database name (issue: a quoted password with a space leaked its tail to /readyz).
TEST_F(LedgerTest, DatabaseErrorsNeverShowPasswordsOrUsers) {
  for (const std::string url : {
           "host=127.0.0.1 port=1 dbname=ledger user=bob password='Sup3r Secret-Tail' connect_timeout=2",
           "postgresql://bob:Sup3r%20Secret-Tail@127.0.0.1:1/ledger?connect_timeout=2",
           "postgresql://127.0.0.1:1/ledger?user=bob&password=Sup3r%20Secret-Tail&connect_timeout=2",
       }) {
    LedgerOptions o;
    o.data_dir = dir_;
    o.database = url;
    auto l = Ledger::Open(o);
    ASSERT_FALSE(l) << url;
    const std::string& m = l.error().message;
    for (const char* secret : {"Sup3r", "Secret", "Tail", "bob"}) {
      EXPECT_EQ(m.find(secret), std::string::npos) << secret << " in: " << m;
    }
    EXPECT_NE(m.find("127.0.0.1:1/ledger"), std::string::npos) << m;
  }
}

TEST_F(LedgerTest, RecordsSurviveReopening) {
  std::string before;
  {
    auto l = OpenWithTerms();
    auto r = l->RecordConsent(Event("u1", Action::kGrant, "content.chat",
                                    "ai_training.first_party", "2023-08-08T10:00:00Z"));
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->position, 3u);
    EXPECT_EQ(r->terms, "example-meetings@2023-08-07");
    EXPECT_EQ(r->hash.size(), 64u);
    ASSERT_TRUE(l->RecordConsent(Event("u1", Action::kWithdraw, "service_generated",
                                       "marketing", "2023-08-12T00:00:00Z")));
    before = Ask(*l, "content.chat", "ai_training.first_party", "u1", "2023-08-09T00:00:00Z") +
             Ask(*l, "service_generated.product_usage", "marketing", "u1");
  }
  auto l = Open(true);
  ASSERT_TRUE(l) << l.error().message;
  EXPECT_EQ((*l)->position(), 4u);
  EXPECT_EQ(Ask(**l, "content.chat", "ai_training.first_party", "u1", "2023-08-09T00:00:00Z") +
                Ask(**l, "service_generated.product_usage", "marketing", "u1"),
            before);
  EXPECT_NE(before.find("\"reason\":\"consented\""), std::string::npos);
  EXPECT_NE(before.find("\"reason\":\"objected\""), std::string::npos);
}

TEST_F(LedgerTest, PublishingRules) {
  auto l = OpenWithTerms();
  auto again = l->PublishTerms(ReadText(kV3), kV3, {.backfill = true});
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->already_published);
  EXPECT_EQ(again->position, 2u);
  std::string changed = ReadText(kV3);
  changed += "\n# a comment changes the content\n";
  auto different = l->PublishTerms(changed, "changed.yaml", {.backfill = true});
  ASSERT_FALSE(different);
  EXPECT_NE(different.error().message.find("different content"), std::string::npos);
  std::string earlier = ReadText(kV3);
  earlier.replace(earlier.find("version: \"2023-08-11\""), 21, "version: \"2023-08-09\"");
  earlier.replace(earlier.find("effective: \"2023-08-11"), 22, "effective: \"2023-08-01");
  auto backwards = l->PublishTerms(earlier, "earlier.yaml", {.backfill = true});
  ASSERT_FALSE(backwards);
  EXPECT_EQ(backwards.error().code, ErrorCode::kInvalidArgument);
  auto lint = l->PublishTerms(ReadText(kExamples + "example-meetings-2023-03-31.yaml"), "v1", {.backfill = true});
  ASSERT_FALSE(lint);
  EXPECT_NE(lint.error().message.find("missing-description"), std::string::npos);
  EXPECT_EQ(l->position(), 2u);
}

TEST_F(LedgerTest, InvalidConsentChangesNothing) {
  {
    auto l = OpenWithTerms();
    ASSERT_TRUE(l->RecordConsent(Event("u1", Action::kGrant, "content.chat",
                                       "ai_training.first_party", "2023-08-10T00:00:00Z")));
    struct Case {
      ConsentEvent e;
      std::string want;
    } cases[] = {
        {Event("u1", Action::kGrant, "content.nope", "service.delivery", "2023-08-12T00:00:00Z"),
         "unknown category"},
        {Event("u1", Action::kGrant, "content.chat", "service.delivery", "2023-08-09T00:00:00Z"),
         "before the latest consent event"},
        {Event("", Action::kGrant, "content.chat", "service.delivery", "2023-08-12T00:00:00Z"),
         "empty"},
        {Event("u\xff", Action::kGrant, "content.chat", "service.delivery", "2023-08-12T00:00:00Z"),
         "UTF-8"},
    };
    for (auto& c : cases) {
      auto r = l->RecordConsent(c.e);
      ASSERT_FALSE(r) << c.want;
      EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
      EXPECT_NE(r.error().message.find(c.want), std::string::npos) << r.error().message;
    }
    ConsentEvent unknown_version = cases[0].e;
    unknown_version.categories = {"content.chat"};
    unknown_version.terms_version = "2099-01-01";
    EXPECT_FALSE(l->RecordConsent(unknown_version));
    // A batch with one bad event records none of it.
    std::vector<ConsentEvent> batch = {
        Event("u2", Action::kGrant, "content.chat", "service.delivery", "2023-08-12T00:00:00Z"),
        Event("u3", Action::kGrant, "content.nope", "service.delivery", "2023-08-12T00:00:00Z")};
    auto r = l->RecordConsents(batch);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("event 2"), std::string::npos);
    EXPECT_EQ(l->position(), 3u);
  }
  auto l = Open(true);
  EXPECT_EQ((*l)->position(), 3u);
}

TEST_F(LedgerTest, ARuleNamesItsScope) {
  auto l = OpenWithTerms();
  ConsentEvent e;
  e.party = "u1";
  e.action = Action::kWithdraw;
  e.rule = "service-generated-for-ai-training";
  e.at = *ParseTime("2023-08-12T00:00:00Z");
  auto r = l->RecordConsent(e);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->categories, std::vector<std::string>{"service_generated"});
  EXPECT_EQ(r->purposes, std::vector<std::string>{"ai_training.first_party"});
  e.rule = "service-generated-for-improvement";  // training and improving are separate choices
  e.at = *ParseTime("2023-08-12T00:00:01Z");
  r = l->RecordConsent(e);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->purposes, std::vector<std::string>{"product_development"});
  e.rule = "no-such-rule";
  EXPECT_FALSE(l->RecordConsent(e));
}

TEST_F(LedgerTest, ASecondWriterIsRefusedButReadersAreNot) {
  auto first = Open();
  ASSERT_TRUE(first);
  auto second = Open();
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_NE(second.error().message.find("in use by another assent process"), std::string::npos);
  ASSERT_TRUE((*first)->PublishTerms(ReadText(kV2), kV2, {.backfill = true}));
  auto reader = Open(true);
  ASSERT_TRUE(reader) << reader.error().message;
  EXPECT_EQ((*reader)->position(), 1u);
  auto denied = (*reader)->RecordConsent(
      Event("u1", Action::kGrant, "content.chat", "service.delivery", "2023-08-12T00:00:00Z"));
  EXPECT_FALSE(denied);
}

// Runs `sql` on the ledger file directly, as someone tampering with storage would.
void Tamper(const std::string& dir, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir + "/ledger.db").c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, ("DROP TRIGGER entries_no_update; DROP TRIGGER entries_no_delete; " +
                             sql).c_str(), nullptr, nullptr, &err);
  EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);
}

TEST_F(LedgerTest, RefusesToStartOnAChangedEntry) {
  {
    auto l = OpenWithTerms();
    ASSERT_TRUE(l->RecordConsent(Event("u1", Action::kWithdraw, "content.chat",
                                       "ai_training.first_party", "2023-08-12T00:00:00Z")));
  }
  Tamper(dir_, "UPDATE entries SET body = replace(body, 'withdraw', 'grant') WHERE position = 3");
  ExpectRefusedToStart("position 3");
}

TEST_F(LedgerTest, RefusesToStartOnAMissingEntry) {
  {
    auto l = OpenWithTerms();
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(l->RecordConsent(Event("u" + std::to_string(i), Action::kGrant, "content.chat",
                                         "service.delivery", "2023-08-12T00:00:00Z")));
    }
  }
  Tamper(dir_, "DELETE FROM entries WHERE position = 4");
  ExpectRefusedToStart("missing");
}

// Replay hands entries over in batches (the first small, then doubling) and decodes them on
// the applying thread: a ledger of thousands of entries comes back with every choice, and an
// entry deep in a later batch whose hash matches but whose body does not decode (its action
// rewritten, the hash made to match) stops the start with that entry's position.
TEST_F(LedgerTest, ReplaysManyBatchesAndNamesAnEntryThatDoesNotDecode) {
  constexpr int kEvents = 3000;
  {
    auto l = OpenWithTerms();
    for (int i = 0; i < kEvents; ++i) {
      ASSERT_TRUE(l->RecordConsent(Event("u" + std::to_string(i), i % 3 ? Action::kGrant : Action::kWithdraw,
                                         "service_generated.product_usage", "marketing",
                                         "2023-08-12T00:00:00Z")));
    }
  }
  for (int threads : {0, 1}) {  // a reading thread beside the applying one, and one thread
    threads_ = threads;
    auto l = Open();
    ASSERT_TRUE(l) << l.error().message;
    EXPECT_EQ((*l)->position(), static_cast<uint64_t>(kEvents) + 2);
    for (int i : {0, 1, 255, 256, 1000, 2998, 2999}) {
      const std::string answer = Ask(**l, "service_generated.product_usage", "marketing", "u" + std::to_string(i));
      EXPECT_NE(answer.find(i % 3 ? "\"decision\":\"allow\"" : "\"reason\":\"objected\""), std::string::npos)
          << "u" << i << ": " << answer;
    }
  }
  const int position = 2500;  // in the sixth batch (256, 512, 1024, then 2048 entries)
  Tamper(dir_, "SELECT 1");   // the triggers that refuse changes, dropped
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ + "/ledger.db").c_str(), &db), SQLITE_OK);
  sqlite3_stmt* read = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT body FROM entries WHERE position = ?", -1, &read, nullptr), SQLITE_OK);
  sqlite3_bind_int64(read, 1, position);
  ASSERT_EQ(sqlite3_step(read), SQLITE_ROW);
  std::string body(static_cast<const char*>(sqlite3_column_blob(read, 0)), sqlite3_column_bytes(read, 0));
  sqlite3_finalize(read);
  const size_t at = body.find("\"grant\"") != std::string::npos ? body.find("\"grant\"") : body.find("\"withdraw\"");
  ASSERT_NE(at, std::string::npos) << body;
  body.replace(at, body.find('"', at + 1) - at + 1, "\"sell\"");
  const Sha256Digest hash = Sha256(body);
  sqlite3_stmt* write = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "UPDATE entries SET body = ?, hash = ? WHERE position = ?", -1, &write, nullptr), SQLITE_OK);
  sqlite3_bind_blob(write, 1, body.data(), static_cast<int>(body.size()), SQLITE_TRANSIENT);
  sqlite3_bind_blob(write, 2, hash.data(), 32, SQLITE_TRANSIENT);
  sqlite3_bind_int64(write, 3, position);
  ASSERT_EQ(sqlite3_step(write), SQLITE_DONE);
  sqlite3_finalize(write);
  sqlite3_close(db);
  ExpectRefusedToStart("position " + std::to_string(position));
}

// Replay loads the parties beside reading the entries (SQLite reads both at once): erasures
// between thousands of events, in early and late batches, still take their parties away after
// a restart (their events skipped, every later decision `erased`), and everyone else's choices
// come back. A damaged party row stops the start with its own error.
TEST_F(LedgerTest, ErasuresAmongManyBatchesSurviveARestart) {
  constexpr int kEvents = 4000;
  {
    auto l = OpenWithTerms();
    for (int i = 0; i < kEvents; ++i) {
      ASSERT_TRUE(l->RecordConsent(Event("u" + std::to_string(i % 1000), i % 2 ? Action::kGrant : Action::kWithdraw,
                                         "service_generated.product_usage", "marketing",
                                         "2023-08-12T00:00:00Z")));
      if (i == 300 || i == 3500) {
        ASSERT_TRUE(l->EraseParty(PartyKind::kSubject, "u" + std::to_string(i % 1000 - 1)));
      }
    }
  }
  for (int threads : {0, 1}) {  // the parties loading beside the reading, and one thread
    threads_ = threads;
    auto l = Open();
    ASSERT_TRUE(l) << l.error().message;
    EXPECT_GT((*l)->erased_events_skipped(), 0u);
    for (const char* erased : {"u299", "u499"}) {  // u299 has events after its erasure too
      EXPECT_NE(Ask(**l, "service_generated.product_usage", "marketing", erased).find("\"reason\":\"erased\""),
                std::string::npos) << erased;
    }
    // The last event of u7 (i = 3007, odd) granted; of u8 (i = 3008, even) withdrew.
    EXPECT_NE(Ask(**l, "service_generated.product_usage", "marketing", "u7").find("\"decision\":\"allow\""),
              std::string::npos);
    EXPECT_NE(Ask(**l, "service_generated.product_usage", "marketing", "u8").find("\"reason\":\"objected\""),
              std::string::npos);
  }
  Tamper(dir_, "UPDATE parties SET pseudonym = 'not-a-pseudonym' WHERE id = 'u42'");
  ExpectRefusedToStart("'u42' is damaged");
}

// Replay folds its events into one private state and publishes it once: thousands of events in
// dozens of batches, not a snapshot (a copy of the state's changed part) per batch.
TEST_F(LedgerTest, ReplayPublishesOneSnapshotForAllItsBatches) {
  {
    auto l = OpenWithTerms();
    RecordThousands(*l, 20, Action::kWithdraw);
  }
  auto l = Open();
  ASSERT_TRUE(l) << l.error().message;
  EXPECT_EQ((*l)->position(), 20002u);
  // The two terms publications, the bulk load's end, and perhaps the position moved on.
  EXPECT_LE((*l)->engine().snapshots_published(), 5u);
  EXPECT_NE(Ask(**l, "service_generated.product_usage", "marketing", "u19999").find("\"reason\":\"objected\""),
            std::string::npos);
}

// Threads of this process (each has its entry under /proc/self/task while it runs).
size_t ThreadsRunning() {
  size_t n = 0;
  for ([[maybe_unused]] const auto& t : fs::directory_iterator("/proc/self/task")) ++n;
  return n;
}

// LedgerOptions::threads = 1 (what `assent filter --threads 1` opens with) replays on the
// calling thread alone: while an entry early in a long ledger is applied, no thread has been
// started beside it. With the default, the reader is still reading then (its queue holds four
// batches of at most 1,024 of the 10,000 entries), and the parties may be loading too.
TEST_F(LedgerTest, OneThreadReplaysOnTheCallingThreadAlone) {
  const std::string token(64, 'a');
  {
    auto l = OpenWithTerms();
    ASSERT_TRUE(l->SpendToken("redeem", token, kNow + 3600 * kMicrosPerSecond));  // position 3
    RecordThousands(*l, 10, Action::kGrant);
  }
  for (int threads : {0, 1}) {
    const size_t before = ThreadsRunning();
    size_t most = 0;  // threads running when the clock was asked (applying the spent token)
    LedgerOptions o;
    o.data_dir = dir_;
    o.read_only = true;
    o.threads = threads;
    o.clock = [&] {
      most = std::max(most, ThreadsRunning());
      return kNow;
    };
    auto l = Ledger::Open(o);
    ASSERT_TRUE(l) << l.error().message;
    EXPECT_EQ((*l)->position(), 10003u);
    EXPECT_TRUE((*l)->TokenSpent(token));
    if (threads == 1) {
      EXPECT_EQ(most, before) << "a thread was started beside the replay";
    } else {
      EXPECT_GT(most, before) << "the default replay read on no thread of its own";
    }
    EXPECT_NE(Ask(**l, "service_generated.product_usage", "marketing", "u9999").find("\"decision\":\"allow\""),
              std::string::npos);
  }
}

TEST_F(LedgerTest, AFailedAppendAcknowledgesNothing) {
  auto l = OpenWithTerms();
  ASSERT_TRUE(internal::LimitSqliteStoreSizeForTest(LedgerTestPeer::store(*l), 1));
  std::vector<ConsentEvent> many;
  for (int i = 0; i < 3000; ++i) {
    many.push_back(Event("subject-with-a-long-name-" + std::to_string(i), Action::kGrant,
                         "content.chat", "service.delivery", "2023-08-12T00:00:00Z"));
  }
  auto r = l->RecordConsents(many);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(l->position(), 2u);  // the engine did not apply what was not stored
  EXPECT_EQ(l->engine().snapshot()->consent_events(), 0u);
}

TEST_F(LedgerTest, ConcurrentWritersGetDensePositions) {
  auto l = OpenWithTerms();
  constexpr int kThreads = 16, kEach = 40;
  std::vector<std::vector<uint64_t>> positions(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        ConsentEvent e;
        e.party = "t" + std::to_string(t) + "-" + std::to_string(i);
        e.action = Action::kGrant;
        e.categories = {"content.chat"};
        e.purposes = {"service.delivery"};
        auto r = l->RecordConsent(e);  // `at` defaults to now
        ASSERT_TRUE(r) << r.error().message;
        positions[t].push_back(r->position);
      }
    });
  }
  for (auto& th : threads) th.join();
  std::vector<uint64_t> all;
  for (auto& p : positions) all.insert(all.end(), p.begin(), p.end());
  std::sort(all.begin(), all.end());
  ASSERT_EQ(all.size(), static_cast<size_t>(kThreads * kEach));
  for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i], i + 3);
  EXPECT_EQ(l->position(), 2u + kThreads * kEach);
}

TEST_F(LedgerTest, ExportThenImportReproducesDecisions) {
  auto a = OpenWithTerms();
  ASSERT_TRUE(a->RecordConsent(Event("u1", Action::kGrant, "content.chat",
                                     "ai_training.first_party", "2023-08-08T00:00:00Z")));
  ASSERT_TRUE(a->RecordConsent(Event("u1", Action::kWithdraw, "content", "ai_training",
                                     "2023-08-09T00:00:00Z")));
  std::string export_path = dir_ + "-export.jsonl";
  {
    std::ofstream out(export_path);
    ASSERT_TRUE(a->Export(0, out));
  }
  std::string text = ReadText(export_path);
  EXPECT_NE(text.find("\"kind\":\"terms\""), std::string::npos);
  EXPECT_NE(text.find("\"hash\":\""), std::string::npos);
  // The export reads as the events format too.
  auto events = ParseEventsJsonl(text, "export");
  ASSERT_TRUE(events) << events.error().message;
  EXPECT_EQ(events->size(), 2u);

  LedgerOptions o;
  o.in_memory = true;
  o.clock = [] { return kNow; };
  auto b = *Ledger::Open(o);
  ASSERT_TRUE(b->PublishTerms(ReadText(kV2), kV2, {.backfill = true}));
  ASSERT_TRUE(b->PublishTerms(ReadText(kV3), kV3, {.backfill = true}));
  auto imported = ReadImportFile(export_path);
  ASSERT_TRUE(imported);
  ASSERT_TRUE(b->RecordConsents(*imported));
  for (const char* at : {"2023-08-08T12:00:00Z", "2023-08-10T00:00:00Z"}) {
    std::string da = Ask(*a, "content.chat", "ai_training.first_party", "u1", at);
    std::string db = Ask(*b, "content.chat", "ai_training.first_party", "u1", at);
    EXPECT_EQ(da, db);
  }
  // Importing the same history again would insert it before what is there: refused whole.
  auto again = b->RecordConsents(*imported);
  ASSERT_FALSE(again);
  EXPECT_EQ(b->position(), 4u);
  fs::remove(export_path);
}

// check --events (an engine folded from a JSON Lines file) and check --data (a ledger the
// same events were imported into, reopened from SQLite) must agree on every question.
TEST_F(LedgerTest, EventsFileAndLedgerGiveTheSameDecisions) {
  const std::vector<std::string> subjects = {"u1", "u2", "u3"};
  const std::vector<std::string> categories = {"content", "content.chat", "content.audio",
                                               "service_generated",
                                               "service_generated.product_usage"};
  const std::vector<std::string> purposes = {"ai_training.first_party", "marketing",
                                             "product_development", "ai_training"};
  std::mt19937 rng(42);
  for (int round = 0; round < 12; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    fs::remove_all(dir_);
    std::string jsonl;
    Timestamp at = *ParseTime("2023-08-07T12:00:00Z");
    for (int i = 0; i < 40; ++i) {
      at += static_cast<Timestamp>(rng() % (86400 * 2)) * kMicrosPerSecond;
      jsonl += "{\"subject\":\"" + subjects[rng() % 3] + "\",\"action\":\"" +
               (rng() % 3 ? "grant" : "withdraw") + "\",\"categories\":[\"" +
               categories[rng() % categories.size()] + "\"],\"purposes\":[\"" +
               purposes[rng() % 2 ? 0 : rng() % purposes.size()] + "\"],\"at\":\"" +
               FormatTime(at) + "\"}\n";
    }
    std::vector<std::shared_ptr<const Terms>> versions = {*LoadTermsFile(kV2),
                                                          *LoadTermsFile(kV3)};
    auto events = ParseEventsJsonl(jsonl, "generated");
    ASSERT_TRUE(events);
    Engine offline(*TermsSet::Create(versions));
    auto applied = offline.ApplyBatch(*events);
    {
      auto l = OpenWithTerms();
      std::vector<ConsentEvent> to_import = *events;
      for (auto& e : to_import) e.position = 0;
      auto imported = l->RecordConsents(to_import);
      ASSERT_EQ(applied.has_value(), imported.has_value());
      if (!applied) continue;  // both refuse the same history
    }
    auto ledger = Open(true);
    ASSERT_TRUE(ledger);
    auto snap_a = offline.snapshot();
    auto snap_b = (*ledger)->engine().snapshot();
    for (int q = 0; q < 150; ++q) {
      std::string_view who[] = {subjects[rng() % 3]};
      DecisionRequest req;
      req.category = categories[rng() % categories.size()];
      req.purpose = purposes[rng() % purposes.size()];
      req.subjects = who;
      req.at = *ParseTime("2023-08-07T00:00:00Z") +
               static_cast<Timestamp>(rng() % (86400 * 90)) * kMicrosPerSecond;
      auto da = snap_a->Decide(req, kNow);
      auto db = snap_b->Decide(req, kNow);
      ASSERT_EQ(da.has_value(), db.has_value());
      if (!da) continue;
      // Positions differ (the ledger has two terms entries first); everything else agrees.
      EXPECT_EQ(da->allow, db->allow);
      EXPECT_EQ(da->reason, db->reason);
      EXPECT_EQ(da->rule ? da->rule->id : "-", db->rule ? db->rule->id : "-");
      ASSERT_EQ(da->parties.size(), db->parties.size());
      for (size_t i = 0; i < da->parties.size(); ++i) {
        EXPECT_EQ(da->parties[i].state, db->parties[i].state);
        EXPECT_EQ(da->parties[i].event == 0, db->parties[i].event == 0);
        if (da->parties[i].event) {
          EXPECT_EQ(da->parties[i].event + 2, db->parties[i].event);
        }
      }
    }
  }
}

}  // namespace
}  // namespace assent

namespace assent {
namespace {

// Sign-in tokens used up are entries of the ledger: remembered across a restart (so every node
// and every restart agrees a link was used), refused a second time, forgotten once expired.
TEST(LedgerTokensTest, AUsedTokenIsRememberedUntilItExpiresAndRefusedTwice) {
  const std::string dir =
      (std::filesystem::temp_directory_path() / ("assent-tokens-" + std::to_string(::getpid())))
          .string();
  std::filesystem::remove_all(dir);
  Timestamp now = *ParseTime("2024-01-01T00:00:00Z");
  LedgerOptions o;
  o.data_dir = dir;
  o.clock = [&now] { return now; };
  const std::string a(64, 'a'), b(64, 'b'), c(64, 'c');
  {
    auto l = Ledger::Open(o);
    ASSERT_TRUE(l) << l.error().message;
    ASSERT_TRUE((*l)->SpendToken("redeem", a, now + 600 * kMicrosPerSecond));
    ASSERT_TRUE((*l)->SpendToken("end", b, now + 3600 * kMicrosPerSecond));
    auto again = (*l)->SpendToken("redeem", a, now + 600 * kMicrosPerSecond);
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().code, ErrorCode::kAlreadyExists);
    const uint64_t head = (*l)->position();
    // Malformed names, unknown actions and expiries past or out of range change nothing.
    for (auto [action, hash, expires] :
         {std::tuple<std::string, std::string, Timestamp>{"redeem", "xyz", now + 1},
          {"redeem", std::string(64, 'g'), now + 1},
          {"use", c, now + 1},
          {"end", c, now},
          {"end", c, kMaxTime + 1}}) {
      auto st = (*l)->SpendToken(action, hash, expires);
      ASSERT_FALSE(st) << action << " " << hash;
      EXPECT_EQ(st.error().code, ErrorCode::kInvalidArgument);
    }
    EXPECT_EQ((*l)->position(), head);
    EXPECT_FALSE((*l)->TokenSpent(c));
  }
  {
    auto l = Ledger::Open(o);
    ASSERT_TRUE(l) << l.error().message;
    EXPECT_TRUE((*l)->TokenSpent(a));
    EXPECT_TRUE((*l)->TokenSpent(b));
    EXPECT_EQ((*l)->tokens_remembered(), 2u);
  }
  now += 601 * kMicrosPerSecond;  // the link expired: it cannot be presented, nothing to keep
  {
    auto l = Ledger::Open(o);
    ASSERT_TRUE(l) << l.error().message;
    EXPECT_FALSE((*l)->TokenSpent(a));
    EXPECT_TRUE((*l)->TokenSpent(b));
    // Memory stays bounded by the live tokens: expired ones go as new ones arrive.
    for (int i = 0; i < 200; ++i) {
      char hex[65];
      std::snprintf(hex, sizeof hex, "%064x", i + 1);
      ASSERT_TRUE((*l)->SpendToken("end", hex, now + kMicrosPerSecond));
    }
    now += 2 * kMicrosPerSecond;
    for (int i = 0; i < 200; ++i) {
      char hex[65];
      std::snprintf(hex, sizeof hex, "%064x", 1000 + i);
      ASSERT_TRUE((*l)->SpendToken("end", hex, now + 3600 * kMicrosPerSecond));
    }
    EXPECT_EQ((*l)->tokens_remembered(), 201u);  // b and the 200 live ones
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace assent

namespace assent {
namespace {

TEST(EventsFileTest, AMissingFileIsNotFound) {
  auto r = LoadEventsFile("/nonexistent/events.jsonl");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  EXPECT_NE(r.error().message.find("/nonexistent/events.jsonl"), std::string::npos);
}

}  // namespace
}  // namespace assent
