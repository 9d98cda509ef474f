// Fuzz target: the ledger entry decoder (replay, export, audit). The first byte picks the
// entry kind. Property: a consent event that decodes, encoded again and decoded, is the same
// event (decode . encode . decode = decode).
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "ledger/entry.h"

namespace {
bool Same(const assent::ConsentEvent& a, const assent::ConsentEvent& b) {
  return a.position == b.position && a.party_kind == b.party_kind && a.party == b.party &&
         a.action == b.action && a.categories == b.categories && a.purposes == b.purposes &&
         a.at == b.at && a.terms_version == b.terms_version && a.method == b.method &&
         a.rule == b.rule && a.actor == b.actor && a.notice_locale == b.notice_locale &&
         a.notice_sha256 == b.notice_sha256;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  using assent::internal::EntryKind;
  const auto kind = static_cast<EntryKind>(data[0] % 8);
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  static assent::internal::EntryDecoder decoder;
  assent::internal::EntryView view{1, kind, body, {}};
  switch (kind) {
    case EntryKind::kConsent: {
      assent::ConsentEvent e;
      if (!decoder.Decode(view, &e, nullptr)) return 0;
      if (!assent::TimeInRange(e.at)) return 0;  // a legacy out-of-range time: decoded, not re-made
      auto again = assent::internal::MakeConsentEntry(e.position, e.at, e);
      assent::ConsentEvent f;
      assent::internal::EntryView v2{e.position, kind, again.body, {}};
      if (!decoder.Decode(v2, &f, nullptr) || !Same(e, f)) std::abort();
      return 0;
    }
    case EntryKind::kTerms: {
      assent::internal::EntryDecoder::TermsFields t;
      (void)decoder.Decode(view, nullptr, &t);
      return 0;
    }
    case EntryKind::kKey: {
      assent::internal::KeyFields k;
      (void)decoder.DecodeKey(view, &k);
      return 0;
    }
    case EntryKind::kDataset: {
      assent::internal::DatasetFields d;
      assent::Timestamp at;
      (void)decoder.DecodeDataset(view, &d, &at);
      return 0;
    }
    case EntryKind::kModel: {
      assent::internal::ModelFields m;
      assent::Timestamp at;
      (void)decoder.DecodeModel(view, &m, &at);
      return 0;
    }
    case EntryKind::kToken: {
      assent::internal::TokenFields t;
      (void)decoder.DecodeToken(view, &t);
      return 0;
    }
    default: {
      assent::PartyKind pk;
      std::string pseudonym;
      (void)decoder.DecodeErasure(view, &pk, &pseudonym);
      return 0;
    }
  }
}
