// The gate's inputs and outputs (gzip, zstd, CRLF, no final newline), the publishers' opt-out
// signals, and the mistakes it names (misspelt fields, unknown categories, a purpose that is
// not a leaf).
#include <zlib.h>
#include <zstd.h>

#include <chrono>
#include <thread>

#include "common/sha256.h"
#include "filter/filter_test_util.h"
#include "filter/impact.h"
#include "ledger/lineage.h"

namespace assent::filter_test {
namespace {

std::string Gzip(const std::string& text) {
  z_stream z{};
  deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, text.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  z.avail_in = static_cast<uInt>(text.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(out.size() - z.avail_out);
  deflateEnd(&z);
  return out;
}

std::string Zstd(const std::string& text) {
  std::string out(ZSTD_compressBound(text.size()), '\0');
  out.resize(ZSTD_compress(out.data(), out.size(), text.data(), text.size(), 3));
  return out;
}

std::string Gunzip(const std::string& data) {
  z_stream z{};
  inflateInit2(&z, 15 + 32);
  std::string out;
  char buf[65536];
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  int rc;
  do {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof buf;
    rc = inflate(&z, Z_NO_FLUSH);
    out.append(buf, sizeof buf - z.avail_out);
  } while (rc == Z_OK);
  inflateEnd(&z);
  return out;
}

std::string Unzstd(const std::string& data) {
  ZSTD_DCtx* d = ZSTD_createDCtx();
  ZSTD_inBuffer in{data.data(), data.size(), 0};
  std::string out;
  char buf[65536];
  while (in.pos < in.size) {
    ZSTD_outBuffer o{buf, sizeof buf, 0};
    if (ZSTD_isError(ZSTD_decompressStream(d, &o, &in))) break;
    out.append(buf, o.pos);
  }
  ZSTD_freeDCtx(d);
  return out;
}

class GateIoTest : public FilterTest {
 protected:
  // Runs the filter on `bytes` written as the input file, for ai_training.first_party.
  Result<FilterReport> Run(const std::string& bytes, const std::string& out_name,
                           FilterOptions o = {}) {
    std::ofstream(dir_ + "/in.bin", std::ios::binary) << bytes;
    o.in_path = dir_ + "/in.bin";
    o.out_path = dir_ + "/" + out_name;
    if (o.purpose.empty()) o.purpose = "ai_training.first_party";
    return RunFilter(*ledger_->engine().snapshot(), kNow, o);
  }
  // Lines of telemetry for u1..u9 (not objected: kept), CRLF on one, no final newline.
  static std::string Manifest() {
    std::string m;
    for (int i = 1; i <= 9; ++i) {
      m += R"({"id":"t)" + std::to_string(i) +
           R"(","category":"service_generated.telemetry","subjects":["u)" + std::to_string(i) +
           "\"]}" + (i == 4 ? "\r\n" : "\n");
    }
    m += R"({"id":"last","category":"service_generated.telemetry","subjects":["u1"]})";
    return m;
  }
};

TEST_F(GateIoTest, GzipAndZstdAreReadByTheirMagicBytesAndGiveTheSameResult) {
  const std::string m = Manifest();
  auto plain = Run(m, "plain.jsonl");
  ASSERT_TRUE(plain) << plain.error().message;
  EXPECT_EQ(plain->kept, 10u);
  EXPECT_EQ(Read(dir_ + "/plain.jsonl"), m);  // byte for byte: CRLF kept, no newline added
  for (const std::string& packed : {Gzip(m), Zstd(m), Gzip(m.substr(0, 100)) + Gzip(m.substr(100))}) {
    auto r = Run(packed, "out.jsonl");  // the name says nothing: the bytes do
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(Read(dir_ + "/out.jsonl"), m);
    EXPECT_EQ(r->input_sha256, plain->input_sha256) << "the manifest's hash, not the file's";
    EXPECT_EQ(r->output_sha256, plain->output_sha256);
  }
  // Damaged or truncated compressed input fails and leaves nothing.
  std::string cut = Gzip(m);
  cut.resize(cut.size() / 2);
  auto damaged = Run(cut, "bad.jsonl");
  ASSERT_FALSE(damaged);
  EXPECT_EQ(damaged.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(damaged.error().message.find("gzip"), std::string::npos) << damaged.error().message;
  EXPECT_FALSE(fs::exists(dir_ + "/bad.jsonl"));
  std::string zcut = Zstd(m);
  zcut.resize(zcut.size() - 3);
  EXPECT_FALSE(Run(zcut, "bad.jsonl"));
  EXPECT_FALSE(fs::exists(dir_ + "/bad.jsonl"));
}

TEST_F(GateIoTest, OutputsNamedGzOrZstAreWrittenCompressed) {
  const std::string m = Manifest();
  ASSERT_TRUE(Run(m, "kept.jsonl.gz"));
  EXPECT_EQ(Gunzip(Read(dir_ + "/kept.jsonl.gz")), m);
  ASSERT_TRUE(Run(m, "kept.jsonl.zst"));
  EXPECT_EQ(Unzstd(Read(dir_ + "/kept.jsonl.zst")), m);
}

TEST_F(GateIoTest, PublishersOptOutSignalsExcludeItemsButNeverOverrideConsent) {
  const std::string base = R"({"id":"ID","category":"service_generated.telemetry","subjects":["u1"])";
  auto item = [&](const std::string& id, const std::string& extra) {
    std::string line = base;
    line.replace(line.find("ID"), 2, id);
    return line + extra + "}\n";
  };
  const std::string m =
      item("none", "") +
      item("usage-no", R"(,"content_usage":"search=y, Train-AI=N")") +
      item("genai-no", R"(,"content_usage":"train-genai=n")") +
      item("usage-yes", R"(,"content_usage":"train-ai=y")") +
      // AIPREF's categories nest (bots > train-ai > train-genai): a wider "no" holds where the
      // narrower one says nothing; a key given again replaces what it said; other values are
      // no preference.
      item("bots-no", R"(,"content_usage":"search=y, bots=n")") +
      item("bots-no-train-yes", R"(,"content_usage":"bots=n, train-ai=y")") +
      item("genai-no-train-yes", R"(,"content_usage":"train-ai=y, train-genai=n")") +
      item("last-yes", R"(,"content_usage":"train-ai=n, train-ai=y")") +
      item("last-no", R"(,"content_usage":"train-ai=y, train-ai=n")") +
      item("usage-unknown", R"(,"content_usage":"train-ai=maybe, train-ai-extra=n")") +
      item("signal-no", R"(,"content_signal":"search=yes, AI-Train=No")") +
      item("signal-yes", R"(,"content_signal":"ai-train=yes")") +
      item("tdm-1", R"(,"tdm_reservation":1)") +
      item("tdm-str", R"(,"tdm_reservation":"1")") +
      item("tdm-0", R"(,"tdm_reservation":0)") +
      item("c2pa-no", R"(,"c2pa_training":{"cawg.ai_training":{"use":"notAllowed"}})") +
      item("c2pa-constrained", R"(,"c2pa_training":{"c2pa.ai_generative_training":{"use":"constrained"}})") +
      item("c2pa-yes", R"(,"c2pa_training":{"cawg.ai_training":{"use":"allowed"}})") +
      // The shapes CAWG 1.1 and C2PA tools write: the assertion's data with its "entries" map,
      // a whole assertion, a manifest's list of assertions.
      item("c2pa-entries-no", R"(,"c2pa_training":{"entries":{"cawg.data_mining":{"use":"allowed"},"cawg.ai_training":{"use":"notAllowed"}}})") +
      item("c2pa-assertion-no", R"(,"c2pa_training":{"label":"cawg.training-mining","data":{"entries":{"cawg.ai_generative_training":{"use":"Constrained","constraints_info":"ask"}}}})") +
      item("c2pa-list-no", R"(,"c2pa_training":[{"label":"c2pa.actions","data":{"actions":[]}},{"label":"c2pa.training-mining","data":{"entries":{"c2pa.ai_training":{"use":"notAllowed"}}}}])") +
      item("c2pa-entries-yes", R"(,"c2pa_training":{"entries":{"cawg.ai_training":{"use":"allowed"},"cawg.ai_inference":{"use":"notAllowed"},"cawg.data_mining":{"use":"notAllowed"}}})") +
      // A "yes" never overrides a prohibition (nor anyone's choice).
      R"({"id":"prohibited-yes","category":"content.chat","subjects":["u1"],"content_usage":"train-ai=y"})" "\n";
  auto r = Run(m, "out.jsonl");
  ASSERT_TRUE(r) << r.error().message;
  const std::string kept = Read(dir_ + "/out.jsonl");
  auto has = [&kept](const std::string& id) { return kept.find("\"" + id + "\"") != std::string::npos; };
  for (const char* id : {"none", "usage-yes", "bots-no-train-yes", "last-yes", "usage-unknown",
                         "signal-yes", "tdm-0", "c2pa-yes", "c2pa-entries-yes"}) {
    EXPECT_TRUE(has(id)) << id;
  }
  for (const char* id : {"usage-no", "genai-no", "bots-no", "genai-no-train-yes", "last-no",
                         "signal-no", "tdm-1", "tdm-str", "c2pa-no",
                         "c2pa-constrained", "c2pa-entries-no", "c2pa-assertion-no", "c2pa-list-no",
                         "prohibited-yes"}) {
    EXPECT_FALSE(has(id)) << id;
  }
  EXPECT_EQ(r->excluded_by_reason["signal-opt-out"], 13u);
  EXPECT_EQ(r->excluded_by_reason["prohibited"], 1u);
  EXPECT_EQ(r->excluded_by_signal["content-usage"], 5u);
  EXPECT_EQ(r->excluded_by_signal["content-signal"], 1u);
  EXPECT_EQ(r->excluded_by_signal["tdmrep"], 2u);
  EXPECT_EQ(r->excluded_by_signal["c2pa"], 5u);
  EXPECT_NE(r->ToJson().find(R"("excluded_by_signal":{)"), std::string::npos);
  // Signals speak of AI training: other purposes do not read them; an empty field name turns
  // a signal off.
  FilterOptions delivery;
  delivery.purpose = "service.delivery";
  auto d = Run(m, "delivery.jsonl", delivery);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->kept, 23u);  // all: delivery reads no signal, and needs no consent
  FilterOptions no_tdm;
  no_tdm.tdm_field = "";
  auto t = Run(m, "out.jsonl", no_tdm);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->excluded_by_signal.count("tdmrep"), 0u);
}

TEST_F(GateIoTest, MistakesAreNamedNotSilentlyCounted) {
  const std::string m =
      R"({"id":"a","category":"service_generated.telemetry","subject":["u1"],"acount":"x"})" "\n"
      R"({"id":"b","category":"service_generated.telmetry","subject":["u2"]})" "\n";
  auto r = Run(m, "out.jsonl");
  ASSERT_TRUE(r) << r.error().message;
  std::string all;
  for (const auto& w : r->warnings) all += w + "\n";
  EXPECT_NE(all.find("no item has 'subjects'; 2 have 'subject' — --subjects-field subject?"),
            std::string::npos) << all;
  EXPECT_NE(all.find("no item has 'account'; 1 have 'acount'"), std::string::npos) << all;
  EXPECT_NE(all.find("did you mean 'service_generated.telemetry'"), std::string::npos) << all;
  EXPECT_NE(r->Summary().find("warning: no item has 'subjects'"), std::string::npos);
  // A purpose with sub-purposes is refused, naming them.
  FilterOptions o;
  o.purpose = "ai_training";
  auto p = Run(m, "out2.jsonl", o);
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(p.error().message.find("ai_training.first_party or ai_training.third_party"),
            std::string::npos) << p.error().message;
  EXPECT_FALSE(fs::exists(dir_ + "/out2.jsonl"));
  // An empty or blank subject id is malformed.
  auto blank = Run(R"({"id":"c","category":"service_generated.telemetry","subjects":[" "]})" "\n",
                   "out3.jsonl");
  ASSERT_FALSE(blank);
  EXPECT_NE(blank.error().message.find("empty or blank"), std::string::npos);
  // Unknown category names are the manifest's to choose: the report names 1,000 of them and
  // counts the rest together, whatever the manifest holds.
  std::string many;
  for (int i = 0; i < 1200; ++i) {
    many += R"({"id":"m)" + std::to_string(i) + R"(","category":"made.up.)" + std::to_string(i) +
            R"(","subjects":["u1"]})" "\n";
  }
  many += R"({"id":"k","category":"service_generated.telemetry","subjects":["u1"]})" "\n";
  auto bounded = Run(many, "out4.jsonl");
  ASSERT_TRUE(bounded) << bounded.error().message;
  EXPECT_EQ(bounded->excluded_by_reason.at("unknown-category"), 1200u);
  EXPECT_EQ(bounded->by_category.size(), 1000u + 2u);  // 1,000 named, the rest, telemetry
  EXPECT_EQ(bounded->by_category.at("(other unknown categories)").second, 200u);
  EXPECT_EQ(bounded->by_category.count("service_generated.telemetry"), 1u);
  std::string said;
  for (const auto& w : bounded->warnings) said += w + "\n";
  EXPECT_NE(said.find("200 items have one of more than 1000 other categories"), std::string::npos)
      << said.substr(0, 300);
}

// "Built before you said no" compares ledger positions, never clock times: two datasets with a
// withdrawal between them.
TEST_F(GateIoTest, ImpactComparesLedgerPositions) {
  auto record = [&](const std::string& name) {
    DatasetRegistration d;
    d.name = name;
    d.purpose = "ai_training.first_party";
    d.ledger_position = ledger_->position();
    d.subjects = {"pat"};
    ASSERT_TRUE(ledger_->RegisterDataset(d));
  };
  record("before");
  ConsentEvent w;
  w.party = "pat";
  w.action = Action::kWithdraw;
  w.rule = "service-generated-for-ai-training";
  ASSERT_TRUE(ledger_->RecordConsent(w));
  record("after");
  const std::string json = ImpactJson(*ledger_, PartyKind::kSubject, "pat", std::nullopt);
  const size_t before = json.find(R"("name":"before")"), after = json.find(R"("name":"after")");
  ASSERT_NE(before, std::string::npos) << json;
  ASSERT_NE(after, std::string::npos) << json;
  EXPECT_NE(json.find("built-before-withdrawal", before), std::string::npos) << json;
  EXPECT_NE(json.find("built-after-withdrawal", after), std::string::npos) << json;
}

// The input's hash begun ahead (while the CLI opens the ledger) gives the same hash as hashing
// every block; a file changed after it began is hashed again from the start; compressed input
// and standard input are not hashed ahead at all.
TEST_F(GateIoTest, TheInputHashBegunAheadIsTheFilesOwn) {
  std::string manifest;
  for (int i = 0; i < 20000; ++i) {
    manifest += "{\"id\":\"m" + std::to_string(i) + "\",\"category\":\"content.chat\",\"subjects\":[\"u" +
                std::to_string(i % 7) + "\"]}\n";
  }
  const std::string in = dir_ + "/ahead.jsonl";
  std::ofstream(in, std::ios::binary) << manifest;
  for (int threads : {1, 2, 3}) {
    auto ahead = InputHashAhead::Start(in);
    ASSERT_NE(ahead, nullptr);
    FilterOptions o;
    o.purpose = "product_development.quality_review";
    o.in_path = in;
    o.out_path = dir_ + "/ahead-out.jsonl";
    o.threads = threads;
    o.block_bytes = 4096;
    o.hash_ahead = ahead.get();
    auto r = RunFilter(*ledger_->engine().snapshot(), kNow, o);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->input_sha256, ToHex(Sha256(manifest))) << threads;
  }
  // Changed after the hash began: the run hashes what it reads.
  auto ahead = InputHashAhead::Start(in);
  ASSERT_NE(ahead, nullptr);
  const std::string longer = manifest + "{\"id\":\"late\",\"category\":\"content.chat\"}\n";
  std::this_thread::sleep_for(std::chrono::milliseconds(5));  // a later modification time
  std::ofstream(in, std::ios::binary | std::ios::trunc) << longer;
  FilterOptions o;
  o.purpose = "product_development.quality_review";
  o.in_path = in;
  o.out_path = dir_ + "/ahead-out.jsonl";
  o.threads = 2;
  o.hash_ahead = ahead.get();
  auto r = RunFilter(*ledger_->engine().snapshot(), kNow, o);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->input_sha256, ToHex(Sha256(longer)));
  EXPECT_EQ(r->items, 20001u);
  std::ofstream(dir_ + "/ahead.jsonl.zst", std::ios::binary) << Zstd(manifest);
  EXPECT_EQ(InputHashAhead::Start(dir_ + "/ahead.jsonl.zst"), nullptr);
  EXPECT_EQ(InputHashAhead::Start("-"), nullptr);
  // Dropped unused while it hashes (a run that failed before it began): it stops cleanly.
  for (int i = 0; i < 20; ++i) InputHashAhead::Start(in).reset();
  EXPECT_EQ(InputHashAhead::Start(dir_ + "/missing.jsonl"), nullptr);
}

// A run that nobody records (hash off) keeps exactly what a hashing run keeps, in one file or in
// shards, on any number of threads; its report says no hash rather than a wrong one, and a hash
// begun ahead is left unused.
TEST_F(GateIoTest, ARunWithoutHashesKeepsTheSameLinesAndClaimsNoHash) {
  std::string manifest;
  for (int i = 0; i < 30000; ++i) {
    manifest += "{\"id\":\"h" + std::to_string(i) + "\",\"category\":\"" +
                (i % 3 ? "service_generated.telemetry" : "content.chat") + "\",\"subjects\":[\"u" +
                std::to_string(i % 11) + "\"]}" + (i % 5 == 0 ? "\r\n" : "\n");
  }
  const std::string in = dir_ + "/nohash.jsonl";
  std::ofstream(in, std::ios::binary) << manifest;
  for (int shards : {0, 3}) {
    for (int threads : {1, 2, 4}) {
      FilterOptions o;
      o.purpose = "ai_training.first_party";
      o.in_path = in;
      o.threads = threads;
      o.block_bytes = 8192;
      o.shards = shards;
      o.out_path = dir_ + "/hashed.jsonl";
      auto hashed = RunFilter(*ledger_->engine().snapshot(), kNow, o);
      ASSERT_TRUE(hashed) << hashed.error().message;
      EXPECT_EQ(hashed->input_sha256, ToHex(Sha256(manifest)));
      auto ahead = InputHashAhead::Start(in);
      o.hash_ahead = ahead.get();
      o.hash = false;
      o.out_path = dir_ + "/unhashed.jsonl";
      auto r = RunFilter(*ledger_->engine().snapshot(), kNow, o);
      ASSERT_TRUE(r) << r.error().message;
      EXPECT_EQ(r->input_sha256, "");
      EXPECT_EQ(r->output_sha256, "");
      EXPECT_GT(r->kept, 0u);
      EXPECT_LT(r->kept, r->items);
      EXPECT_EQ(r->kept, hashed->kept);
      EXPECT_EQ(r->excluded_by_reason, hashed->excluded_by_reason);
      const int files = shards ? shards : 1;
      for (int s = 0; s < files; ++s) {
        const std::string a = shards ? ShardFileName(dir_ + "/hashed.jsonl", s, shards) : dir_ + "/hashed.jsonl";
        const std::string b = shards ? ShardFileName(dir_ + "/unhashed.jsonl", s, shards) : dir_ + "/unhashed.jsonl";
        EXPECT_EQ(Read(b), Read(a)) << "shards " << shards << ", threads " << threads;
      }
    }
  }
}

}  // namespace
}  // namespace assent::filter_test
