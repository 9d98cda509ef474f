// Proof of notice end to end, on the real `assent serve`: the consents listing gives each
// rule's notice hash, `assent terms notice` recomputes it from the terms file, a choice sent
// with it records it (and anything else is refused), the receipt carries it, and a receipt
// whose notice was edited fails `assent audit verify-receipt`.
#include <fstream>

#include "../run_assent.h"
#include "server_harness.h"

namespace {

using namespace assent_test;

std::string NoticeOf(const std::string& listing, const std::string& rule) {
  std::smatch m;
  const std::regex re("\"rule\":\"" + rule +
                      "\".*?\"notice\":(\\{\"locale\":\"en\",\"sha256\":\"[0-9a-f]{64}\"\\})");
  if (!std::regex_search(listing, m, re)) return "";
  return m[1];
}

std::string Sha(const std::string& notice) {
  return notice.substr(notice.find("\"sha256\":\"") + 10, 64);
}

TEST(NoticeTest, AChoiceRecordsTheNoticeShownAndAReceiptWithAnEditedNoticeFailsVerification) {
  Server s;
  Response listing = s.Call("GET", "/v1/subjects/nia/consents");
  ASSERT_EQ(listing.status, 200) << listing.body;
  const std::string review = NoticeOf(listing.body, "meeting-quality-review");
  const std::string training = NoticeOf(listing.body, "service-generated-for-ai-training");
  ASSERT_FALSE(review.empty()) << listing.body;
  ASSERT_NE(review, training);
  // Anyone with the terms file recomputes the hash.
  auto cli = assent::testing_cli::RunAssent(
      "terms notice examples/terms/example-meetings-2023-08-11.yaml --rule meeting-quality-review --sha256");
  ASSERT_EQ(cli.code, 0) << cli.out;
  EXPECT_EQ(cli.out, Sha(review) + "\n");

  // Recorded with the choice and in its receipt.
  const std::string withdraw = R"({"rule":"meeting-quality-review","action":"withdraw","notice":)" + review + "}";
  Response r = s.Call("POST", "/v1/subjects/nia/consents", withdraw);
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_NE(r.body.find("\"notice\":" + review), std::string::npos) << r.body;
  Response history = s.Call("GET", "/v1/subjects/nia/history");
  EXPECT_NE(history.body.find(Sha(review)), std::string::npos) << history.body;
  // Without one, the event records that none was stated.
  Response none = s.Call("POST", "/v1/subjects/nia/consents",
                         R"({"rule":"service-generated-for-ai-training","action":"withdraw"})");
  ASSERT_EQ(none.status, 201) << none.body;
  EXPECT_NE(none.body.find("\"notice\":\"none\""), std::string::npos) << none.body;

  // Refused, recording nothing: another rule's notice, a hash of nothing shown, a locale the
  // terms do not offer, malformed notices.
  const uint64_t before = s.Position();
  struct Refusal {
    std::string notice;
    int status;
    std::string says;
  };
  const std::string zeros(64, '0');
  for (const Refusal& c : std::vector<Refusal>{
           {training, 422, "the text of rule 'service-generated-for-ai-training'"},
           {R"({"locale":"en","sha256":")" + zeros + "\"}", 422, "not the SHA-256 of any rule"},
           {R"({"locale":"fr","sha256":")" + Sha(review) + "\"}", 422, "no text in locale 'fr'"},
           {R"({"locale":"de","sha256":")" + Sha(review) + "\"}", 422, "not the SHA-256 of any rule"},
           {R"({"locale":"en","sha256":"ABC"})", 422, "64 lowercase hex"},
           {R"({"locale":"en us","sha256":")" + Sha(review) + "\"}", 422, "BCP 47"},
           {R"("none")", 400, "must be an object"},
           {R"({"locale":"en"})", 400, "sha256"},
           {R"({"locale":"en","sha256":")" + Sha(review) + R"(","text":"x"})", 400, "text"},
       }) {
    Response bad = s.Call("POST", "/v1/subjects/nia/consents",
                          R"({"rule":"meeting-quality-review","action":"withdraw","notice":)" + c.notice + "}");
    EXPECT_EQ(bad.status, c.status) << c.notice << ": " << bad.body;
    EXPECT_NE(bad.body.find(c.says), std::string::npos) << c.notice << ": " << bad.body;
  }
  EXPECT_EQ(s.Position(), before) << "a refused notice records nothing";

  // In German: the listing in German gives the German notice, which a choice records.
  Response german = s.Call("GET", "/v1/subjects/nia/consents", "", "service",
                           {"Accept-Language: de-CH, de;q=0.9, en;q=0.5"});
  ASSERT_EQ(german.status, 200) << german.body;
  EXPECT_NE(german.headers.find("Content-Language: de"), std::string::npos) << german.headers;
  EXPECT_NE(german.body.find("\"locale\":\"de\",\"locales\":[\"en\",\"de\"]"), std::string::npos);
  EXPECT_NE(german.body.find("Qualitätsprüfung mit Einwilligung"), std::string::npos);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(german.body, m, std::regex(
      R"re("rule":"meeting-quality-review".*?"notice":(\{"locale":"de","sha256":"[0-9a-f]{64}"\}))re")));
  const std::string review_de = m[1];
  EXPECT_EQ(s.Call("GET", "/v1/subjects/nia/consents?locale=de").body, german.body);
  auto de_cli = assent::testing_cli::RunAssent(
      "terms notice examples/terms/example-meetings-2023-08-11.yaml --rule meeting-quality-review --locale de --sha256");
  EXPECT_EQ(de_cli.out, Sha(review_de) + "\n");
  Response in_german = s.Call("POST", "/v1/subjects/nia/consents",
      R"({"rule":"meeting-quality-review","action":"withdraw","notice":)" + review_de + "}");
  ASSERT_EQ(in_german.status, 201) << in_german.body;
  EXPECT_NE(in_german.body.find("\"notice\":" + review_de), std::string::npos) << in_german.body;
  Response french = s.Call("GET", "/v1/subjects/nia/consents?locale=fr");
  EXPECT_EQ(french.status, 422) << french.body;
  EXPECT_NE(french.body.find("they are in: en, de"), std::string::npos) << french.body;

  // The receipt verifies offline; with its notice edited or removed, it does not.
  Response key = s.Call("GET", "/v1/audit/key");
  ASSERT_EQ(key.status, 200);
  std::string k = key.body;
  while (!k.empty() && (k.back() == '\n' || k.back() == '\r')) k.pop_back();
  const fs::path dir = fs::temp_directory_path() / ("assent-notice-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  auto verify = [&](const std::string& receipt) {
    std::ofstream(dir / "r.json") << receipt;
    return assent::testing_cli::RunAssent("audit verify-receipt '" + (dir / "r.json").string() +
                                          "' --key '" + k + "'");
  };
  auto ok = verify(r.body);
  EXPECT_EQ(ok.code, 0) << ok.out;
  std::string edited = r.body;
  const size_t at = edited.find(Sha(review));
  edited[at] = edited[at] == 'a' ? 'b' : 'a';
  auto forged = verify(edited);
  EXPECT_NE(forged.code, 0) << forged.out;
  EXPECT_NE(forged.out.find("\"notice\" does not match the signed entry"), std::string::npos)
      << forged.out;
  std::string dropped = r.body;
  dropped.erase(dropped.find(",\"notice\":"), std::string(",\"notice\":").size() + review.size());
  auto missing = verify(dropped);
  EXPECT_NE(missing.code, 0) << missing.out;
  fs::remove_all(dir);
}

}  // namespace
